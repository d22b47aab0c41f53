import { describe, expect, it } from 'vitest';

import { formatMicros, pluginStats } from './pluginStats';

describe('pluginStats', () => {
  it('counts calls, denials and failures and takes the median and slowest latency', () => {
    const stats = pluginStats([
      { plugin: 'quota', verdict: 'Allowed', latencyMicros: 900 },
      { plugin: 'quota', verdict: 'Denied', latencyMicros: 300 },
      { plugin: 'quota', verdict: 'failed', latencyMicros: 5000 },
      { plugin: 'gpu-binpack', verdict: 'Placed', latencyMicros: 4000 },
    ]);
    expect(stats.get('quota')).toEqual({ calls: 3, denied: 1, failed: 1, p50Micros: 900, maxMicros: 5000 });
    expect(stats.get('gpu-binpack')).toEqual({ calls: 1, denied: 0, failed: 0, p50Micros: 4000, maxMicros: 4000 });
    expect(stats.get('desktop')).toBeUndefined();
    expect(pluginStats([]).size).toBe(0);
  });
  it('formats latencies', () => {
    expect(formatMicros(890)).toBe('890 µs');
    expect(formatMicros(4620)).toBe('4.62 ms');
  });
});
