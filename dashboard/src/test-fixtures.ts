// Builders for test data: a session row with every field, overridable.
import type { SessionRow } from './domain/sessions';

export function session(name: string, over: Partial<SessionRow> = {}): SessionRow {
  const base: SessionRow = {
    id: `id-${name}`,
    name,
    namespace: 'u-alice',
    user: 'oidc:alice',
    template: 'ubuntu-desktop',
    timeout: null,
    phase: 'PENDING',
    reason: null,
    message: null,
    url: null,
    node: null,
    gpu: null,
    gpuSlices: null,
    createdAt: '2026-12-01T10:00:00Z',
    startedAt: null,
    expiresAt: null,
    timings: { admitted: null, placed: null, objectsApplied: null, podReady: null, firstFrame: null },
  };
  return { ...base, ...over } as SessionRow;
}
