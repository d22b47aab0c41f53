// Small shared pieces: loading, error and empty states, phase badges, a confirming button and
// a clock for countdowns.
import { type ReactNode, useEffect, useId, useState } from 'react';
import type { CombinedError } from 'urql';

import type { Phase } from '../gql/graphql';
import { phaseLabel } from '../domain/sessions';

export function Loading({ what }: { what: string }) {
  return (
    <p className="state" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

/** The words of a GraphQL or network error. */
export function errorText(error: CombinedError | Error | string): string {
  if (typeof error === 'string') return error;
  if ('graphQLErrors' in error && error.graphQLErrors.length > 0) {
    return error.graphQLErrors.map((e) => e.message).join('; ');
  }
  if ('networkError' in error && error.networkError) return `network error: ${error.networkError.message}`;
  return error.message;
}

/** The API's error code (`NOT_FOUND`, `FORBIDDEN`, `DENIED`, …) of a GraphQL error, if any. */
export function errorCode(error: CombinedError | undefined): string | undefined {
  const code = error?.graphQLErrors[0]?.extensions?.code;
  return typeof code === 'string' ? code : undefined;
}

export function ErrorBox({ error, title = 'Something went wrong' }: { error: CombinedError | Error | string; title?: string }) {
  return (
    <div className="error" role="alert">
      <strong>{title}:</strong> {errorText(error)}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="state empty">{children}</p>;
}

export function PhaseBadge({ phase }: { phase: Phase }) {
  return <span className={`phase phase-${phase.toLowerCase()}`}>{phaseLabel(phase)}</span>;
}

/** A button that asks before it acts: a second, explicit button confirms. */
export function ConfirmButton({
  label,
  question,
  confirmLabel,
  onConfirm,
  disabled,
}: {
  label: string;
  question: string;
  confirmLabel: string;
  onConfirm: () => void;
  disabled?: boolean;
}) {
  const [asking, setAsking] = useState(false);
  const id = useId();
  if (!asking) {
    return (
      <button type="button" className="danger" disabled={disabled} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  return (
    <span role="group" aria-labelledby={id} className="confirm">
      <span id={id}>{question}</span>{' '}
      <button
        type="button"
        className="danger"
        autoFocus
        onClick={() => {
          setAsking(false);
          onConfirm();
        }}
      >
        {confirmLabel}
      </button>{' '}
      <button type="button" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}

/** The time now, updated every `ms`. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(t);
  }, [ms]);
  return now;
}

/** Re-runs `refetch` every `ms` while the page is shown. */
export function usePolling(refetch: () => void, ms: number): void {
  useEffect(() => {
    const t = window.setInterval(refetch, ms);
    return () => window.clearInterval(t);
  }, [refetch, ms]);
}
