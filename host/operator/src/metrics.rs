//! The operator's Prometheus metrics (the plugin runtime's own are appended on `/metrics`).

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use vdi_crd::SessionPhase;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    from: &'static str,
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Reconcile durations, phase transitions and session start-up times.
#[derive(Debug)]
pub struct OperatorMetrics {
    registry: Mutex<Registry>,
    reconciles: Family<OutcomeLabels, Counter>,
    reconcile_duration: Histogram,
    transitions: Family<TransitionLabels, Counter>,
    startup: Histogram,
}

impl Default for OperatorMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("vdi_operator");
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        let reconcile_duration = Histogram::new(exponential_buckets(1e-4, 2.0, 18));
        let transitions = Family::<TransitionLabels, Counter>::default();
        let startup = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        registry.register(
            "reconciles",
            "Session reconciles by outcome",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Wall time of one session reconcile",
            reconcile_duration.clone(),
        );
        registry.register(
            "session_phase_transitions",
            "Session phase changes written by the operator",
            transitions.clone(),
        );
        registry.register(
            "session_startup_seconds",
            "From a session's creation to its desktop being ready",
            startup.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            reconciles,
            reconcile_duration,
            transitions,
            startup,
        }
    }
}

impl OperatorMetrics {
    pub(crate) fn observe_reconcile(&self, elapsed: Duration, failed: bool) {
        self.reconcile_duration.observe(elapsed.as_secs_f64());
        self.reconciles
            .get_or_create(&OutcomeLabels {
                outcome: if failed { "error" } else { "ok" },
            })
            .inc();
    }

    pub(crate) fn transition(&self, from: SessionPhase, to: SessionPhase) {
        self.transitions
            .get_or_create(&TransitionLabels {
                from: from.as_str(),
                to: to.as_str(),
            })
            .inc();
    }

    pub(crate) fn observe_startup(&self, seconds: f64) {
        self.startup.observe(seconds);
    }

    /// Reconciles done so far (ok and failed).
    pub fn reconciles(&self) -> u64 {
        ["ok", "error"]
            .iter()
            .map(|o| {
                self.reconciles
                    .get_or_create(&OutcomeLabels { outcome: o })
                    .get()
            })
            .sum()
    }

    /// Transitions from `from` to `to` so far.
    pub fn transitions(&self, from: SessionPhase, to: SessionPhase) -> u64 {
        self.transitions
            .get_or_create(&TransitionLabels {
                from: from.as_str(),
                to: to.as_str(),
            })
            .get()
    }

    /// The OpenMetrics text of these metrics followed by `extra` (another registry's text).
    pub fn encode_with(&self, extra: &str) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &registry);
        out.push_str(extra);
        if !out.ends_with("# EOF\n") {
            let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        }
        out
    }
}
