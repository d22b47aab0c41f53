// Live stream statistics read from the embedded player (`window.vdi.state` in its frame),
// kept as a short history for the chart.

/** What the player reports (streamer/web/player.js), as far as the dashboard uses it. */
export interface PlayerState {
  connected?: boolean;
  fps?: number;
  framesDecoded?: number;
  packetsLost?: number;
  bitrateKbps?: number;
  rttMs?: number | null;
  /** The jitter buffer's delay per frame, ms. */
  latencyMs?: number | null;
  codec?: string | null;
}

export interface StatsSample {
  /** Seconds since the epoch. */
  t: number;
  fps: number;
  bitrateKbps: number;
  rttMs: number | null;
  packetsLost: number;
  /** Network half round trip + jitter buffer: a glass-to-glass lower bound, ms. */
  glassToGlassMs: number | null;
}

/** Samples kept: two minutes at one a second. */
export const HISTORY = 120;

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const maybe = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Half the round trip plus the jitter buffer's delay; null without a round trip. Encode,
 * capture and display time are not in it, so the real figure is higher. */
export function glassToGlassEstimate(rttMs: number | null, bufferMs: number | null): number | null {
  if (rttMs === null) return null;
  return Math.round(rttMs / 2 + (bufferMs ?? 0));
}

/** A sample of `state` at `nowMs`; garbage fields read as 0 or null. */
export function sampleOf(state: PlayerState, nowMs: number): StatsSample {
  const rttMs = maybe(state.rttMs);
  return {
    t: nowMs / 1000,
    fps: num(state.fps),
    bitrateKbps: num(state.bitrateKbps),
    rttMs,
    packetsLost: num(state.packetsLost),
    glassToGlassMs: glassToGlassEstimate(rttMs, maybe(state.latencyMs)),
  };
}

/** `history` with `sample` appended, the oldest dropped beyond `max`. */
export function pushSample(history: readonly StatsSample[], sample: StatsSample, max = HISTORY): StatsSample[] {
  const next = [...history, sample];
  return next.length > max ? next.slice(next.length - max) : next;
}

/** The chart's columns: times, fps, bitrate (uPlot's AlignedData). */
export function chartColumns(history: readonly StatsSample[]): [number[], number[], number[]] {
  return [history.map((s) => s.t), history.map((s) => s.fps), history.map((s) => s.bitrateKbps)];
}
