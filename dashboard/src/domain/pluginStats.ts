// Per-plugin call counts, refusals, failures and latency, from the decisions recorded on
// sessions (each session keeps every plugin decision on it).

export interface DecisionLike {
  plugin: string;
  verdict: string;
  latencyMicros: number;
}

export interface PluginStats {
  calls: number;
  /** Verdicts `denied`. */
  denied: number;
  /** Verdicts `failed` (the plugin erred or timed out). */
  failed: number;
  /** Median latency, µs. */
  p50Micros: number;
  /** Slowest call, µs. */
  maxMicros: number;
}

export function pluginStats(decisions: readonly DecisionLike[]): Map<string, PluginStats> {
  const byPlugin = new Map<string, DecisionLike[]>();
  for (const d of decisions) {
    const list = byPlugin.get(d.plugin);
    if (list) list.push(d);
    else byPlugin.set(d.plugin, [d]);
  }
  const out = new Map<string, PluginStats>();
  for (const [plugin, list] of byPlugin) {
    const lat = list.map((d) => d.latencyMicros).sort((a, b) => a - b);
    out.set(plugin, {
      calls: list.length,
      denied: list.filter((d) => d.verdict.toLowerCase() === 'denied').length,
      failed: list.filter((d) => d.verdict.toLowerCase() === 'failed').length,
      p50Micros: lat[Math.floor((lat.length - 1) / 2)] ?? 0,
      maxMicros: lat[lat.length - 1] ?? 0,
    });
  }
  return out;
}

/** `0.89 ms` or `450 µs`. */
export function formatMicros(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${Math.round(us)} µs`;
}
