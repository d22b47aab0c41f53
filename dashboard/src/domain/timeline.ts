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

/** The startup steps, in order, with the conditions that mark them. */
export const STARTUP_STEPS: readonly { label: string; condition: string }[] = [
  { label: 'admitted', condition: 'Admitted' },
  { label: 'placed', condition: 'Scheduled' },
  { label: 'ready', condition: 'Ready' },
];

export interface StartupTiming {
  label: string;
  /** Milliseconds since creation; null while not reached. */
  sinceCreatedMs: number | null;
}

export function startupTimings(s: Pick<Detail, 'createdAt' | 'conditions'>): StartupTiming[] {
  const created = s.createdAt ? Date.parse(s.createdAt) : Number.NaN;
  return STARTUP_STEPS.map(({ label, condition }) => {
    const c = s.conditions.find((x) => x.type === condition && x.status === 'True');
    const at = c ? Date.parse(c.lastTransitionTime) : Number.NaN;
    return { label, sinceCreatedMs: Number.isNaN(created) || Number.isNaN(at) ? null : Math.max(0, at - created) };
  });
}
