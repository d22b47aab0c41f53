//! The session's status after each outcome of a step, as pure transitions: the operator performs
//! the step ([`crate::phase::next_step`] says which), then asks this module what the status
//! becomes and writes it. Nothing here reads a clock or the cluster: `now` is an argument.
//!
//! The decision records keep their fields as strings (the stored form, which clients and the
//! CRD schema read); [`DecisionRecord::new`] takes enums, so the operator cannot spell one wrong.

use jiff::{SignedDuration, Timestamp};

use crate::plugin::HookKind;
use crate::session::{
    AdmittedSpec, DecisionRecord, ObjectRecord, SessionPhase, VDISessionStatus, set_once,
};

/// What a plugin decided, as recorded in `status.decisions[].outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Admission: allowed unchanged.
    Allowed,
    /// Admission: allowed with a changed spec.
    Mutated,
    /// Admission: refused.
    Denied,
    /// Admission: the plugin failed and was skipped (`failurePolicy: Ignore`).
    Skipped,
    /// Any hook: the plugin failed.
    Failed,
    /// Scheduler: placed on a node.
    Placed,
    /// Scheduler: fits nowhere now.
    Unschedulable,
    /// Template: rendered the session's objects.
    Rendered,
}

impl Outcome {
    /// Its name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "Allowed",
            Self::Mutated => "Mutated",
            Self::Denied => "Denied",
            Self::Skipped => "Skipped",
            Self::Failed => "Failed",
            Self::Placed => "Placed",
            Self::Unschedulable => "Unschedulable",
            Self::Rendered => "Rendered",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DecisionRecord {
    /// One plugin decision: `hook` and `outcome` are stored by their names (`admission`,
    /// `Allowed`, ...); `message` is the plugin's reason or the error, empty when there is none.
    pub fn new(
        hook: HookKind,
        plugin: impl Into<String>,
        digest: impl Into<String>,
        outcome: Outcome,
        message: impl Into<String>,
        latency_micros: u64,
    ) -> Self {
        Self {
            hook: hook.as_str().to_owned(),
            plugin: plugin.into(),
            digest: digest.into(),
            outcome: outcome.as_str().to_owned(),
            message: message.into(),
            latency_micros,
        }
    }
}

/// `decisions` in a few words for the `Admitted` condition: `quota allowed, clamp mutated`.
pub fn decision_summary(decisions: &[DecisionRecord]) -> String {
    if decisions.is_empty() {
        return "no admission plugin judged it".into();
    }
    decisions
        .iter()
        .map(|d| format!("{} {}", d.plugin, d.outcome.to_lowercase()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// When a session admitted `now` with a lifetime of `timeout_seconds` expires; `None` for no
/// timeout, and for one so long the time is not representable (such a session never expires).
pub(crate) fn expiry(now: Timestamp, timeout_seconds: u64) -> Option<Timestamp> {
    if timeout_seconds == 0 {
        return None;
    }
    let secs = i64::try_from(timeout_seconds).ok()?;
    now.checked_add(SignedDuration::from_secs(secs)).ok()
}

impl VDISessionStatus {
    /// Records a decision: one record per hook and plugin, a retry replaces the earlier one.
    pub fn record_decision(&mut self, d: DecisionRecord) {
        self.decisions
            .retain(|x| !(x.hook == d.hook && x.plugin == d.plugin));
        self.decisions.push(d);
    }

    /// Admission allowed the session (spec generation `generation`) at `now`: `Admitted`, with
    /// the settled values, the expiry they imply and every plugin's decision.
    pub fn admit(
        &mut self,
        admitted: AdmittedSpec,
        decisions: Vec<DecisionRecord>,
        generation: Option<i64>,
        now: Timestamp,
    ) {
        self.phase = Some(SessionPhase::Admitted);
        if let Some(at) = expiry(now, admitted.timeout_seconds) {
            self.expires_at = Some(at.to_string());
        }
        let summary = decision_summary(&decisions);
        self.admitted = Some(admitted);
        self.decisions = decisions;
        self.observed_generation = generation;
        self.message = Some(format!("admitted ({summary})"));
        let now = now.to_string();
        set_once(&mut self.timings.admitted, &now);
        self.set_condition("Admitted", true, "Allowed", &summary, &now);
    }

    /// Admission refused the session: `Denied` with `reason` (one CamelCase word) and `message`.
    pub fn deny(
        &mut self,
        reason: &str,
        message: &str,
        decisions: Vec<DecisionRecord>,
        generation: Option<i64>,
        now: Timestamp,
    ) {
        self.phase = Some(SessionPhase::Denied);
        self.reason = Some(reason.to_owned());
        self.message = Some(message.to_owned());
        self.decisions = decisions;
        self.observed_generation = generation;
        self.set_condition("Admitted", false, reason, message, &now.to_string());
    }

    /// The scheduler placed the session on `node` (and GPU `gpu`) for `reason`: `Scheduled`.
    /// Returns the message it recorded (for the event).
    pub fn place(
        &mut self,
        node: &str,
        gpu: Option<u32>,
        reason: &str,
        decision: Option<DecisionRecord>,
        now: Timestamp,
    ) -> String {
        self.phase = Some(SessionPhase::Scheduled);
        self.node = Some(node.to_owned());
        self.gpu = gpu;
        let gpu = gpu.map_or_else(|| "no GPU".to_owned(), |g| format!("GPU {g}"));
        let message = format!("placed on {node} {gpu}: {reason}");
        self.message = Some(message.clone());
        let now = now.to_string();
        set_once(&mut self.timings.placed, &now);
        self.set_condition("Scheduled", true, "Placed", &message, &now);
        if let Some(d) = decision {
            self.record_decision(d);
        }
        message
    }

    /// The session could not be placed (`reason`: `Unschedulable`, `SchedulerUnavailable`): it
    /// stays `Pending` with condition `Scheduled=False`. Returns whether the status changed;
    /// the same reason and message again change nothing (so they need no write).
    pub fn wait_for_capacity(
        &mut self,
        reason: &str,
        message: &str,
        decision: Option<DecisionRecord>,
        now: Timestamp,
    ) -> bool {
        let changed = self
            .condition("Scheduled")
            .is_none_or(|c| c.reason != reason || c.message != message);
        if changed {
            self.phase = Some(SessionPhase::Pending);
            self.message = Some(format!("waiting for capacity: {message}"));
            self.set_condition("Scheduled", false, reason, message, &now.to_string());
            if let Some(d) = decision {
                self.record_decision(d);
            }
        }
        changed
    }

    /// Since when the session has been waiting for a place (the `Scheduled` condition's last
    /// transition), if it has.
    pub fn waiting_since(&self) -> Option<Timestamp> {
        self.condition("Scheduled")
            .and_then(|c| c.last_transition_time.parse().ok())
    }

    /// The session's objects were rendered (`decision`) and applied: `Provisioning`, reachable
    /// at `url` once the desktop is ready.
    pub fn provision(
        &mut self,
        url: String,
        objects: Vec<ObjectRecord>,
        decision: DecisionRecord,
        now: Timestamp,
    ) {
        let count = objects.len();
        self.phase = Some(SessionPhase::Provisioning);
        self.url = Some(url);
        self.objects = objects;
        self.record_decision(decision);
        self.message = Some(format!("{count} objects applied; waiting for the desktop"));
        let now = now.to_string();
        set_once(&mut self.timings.objects_applied, &now);
        self.set_condition(
            "Provisioned",
            true,
            "Applied",
            &format!("{count} objects applied"),
            &now,
        );
    }

    /// The desktop pod is ready: `Running` since `now`; the pod's `Ready` condition says it
    /// became ready at `ready_at` (else `now` counts).
    pub fn run(&mut self, now: Timestamp, ready_at: Option<Timestamp>) {
        set_once(
            &mut self.timings.pod_ready,
            &ready_at.unwrap_or(now).to_string(),
        );
        let now = now.to_string();
        self.phase = Some(SessionPhase::Running);
        self.started_at = Some(now.clone());
        self.message = Some("the desktop is ready".into());
        self.set_condition(
            "Ready",
            true,
            "DesktopReady",
            "the desktop pod is ready",
            &now,
        );
    }

    /// The streamer reported its first frame at `at`. Returns whether the status changed (the
    /// first report only).
    pub fn first_frame(&mut self, at: Timestamp) -> bool {
        set_once(&mut self.timings.first_frame, &at.to_string())
    }

    /// When the desktop became ready: the pod's time, else when the session went `Running`.
    pub fn ready_at(&self) -> Option<Timestamp> {
        self.timings
            .pod_ready
            .as_deref()
            .or(self.started_at.as_deref())
            .and_then(|t| t.parse().ok())
    }

    /// The session cannot run: `Failed` with `reason` (one CamelCase word) and `message`, and
    /// the decision of the plugin that failed it, if one did.
    pub fn fail(
        &mut self,
        reason: &str,
        message: &str,
        decision: Option<DecisionRecord>,
        now: Timestamp,
    ) {
        if let Some(d) = decision {
            self.record_decision(d);
        }
        self.phase = Some(SessionPhase::Failed);
        self.reason = Some(reason.to_owned());
        self.message = Some(message.to_owned());
        self.set_condition("Ready", false, reason, message, &now.to_string());
    }

    /// The session is being deleted: `Terminating`. Returns whether the status changed.
    pub fn terminate(&mut self) -> bool {
        if self.phase() == SessionPhase::Terminating {
            return false;
        }
        self.phase = Some(SessionPhase::Terminating);
        self.message = Some("removing the session's objects".into());
        true
    }

    /// Every object is gone: `Terminated`.
    pub fn finish(&mut self) {
        self.phase = Some(SessionPhase::Terminated);
        self.message = Some("all objects removed".into());
    }

    /// The applied objects that are pods (a failed session's pods are deleted to free their
    /// slots; the rest is kept for inspection).
    pub fn pods(&self) -> Vec<ObjectRecord> {
        self.objects
            .iter()
            .filter(|o| o.kind == "Pod")
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::EffectiveResources;

    fn now() -> Timestamp {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    fn later(secs: i64) -> Timestamp {
        now() + SignedDuration::from_secs(secs)
    }

    fn admitted(timeout_seconds: u64) -> AdmittedSpec {
        AdmittedSpec {
            template: "ubuntu".into(),
            resources: EffectiveResources::default(),
            timeout_seconds,
        }
    }

    fn decision(hook: HookKind, plugin: &str, outcome: Outcome) -> DecisionRecord {
        DecisionRecord::new(hook, plugin, "sha256:00", outcome, "", 10)
    }

    /// A status `Admitted` at `now()` with a one-hour timeout.
    fn admitted_status() -> VDISessionStatus {
        let mut s = VDISessionStatus::default();
        let d = decision(HookKind::Admission, "quota", Outcome::Allowed);
        s.admit(admitted(3600), vec![d], Some(1), now());
        s
    }

    /// A status placed on node `n1`, GPU 0.
    fn scheduled_status() -> VDISessionStatus {
        let mut s = admitted_status();
        s.place("n1", Some(0), "fits", None, now());
        s
    }

    fn pod(name: &str) -> ObjectRecord {
        ObjectRecord {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: name.into(),
        }
    }

    #[test]
    fn decision_records_store_hooks_and_outcomes_by_their_names() {
        let d = DecisionRecord::new(
            HookKind::Scheduler,
            "binpack",
            "sha256:ab",
            Outcome::Unschedulable,
            "full",
            7,
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"hook": "scheduler", "plugin": "binpack", "digest": "sha256:ab",
                "outcome": "Unschedulable", "message": "full", "latencyMicros": 7})
        );
        let names: Vec<&str> = [HookKind::Admission, HookKind::Template]
            .map(HookKind::as_str)
            .to_vec();
        assert_eq!(names, ["admission", "template"]);
        let silent = decision(HookKind::Template, "desktop", Outcome::Rendered);
        assert!(
            !serde_json::to_string(&silent).unwrap().contains("message"),
            "an empty message is not stored"
        );
    }

    #[test]
    fn admission_sets_the_values_the_expiry_and_the_condition() {
        let s = admitted_status();
        assert_eq!(s.phase(), SessionPhase::Admitted);
        assert_eq!(s.admitted, Some(admitted(3600)));
        assert_eq!(s.expires_at, Some(later(3600).to_string()));
        assert_eq!(s.observed_generation, Some(1));
        assert_eq!(s.message.as_deref(), Some("admitted (quota allowed)"));
        let c = s.condition("Admitted").unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
            ("True", "Allowed", "quota allowed")
        );
        let mut none = VDISessionStatus::default();
        none.admit(admitted(0), Vec::new(), None, now());
        assert_eq!(none.expires_at, None, "no timeout, no expiry");
        assert_eq!(
            none.message.as_deref(),
            Some("admitted (no admission plugin judged it)")
        );
        let mut huge = VDISessionStatus::default();
        huge.admit(admitted(u64::MAX), Vec::new(), None, now());
        assert_eq!(huge.expires_at, None, "an unrepresentable expiry is none");
    }

    #[test]
    fn denial_records_the_reason_and_the_decisions() {
        let mut s = VDISessionStatus::default();
        let d = decision(HookKind::Admission, "quota", Outcome::Denied);
        s.deny(
            "AdmissionDenied",
            "denied by plugin quota: too many",
            vec![d.clone()],
            Some(2),
            now(),
        );
        assert_eq!(s.phase(), SessionPhase::Denied);
        assert_eq!(s.reason.as_deref(), Some("AdmissionDenied"));
        assert_eq!(s.decisions, [d]);
        assert_eq!(s.observed_generation, Some(2));
        let c = s.condition("Admitted").unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "AdmissionDenied")
        );
    }

    #[test]
    fn placement_records_node_gpu_and_message() {
        let mut s = admitted_status();
        let d = decision(HookKind::Scheduler, "binpack", Outcome::Placed);
        let message = s.place("n1", Some(3), "least loaded", Some(d), now());
        assert_eq!(message, "placed on n1 GPU 3: least loaded");
        assert_eq!(s.phase(), SessionPhase::Scheduled);
        assert_eq!((s.node.as_deref(), s.gpu), (Some("n1"), Some(3)));
        assert_eq!(s.decisions.len(), 2, "the admission decision stays");
        let c = s.condition("Scheduled").unwrap();
        assert_eq!(
            (c.status.as_str(), c.message.as_str()),
            ("True", message.as_str())
        );
        let mut cpu = admitted_status();
        assert_eq!(
            cpu.place("n2", None, "cpu only", None, now()),
            "placed on n2 no GPU: cpu only"
        );
    }

    #[test]
    fn waiting_changes_the_status_only_when_the_reason_changes() {
        let mut s = admitted_status();
        let d = decision(HookKind::Scheduler, "binpack", Outcome::Unschedulable);
        assert!(s.wait_for_capacity("Unschedulable", "full", Some(d.clone()), now()));
        assert_eq!(s.phase(), SessionPhase::Pending);
        assert_eq!(s.message.as_deref(), Some("waiting for capacity: full"));
        assert_eq!(s.waiting_since(), Some(now()));
        assert!(
            !s.wait_for_capacity("Unschedulable", "full", Some(d.clone()), later(5)),
            "the same answer again writes nothing"
        );
        assert!(s.wait_for_capacity("Unschedulable", "still full", Some(d), later(5)));
        assert_eq!(
            s.waiting_since(),
            Some(now()),
            "still waiting since the first"
        );
        let scheduler_decisions = s.decisions.iter().filter(|d| d.hook == "scheduler");
        assert_eq!(
            scheduler_decisions.count(),
            1,
            "a retry replaces the record"
        );
        assert!(s.wait_for_capacity("SchedulerUnavailable", "still full", None, later(6)));
        assert_eq!(
            s.condition("Scheduled").unwrap().reason,
            "SchedulerUnavailable"
        );
        assert_eq!(admitted_status().waiting_since(), None);
    }

    #[test]
    fn provisioning_running_and_failing() {
        let mut s = scheduled_status();
        let d = decision(HookKind::Template, "desktop", Outcome::Rendered);
        let objects = vec![pod("desktop"), pod("sidecar")];
        s.provision("https://vdi/s/".into(), objects, d, now());
        assert_eq!(s.phase(), SessionPhase::Provisioning);
        assert_eq!(s.url.as_deref(), Some("https://vdi/s/"));
        assert_eq!(
            s.message.as_deref(),
            Some("2 objects applied; waiting for the desktop")
        );
        assert_eq!(
            s.condition("Provisioned").unwrap().message,
            "2 objects applied"
        );
        s.run(later(30), Some(later(25)));
        assert_eq!(s.phase(), SessionPhase::Running);
        assert_eq!(s.started_at, Some(later(30).to_string()));
        let t = &s.timings;
        assert_eq!(t.admitted.as_deref(), Some(now().to_string().as_str()));
        assert_eq!(t.placed, t.admitted);
        assert_eq!(t.objects_applied, t.admitted);
        assert_eq!(
            t.pod_ready,
            Some(later(25).to_string()),
            "the pod's own time"
        );
        assert_eq!(s.ready_at(), Some(later(25)));
        assert!(s.first_frame(later(27)));
        assert!(!s.first_frame(later(40)), "set once");
        assert_eq!(s.timings.first_frame, Some(later(27).to_string()));
        s.place("n2", None, "again", None, later(50));
        assert_eq!(s.timings.placed, Some(now().to_string()), "set once");
        assert_eq!(s.condition("Ready").unwrap().status, "True");
        s.fail("OOMKilled", "container desktop terminated", None, later(60));
        assert_eq!(s.phase(), SessionPhase::Failed);
        assert_eq!(s.reason.as_deref(), Some("OOMKilled"));
        let c = s.condition("Ready").unwrap();
        assert_eq!(
            (c.status.as_str(), c.last_transition_time.clone()),
            ("False", later(60).to_string())
        );
        assert_eq!(s.pods().len(), 2);
    }

    #[test]
    fn a_failed_render_keeps_its_decision() {
        let mut s = scheduled_status();
        let d = decision(HookKind::Template, "desktop", Outcome::Failed);
        s.fail(
            "RenderFailed",
            "template plugin desktop: trap",
            Some(d),
            now(),
        );
        assert_eq!(s.phase(), SessionPhase::Failed);
        assert!(
            s.decisions
                .iter()
                .any(|d| d.hook == "template" && d.outcome == "Failed")
        );
    }

    #[test]
    fn termination_is_recorded_once_then_finishes() {
        let mut s = scheduled_status();
        assert!(s.terminate());
        assert_eq!(s.phase(), SessionPhase::Terminating);
        assert!(!s.terminate(), "already terminating: nothing to write");
        s.finish();
        assert_eq!(s.phase(), SessionPhase::Terminated);
        assert_eq!(s.message.as_deref(), Some("all objects removed"));
    }
}
