//! Per-plugin call counts, error counts by kind and latency histograms, in the Prometheus
//! registry the operator exposes on `/metrics`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::CallError;
use crate::plugin::Hook;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
    hook: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    plugin: String,
    hook: &'static str,
    kind: &'static str,
}

fn latency_histogram() -> Histogram {
    // 5 µs .. ~5 s
    Histogram::new(exponential_buckets(5e-6, 2.0, 21))
}

/// The plugin runtime's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: Family<PluginLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    latency: Family<PluginLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let calls = Family::<PluginLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let latency = Family::<PluginLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let mut registry = Registry::with_prefix("vdi_plugin");
        registry.register(
            "calls",
            "Plugin calls (every function, configure included)",
            calls.clone(),
        );
        registry.register(
            "errors",
            "Plugin calls that failed, by kind",
            errors.clone(),
        );
        registry.register(
            "call_duration_seconds",
            "Wall time of one call with a fresh instance",
            latency.clone(),
        );
        Self {
            registry,
            calls,
            errors,
            latency,
        }
    }
}

impl Metrics {
    /// The handles one plugin records into (looked up once, not per call).
    pub(crate) fn for_plugin(&self, plugin: &str, hook: Hook) -> PluginMetrics {
        let labels = PluginLabels {
            plugin: plugin.to_owned(),
            hook: hook.name(),
        };
        PluginMetrics {
            calls: self.calls.get_or_create(&labels).clone(),
            latency: self.latency.get_or_create(&labels).clone(),
            errors: self.errors.clone(),
            labels,
        }
    }

    /// Calls recorded for `plugin`.
    pub fn calls(&self, plugin: &str, hook: Hook) -> u64 {
        self.calls
            .get_or_create(&PluginLabels {
                plugin: plugin.to_owned(),
                hook: hook.name(),
            })
            .get()
    }

    /// Errors of `kind` (see [`CallError::kind`]) recorded for `plugin`.
    pub fn errors(&self, plugin: &str, hook: Hook, kind: &'static str) -> u64 {
        let labels = ErrorLabels {
            plugin: plugin.to_owned(),
            hook: hook.name(),
            kind,
        };
        self.errors.get_or_create(&labels).get()
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One plugin's metric handles.
#[derive(Clone)]
pub(crate) struct PluginMetrics {
    labels: PluginLabels,
    calls: Counter,
    latency: Histogram,
    errors: Family<ErrorLabels, Counter>,
}

impl PluginMetrics {
    pub(crate) fn observe(&self, elapsed: Duration, error: Option<&CallError>) {
        self.calls.inc();
        self.latency.observe(elapsed.as_secs_f64());
        if let Some(e) = error {
            let labels = ErrorLabels {
                plugin: self.labels.plugin.clone(),
                hook: self.labels.hook,
                kind: e.kind(),
            };
            self.errors.get_or_create(&labels).inc();
        }
    }
}
