// The caller's sessions: the first page by query, then live from `sessionEvents`.
import { useCallback, useEffect, useReducer, useState } from 'react';
import { useQuery, useSubscription } from 'urql';

import { SessionEventsSubscription, SessionsQuery } from '../api/documents';
import { type SessionRow, emptySessions, sessionList, sessionsReducer } from '../domain/sessions';

/** Sessions per page: a page costs its fields once per session against the API's complexity
 * limit (1,000 by default), about 25 a session. */
export const PAGE = 30;

export function useSessions(allUsers: boolean) {
  const [state, dispatch] = useReducer(sessionsReducer, emptySessions);
  const [after, setAfter] = useState<string | null>(null);
  const [result, reexecute] = useQuery({
    query: SessionsQuery,
    variables: { allUsers, first: PAGE, after },
    requestPolicy: 'network-only',
  });
  useEffect(() => {
    const edges = result.data?.sessions.edges;
    if (edges) dispatch({ type: 'loaded', sessions: edges.map((e) => e.node) });
  }, [result.data]);
  // The subscription follows the caller's own sessions; the admins' list of everyone's is
  // refreshed by the page instead.
  const [sub] = useSubscription({ query: SessionEventsSubscription, variables: {}, pause: allUsers });
  useEffect(() => {
    const ev = sub.data?.sessionEvents;
    if (ev) dispatch({ type: 'event', change: ev.type, resourceVersion: ev.resourceVersion, session: ev.session });
  }, [sub.data]);
  const refresh = useCallback(() => reexecute({ requestPolicy: 'network-only' }), [reexecute]);
  const pageInfo = result.data?.sessions.pageInfo;
  const more = pageInfo?.hasNextPage && pageInfo.endCursor ? pageInfo.endCursor : null;
  return {
    sessions: sessionList(state),
    loading: result.fetching && !result.data,
    error: result.error,
    liveError: sub.error,
    total: result.data?.sessions.totalCount ?? 0,
    refresh,
    /** Loads the next page, when there is one. */
    loadMore: more ? () => setAfter(more) : null,
    upsert: (s: SessionRow) => dispatch({ type: 'event', change: 'MODIFIED', resourceVersion: '', session: s }),
    remove: (id: string) => dispatch({ type: 'removed', id }),
  };
}
