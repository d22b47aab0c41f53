import { describe, expect, it } from 'vitest';

import { chartColumns, glassToGlassEstimate, pushSample, sampleOf } from './streamStats';

describe('stream stats', () => {
  it('reads the player state, garbage as zero or null', () => {
    expect(sampleOf({ fps: 30, bitrateKbps: 2400, rttMs: 4, latencyMs: 12, packetsLost: 1 }, 5000)).toEqual({
      t: 5,
      fps: 30,
      bitrateKbps: 2400,
      rttMs: 4,
      packetsLost: 1,
      glassToGlassMs: 14,
    });
    const bad = sampleOf({ fps: Number.NaN, rttMs: null, bitrateKbps: 'x' as unknown as number }, 0);
    expect(bad).toMatchObject({ fps: 0, bitrateKbps: 0, rttMs: null, glassToGlassMs: null });
  });
  it('estimates glass to glass from half the round trip and the buffer', () => {
    expect(glassToGlassEstimate(10, 20)).toBe(25);
    expect(glassToGlassEstimate(10, null)).toBe(5);
    expect(glassToGlassEstimate(null, 20)).toBeNull();
  });
  it('keeps the newest samples only and gives the chart its columns', () => {
    let h = pushSample([], sampleOf({ fps: 1 }, 1000), 2);
    h = pushSample(h, sampleOf({ fps: 2 }, 2000), 2);
    h = pushSample(h, sampleOf({ fps: 3, bitrateKbps: 9 }, 3000), 2);
    expect(chartColumns(h)).toEqual([
      [2, 3],
      [2, 3],
      [0, 9],
    ]);
  });
});
