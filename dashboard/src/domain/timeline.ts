// A session's history as one list (conditions and Kubernetes Events by time) and its startup
// timings (from its creation to each condition becoming True).
import type { SessionDetailQuery } from '../gql/graphql';

type Detail = SessionDetailQuery['session'];

export interface TimelineEntry {
  time: string;
  kind: 'created' | 'condition' | 'event';
  title: string;
  detail: string;
  warning: boolean;
}

export function timeline(s: Pick<Detail, 'createdAt' | 'conditions' | 'events'>): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  if (s.createdAt) out.push({ time: s.createdAt, kind: 'created', title: 'Created', detail: '', warning: false });
  for (const c of s.conditions) {
    out.push({
      time: c.lastTransitionTime,
      kind: 'condition',
      title: `${c.type}: ${c.status}`,
      detail: [c.reason, c.message].filter(Boolean).join(' — '),
      warning: c.status === 'False',
    });
  }
  for (const e of s.events) {
    if (!e.time) continue;
    out.push({
      time: e.time,
      kind: 'event',
      title: `${e.reason ?? 'Event'}${e.count && e.count > 1 ? ` ×${e.count}` : ''}`,
      detail: e.message ?? '',
      warning: e.type === 'Warning',
    });
  }
  return out.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
}

/** The startup steps, in order, and the `timings` field that marks each. */
export const STARTUP_STEPS = [
  { label: 'admitted', field: 'admitted' },
  { label: 'placed', field: 'placed' },
  { label: 'objects applied', field: 'objectsApplied' },
  { label: 'pod ready', field: 'podReady' },
  { label: 'first frame', field: 'firstFrame' },
] as const;

export interface StartupTiming {
  label: string;
  /** Milliseconds since creation; null while not reached. */
  sinceCreatedMs: number | null;
}

type Timings = Partial<Record<(typeof STARTUP_STEPS)[number]['field'], string | null>>;

/** Each startup step's time since the session was created (status.timings). */
export function startupTimings(s: { createdAt?: string | null; timings?: Timings | null }): StartupTiming[] {
  const created = s.createdAt ? Date.parse(s.createdAt) : Number.NaN;
  return STARTUP_STEPS.map(({ label, field }) => {
    const iso = s.timings?.[field];
    const at = iso ? Date.parse(iso) : Number.NaN;
    return { label, sinceCreatedMs: Number.isNaN(created) || Number.isNaN(at) ? null : Math.max(0, at - created) };
  });
}
