// The session list kept current by the `sessionEvents` subscription: a pure reducer over the
// first page and the changes that follow.
import type { ChangeType, Phase, SessionFieldsFragment } from '../gql/graphql';

export type SessionRow = SessionFieldsFragment;

export interface SessionsState {
  /** Sessions by global ID. */
  byId: Record<string, SessionRow>;
  /** The last resourceVersion seen, to resume from. */
  resourceVersion: string | null;
}

export type SessionsAction =
  | { type: 'loaded'; sessions: SessionRow[] }
  | { type: 'event'; change: ChangeType; resourceVersion: string; session: SessionRow }
  | { type: 'removed'; id: string };

export const emptySessions: SessionsState = { byId: {}, resourceVersion: null };

export function sessionsReducer(state: SessionsState, action: SessionsAction): SessionsState {
  switch (action.type) {
    case 'loaded': {
      // A query result replaces what it covers but keeps sessions the subscription added since.
      const byId = { ...state.byId };
      for (const s of action.sessions) byId[s.id] = s;
      return { ...state, byId };
    }
    case 'event': {
      const byId = { ...state.byId };
      if (action.change === 'DELETED') delete byId[action.session.id];
      else byId[action.session.id] = action.session;
      return { byId, resourceVersion: action.resourceVersion || state.resourceVersion };
    }
    case 'removed': {
      if (!(action.id in state.byId)) return state;
      const byId = { ...state.byId };
      delete byId[action.id];
      return { ...state, byId };
    }
  }
}

/** Newest first, then by name: the order rows keep while their phase changes. */
export function sessionList(state: SessionsState): SessionRow[] {
  return Object.values(state.byId).sort(
    (a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? '') || a.name.localeCompare(b.name),
  );
}

/** Phases in which a session holds (or is about to hold) resources. */
export const ACTIVE_PHASES: readonly Phase[] = ['PENDING', 'ADMITTED', 'SCHEDULED', 'PROVISIONING', 'RUNNING'];

/** Phases after which nothing changes any more. */
export function isFinal(phase: Phase): boolean {
  return phase === 'TERMINATED' || phase === 'DENIED' || phase === 'FAILED';
}

/** Words for a phase: `Running`. */
export function phaseLabel(phase: Phase): string {
  return phase.charAt(0) + phase.slice(1).toLowerCase();
}

/** What went wrong, in the policy's or the operator's words, for a failed or denied session. */
export function failureReason(s: Pick<SessionRow, 'phase' | 'reason' | 'message'>): string | null {
  if (s.phase !== 'DENIED' && s.phase !== 'FAILED') return null;
  return s.message || s.reason || (s.phase === 'DENIED' ? 'refused by admission' : 'failed');
}

/** The name in a session's global ID (base64url of `VDISession:<namespace>/<name>`); the ID
 * itself when it is not one. */
export function sessionName(id: string): string {
  try {
    const b64 = id.replace(/-/g, '+').replace(/_/g, '/');
    const decoded = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const m = /^VDISession:[^/]+\/([^/]+)$/.exec(decoded);
    return m?.[1] ?? id;
  } catch {
    return id;
  }
}
