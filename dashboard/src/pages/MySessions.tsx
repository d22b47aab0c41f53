// "My sessions" (and, for admins, everyone's): live phase, expiry, Connect, Extend, Terminate.
import { useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { useMutation } from 'urql';

import { ExtendMutation, TerminateMutation } from '../api/documents';
import { SessionTable } from '../components/SessionTable';
import { Empty, ErrorBox, Loading, errorText, usePolling } from '../components/ui';
import { extendedTimeout } from '../domain/extend';
import { useSessions } from './useSessions';

const ADMIN_REFRESH_MS = 5000;

export function MySessions({ allUsers = false }: { allUsers?: boolean }) {
  const list = useSessions(allUsers);
  const [, terminate] = useMutation(TerminateMutation);
  const [, extend] = useMutation(ExtendMutation);
  const [notice, setNotice] = useState<{ error: boolean; text: string } | null>(null);
  const [filter, setFilter] = useState('');
  const navigate = useNavigate();
  usePolling(list.refresh, allUsers ? ADMIN_REFRESH_MS : 60_000);

  const title = allUsers ? 'All sessions' : 'My sessions';
  const needle = filter.trim().toLowerCase();
  const shown = needle
    ? list.sessions.filter((s) => [s.name, s.user, s.template, s.phase, s.node ?? ''].some((f) => f.toLowerCase().includes(needle)))
    : list.sessions;

  return (
    <section aria-labelledby="sessions-title">
      <h1 id="sessions-title">{title}</h1>
      <div aria-live="polite" className="notice-slot">
        {notice && <p className={notice.error ? 'error' : 'ok'}>{notice.text}</p>}
      </div>
      {list.liveError && <ErrorBox error={list.liveError} title="Live updates interrupted (retrying)" />}
      {allUsers && (
        <div className="field inline">
          <label htmlFor="session-filter">Filter</label>
          <input
            id="session-filter"
            type="search"
            placeholder="user, template, phase, node…"
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
          />
        </div>
      )}
      {list.loading ? (
        <Loading what="sessions" />
      ) : list.error ? (
        <ErrorBox error={list.error} title="Sessions unavailable" />
      ) : shown.length === 0 ? (
        <Empty>
          {needle ? 'No session matches.' : allUsers ? 'No sessions.' : <>No sessions yet. <Link to="/">Launch a desktop</Link>.</>}
        </Empty>
      ) : (
        <SessionTable
          sessions={shown}
          showUser={allUsers}
          sortable={allUsers}
          actions={{
            terminateLabel: allUsers ? 'Force terminate' : 'Terminate',
            onConnect: allUsers ? undefined : (s) => navigate(`/session/${encodeURIComponent(s.id)}?connect=1`),
            onExtend: allUsers
              ? undefined
              : async (s) => {
                  const timeout = extendedTimeout(s);
                  if (!timeout) return setNotice({ error: true, text: `${s.name}: its lifetime is unknown` });
                  const res = await extend({ id: s.id, timeout });
                  if (res.error || !res.data) {
                    return setNotice({ error: true, text: `Extend ${s.name}: ${res.error ? errorText(res.error) : 'no answer'}` });
                  }
                  list.upsert(res.data.extendSession);
                  setNotice({ error: false, text: `${s.name} extended (lifetime ${res.data.extendSession.timeout ?? timeout}).` });
                },
            onTerminate: async (s) => {
              const res = await terminate({ id: s.id });
              if (res.error) return setNotice({ error: true, text: `Terminate ${s.name}: ${errorText(res.error)}` });
              setNotice({ error: false, text: `${s.name} is being terminated.` });
              if (allUsers) list.refresh();
            },
          }}
        />
      )}
      {list.loadMore && (
        <p>
          <button type="button" onClick={list.loadMore}>
            Load more ({list.sessions.length} of {list.total})
          </button>
        </p>
      )}
    </section>
  );
}
