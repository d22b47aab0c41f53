import { describe, expect, it } from 'vitest';

import { type QuotaView, launchProblems, quotaSummary } from './quota';

const quota = (over: Partial<QuotaView> = {}): QuotaView => ({
  enforced: true,
  maxSessions: 3,
  maxGpuSlices: 2,
  maxTimeoutSeconds: 8 * 3600,
  defaultTimeoutSeconds: 3600,
  allowedTemplates: null,
  activeSessions: 2,
  gpuSlicesInUse: 1,
  ...over,
});

describe('quotaSummary', () => {
  it('reads like the issue asks', () => {
    expect(quotaSummary(quota())).toBe('1/2 GPU slices, 2/3 sessions');
    expect(quotaSummary(quota({ maxGpuSlices: null }))).toBe('1 GPU slices (no limit), 2/3 sessions');
    expect(quotaSummary(quota({ enforced: false, activeSessions: 1 }))).toBe('no quota (1 session active)');
  });
});

describe('launchProblems', () => {
  it('a request within the quota has none', () => {
    expect(launchProblems(quota(), { template: 't', gpuSlices: 1, timeoutSeconds: 3600 })).toEqual([]);
  });
  it('names the field and the limit', () => {
    const p = launchProblems(quota({ activeSessions: 3, allowedTemplates: ['ubuntu-cpu'] }), {
      template: 'ubuntu-desktop',
      gpuSlices: 2,
      timeoutSeconds: 9 * 3600,
    });
    expect(p).toEqual([
      { field: 'template', message: 'your groups may not start ubuntu-desktop' },
      { field: 'sessions', message: 'you have 3 of 3 sessions already' },
      { field: 'gpuSlices', message: '2 GPU slices asked, 1 left of 2' },
      { field: 'timeout', message: 'at most 8h (longer is clamped by policy)' },
    ]);
  });
  it('checks the form even without a quota', () => {
    const p = launchProblems(quota({ enforced: false }), { template: 't', gpuSlices: -1, timeoutSeconds: Number.NaN });
    expect(p.map((x) => x.field)).toEqual(['gpuSlices', 'timeout']);
  });
});
