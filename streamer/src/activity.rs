//! What the operator reads from `GET /activity` (time to first frame, idle culling), and the
//! thread-safe clock the server records it in. Not secret: no user, token or address in it.
//!
//! - `firstFrameAt`: the first time, since the streamer started, that an encoded frame was sent
//!   to a viewer: the first RTP buffer that reached a `webrtcbin` after its peer connection
//!   became `connected` (ICE and DTLS up, so the buffer goes out on the wire).
//! - `lastInputAt`: the last keyboard, pointer, wheel, clipboard or resize message from the
//!   controlling viewer (view-only viewers' messages do not count); a controller connecting counts
//!   as input too, so a session someone just opened is not idle.

use std::sync::{Mutex, OnceLock, PoisonError};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The `/activity` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Activity {
    /// When the streamer started.
    pub started_at: Timestamp,
    /// When the first encoded frame was sent to a viewer; `null` before.
    pub first_frame_at: Option<Timestamp>,
    /// When the controlling viewer last sent input (or connected); `null` before.
    pub last_input_at: Option<Timestamp>,
    /// Authenticated viewers now, the controller included.
    pub viewers: u32,
    /// Whether a controlling viewer is connected.
    pub controller_connected: bool,
}

impl Activity {
    /// Seconds from the start to the first frame sent, once there was one.
    pub fn first_frame_seconds(&self) -> Option<f64> {
        self.first_frame_at
            .map(|t| seconds_between(self.started_at, t))
    }

    /// Seconds without input at `now`: since the last input, or since the start when there was
    /// none.
    pub fn idle_seconds(&self, now: Timestamp) -> f64 {
        seconds_between(self.last_input_at.unwrap_or(self.started_at), now)
    }
}

fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    let nanos = to.as_nanosecond().saturating_sub(from.as_nanosecond());
    (nanos.max(0) as f64) / 1e9
}

/// Where the server records activity as it happens.
#[derive(Debug)]
pub struct ActivityClock {
    started: Timestamp,
    first_frame: OnceLock<Timestamp>,
    last_input: Mutex<Option<Timestamp>>,
}

impl ActivityClock {
    /// A clock that started at `started`.
    pub fn new(started: Timestamp) -> Self {
        Self {
            started,
            first_frame: OnceLock::new(),
            last_input: Mutex::new(None),
        }
    }

    /// A frame was sent at `at`; only the first one is kept. True when this was the first.
    pub fn frame_sent(&self, at: Timestamp) -> bool {
        self.first_frame.set(at).is_ok()
    }

    /// The controller sent input (or connected) at `at`; an earlier time never replaces a later.
    pub fn input(&self, at: Timestamp) {
        let mut last = self
            .last_input
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|t| t < at) {
            *last = Some(at);
        }
    }

    /// The document, with the viewers counted now.
    pub fn snapshot(&self, viewers: u32, controller_connected: bool) -> Activity {
        Activity {
            started_at: self.started,
            first_frame_at: self.first_frame.get().copied(),
            last_input_at: *self
                .last_input
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            viewers,
            controller_connected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn the_document_has_the_contract_shape() {
        let clock = ActivityClock::new(at("2026-12-01T10:00:00Z"));
        let empty = serde_json::to_value(clock.snapshot(0, false)).expect("json");
        assert_eq!(
            empty,
            serde_json::json!({
                "startedAt": "2026-12-01T10:00:00Z",
                "firstFrameAt": null,
                "lastInputAt": null,
                "viewers": 0,
                "controllerConnected": false,
            })
        );
        assert!(clock.frame_sent(at("2026-12-01T10:00:01.5Z")));
        assert!(
            !clock.frame_sent(at("2026-12-01T10:00:09Z")),
            "only the first"
        );
        clock.input(at("2026-12-01T10:00:05Z"));
        clock.input(at("2026-12-01T10:00:04Z"));
        let doc = clock.snapshot(2, true);
        let json = serde_json::to_value(&doc).expect("json");
        assert_eq!(json["firstFrameAt"], "2026-12-01T10:00:01.5Z");
        assert_eq!(json["lastInputAt"], "2026-12-01T10:00:05Z");
        assert_eq!(json["viewers"], 2);
        assert_eq!(json["controllerConnected"], true);
        let back: Activity = serde_json::from_value(json).expect("parse back");
        assert_eq!(back, doc);
    }

    #[test]
    fn first_frame_and_idle_seconds() {
        let clock = ActivityClock::new(at("2026-12-01T10:00:00Z"));
        let doc = clock.snapshot(0, false);
        assert_eq!(doc.first_frame_seconds(), None);
        // No input yet: idle since the start.
        assert_eq!(doc.idle_seconds(at("2026-12-01T10:01:00Z")), 60.0);
        clock.frame_sent(at("2026-12-01T10:00:02.25Z"));
        clock.input(at("2026-12-01T10:00:30Z"));
        let doc = clock.snapshot(1, true);
        assert_eq!(doc.first_frame_seconds(), Some(2.25));
        assert_eq!(doc.idle_seconds(at("2026-12-01T10:01:00Z")), 30.0);
        // A clock that went backwards never gives negative idleness.
        assert_eq!(doc.idle_seconds(at("2026-12-01T09:00:00Z")), 0.0);
    }
}
