// Templates: create and edit (the spec as JSON, checked by the API, which names the field).
import { useState } from 'react';
import { useMutation, useQuery } from 'urql';

import { AdminTemplatesQuery, DeleteTemplateMutation, UpsertTemplateMutation } from '../../api/documents';
import { ConfirmButton, Empty, ErrorBox, Loading, errorText } from '../../components/ui';
import { NAME_PATTERN, parseSpec } from '../../domain/spec';

const NEW_TEMPLATE = {
  displayName: 'New desktop',
  description: '',
  image: 'ghcr.io/vdi-platform/ubuntu-desktop:24.04',
  resources: { gpuSlices: 0, cpuMillis: 1000, memoryMib: 2048 },
};

export function Templates() {
  const [templates, refetch] = useQuery({ query: AdminTemplatesQuery, requestPolicy: 'cache-and-network' });
  const [, upsert] = useMutation(UpsertTemplateMutation);
  const [, remove] = useMutation(DeleteTemplateMutation);
  const [name, setName] = useState('');
  const [spec, setSpec] = useState(JSON.stringify(NEW_TEMPLATE, null, 2));
  const [notice, setNotice] = useState<{ error: boolean; text: string } | null>(null);
  const parsed = parseSpec(spec);
  const list = templates.data?.templates ?? [];
  const refresh = () => refetch({ requestPolicy: 'network-only' });

  return (
    <section aria-labelledby="templates-title">
      <h1 id="templates-title">Templates</h1>
      <div aria-live="polite" className="notice-slot">
        {notice && <p className={notice.error ? 'error' : 'ok'}>{notice.text}</p>}
      </div>
      {templates.fetching && !templates.data ? (
        <Loading what="templates" />
      ) : templates.error && !templates.data ? (
        <ErrorBox error={templates.error} title="Templates unavailable" />
      ) : list.length === 0 ? (
        <Empty>No templates.</Empty>
      ) : (
        <table className="responsive">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Display name</th>
              <th scope="col">GPU slices</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.map((t) => (
              <tr key={t.name} data-template={t.name}>
                <td data-label="Name">{t.name}</td>
                <td data-label="Display name">{t.displayName}</td>
                <td data-label="GPU slices">{t.resources?.gpuSlices ?? 0}</td>
                <td data-label="Actions">
                  <button
                    type="button"
                    onClick={() => {
                      setName(t.name);
                      setSpec(JSON.stringify(t.spec, null, 2));
                    }}
                  >
                    Edit
                  </button>{' '}
                  <ConfirmButton
                    label="Delete"
                    question={`Delete ${t.name}?`}
                    confirmLabel="Yes, delete"
                    onConfirm={async () => {
                      const res = await remove({ name: t.name });
                      setNotice(res.error ? { error: true, text: errorText(res.error) } : { error: false, text: `${t.name} deleted.` });
                      refresh();
                    }}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>{list.some((t) => t.name === name) ? `Edit ${name}` : 'Create a template'}</h2>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (!parsed.ok || !name.trim()) return;
          const res = await upsert({ name: name.trim(), spec: parsed.value });
          setNotice(res.error ? { error: true, text: `Save: ${errorText(res.error)}` } : { error: false, text: `${name.trim()} saved.` });
          refresh();
        }}
      >
        <div className="field">
          <label htmlFor="template-name">Name</label>
          <input id="template-name" required pattern={NAME_PATTERN} value={name} onChange={(e) => setName(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="template-spec">Spec (JSON: displayName, description, image, resources, settings…)</label>
          <textarea id="template-spec" rows={12} spellCheck={false} value={spec} onChange={(e) => setSpec(e.target.value)} aria-invalid={!parsed.ok} aria-describedby="template-spec-err" />
          <span id="template-spec-err" className="field-error">
            {parsed.ok ? '' : parsed.error}
          </span>
        </div>
        <button type="submit" className="primary" disabled={!parsed.ok || !name.trim()}>
          Save template
        </button>
      </form>
    </section>
  );
}
