// Durations and instants as the dashboard shows them. Pure: every function takes `now`.

const UNITS: Record<string, number> = { h: 3600, m: 60, s: 1 };

/** Seconds of a Go-style duration (`1h30m`, `45m`, `90s`); null when it is not one. */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim();
  if (!/^(\d+[hms])+$/.test(trimmed)) return null;
  let total = 0;
  for (const [, n, unit] of trimmed.matchAll(/(\d+)([hms])/g)) {
    total += Number(n) * (UNITS[unit ?? 's'] ?? 1);
  }
  return total;
}

/** A duration the API takes (`1h30m`, `45m`, `0s`). */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  const out = `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${rest ? `${rest}s` : ''}`;
  return out || '0s';
}

/** A short human duration: `2h 05m`, `4m 09s`, `12s`. */
export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (h > 0) return `${h}h ${pad(m)}m`;
  if (m > 0) return `${m}m ${pad(rest)}s`;
  return `${rest}s`;
}

/** Seconds from `now` until `iso` (negative once past); null without a valid instant. */
export function secondsUntil(iso: string | null | undefined, now: number): number | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : (t - now) / 1000;
}

/** The expiry countdown: `expires in 1h 02m`, `expired`, or `no expiry`. */
export function countdown(expiresAt: string | null | undefined, now: number): string {
  const left = secondsUntil(expiresAt, now);
  if (left === null) return 'no expiry';
  return left <= 0 ? 'expired' : `expires in ${humanDuration(left)}`;
}

/** How long ago `iso` was: `3m 10s`; empty without a valid instant. */
export function age(iso: string | null | undefined, now: number): string {
  const left = secondsUntil(iso, now);
  return left === null ? '' : humanDuration(-left);
}
