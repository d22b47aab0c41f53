import { describe, expect, it } from 'vitest';

import { session } from '../test-fixtures';
import { emptySessions, failureReason, sessionList, sessionName, sessionsReducer } from './sessions';

describe('sessionsReducer', () => {
  it('loads a page, then follows ADDED, MODIFIED and DELETED', () => {
    let s = sessionsReducer(emptySessions, { type: 'loaded', sessions: [session('a')] });
    expect(sessionList(s).map((x) => x.name)).toEqual(['a']);
    s = sessionsReducer(s, { type: 'event', change: 'ADDED', resourceVersion: '5', session: session('b', { createdAt: '2026-12-01T11:00:00Z' }) });
    expect(sessionList(s).map((x) => x.name)).toEqual(['b', 'a']);
    s = sessionsReducer(s, { type: 'event', change: 'MODIFIED', resourceVersion: '6', session: session('a', { phase: 'RUNNING' }) });
    expect(s.byId['id-a']?.phase).toBe('RUNNING');
    expect(s.resourceVersion).toBe('6');
    s = sessionsReducer(s, { type: 'event', change: 'DELETED', resourceVersion: '7', session: session('b') });
    expect(sessionList(s).map((x) => x.name)).toEqual(['a']);
  });

  it('keeps a phase the subscription brought when an older page arrives later', () => {
    let s = sessionsReducer(emptySessions, { type: 'event', change: 'ADDED', resourceVersion: '3', session: session('c', { phase: 'RUNNING' }) });
    s = sessionsReducer(s, { type: 'loaded', sessions: [session('d')] });
    expect(s.byId['id-c']?.phase).toBe('RUNNING');
    expect(Object.keys(s.byId).sort()).toEqual(['id-c', 'id-d']);
  });

  it('SYNC replaces a session as it is now; an empty resourceVersion keeps the last one', () => {
    let s = sessionsReducer(emptySessions, { type: 'event', change: 'ADDED', resourceVersion: '9', session: session('e') });
    s = sessionsReducer(s, { type: 'event', change: 'SYNC', resourceVersion: '', session: session('e', { phase: 'FAILED' }) });
    expect(s.byId['id-e']?.phase).toBe('FAILED');
    expect(s.resourceVersion).toBe('9');
  });

  it('removing an unknown session changes nothing', () => {
    const s = sessionsReducer(emptySessions, { type: 'loaded', sessions: [session('f')] });
    expect(sessionsReducer(s, { type: 'removed', id: 'nope' })).toBe(s);
    expect(sessionsReducer(s, { type: 'removed', id: 'id-f' }).byId).toEqual({});
  });
});

describe('failureReason', () => {
  it("shows the policy's words for a denied session, nothing for a running one", () => {
    expect(failureReason({ phase: 'DENIED', reason: 'QuotaExceeded', message: 'at most 1 GPU slice for staff' })).toBe(
      'at most 1 GPU slice for staff',
    );
    expect(failureReason({ phase: 'FAILED', reason: 'ImagePull', message: '' })).toBe('ImagePull');
    expect(failureReason({ phase: 'RUNNING', reason: 'x', message: 'y' })).toBeNull();
  });
});

describe('sessionName', () => {
  it('reads the name in a global ID and leaves anything else as it is', () => {
    const id = btoa('VDISession:u-alice-0123456789/alice-desk-1').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
    expect(sessionName(id)).toBe('alice-desk-1');
    expect(sessionName('not-an-id!')).toBe('not-an-id!');
  });
});
