//! Plugin calls from the operator's async code: each runs on the plugin runtime's pool (plain
//! threads, never a tokio worker) and is given up by a watchdog after its time budget.

use std::time::Duration;

use crate::error::Result;
use crate::registry::{PluginSet, Registry};

/// How long compiling one module may take before its caller gives up (a cold Python component
/// takes seconds in a release build, tens of seconds in a debug one).
pub(crate) const COMPILE_BUDGET: Duration = Duration::from_secs(300);

/// Runs `job` on `registry`'s plugin pool; `limit` is the longest its plugin calls may take.
pub(crate) async fn on_pool<R: Send + 'static>(
    registry: &Registry,
    limit: Duration,
    job: impl FnOnce() -> R + Send + 'static,
) -> Result<R> {
    Ok(registry.runtime().pool().run(limit, job).await?)
}

/// A duration in whole microseconds (for decision records).
pub(crate) fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The longest an admission review over `set` can take (every admission plugin's limit, twice:
/// a mutation makes the chain run once more).
pub fn admission_budget(set: &PluginSet) -> Duration {
    set.admission
        .iter()
        .map(|a| a.plugin.limits().timeout)
        .sum::<Duration>()
        .saturating_mul(2)
}
