// The launch form: resources and timeout, checked against the quota before they are sent;
// the admission plugin still decides and its words are shown when it refuses.
import { type FormEvent, useId, useState } from 'react';

import type { TemplatesQuery } from '../gql/graphql';
import { type LaunchRequest, type QuotaView, launchProblems } from '../domain/quota';
import { formatDuration, parseDuration } from '../domain/time';
import { QuotaDisplay } from './QuotaDisplay';

export type TemplateItem = TemplatesQuery['templates'][number];

export interface LaunchFormProps {
  template: TemplateItem;
  quota: QuotaView;
  /** Sends the launch; rejects with the reason shown to the user. */
  onLaunch: (req: LaunchRequest) => Promise<void>;
  onCancel?: () => void;
}

export function LaunchForm({ template, quota, onLaunch, onCancel }: LaunchFormProps) {
  const id = useId();
  const [gpuSlices, setGpuSlices] = useState(String(template.resources?.gpuSlices ?? 0));
  const [timeout, setTimeoutText] = useState(
    quota.defaultTimeoutSeconds ? formatDuration(quota.defaultTimeoutSeconds) : '',
  );
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);

  const timeoutSeconds = timeout.trim() === '' ? null : (parseDuration(timeout) ?? Number.NaN);
  const request: LaunchRequest = { template: template.name, gpuSlices: Number(gpuSlices), timeoutSeconds };
  const problems = launchProblems(quota, request);
  // The template check is advice: the admission plugin has the last word and says why.
  const blocking = problems.filter((p) => p.field !== 'template');
  const problemFor = (field: string) => problems.filter((p) => p.field === field).map((p) => p.message);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (blocking.length > 0 || busy) return;
    setBusy(true);
    setFailure(null);
    try {
      await onLaunch(request);
    } catch (err) {
      setFailure(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  const gpuErrors = problemFor('gpuSlices');
  const timeoutErrors = problemFor('timeout');
  return (
    <form className="launch" onSubmit={submit} aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>Launch {template.displayName}</h3>
      <QuotaDisplay quota={quota} />
      <div className="field">
        <label htmlFor={`${id}-gpu`}>GPU slices</label>
        <input
          id={`${id}-gpu`}
          type="number"
          min={0}
          step={1}
          inputMode="numeric"
          value={gpuSlices}
          onChange={(e) => setGpuSlices(e.target.value)}
          aria-invalid={gpuErrors.length > 0}
          aria-describedby={`${id}-gpu-err`}
        />
        <span id={`${id}-gpu-err`} className="field-error">
          {gpuErrors.join('; ')}
        </span>
      </div>
      <div className="field">
        <label htmlFor={`${id}-timeout`}>Timeout</label>
        <input
          id={`${id}-timeout`}
          type="text"
          placeholder="policy default"
          value={timeout}
          onChange={(e) => setTimeoutText(e.target.value)}
          aria-invalid={timeoutErrors.length > 0}
          aria-describedby={`${id}-timeout-err`}
        />
        <span id={`${id}-timeout-err`} className="field-error">
          {timeoutErrors.join('; ')}
        </span>
      </div>
      {problems
        .filter((p) => p.field === 'sessions' || p.field === 'template')
        .map((p) => (
          <p key={p.message} className="warning">
            {p.message}
          </p>
        ))}
      {failure && (
        <p className="error" role="alert">
          <strong>Launch refused:</strong> {failure}
        </p>
      )}
      <div className="actions">
        <button type="submit" className="primary" disabled={blocking.length > 0 || busy}>
          {busy ? 'Launching…' : 'Launch'}
        </button>
        {onCancel && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}
