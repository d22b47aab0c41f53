import { type QuotaView, quotaSummary } from '../domain/quota';

/** The caller's quota before launch: `1/2 GPU slices, 2/3 sessions`, with bars. */
export function QuotaDisplay({ quota }: { quota: QuotaView }) {
  const bar = (label: string, used: number, max: number | null | undefined) =>
    max === null || max === undefined ? null : (
      <span className="meter">
        <span>{label}</span>
        <meter min={0} max={Math.max(max, 1)} value={Math.min(used, Math.max(max, 1))} aria-label={`${label} used`}>
          {used}/{max}
        </meter>
      </span>
    );
  return (
    <section className="quota" aria-label="Your quota">
      <p>
        <strong>Quota:</strong> <span data-testid="quota-summary">{quotaSummary(quota)}</span>
      </p>
      {quota.enforced && (
        <div className="meters">
          {bar('GPU slices', quota.gpuSlicesInUse, quota.maxGpuSlices)}
          {bar('Sessions', quota.activeSessions, quota.maxSessions)}
        </div>
      )}
    </section>
  );
}
