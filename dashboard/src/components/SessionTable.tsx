// A table of sessions with live phase, placement, age, expiry countdown and actions.
import { useState } from 'react';
import { Link } from 'react-router';

import { type SessionRow, failureReason } from '../domain/sessions';
import { age, countdown } from '../domain/time';
import { ConfirmButton, PhaseBadge, useNow } from './ui';

export interface SessionActions {
  onConnect?: (s: SessionRow) => void;
  onExtend?: (s: SessionRow) => void;
  onTerminate: (s: SessionRow) => void;
  terminateLabel?: string;
}

type SortKey = 'created' | 'name' | 'user' | 'phase' | 'expires';

const SORTERS: Record<SortKey, (a: SessionRow, b: SessionRow) => number> = {
  created: (a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? ''),
  name: (a, b) => a.name.localeCompare(b.name),
  user: (a, b) => a.user.localeCompare(b.user),
  phase: (a, b) => a.phase.localeCompare(b.phase),
  expires: (a, b) => (a.expiresAt ?? '~').localeCompare(b.expiresAt ?? '~'),
};

export function SessionTable({
  sessions,
  showUser = false,
  sortable = false,
  actions,
}: {
  sessions: SessionRow[];
  showUser?: boolean;
  sortable?: boolean;
  actions: SessionActions;
}) {
  const now = useNow();
  const [sort, setSort] = useState<SortKey>('created');
  const rows = sortable ? [...sessions].sort(SORTERS[sort]) : sessions;
  const header = (key: SortKey, label: string) =>
    sortable ? (
      <th scope="col" aria-sort={sort === key ? 'ascending' : 'none'}>
        <button type="button" className="link" onClick={() => setSort(key)}>
          {label}
        </button>
      </th>
    ) : (
      <th scope="col">{label}</th>
    );
  return (
    <table className="sessions responsive">
      <thead>
        <tr>
          {header('name', 'Session')}
          {showUser && header('user', 'User')}
          <th scope="col">Template</th>
          {header('phase', 'Phase')}
          <th scope="col">Placement</th>
          {header('created', 'Age')}
          {header('expires', 'Expiry')}
          <th scope="col">Actions</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((s) => {
          const reason = failureReason(s);
          return (
            <tr key={s.id} data-session={s.name}>
              <td data-label="Session">
                <Link to={`/session/${encodeURIComponent(s.id)}`}>{s.name}</Link>
              </td>
              {showUser && <td data-label="User">{s.user}</td>}
              <td data-label="Template">{s.template}</td>
              <td data-label="Phase">
                <PhaseBadge phase={s.phase} />
                {reason && <div className="reason">{reason}</div>}
              </td>
              <td data-label="Placement">
                {s.node ? `${s.node}${s.gpu !== null && s.gpu !== undefined ? ` · GPU ${s.gpu}` : ''}` : '—'}
                {s.gpuSlices ? ` · ${s.gpuSlices} slice${s.gpuSlices === 1 ? '' : 's'}` : ''}
              </td>
              <td data-label="Age">{age(s.createdAt, now)}</td>
              <td data-label="Expiry" className="countdown">
                {countdown(s.expiresAt, now)}
              </td>
              <td data-label="Actions" className="actions">
                {actions.onConnect && (
                  <button
                    type="button"
                    className="primary"
                    disabled={s.phase !== 'RUNNING'}
                    title={s.phase === 'RUNNING' ? undefined : 'Available once the session is Running'}
                    onClick={() => actions.onConnect?.(s)}
                  >
                    Connect
                  </button>
                )}
                {actions.onExtend && (
                  <button
                    type="button"
                    disabled={s.phase !== 'RUNNING' && s.phase !== 'PROVISIONING' && s.phase !== 'SCHEDULED'}
                    onClick={() => actions.onExtend?.(s)}
                  >
                    Extend 1h
                  </button>
                )}
                <ConfirmButton
                  label={actions.terminateLabel ?? 'Terminate'}
                  question={`Terminate ${s.name}?`}
                  confirmLabel="Yes, terminate"
                  disabled={s.phase === 'TERMINATING' || s.phase === 'TERMINATED'}
                  onConfirm={() => actions.onTerminate(s)}
                />
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
