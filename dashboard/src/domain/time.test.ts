import { describe, expect, it } from 'vitest';

import { extendedTimeout } from './extend';
import { age, countdown, formatDuration, humanDuration, parseDuration } from './time';
import { startupTimings, timeline } from './timeline';

describe('durations', () => {
  it('parses and formats Go-style durations', () => {
    expect(parseDuration('1h30m')).toBe(5400);
    expect(parseDuration(' 45s ')).toBe(45);
    expect(parseDuration('1.5h')).toBeNull();
    expect(parseDuration('')).toBeNull();
    expect(formatDuration(5400)).toBe('1h30m');
    expect(formatDuration(0)).toBe('0s');
    expect(humanDuration(3725)).toBe('1h 02m');
    expect(humanDuration(249)).toBe('4m 09s');
  });
  it('counts down to expiry and up from creation', () => {
    const now = Date.parse('2026-12-01T10:00:00Z');
    expect(countdown('2026-12-01T11:02:10Z', now)).toBe('expires in 1h 02m');
    expect(countdown('2026-12-01T09:00:00Z', now)).toBe('expired');
    expect(countdown(null, now)).toBe('no expiry');
    expect(age('2026-12-01T09:56:50Z', now)).toBe('3m 10s');
    expect(age('garbage', now)).toBe('');
  });
  it('extends by an hour from the timeout, or from the lifetime when there is none', () => {
    expect(extendedTimeout({ timeout: '2h', startedAt: null, expiresAt: null })).toBe('3h');
    expect(extendedTimeout({ timeout: null, startedAt: '2026-12-01T10:00:00Z', expiresAt: '2026-12-01T10:30:00Z' })).toBe('1h30m');
    expect(extendedTimeout({ timeout: null, startedAt: null, expiresAt: null })).toBeNull();
  });
});

describe('timeline', () => {
  const s = {
    createdAt: '2026-12-01T10:00:00Z',
    conditions: [
      { type: 'Ready', status: 'True', reason: 'Running', message: '', lastTransitionTime: '2026-12-01T10:00:04Z' },
      { type: 'Admitted', status: 'True', reason: 'Allowed', message: 'quota ok', lastTransitionTime: '2026-12-01T10:00:00.5Z' },
    ],
    events: [{ type: 'Warning', reason: 'Slow', message: 'pulling', time: '2026-12-01T10:00:02Z', count: 2 }],
  };
  it('merges conditions and events by time', () => {
    expect(timeline(s).map((e) => e.title)).toEqual(['Created', 'Admitted: True', 'Slow ×2', 'Ready: True']);
    expect(timeline(s)[2]?.warning).toBe(true);
  });
  it('times each startup step from creation; unreached steps are null', () => {
    const timings = { admitted: '2026-12-01T10:00:00.5Z', placed: '2026-12-01T10:00:01Z', objectsApplied: null, podReady: '2026-12-01T10:00:04Z', firstFrame: undefined };
    expect(startupTimings({ ...s, timings })).toEqual([
      { label: 'admitted', sinceCreatedMs: 500 },
      { label: 'placed', sinceCreatedMs: 1000 },
      { label: 'objects applied', sinceCreatedMs: null },
      { label: 'pod ready', sinceCreatedMs: 4000 },
      { label: 'first frame', sinceCreatedMs: null },
    ]);
    expect(startupTimings({ createdAt: null, timings }).every((t) => t.sinceCreatedMs === null)).toBe(true);
  });
});
