// One session: live phase, the player embedded, timeline, startup timings, plugin decisions.
import { useEffect, useRef, useState } from 'react';
import { Link, useNavigate, useParams, useSearchParams } from 'react-router';
import { useMutation, useQuery, useSubscription } from 'urql';

import { ConnectMutation, ExtendMutation, SessionDetailQuery, SessionEventsSubscription, TerminateMutation } from '../api/documents';
import { StreamStats } from '../components/StreamStats';
import { ConfirmButton, ErrorBox, Loading, PhaseBadge, errorCode, errorText, useNow } from '../components/ui';
import { extendedTimeout } from '../domain/extend';
import { failureReason } from '../domain/sessions';
import { age, countdown } from '../domain/time';
import { startupTimings, timeline } from '../domain/timeline';

interface Connection {
  src: string;
  expiresAt: string;
}

export function SessionPage() {
  const { id = '' } = useParams();
  const [search] = useSearchParams();
  const navigate = useNavigate();
  const now = useNow();
  const [detail, refetch] = useQuery({ query: SessionDetailQuery, variables: { id }, requestPolicy: 'cache-and-network' });
  const [live] = useSubscription({ query: SessionEventsSubscription, variables: { id } });
  const [, connect] = useMutation(ConnectMutation);
  const [, extend] = useMutation(ExtendMutation);
  const [, terminate] = useMutation(TerminateMutation);
  const [connection, setConnection] = useState<Connection | null>(null);
  const [notice, setNotice] = useState<{ error: boolean; text: string } | null>(null);
  const wantConnect = useRef(search.get('connect') === '1');
  const playerFrame = useRef<HTMLIFrameElement>(null);

  const event = live.data?.sessionEvents;
  const base = detail.data?.session;
  // The subscription carries the newest phase; the query the history, refetched on each change.
  const s = base && event ? { ...base, ...event.session } : base;
  const lastPhase = useRef<string | undefined>(undefined);
  useEffect(() => {
    if (!event) return;
    if (event.type === 'DELETED') {
      setNotice({ error: false, text: 'This session is gone.' });
      setConnection(null);
      return;
    }
    if (lastPhase.current !== event.session.phase) {
      lastPhase.current = event.session.phase;
      refetch({ requestPolicy: 'network-only' });
    }
  }, [event, refetch]);

  async function openPlayer() {
    const res = await connect({ id });
    if (res.error || !res.data) return setNotice({ error: true, text: `Connect: ${res.error ? errorText(res.error) : 'no answer'}` });
    const info = res.data.connectSession;
    setConnection({ src: `${info.url}#token=${encodeURIComponent(info.token)}`, expiresAt: info.expiresAt });
  }

  useEffect(() => {
    if (wantConnect.current && s?.phase === 'RUNNING' && !connection) {
      wantConnect.current = false;
      void openPlayer();
    }
  });

  if (detail.fetching && !detail.data) return <Loading what="the session" />;
  if (detail.error && !s) {
    const code = errorCode(detail.error);
    if (code === 'NOT_FOUND' || code === 'FORBIDDEN' || code === 'BAD_USER_INPUT') {
      return (
        <section>
          <h1>Session not found</h1>
          <p>There is no session with this ID that you may see.</p>
          <Link to="/my">Back to my sessions</Link>
        </section>
      );
    }
    return <ErrorBox error={detail.error} title="Session unavailable" />;
  }
  if (!s) return <ErrorBox error="no session in the answer" />;

  const gone = event?.type === 'DELETED';
  const reason = failureReason(s);
  const timings = startupTimings(s);
  const entries = timeline(s);
  return (
    <section aria-labelledby="session-title" className="session-page">
      <h1 id="session-title">
        {s.name} <PhaseBadge phase={gone ? 'TERMINATED' : s.phase} />
      </h1>
      <div aria-live="polite" className="notice-slot">
        {notice && <p className={notice.error ? 'error' : 'ok'}>{notice.text}</p>}
      </div>
      {reason && (
        <p className="error" role="alert">
          <strong>{s.phase === 'DENIED' ? 'Refused' : 'Failed'}:</strong> {reason}
        </p>
      )}
      <dl className="facts">
        <dt>Template</dt>
        <dd>{s.template}</dd>
        <dt>Owner</dt>
        <dd>{s.user}</dd>
        <dt>Placement</dt>
        <dd>{s.node ? `${s.node}${s.gpu !== null && s.gpu !== undefined ? `, GPU ${s.gpu}` : ''}${s.gpuSlices ? `, ${s.gpuSlices} slice(s)` : ''}` : 'not placed yet'}</dd>
        <dt>Age</dt>
        <dd>{age(s.createdAt, now)}</dd>
        <dt>Expiry</dt>
        <dd className="countdown">{countdown(s.expiresAt, now)}</dd>
      </dl>
      <div className="actions">
        <button type="button" className="primary" disabled={s.phase !== 'RUNNING' || gone} onClick={openPlayer}>
          {connection ? 'Reconnect' : 'Connect'}
        </button>
        <button
          type="button"
          disabled={gone || !['SCHEDULED', 'PROVISIONING', 'RUNNING'].includes(s.phase)}
          onClick={async () => {
            const timeout = extendedTimeout(s);
            if (!timeout) return setNotice({ error: true, text: 'Its lifetime is unknown.' });
            const res = await extend({ id, timeout });
            if (res.error) return setNotice({ error: true, text: `Extend: ${errorText(res.error)}` });
            setNotice({ error: false, text: `Extended (lifetime ${res.data?.extendSession.timeout ?? timeout}).` });
            refetch({ requestPolicy: 'network-only' });
          }}
        >
          Extend 1h
        </button>
        <ConfirmButton
          label="Terminate"
          question={`Terminate ${s.name}?`}
          confirmLabel="Yes, terminate"
          disabled={gone || s.phase === 'TERMINATING'}
          onConfirm={async () => {
            const res = await terminate({ id });
            if (res.error) return setNotice({ error: true, text: `Terminate: ${errorText(res.error)}` });
            setConnection(null);
            navigate('/my');
          }}
        />
      </div>
      {connection && !gone && (
        <section aria-label="Desktop" className="player">
          <iframe
            ref={playerFrame}
            title={`Desktop ${s.name}`}
            src={connection.src}
            allow="fullscreen; clipboard-read; clipboard-write; autoplay"
            allowFullScreen
          />
          <p className="muted">
            <a href={connection.src} target="_blank" rel="noreferrer">
              Open in a new tab
            </a>{' '}
            · the connect token works until {new Date(connection.expiresAt).toLocaleTimeString()}
          </p>
          <StreamStats frame={playerFrame} />
        </section>
      )}
      <h2>Startup (since created)</h2>
      <ol className="timings">
        {timings.map((t) => (
          <li key={t.label}>
            {t.label}: {t.sinceCreatedMs === null ? '—' : `${(t.sinceCreatedMs / 1000).toFixed(1)} s`}
          </li>
        ))}
      </ol>
      <h2>Plugin decisions</h2>
      {s.decisions.length === 0 ? (
        <p className="muted">None yet.</p>
      ) : (
        <table className="responsive">
          <thead>
            <tr>
              <th scope="col">Hook</th>
              <th scope="col">Plugin</th>
              <th scope="col">Digest</th>
              <th scope="col">Verdict</th>
              <th scope="col">Latency</th>
              <th scope="col">Message</th>
            </tr>
          </thead>
          <tbody>
            {s.decisions.map((d, i) => (
              <tr key={`${d.hook}-${d.plugin}-${i}`}>
                <td data-label="Hook">{d.hook}</td>
                <td data-label="Plugin">{d.plugin}</td>
                <td data-label="Digest" className="digest" title={d.digest}>
                  {d.digest.slice(0, 19)}…
                </td>
                <td data-label="Verdict">{d.verdict}</td>
                <td data-label="Latency">{(d.latencyMicros / 1000).toFixed(2)} ms</td>
                <td data-label="Message">{d.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Timeline</h2>
      {entries.length === 0 ? (
        <p className="muted">Nothing yet.</p>
      ) : (
        <ol className="timeline">
          {entries.map((e, i) => (
            <li key={`${e.time}-${i}`} className={e.warning ? 'warning' : undefined}>
              <time dateTime={e.time}>{new Date(e.time).toLocaleTimeString()}</time> <strong>{e.title}</strong>
              {e.detail && <span> — {e.detail}</span>}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
