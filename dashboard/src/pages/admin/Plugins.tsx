// Plugins: state, digest and errors; upload a module (digest shown before it is used) and
// create or replace a VDIPlugin from it.
import { type DragEvent, useCallback, useState } from 'react';
import { useAuth } from 'react-oidc-context';
import { useMutation, useQuery } from 'urql';

import {
  CheckPluginSettingsMutation,
  DecisionsQuery,
  DeletePluginMutation,
  PluginsQuery,
  UpsertPluginMutation,
} from '../../api/documents';
import { uploadModule } from '../../client';
import { useConfig } from '../../configContext';
import { ConfirmButton, Empty, ErrorBox, Loading, errorText, usePolling } from '../../components/ui';
import { formatMicros, pluginStats } from '../../domain/pluginStats';
import { NAME_PATTERN, parseSpec } from '../../domain/spec';

const REFRESH_MS = 3000;
/** Sessions whose decisions feed the per-plugin figures (the API's complexity limit allows
 * about this many with their decisions). */
const DECISION_SESSIONS = 40;

type Uploaded = { sha256: string; size: number; new: boolean; name: string };

function pluginTemplate(sha256: string): string {
  return JSON.stringify(
    { hook: 'admission', source: { upload: {} }, sha256, order: 10, failurePolicy: 'Fail', settings: {} },
    null,
    2,
  );
}

