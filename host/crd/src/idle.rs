//! Idle culling as a pure decision: given when the desktop became ready, the last input the
//! streamer saw, the template's idle timeout and the clock, what the operator does now, and the
//! status each decision leaves. A session is idle since the later of its last input and its
//! desktop becoming ready; a warning (condition `Idle=True`, event `IdleWarning`) comes
//! [`warning_lead`] before the timeout, input clears it, and at the timeout the session ends
//! (reason [`IDLE_TIMEOUT`]).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::duration::format_duration;
use crate::session::VDISessionStatus;

/// Condition type of the idle warning.
pub const IDLE_CONDITION: &str = "Idle";
/// Reason (condition and event) of the warning before an idle session ends.
pub const IDLE_WARNING: &str = "IdleWarning";
/// Reason (status, condition and event) of a session ended for being idle.
pub const IDLE_TIMEOUT: &str = "IdleTimeout";
/// Reason of the `Idle=False` condition once input came back.
pub const IDLE_ACTIVE: &str = "InputReceived";
/// Longest warning before an idle session ends.
pub const MAX_WARNING: Duration = Duration::from_secs(5 * 60);

/// How long before the idle timeout the warning comes: a fifth of the timeout, at most
/// [`MAX_WARNING`].
pub fn warning_lead(idle_timeout: Duration) -> Duration {
    (idle_timeout / 5).min(MAX_WARNING)
}

/// What the operator knows about a running session's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleInput {
    /// The template's idle timeout.
    pub idle_timeout: Duration,
    /// When the desktop pod became ready.
    pub ready_at: Timestamp,
    /// The last input the streamer reported, if any.
    pub last_input_at: Option<Timestamp>,
    /// Whether the session carries the idle warning now (`Idle=True`).
    pub warned: bool,
}

/// What to do about an idle (or active) session now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleAction {
    /// Nothing changes; decide again at `next` (the warning or the end, whichever is due).
    Keep {
        /// When the next decision is due.
        next: Timestamp,
    },
    /// Set the warning: the session ends at `ends_at` unless input comes.
    Warn {
        /// When it ends.
        ends_at: Timestamp,
    },
    /// Input came after the warning: clear it; decide again at `next`.
    Clear {
        /// When the next decision is due.
        next: Timestamp,
    },
    /// The idle timeout passed: end the session.
    Terminate {
        /// Since when it was idle.
        idle_since: Timestamp,
    },
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// Decides what an idle timeout means for the session now.
pub fn decide(input: IdleInput, now: Timestamp) -> IdleAction {
    // The report comes from inside the desktop: input "in the future" counts as now.
    let idle_since = input
        .last_input_at
        .map_or(input.ready_at, |t| t.min(now).max(input.ready_at));
    let ends_at = add(idle_since, input.idle_timeout);
    let warn_at = add(
        idle_since,
        input
            .idle_timeout
            .saturating_sub(warning_lead(input.idle_timeout)),
    );
    if now >= ends_at {
        IdleAction::Terminate { idle_since }
    } else if now >= warn_at {
        if input.warned {
            IdleAction::Keep { next: ends_at }
        } else {
            IdleAction::Warn { ends_at }
        }
    } else if input.warned {
        IdleAction::Clear { next: warn_at }
    } else {
        IdleAction::Keep { next: warn_at }
    }
}

/// How long from `now` until `at` (zero when it passed).
pub fn until(at: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or_default()
}

impl VDISessionStatus {
    /// Whether the idle warning is on.
    pub fn idle_warned(&self) -> bool {
        self.condition(IDLE_CONDITION)
            .is_some_and(|c| c.status == "True")
    }

    /// Sets the idle warning: the session ends at `ends_at`. Returns the message (for the
    /// event).
    pub fn warn_idle(&mut self, ends_at: Timestamp, now: Timestamp) -> String {
        let left = format_duration(until(ends_at, now).as_secs().max(1));
        let message = format!("no input; the session ends in {left} (at {ends_at}) unless used");
        self.set_condition(
            IDLE_CONDITION,
            true,
            IDLE_WARNING,
            &message,
            &now.to_string(),
        );
        message
    }

