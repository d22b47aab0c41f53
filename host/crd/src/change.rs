//! Changes to a session after admission, the way Kubernetes controllers treat a spec change
//! (`metadata.generation` past `status.observedGeneration`): only `spec.timeout` may change
//! once a session is admitted ([`frozen_change`], enforced by admission on every update), and
//! the operator re-admits the changed spec and moves the expiry ([`VDISessionStatus::readmit`]).
//!
//! The timeout is the session's whole lifetime, counted from its admission
//! (`status.timings.admitted`): raising `2h` to `4h` on a session admitted at 10:00 moves its
//! expiry from 12:00 to 14:00, whenever the change is made; lowering it to a lifetime already
//! past makes the session expire at once.

use jiff::Timestamp;

use crate::session::{DecisionRecord, VDISession, VDISessionStatus};
use crate::status::{decision_summary, expiry};

/// The one field a user may change on an admitted session.
pub const MUTABLE_AFTER_ADMISSION: &str = "spec.timeout";

/// The first field that `new` changes from `old` although it may not change after admission
/// (`spec.user`, `spec.template`, `spec.resources`, `metadata.labels`), if `old` was admitted.
/// Before admission every field may still change; labels absent and labels empty are the same.
pub fn frozen_change(old: &VDISession, new: &VDISession) -> Option<&'static str> {
    let admitted = old.status.as_ref().is_some_and(|s| s.admitted.is_some());
    if !admitted {
        return None;
    }
    let labels = |s: &VDISession| s.metadata.labels.clone().unwrap_or_default();
    if old.spec.user != new.spec.user {
        Some("spec.user")
    } else if old.spec.template != new.spec.template {
        Some("spec.template")
    } else if old.spec.resources.clone().unwrap_or_default()
        != new.spec.resources.clone().unwrap_or_default()
    {
        Some("spec.resources")
    } else if labels(old) != labels(new) {
        Some("metadata.labels")
    } else {
        None
    }
}

/// Why `field` may not change: the message admission answers with.
pub fn frozen_message(field: &str) -> String {
    format!(
        "{field}: may not change once the session is admitted; only {MUTABLE_AFTER_ADMISSION} may"
    )
}

impl VDISessionStatus {
    /// Re-admission of a changed spec (generation `generation`) allowed a lifetime of
    /// `timeout_seconds` at `now`: the settled timeout, the expiry moved to the admission time
    /// plus it (`now` stands in when the admission time is unknown), the plugins' decisions
    /// (replacing their earlier admission records; scheduler and template records stay) and
    /// the generation. Returns the new expiry; `None` means the session no longer expires.
    pub fn readmit(
        &mut self,
        timeout_seconds: u64,
        decisions: Vec<DecisionRecord>,
        generation: Option<i64>,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let since = self
            .timings
            .admitted
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(now);
        let at = expiry(since, timeout_seconds);
        self.expires_at = at.map(|t| t.to_string());
        if let Some(a) = self.admitted.as_mut() {
            a.timeout_seconds = timeout_seconds;
        }
        let summary = decision_summary(&decisions);
        for d in decisions {
            self.record_decision(d);
        }
        self.observed_generation = generation;
        self.set_condition("Admitted", true, "Allowed", &summary, &now.to_string());
        at
    }