export function Plugins() {
  const config = useConfig();
  const auth = useAuth();
  const [plugins, refetch] = useQuery({ query: PluginsQuery, requestPolicy: 'cache-and-network' });
  const [decisions, refetchDecisions] = useQuery({ query: DecisionsQuery, variables: { first: DECISION_SESSIONS } });
  const [, upsert] = useMutation(UpsertPluginMutation);
  const [, checkSettings] = useMutation(CheckPluginSettingsMutation);
  const [, remove] = useMutation(DeletePluginMutation);
  const [uploaded, setUploaded] = useState<Uploaded | null>(null);
  const [uploading, setUploading] = useState(false);
  const [notice, setNotice] = useState<{ error: boolean; text: string } | null>(null);
  const [name, setName] = useState('');
  const [spec, setSpec] = useState(pluginTemplate('sha256:…'));
  const [dragging, setDragging] = useState(false);
  const refresh = useCallback(() => {
    refetch({ requestPolicy: 'network-only' });
    refetchDecisions({ requestPolicy: 'network-only' });
  }, [refetch, refetchDecisions]);
  usePolling(refresh, REFRESH_MS);

  async function upload(file: File | undefined) {
    const token = auth.user?.id_token;
    if (!file || !token) return;
    setUploading(true);
    setNotice(null);
    try {
      const m = await uploadModule(config, token, file);
      setUploaded({ ...m, name: file.name });
      setSpec(pluginTemplate(m.sha256));
      if (!name) setName(file.name.replace(/\.wasm$/, '').replace(/[^a-z0-9-]/gi, '-').toLowerCase());
    } catch (e) {
      setNotice({ error: true, text: `Upload: ${e instanceof Error ? e.message : String(e)}` });
    } finally {
      setUploading(false);
    }
  }

  function onDrop(e: DragEvent) {
    e.preventDefault();
    setDragging(false);
    void upload(e.dataTransfer.files[0]);
  }

  const parsed = parseSpec(spec);
  const sessionsSeen = decisions.data?.sessions.edges.length ?? 0;
  const stats = pluginStats(decisions.data?.sessions.edges.flatMap((e) => e.node.decisions) ?? []);
  const list = plugins.data?.plugins ?? [];
  return (
    <section aria-labelledby="plugins-title">
      <h1 id="plugins-title">Plugins</h1>
      <div aria-live="polite" className="notice-slot">
        {notice && <p className={notice.error ? 'error' : 'ok'}>{notice.text}</p>}
      </div>
      {plugins.fetching && !plugins.data ? (
        <Loading what="plugins" />
      ) : plugins.error && !plugins.data ? (
        <ErrorBox error={plugins.error} title="Plugins unavailable" />
      ) : list.length === 0 ? (
        <Empty>No plugins.</Empty>
      ) : (
        <table className="responsive">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Hook</th>
              <th scope="col">Order</th>
              <th scope="col">On failure</th>
              <th scope="col">Digest</th>
              <th scope="col">Status</th>
              <th scope="col">Calls</th>
              <th scope="col">Denied / failed</th>
              <th scope="col">Latency p50 / max</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.map((p) => (
              <tr key={p.name} data-plugin={p.name}>
                <td data-label="Name">{p.name}</td>
                <td data-label="Hook">{p.hook}</td>
                <td data-label="Order">{p.order}</td>
                <td data-label="On failure">{p.failurePolicy}</td>
                <td data-label="Digest" className="digest" title={p.sha256}>
                  {p.sha256.slice(0, 19)}…
                </td>
                <td data-label="Status">
                  <span className={`status status-${(p.phase ?? 'unknown').toLowerCase()}`}>{p.phase ?? 'waiting'}</span>
                  {p.message && <div className={p.phase === 'Error' ? 'reason' : 'muted small'}>{p.message}</div>}
                </td>
                <td data-label="Calls">{stats.get(p.name)?.calls ?? 0}</td>
                <td data-label="Denied / failed">
                  {stats.get(p.name)?.denied ?? 0} / {stats.get(p.name)?.failed ?? 0}
                </td>
                <td data-label="Latency p50 / max">
                  {stats.has(p.name)
                    ? `${formatMicros(stats.get(p.name)?.p50Micros ?? 0)} / ${formatMicros(stats.get(p.name)?.maxMicros ?? 0)}`
                    : '—'}
                </td>
                <td data-label="Actions">
                  <button
                    type="button"
                    onClick={() => {
                      setName(p.name);
                      setSpec(JSON.stringify(p.spec, null, 2));
                    }}
                  >
                    Edit
                  </button>{' '}
                  <ConfirmButton
                    label="Delete"
                    question={`Delete ${p.name}?`}
                    confirmLabel="Yes, delete"
                    onConfirm={async () => {
                      const res = await remove({ name: p.name });
                      setNotice(res.error ? { error: true, text: errorText(res.error) } : { error: false, text: `${p.name} deleted.` });
                      refresh();
                    }}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      {list.length > 0 && (
        <p className="muted">
          Calls, refusals and latency: the decisions recorded on {sessionsSeen} of{' '}
          {decisions.data?.sessions.totalCount ?? 0} sessions (a session keeps every decision on
          it while it exists).
        </p>
      )}

      <h2>Upload a module</h2>
      <div
        className={dragging ? 'dropzone dragging' : 'dropzone'}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <label htmlFor="module-file">Drop a .wasm component here or choose one</label>
        <input id="module-file" type="file" accept=".wasm,application/wasm" disabled={uploading} onChange={(e) => void upload(e.target.files?.[0])} />
        {uploading && <p role="status">Uploading…</p>}
        {uploaded && (
          <p className="ok" data-testid="uploaded-digest">
            {uploaded.name}: <code>{uploaded.sha256}</code> ({uploaded.size} bytes{uploaded.new ? ', stored now' : ', already stored'})
          </p>
        )}
      </div>

      <h2>Create or replace a plugin</h2>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (!parsed.ok || !name.trim()) return;
          // An uploaded module checks its settings with its own `configure` before anything is
          // saved; other sources are checked by the operator when it loads them.
          const spec = parsed.value as { source?: { upload?: unknown }; sha256?: unknown; settings?: unknown };
          if (spec.source?.upload !== undefined && typeof spec.sha256 === 'string') {
            const checked = await checkSettings({ sha256: spec.sha256, settings: spec.settings ?? {} });
            const verdict = checked.data?.checkPluginSettings;
            if (checked.error || !verdict) {
              setNotice({ error: true, text: `Check: ${checked.error ? errorText(checked.error) : 'no answer'}` });
              return;
            }
            if (!verdict.valid) {
              const where = verdict.field ? `settings.${verdict.field}: ` : '';
              setNotice({ error: true, text: `Not saved: the plugin refused its settings: ${where}${verdict.message ?? ''}` });
              return;
            }
          }
          const res = await upsert({ name: name.trim(), spec: parsed.value });
          setNotice(res.error ? { error: true, text: `Save: ${errorText(res.error)}` } : { error: false, text: `${name.trim()} saved; the operator loads it.` });
          refresh();
        }}
      >
        <div className="field">
          <label htmlFor="plugin-name">Name</label>
          <input id="plugin-name" required pattern={NAME_PATTERN} value={name} onChange={(e) => setName(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="plugin-spec">Spec (JSON: hook, source, sha256, order, failurePolicy, settings)</label>
          <textarea id="plugin-spec" rows={10} spellCheck={false} value={spec} onChange={(e) => setSpec(e.target.value)} aria-invalid={!parsed.ok} aria-describedby="plugin-spec-err" />
          <span id="plugin-spec-err" className="field-error">
            {parsed.ok ? '' : parsed.error}
          </span>
        </div>
        <button type="submit" className="primary" disabled={!parsed.ok || !name.trim()}>
          Save plugin
        </button>
      </form>
    </section>
  );
}
