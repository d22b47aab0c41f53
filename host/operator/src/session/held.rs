//! Provisioned statuses not written yet. Once a desktop's objects are applied the session is
//! `Provisioning`, but a desktop that is ready within [`PROVISIONED_GRACE`] goes straight from
//! the written `Scheduled` to `Running` in one write: no observer needs a state that lasts a few
//! milliseconds, and the write would cost every session. A desktop that takes longer has its
//! `Provisioning` status written when the grace ends (users then see where it waits).
//!
//! What is held is safe to lose: placement is written before any object is applied, so an
//! operator that restarts finds the session `Scheduled` and provisions again (the applies are
//! idempotent server-side applies of the same objects, owned by the same session uid).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vdi_crd::{SessionPhase, VDISessionStatus};

/// How long a provisioned status may stay unwritten while the desktop starts.
pub const PROVISIONED_GRACE: Duration = Duration::from_secs(2);

/// A provisioned status and when its objects were applied.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) status: VDISessionStatus,
    pub(crate) applied: Instant,
}

impl Held {
    /// How long until the status must be written (zero: now).
    pub(crate) fn due_in(&self, now: Instant) -> Duration {
        PROVISIONED_GRACE.saturating_sub(now.saturating_duration_since(self.applied))
    }
}

/// The held statuses, by session uid.
#[derive(Debug, Default)]
pub(crate) struct HeldStatuses(Mutex<HashMap<String, Held>>);

impl HeldStatuses {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds `status` (`Provisioning`, objects applied at `applied`) for session `uid`.
    pub(crate) fn hold(&self, uid: &str, status: VDISessionStatus, applied: Instant) {
        self.map().insert(uid.to_owned(), Held { status, applied });
    }

    /// The held status of session `uid` if it still continues `stored` (the status the cache
    /// has): that is `Scheduled` on the same node and GPU. Anything else (a newer status was
    /// written, the session was placed again) drops what was held.
    pub(crate) fn continuing(&self, uid: &str, stored: &VDISessionStatus) -> Option<Held> {
        let mut map = self.map();
        let held = map.get(uid)?;
        if continues(&held.status, stored) {
            return Some(held.clone());
        }
        map.remove(uid);
        None
    }

    /// Forgets session `uid`'s held status (its status was written, or it is gone).
    pub(crate) fn release(&self, uid: &str) {
        self.map().remove(uid);
    }

    /// How many statuses are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map().len()
    }
}

/// Whether `held` is the next step of `stored`.
fn continues(held: &VDISessionStatus, stored: &VDISessionStatus) -> bool {
    stored.phase() == SessionPhase::Scheduled
        && held.phase() == SessionPhase::Provisioning
        && held.node == stored.node
        && held.gpu == stored.gpu
        && held.served_by.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(phase: SessionPhase, node: &str, gpu: Option<u32>) -> VDISessionStatus {
        VDISessionStatus {
            phase: Some(phase),
            node: Some(node.into()),
            gpu,
            ..VDISessionStatus::default()
        }
    }

    #[test]
    fn a_held_status_continues_only_its_own_placement() {
        let held = HeldStatuses::default();
        let at = Instant::now();
        held.hold("u1", status(SessionPhase::Provisioning, "n1", Some(0)), at);
        let stored = status(SessionPhase::Scheduled, "n1", Some(0));
        let got = held.continuing("u1", &stored).expect("held");
        assert_eq!(got.status.phase(), SessionPhase::Provisioning);
        assert!(held.continuing("u2", &stored).is_none(), "another session");
        // Placed elsewhere since (e.g. after a restart of the placement): dropped.
        let moved = status(SessionPhase::Scheduled, "n2", Some(0));
        assert!(held.continuing("u1", &moved).is_none());
        assert_eq!(held.len(), 0);
    }

    #[test]
    fn a_newer_written_status_drops_the_held_one() {
        let held = HeldStatuses::default();
        held.hold(
            "u1",
            status(SessionPhase::Provisioning, "n1", None),
            Instant::now(),
        );
        let running = status(SessionPhase::Running, "n1", None);
        assert!(held.continuing("u1", &running).is_none());
        assert_eq!(held.len(), 0);
        held.hold(
            "u1",
            status(SessionPhase::Provisioning, "n1", None),
            Instant::now(),
        );
        held.release("u1");
        assert_eq!(held.len(), 0);
    }

    #[test]
    fn the_grace_counts_from_the_applies() {
        let at = Instant::now();
        let h = Held {
            status: VDISessionStatus::default(),
            applied: at,
        };
        assert_eq!(h.due_in(at), PROVISIONED_GRACE);
        assert_eq!(
            h.due_in(at + Duration::from_millis(400)),
            PROVISIONED_GRACE.saturating_sub(Duration::from_millis(400))
        );
        assert_eq!(h.due_in(at + PROVISIONED_GRACE * 2), Duration::ZERO);
    }
}
