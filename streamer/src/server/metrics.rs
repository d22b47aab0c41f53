//! What `/metrics` shows: counters and gauges (the stream gauges describe the latest viewer's
//! stream), refusals by reason, and the activity gauges.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Why a connection or a viewer was turned away (the `reason` label of `refused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A missing, expired, forged or wrong-session token, or a message before `hello`.
    Unauthorized,
    /// No valid `hello` within `--auth-timeout-seconds`.
    AuthTimeout,
    /// `--max-connections` WebSockets were open already (HTTP 503).
    MaxConnections,
    /// `--max-viewers` viewers were connected already (`error/busy`).
    MaxViewers,
    /// Someone controls the session and `--extra-viewers refuse` (`error/busy`).
    ControllerBusy,
}

impl Refusal {
    /// Every reason, so each shows on `/metrics` from the start.
    pub const ALL: [Self; 5] = [
        Self::Unauthorized,
        Self::AuthTimeout,
        Self::MaxConnections,
        Self::MaxViewers,
        Self::ControllerBusy,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::AuthTimeout => "auth-timeout",
            Self::MaxConnections => "max-connections",
            Self::MaxViewers => "max-viewers",
            Self::ControllerBusy => "controller-busy",
        }
    }
}

type ReasonLabels = Vec<(&'static str, &'static str)>;

/// Counters and gauges `/metrics` shows.
#[derive(Debug)]
pub(crate) struct StreamMetrics {
    pub(crate) viewers: Gauge,
    pub(crate) connections: Counter,
    refused: Family<ReasonLabels, Counter>,
    pub(crate) input_events: Counter,
    pub(crate) pipeline_failures: Counter,
    pub(crate) frames_encoded: Counter,
    pub(crate) encode_seconds: Histogram,
    pub(crate) fps: Gauge<f64, AtomicU64>,
    pub(crate) target_bitrate_kbps: Gauge,
    pub(crate) sent_bitrate_kbps: Gauge<f64, AtomicU64>,
    pub(crate) rtt_ms: Gauge<f64, AtomicU64>,
    pub(crate) packets_lost: Gauge,
    pub(crate) latency_ms: Gauge<f64, AtomicU64>,
    pub(crate) first_frame_seconds: Gauge<f64, AtomicU64>,
    pub(crate) idle_seconds: Gauge<f64, AtomicU64>,
}

impl StreamMetrics {
    /// The metrics, registered in a fresh registry with the `vdi_streamer` prefix.
    pub(crate) fn new() -> (Self, Registry) {
        let m = Self {
            viewers: Gauge::default(),
            connections: Counter::default(),
            refused: Family::default(),
            input_events: Counter::default(),
            pipeline_failures: Counter::default(),
            frames_encoded: Counter::default(),
            encode_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 14)),
            fps: Gauge::default(),
            target_bitrate_kbps: Gauge::default(),
            sent_bitrate_kbps: Gauge::default(),
            rtt_ms: Gauge::default(),
            packets_lost: Gauge::default(),
            latency_ms: Gauge::default(),
            first_frame_seconds: Gauge::default(),
            idle_seconds: Gauge::default(),
        };
        for reason in Refusal::ALL {
            let _ = m.refused.get_or_create(&vec![("reason", reason.label())]);
        }
        let mut r = Registry::with_prefix("vdi_streamer");
        r.register("viewers", "Connected viewers", m.viewers.clone());
        r.register(
            "connections",
            "Signalling connections accepted",
            m.connections.clone(),
        );
        r.register(
            "refused",
            "Connections and viewers refused, by reason (unauthorized, auth-timeout, max-connections, max-viewers, controller-busy)",
            m.refused.clone(),
        );
        r.register(
            "input_events",
            "Input events injected",
            m.input_events.clone(),
        );
        r.register(
            "pipeline_failures",
            "Media pipelines that failed",
            m.pipeline_failures.clone(),
        );
        r.register(
            "frames_encoded",
            "Video frames encoded",
            m.frames_encoded.clone(),
        );
        r.register(
            "encode_seconds",
            "Time a frame spends in the encoder",
            m.encode_seconds.clone(),
        );
        r.register(
            "fps",
            "Frames the shared encoder encodes per second",
            m.fps.clone(),
        );
        r.register(
            "target_bitrate_kbps",
            "Encoder bitrate the adaptation chose (from the controller's link)",
            m.target_bitrate_kbps.clone(),
        );
        r.register(
            "sent_bitrate_kbps",
            "Bitrate actually sent",
            m.sent_bitrate_kbps.clone(),
        );
        r.register(
            "rtt_ms",
            "Round trip to the viewer (RTCP)",
            m.rtt_ms.clone(),
        );
        r.register(
            "packets_lost",
            "Packets the viewer reported lost",
            m.packets_lost.clone(),
        );
        r.register(
            "glass_to_glass_estimate_ms",
            "Estimated capture-to-display latency: encode + half the round trip + the viewer's jitter buffer + half a frame",
            m.latency_ms.clone(),
        );
        r.register(
            "first_frame_seconds",
            "Seconds from the streamer's start to the first frame sent to a viewer (0 before)",
            m.first_frame_seconds.clone(),
        );
        r.register(
            "seconds_since_last_input",
            "Seconds since the controlling viewer's last input or connection (since the start when none)",
            m.idle_seconds.clone(),
        );
        (m, r)
    }

    /// Counts one refusal.
    pub(crate) fn refuse(&self, why: Refusal) {
        self.refused
            .get_or_create(&vec![("reason", why.label())])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_by_reason_and_every_reason_shows() {
        let (m, registry) = StreamMetrics::new();
        m.refuse(Refusal::MaxViewers);
        m.refuse(Refusal::MaxViewers);
        m.refuse(Refusal::AuthTimeout);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("encode");
        assert!(
            out.contains(r#"vdi_streamer_refused_total{reason="max-viewers"} 2"#),
            "{out}"
        );
        assert!(
            out.contains(r#"vdi_streamer_refused_total{reason="auth-timeout"} 1"#),
            "{out}"
        );
        assert!(
            out.contains(r#"vdi_streamer_refused_total{reason="max-connections"} 0"#),
            "{out}"
        );
        assert!(
            out.contains("vdi_streamer_seconds_since_last_input "),
            "{out}"
        );
        assert!(out.contains("vdi_streamer_first_frame_seconds "), "{out}");
    }
}
