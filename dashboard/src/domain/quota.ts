// The user's quota as the launch form shows and checks it. The admission plugin decides;
// these checks only spare the user a refused launch and say why up front.
import type { MeQuery } from '../gql/graphql';

/** The caller's limits and usage, as `me.quota` gives them. */
export type QuotaView = MeQuery['me']['quota'];

/** `1/2 GPU slices, 2/3 sessions` (an unlimited figure shows `1 GPU slices (no limit)`). */
export function quotaSummary(q: QuotaView): string {
  if (!q.enforced) return `no quota (${plural(q.activeSessions, 'session')} active)`;
  const part = (used: number, max: number | null | undefined, what: string) =>
    max === null || max === undefined ? `${used} ${what} (no limit)` : `${used}/${max} ${what}`;
  return `${part(q.gpuSlicesInUse, q.maxGpuSlices, 'GPU slices')}, ${part(q.activeSessions, q.maxSessions, 'sessions')}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** What a launch asks for. */
export interface LaunchRequest {
  template: string;
  gpuSlices: number;
  /** Lifetime in seconds; null: the policy's default. */
  timeoutSeconds: number | null;
}

/** A problem with a launch request: the form field and the reason. */
export interface LaunchProblem {
  field: 'template' | 'gpuSlices' | 'timeout' | 'sessions';
  message: string;
}

/** Why the quota would refuse `req` (empty: it fits). */
export function launchProblems(q: QuotaView, req: LaunchRequest): LaunchProblem[] {
  const problems: LaunchProblem[] = [];
  if (!Number.isInteger(req.gpuSlices) || req.gpuSlices < 0) {
    problems.push({ field: 'gpuSlices', message: 'GPU slices must be a whole number, 0 or more' });
  }
  if (req.timeoutSeconds !== null && (!Number.isFinite(req.timeoutSeconds) || req.timeoutSeconds <= 0)) {
    problems.push({ field: 'timeout', message: 'the timeout must be a duration such as 1h30m' });
  }
  if (!q.enforced) return problems;
  if (q.allowedTemplates && !q.allowedTemplates.includes(req.template)) {
    problems.push({ field: 'template', message: `your groups may not start ${req.template}` });
  }
  if (q.maxSessions !== null && q.maxSessions !== undefined && q.activeSessions >= q.maxSessions) {
    problems.push({ field: 'sessions', message: `you have ${q.activeSessions} of ${q.maxSessions} sessions already` });
  }
  if (q.maxGpuSlices !== null && q.maxGpuSlices !== undefined && req.gpuSlices > 0) {
    const left = Math.max(0, q.maxGpuSlices - q.gpuSlicesInUse);
    if (req.gpuSlices > left) {
      problems.push({
        field: 'gpuSlices',
        message: `${req.gpuSlices} GPU slices asked, ${left} left of ${q.maxGpuSlices}`,
      });
    }
  }
  if (q.maxTimeoutSeconds && req.timeoutSeconds !== null && req.timeoutSeconds > q.maxTimeoutSeconds) {
    problems.push({
      field: 'timeout',
      message: `at most ${formatLimit(q.maxTimeoutSeconds)} (longer is clamped by policy)`,
    });
  }
  return problems;
}

function formatLimit(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}` || `${seconds}s`;
}
