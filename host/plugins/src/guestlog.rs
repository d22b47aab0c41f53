//! What a guest writes (the `log` import, stdout, stderr) on its way to the host's `tracing`:
//! capped per call, lines truncated with a marker, and rate-limited per plugin so a chatty or
//! hostile plugin cannot flood the operator's logs.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Longest log line kept from a guest.
pub const MAX_LOG_LINE: usize = 4 << 10;
/// Bytes of `log` messages kept per call; the rest are counted and dropped.
pub const LOG_BYTES_PER_CALL: usize = 16 << 10;
/// Lines per second a plugin may send to the host's log, sustained.
pub const LINES_PER_SECOND: f64 = 50.0;
/// Lines a plugin may send in a burst.
pub const LINE_BURST: f64 = 200.0;

/// `s` cut to at most `max` bytes on a character boundary, with a marker when cut.
pub fn truncate(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… [{} bytes truncated]",
        s.get(..end).unwrap_or_default(),
        s.len() - end
    )
    .into()
}

/// The per-call budget of `log` bytes.
#[derive(Debug, Default)]
pub(crate) struct CallLog {
    used: usize,
    dropped: usize,
}

impl CallLog {
    /// The part of `message` this call may still log (`None` once the budget is spent).
    pub(crate) fn admit<'m>(&mut self, message: &'m str) -> Option<std::borrow::Cow<'m, str>> {
        let room = LOG_BYTES_PER_CALL.saturating_sub(self.used);
        if room == 0 {
            self.dropped += message.len();
            return None;
        }
        let line = truncate(message, room.min(MAX_LOG_LINE));
        self.used += message.len().min(room);
        Some(line)
    }

    /// Bytes refused once the budget was spent.
    pub(crate) fn dropped(&self) -> usize {
        self.dropped
    }
}

/// A token bucket of log lines for one plugin, shared by all its calls.
#[derive(Debug)]
pub(crate) struct LogGate {
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
    suppressed: u64,
}

impl Default for LogGate {
    fn default() -> Self {
        Self {
            state: Mutex::new(Bucket {
                tokens: LINE_BURST,
                refilled: Instant::now(),
                suppressed: 0,
            }),
        }
    }
}

/// What the gate says about one line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Log it; `suppressed` lines were dropped since the last one logged.
    Pass {
        /// Lines dropped before this one.
        suppressed: u64,
    },
    /// Drop it.
    Drop,
}

impl LogGate {
    /// Whether one more line of `plugin`'s may be logged now; the first line let through after
    /// some were dropped is preceded by a warning saying how many.
    pub(crate) fn pass(&self, plugin: &str) -> bool {
        match self.admit_at(Instant::now()) {
            Gate::Drop => false,
            Gate::Pass { suppressed: 0 } => true,
            Gate::Pass { suppressed } => {
                tracing::warn!(
                    plugin,
                    suppressed,
                    "plugin log lines dropped by the rate limit"
                );
                true
            }
        }
    }

    fn admit_at(&self, now: Instant) -> Gate {
        let mut b = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(b.refilled).as_secs_f64();
        b.tokens = (b.tokens + elapsed * LINES_PER_SECOND).min(LINE_BURST);
        b.refilled = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Gate::Pass {
                suppressed: std::mem::take(&mut b.suppressed),
            }
        } else {
            b.suppressed += 1;
            Gate::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn long_lines_are_cut_with_a_marker() {
        let line = "é".repeat(3000);
        let cut = truncate(&line, MAX_LOG_LINE);
        assert!(cut.len() < line.len());
        assert!(cut.ends_with("bytes truncated]"), "{cut}");
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn a_call_logs_at_most_its_budget() {
        let mut log = CallLog::default();
        let line = "x".repeat(1000);
        let kept = (0..100).filter(|_| log.admit(&line).is_some()).count();
        assert_eq!(kept, LOG_BYTES_PER_CALL.div_ceil(1000));
        assert!(log.dropped() >= 100 * 1000 - LOG_BYTES_PER_CALL - 1000);
    }

    #[test]
    fn the_gate_passes_a_burst_then_refills_and_reports_what_it_dropped() {
        let gate = LogGate::default();
        let start = Instant::now();
        let passed = (0..1000)
            .filter(|_| gate.admit_at(start) != Gate::Drop)
            .count();
        assert_eq!(passed, 200);
        // A second later, 50 more lines may pass; the first says how many were dropped.
        let later = start + Duration::from_secs(1);
        assert_eq!(gate.admit_at(later), Gate::Pass { suppressed: 800 });
        let more = (0..100)
            .filter(|_| gate.admit_at(later) != Gate::Drop)
            .count();
        assert_eq!(more, 49);
    }
}
