// Live stream statistics of the embedded player: fps, bitrate, RTT, loss and a glass-to-glass
// estimate, with a two-minute chart (uPlot, loaded on demand so the first page stays small).
import { type RefObject, useEffect, useRef, useState } from 'react';
import type uPlot from 'uplot';

import { type PlayerState, type StatsSample, chartColumns, pushSample, sampleOf } from '../domain/streamStats';

const POLL_MS = 1000;

/** The player's state in `frame`, or why there is none. */
function readPlayer(frame: HTMLIFrameElement | null): PlayerState | 'cross-origin' | null {
  try {
    const w = frame?.contentWindow as (Window & { vdi?: { state?: PlayerState } }) | null | undefined;
    return w?.vdi?.state ?? null;
  } catch {
    return 'cross-origin';
  }
}

export function StreamStats({ frame }: { frame: RefObject<HTMLIFrameElement | null> }) {
  const [history, setHistory] = useState<StatsSample[]>([]);
  const [unavailable, setUnavailable] = useState(false);
  const chartBox = useRef<HTMLDivElement>(null);
  const chart = useRef<uPlot | null>(null);

  useEffect(() => {
    const t = window.setInterval(() => {
      const state = readPlayer(frame.current);
      if (state === 'cross-origin') return setUnavailable(true);
      if (state?.connected) setHistory((h) => pushSample(h, sampleOf(state, Date.now())));
    }, POLL_MS);
    return () => window.clearInterval(t);
  }, [frame]);

  useEffect(() => {
    const box = chartBox.current;
    if (!box || history.length < 2) return;
    if (chart.current) {
      chart.current.setData(chartColumns(history));
      return;
    }
    let cancelled = false;
    void Promise.all([import('uplot'), import('uplot/dist/uPlot.min.css')]).then(([{ default: UPlot }]) => {
      if (cancelled || chart.current) return;
      chart.current = new UPlot(
        {
          width: Math.min(box.clientWidth || 600, 900),
          height: 160,
          scales: { x: { time: true }, fps: { range: (_u, _min, max) => [0, Math.max(60, max)] }, kbps: {} },
          axes: [{}, { scale: 'fps', label: 'fps' }, { scale: 'kbps', side: 1, label: 'kbit/s', grid: { show: false } }],
          series: [
            {},
            { label: 'fps', scale: 'fps', stroke: '#1f5fbf', width: 2 },
            { label: 'bitrate (kbit/s)', scale: 'kbps', stroke: '#067647', width: 2 },
          ],
        },
        chartColumns(history),
        box,
      );
    });
    return () => {
      cancelled = true;
    };
  }, [history]);

  useEffect(() => () => chart.current?.destroy(), []);

  const last = history[history.length - 1];
  if (unavailable) return <p className="muted">Stream statistics are unavailable: the player is on another origin.</p>;
  return (
    <section aria-labelledby="stats-title" className="stream-stats">
      <h2 id="stats-title">Stream</h2>
      {!last ? (
        <p className="muted" role="status">
          Waiting for the stream…
        </p>
      ) : (
        <dl className="figures" data-testid="stream-figures">
          <div>
            <dt>fps</dt>
            <dd>{last.fps.toFixed(0)}</dd>
          </div>
          <div>
            <dt>bitrate</dt>
            <dd>{last.bitrateKbps} kbit/s</dd>
          </div>
          <div>
            <dt>RTT</dt>
            <dd>{last.rttMs === null ? '—' : `${last.rttMs} ms`}</dd>
          </div>
          <div>
            <dt>packets lost</dt>
            <dd>{last.packetsLost}</dd>
          </div>
          <div>
            <dt>glass to glass (est.)</dt>
            <dd title="half the round trip plus the jitter buffer; capture, encode and display add to it">
              {last.glassToGlassMs === null ? '—' : `≥ ${last.glassToGlassMs} ms`}
            </dd>
          </div>
        </dl>
      )}
      <div ref={chartBox} className="chart" aria-label="fps and bitrate over the last two minutes" role="img" />
    </section>
  );
}