    /// Re-admission of a changed spec (generation `generation`) was refused: the plugins'
    /// decisions are recorded and the generation counts as seen (so it is not judged again),
    /// but the session keeps its admitted values and its expiry.
    pub fn refuse_readmission(&mut self, decisions: Vec<DecisionRecord>, generation: Option<i64>) {
        for d in decisions {
            self.record_decision(d);
        }
        self.observed_generation = generation;
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use std::collections::BTreeMap;

    use super::*;
    use crate::plugin::HookKind;
    use crate::session::{
        AdmittedSpec, EffectiveResources, SessionResources, SessionUser, VDISessionSpec,
    };
    use crate::status::Outcome;

    fn now() -> Timestamp {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    fn later(secs: i64) -> Timestamp {
        now() + SignedDuration::from_secs(secs)
    }

    fn decision(hook: HookKind, plugin: &str, outcome: Outcome) -> DecisionRecord {
        DecisionRecord::new(hook, plugin, "sha256:00", outcome, "", 10)
    }

    /// A session admitted at `now()` for an hour and placed.
    fn admitted_status() -> VDISessionStatus {
        let mut s = VDISessionStatus::default();
        let admitted = AdmittedSpec {
            template: "ubuntu".into(),
            resources: EffectiveResources::default(),
            timeout_seconds: 3600,
        };
        let d = decision(HookKind::Admission, "quota", Outcome::Allowed);
        s.admit(admitted, vec![d], Some(1), now());
        let placed = decision(HookKind::Scheduler, "binpack", Outcome::Placed);
        s.place("n1", None, "fits", Some(placed), later(1));
        s
    }

    fn session(admitted: bool) -> VDISession {
        let spec = VDISessionSpec {
            user: SessionUser {
                name: "alice".into(),
                groups: vec!["staff".into()],
            },
            template: "ubuntu".into(),
            resources: None,
            timeout: Some("1h".into()),
        };
        let mut s = VDISession::new("s1", spec);
        s.status = Some(if admitted {
            admitted_status()
        } else {
            VDISessionStatus::default()
        });
        s
    }

    #[test]
    fn only_the_timeout_may_change_after_admission() {
        let old = session(true);
        let mut new = old.clone();
        new.spec.timeout = Some("4h".into());
        assert_eq!(frozen_change(&old, &new), None);
        new.metadata.labels = Some(BTreeMap::new());
        assert_eq!(
            frozen_change(&old, &new),
            None,
            "empty labels are no labels"
        );

        let changed = |f: &dyn Fn(&mut VDISession)| {
            let mut new = old.clone();
            f(&mut new);
            frozen_change(&old, &new)
        };
        assert_eq!(
            changed(&|s| s.spec.template = "fedora".into()),
            Some("spec.template")
        );
        assert_eq!(
            changed(&|s| s.spec.user.groups.push("admins".into())),
            Some("spec.user")
        );
        assert_eq!(
            changed(&|s| {
                s.spec.resources = Some(SessionResources {
                    gpu_slices: Some(1),
                    ..SessionResources::default()
                });
            }),
            Some("spec.resources")
        );
        assert_eq!(
            changed(&|s| {
                s.metadata.labels = Some(BTreeMap::from([("team".into(), "a".into())]));
            }),
            Some("metadata.labels")
        );
    }

    #[test]
    fn before_admission_anything_may_change() {
        let old = session(false);
        let mut new = old.clone();
        new.spec.template = "fedora".into();
        new.metadata.labels = Some(BTreeMap::from([("team".into(), "a".into())]));
        assert_eq!(frozen_change(&old, &new), None);
    }

    #[test]
    fn the_message_names_the_field() {
        assert_eq!(
            frozen_message("spec.template"),
            "spec.template: may not change once the session is admitted; only spec.timeout may"
        );
    }

    #[test]
    fn readmission_moves_the_expiry_from_the_admission_time() {
        let mut s = admitted_status();
        let d = decision(HookKind::Admission, "quota", Outcome::Mutated);
        let at = s.readmit(4 * 3600, vec![d], Some(2), later(1800));
        assert_eq!(at, Some(later(4 * 3600)), "admitted + the whole lifetime");
        assert_eq!(s.expires_at, Some(later(4 * 3600).to_string()));
        assert_eq!(
            s.admitted.as_ref().map(|a| a.timeout_seconds),
            Some(4 * 3600)
        );
        assert_eq!(s.observed_generation, Some(2));
        let outcomes: Vec<(&str, &str)> = s
            .decisions
            .iter()
            .map(|d| (d.plugin.as_str(), d.outcome.as_str()))
            .collect();
        assert_eq!(
            outcomes,
            [("binpack", "Placed"), ("quota", "Mutated")],
            "the new admission record replaces the old; placement stays"
        );
        assert_eq!(s.condition("Admitted").unwrap().message, "quota mutated");
    }

    #[test]
    fn a_lifetime_already_past_expires_now_and_none_never_expires() {
        let mut s = admitted_status();
        let at = s.readmit(60, Vec::new(), Some(2), later(1800));
        assert!(
            at.is_some_and(|t| t < later(1800)),
            "past: the Expire step follows"
        );
        assert_eq!(s.readmit(0, Vec::new(), Some(3), later(1800)), None);
        assert_eq!(s.expires_at, None, "no timeout: no expiry");
        let mut unknown = admitted_status();
        unknown.timings.admitted = None;
        assert_eq!(
            unknown.readmit(3600, Vec::new(), Some(2), later(10)),
            Some(later(3610)),
            "no admission time: counted from now"
        );
    }

    #[test]
    fn a_refused_readmission_keeps_the_expiry_but_sees_the_generation() {
        let mut s = admitted_status();
        let before = s.expires_at.clone();
        let d = decision(HookKind::Admission, "quota", Outcome::Denied);
        s.refuse_readmission(vec![d], Some(2));
        assert_eq!(s.expires_at, before);
        assert_eq!(s.admitted.as_ref().map(|a| a.timeout_seconds), Some(3600));
        assert_eq!(s.observed_generation, Some(2));
        assert!(s.decisions.iter().any(|d| d.outcome == "Denied"));
    }
}
