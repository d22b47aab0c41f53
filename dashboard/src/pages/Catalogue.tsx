// The template catalogue and the launch form.
import { useState } from 'react';
import { useNavigate } from 'react-router';
import { useMutation, useQuery } from 'urql';

import { LaunchMutation, MeQuery, TemplatesQuery } from '../api/documents';
import { LaunchForm, type TemplateItem } from '../components/LaunchForm';
import { QuotaDisplay } from '../components/QuotaDisplay';
import { Empty, ErrorBox, Loading, errorText } from '../components/ui';
import { formatDuration } from '../domain/time';

function resourcesText(t: TemplateItem): string {
  const r = t.resources;
  if (!r) return 'default resources';
  const parts = [
    r.gpuSlices ? `${r.gpuSlices} GPU slice${r.gpuSlices === 1 ? '' : 's'}` : 'CPU only',
    r.cpuMillis ? `${r.cpuMillis / 1000} CPU` : null,
    r.memoryMib ? `${(r.memoryMib / 1024).toFixed(r.memoryMib % 1024 ? 1 : 0)} GiB memory` : null,
  ];
  return parts.filter(Boolean).join(' · ');
}

export function Catalogue() {
  const [templates] = useQuery({ query: TemplatesQuery });
  const [me, refetchMe] = useQuery({ query: MeQuery, requestPolicy: 'cache-and-network' });
  const [, launch] = useMutation(LaunchMutation);
  const [chosen, setChosen] = useState<string | null>(null);
  const navigate = useNavigate();

  if (templates.fetching && !templates.data) return <Loading what="templates" />;
  if (templates.error) return <ErrorBox error={templates.error} title="Templates unavailable" />;
  const list = templates.data?.templates ?? [];
  const quota = me.data?.me.quota;

  return (
    <section aria-labelledby="catalogue-title">
      <h1 id="catalogue-title">Desktops</h1>
      {quota ? <QuotaDisplay quota={quota} /> : me.error ? <ErrorBox error={me.error} title="Quota unavailable" /> : null}
      {list.length === 0 ? (
        <Empty>No templates you may use. Ask an administrator.</Empty>
      ) : (
        <ul className="cards">
          {list.map((t) => (
            <li key={t.name} className="card">
              <h2>{t.displayName}</h2>
              <p className="muted">{t.name}</p>
              {t.description && <p>{t.description}</p>}
              <p>
                <span className={t.resources?.gpuSlices ? 'tag tag-gpu' : 'tag'}>{t.resources?.gpuSlices ? 'GPU' : 'CPU'}</span>{' '}
                {resourcesText(t)}
              </p>
              {chosen === t.name && quota ? (
                <LaunchForm
                  template={t}
                  quota={quota}
                  onCancel={() => setChosen(null)}
                  onLaunch={async (req) => {
                    const res = await launch({
                      template: req.template,
                      // The template's resources unless the user changed the slices.
                      resources:
                        req.gpuSlices === (t.resources?.gpuSlices ?? 0)
                          ? null
                          : {
                              gpuSlices: req.gpuSlices,
                              cpuMillis: t.resources?.cpuMillis,
                              memoryMib: t.resources?.memoryMib,
                              gpuMemoryMib: t.resources?.gpuMemoryMib,
                              videoEncoder: t.resources?.videoEncoder,
                            },
                      timeout: req.timeoutSeconds === null ? null : formatDuration(req.timeoutSeconds),
                    });
                    if (res.error || !res.data) throw new Error(res.error ? errorText(res.error) : 'no answer');
                    refetchMe({ requestPolicy: 'network-only' });
                    navigate('/my', { state: { launched: res.data.launchSession.id } });
                  }}
                />
              ) : (
                <button type="button" className="primary" disabled={!quota} onClick={() => setChosen(t.name)}>
                  Launch…
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
