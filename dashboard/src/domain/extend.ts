// Extend: the new lifetime asked for is the current one plus a step (admission clamps it).
import type { SessionRow } from './sessions';
import { formatDuration, parseDuration } from './time';

export const EXTEND_STEP_SECONDS = 3600;

/** The `timeout` to ask for so that `s` lives `step` seconds longer; null when unknown. */
export function extendedTimeout(s: Pick<SessionRow, 'timeout' | 'startedAt' | 'expiresAt'>, step = EXTEND_STEP_SECONDS): string | null {
  let current = s.timeout ? parseDuration(s.timeout) : null;
  if (current === null && s.startedAt && s.expiresAt) {
    const span = (Date.parse(s.expiresAt) - Date.parse(s.startedAt)) / 1000;
    current = Number.isFinite(span) && span > 0 ? span : null;
  }
  return current === null ? null : formatDuration(current + step);
}