    /// Clears the idle warning after input came back.
    pub fn clear_idle(&mut self, now: Timestamp) {
        self.set_condition(
            IDLE_CONDITION,
            false,
            IDLE_ACTIVE,
            "input received",
            &now.to_string(),
        );
    }

    /// The session ends for being idle since `idle_since` (its timeout `idle_timeout`): reason
    /// [`IDLE_TIMEOUT`]. Returns the message (for the event).
    pub fn end_idle(
        &mut self,
        idle_since: Timestamp,
        idle_timeout: Duration,
        now: Timestamp,
    ) -> String {
        let message = format!(
            "no input for {} (idle since {idle_since}): the session ends",
            format_duration(idle_timeout.as_secs())
        );
        self.reason = Some(IDLE_TIMEOUT.to_owned());
        self.message = Some(message.clone());
        self.set_condition(
            IDLE_CONDITION,
            true,
            IDLE_TIMEOUT,
            &message,
            &now.to_string(),
        );
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        let base: Timestamp = "2026-12-01T12:00:00Z".parse().expect("a time");
        base + SignedDuration::from_secs(secs)
    }

    /// A 30-minute timeout: the warning comes 5 minutes before (a fifth would be 6).
    fn input(last_input: Option<i64>, warned: bool) -> IdleInput {
        IdleInput {
            idle_timeout: Duration::from_secs(1800),
            ready_at: t(0),
            last_input_at: last_input.map(t),
            warned,
        }
    }

    #[test]
    fn the_warning_is_a_fifth_of_the_timeout_at_most_five_minutes() {
        assert_eq!(
            warning_lead(Duration::from_secs(1800)),
            Duration::from_secs(300)
        );
        assert_eq!(
            warning_lead(Duration::from_secs(600)),
            Duration::from_secs(120)
        );
        assert_eq!(warning_lead(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn without_input_idle_counts_from_ready() {
        assert_eq!(
            decide(input(None, false), t(60)),
            IdleAction::Keep { next: t(1500) }
        );
        assert_eq!(
            decide(input(None, false), t(1500)),
            IdleAction::Warn { ends_at: t(1800) }
        );
        assert_eq!(
            decide(input(None, true), t(1600)),
            IdleAction::Keep { next: t(1800) },
            "warned once"
        );
        assert_eq!(
            decide(input(None, true), t(1800)),
            IdleAction::Terminate { idle_since: t(0) }
        );
    }

    #[test]
    fn input_moves_the_deadline_and_clears_the_warning() {
        assert_eq!(
            decide(input(Some(1000), false), t(1600)),
            IdleAction::Keep { next: t(2500) }
        );
        assert_eq!(
            decide(input(Some(1000), true), t(1600)),
            IdleAction::Clear { next: t(2500) }
        );
        assert_eq!(
            decide(input(Some(1000), false), t(2800)),
            IdleAction::Terminate {
                idle_since: t(1000)
            }
        );
    }

    #[test]
    fn input_reported_in_the_future_counts_as_now() {
        assert_eq!(
            decide(input(Some(1_000_000), false), t(1000)),
            IdleAction::Keep { next: t(2500) }
        );
    }

    #[test]
    fn input_before_ready_counts_as_ready() {
        assert_eq!(
            decide(input(Some(-500), false), t(1799)),
            IdleAction::Warn { ends_at: t(1800) }
        );
    }

    #[test]
    fn statuses_of_warning_clearing_and_ending() {
        let mut s = VDISessionStatus::default();
        assert!(!s.idle_warned());
        let message = s.warn_idle(t(1800), t(1500));
        assert!(message.contains("5m"), "{message}");
        assert!(s.idle_warned());
        let c = s.condition(IDLE_CONDITION).expect("condition");
        assert_eq!(c.reason, IDLE_WARNING);
        s.clear_idle(t(1600));
        assert!(!s.idle_warned());
        let message = s.end_idle(t(0), Duration::from_secs(1800), t(1800));
        assert!(message.contains("30m"), "{message}");
        assert_eq!(s.reason.as_deref(), Some(IDLE_TIMEOUT));
        assert_eq!(
            s.condition(IDLE_CONDITION).map(|c| c.reason.as_str()),
            Some(IDLE_TIMEOUT)
        );
    }
}
