//! The session phase machine: what the operator does next for a session, as a pure function of
//! the session, the objects observed for it, and the clock.
//!
//! `Pending → Admitted → Scheduled → Provisioning → Running → Terminating → Terminated`, with
//! `Denied` and `Failed` as ends. Each step's side effect (a plugin call, an apply, a delete) is
//! the operator's; this module only decides which one is due, so every transition is tested here
//! without a cluster.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use crate::session::{SessionPhase, VDISessionStatus};

/// Container waiting reasons after which a desktop will not start without a change.
const FATAL_WAITING: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// What the operator sees of the session's desktop pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// All containers ready and the pod Running.
    pub ready: bool,
    /// Why it will never become ready: (reason, message).
    pub failure: Option<(String, String)>,
    /// Being deleted.
    pub deleting: bool,
}

impl PodView {
    /// Reads a pod's status.
    pub fn of(pod: &Pod) -> Self {
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let Some(status) = &pod.status else {
            return Self {
                ready: false,
                failure: None,
                deleting,
            };
        };
        let phase = status.phase.as_deref().unwrap_or("Pending");
        let ready = phase == "Running"
            && status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
        let containers = status.container_statuses.iter().flatten();
        let mut failure = None;
        for c in containers {
            let Some(state) = &c.state else { continue };
            if let Some(w) = &state.waiting
                && let Some(reason) = w.reason.as_deref()
                && FATAL_WAITING.contains(&reason)
            {
                let message = w.message.clone().unwrap_or_default();
                failure = Some((
                    reason.to_owned(),
                    format!("container {}: {reason} {message}", c.name)
                        .trim_end()
                        .to_owned(),
                ));
                break;
            }
            if phase == "Failed"
                && let Some(t) = &state.terminated
            {
                let reason = t.reason.clone().unwrap_or_else(|| "Error".to_owned());
                failure = Some((
                    reason.clone(),
                    format!(
                        "container {} terminated: {reason} (exit code {})",
                        c.name, t.exit_code
                    ),
                ));
                break;
            }
        }
        if failure.is_none() && matches!(phase, "Failed" | "Succeeded") {
            let reason = status
                .reason
                .clone()
                .unwrap_or_else(|| format!("Pod{phase}"));
            let message = status
                .message
                .clone()
                .unwrap_or_else(|| format!("the desktop pod is {phase}"));
            failure = Some((reason, message));
        }
        Self {
            ready,
            failure,
            deleting,
        }
    }
}

/// What the operator observed for one session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The desktop pod, if it exists.
    pub pod: Option<PodView>,
    /// How many of the session's applied objects still exist.
    pub objects_remaining: usize,
}

/// The session as the machine needs it.
#[derive(Debug, Clone, Copy)]
pub struct SessionView<'a> {
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// The operator's finalizer is on it.
    pub has_finalizer: bool,
    /// `metadata.generation`: moves on with every change of the spec.
    pub generation: Option<i64>,
    /// Its status.
    pub status: &'a VDISessionStatus,
}

/// The next thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Put the finalizer on, so nothing leaks when the session is deleted.
    AddFinalizer,
    /// Run the admission chain (→ `Admitted` or `Denied`).
    Admit,
    /// The spec changed after admission (`metadata.generation` past
    /// `status.observedGeneration`): run the admission chain again as an update and, if it
    /// allows, settle the new timeout and move the expiry (the phase stays).
    Readmit,
    /// Run the scheduler (→ `Scheduled`, or stay `Pending` and retry).
    Schedule,
    /// Render, check and apply the objects (→ `Provisioning`); also re-applies a missing pod.
    Provision,
    /// The desktop is ready (→ `Running`).
    MarkRunning,
    /// The desktop cannot run (→ `Failed`).
    MarkFailed {
        /// One CamelCase word.
        reason: String,
        /// For people.
        message: String,
    },
    /// The timeout passed: delete the session.
    Expire,
    /// Deleting: remove the objects and wait for them (→ `Terminating`).
    Cleanup,
    /// Everything is gone: record `Terminated` and remove the finalizer.
    Finish,
    /// Nothing to do now; look again after this long (or on the next event).
    Wait(Option<Duration>),
}

/// First retry of an unschedulable session when nothing wakes it sooner.
pub const UNSCHEDULABLE_RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest wait between retries of an unschedulable session.
pub const UNSCHEDULABLE_RETRY_MAX: Duration = Duration::from_secs(60);

/// When `Schedule` is due again for a session unschedulable since `since`: after half the time
/// it has waited, within [`UNSCHEDULABLE_RETRY_MIN`, `UNSCHEDULABLE_RETRY_MAX`]. Freed capacity
/// wakes it at once anyway.
pub fn unschedulable_retry(since: Option<Timestamp>, now: Timestamp) -> Duration {
    let waited = since
        .and_then(|t| Duration::try_from(now.duration_since(t)).ok())
        .unwrap_or_default();
    (waited / 2).clamp(UNSCHEDULABLE_RETRY_MIN, UNSCHEDULABLE_RETRY_MAX)
}

/// Parses an RFC 3339 time from a status field.
pub fn parse_time(text: &str) -> Option<Timestamp> {
    text.parse().ok()
}

/// Whether an admitted, still live session's spec changed since its status was written.
fn readmission_due(session: SessionView<'_>) -> bool {
    let status = session.status;
    let live = matches!(
        status.phase(),
        SessionPhase::Pending
            | SessionPhase::Admitted
            | SessionPhase::Scheduled
            | SessionPhase::Provisioning
            | SessionPhase::Running
    );
    let changed = matches!(
        (session.generation, status.observed_generation),
        (Some(generation), Some(seen)) if generation > seen
    );
    status.admitted.is_some() && live && changed
}

/// Decides the next step.
pub fn next_step(session: SessionView<'_>, observed: &Observed, now: Timestamp) -> Step {
    let status = session.status;
    if session.deleting {
        if observed.objects_remaining > 0 || observed.pod.is_some() {
            return Step::Cleanup;
        }
        return if session.has_finalizer {
            Step::Finish
        } else {
            Step::Wait(None)
        };
    }
    if !session.has_finalizer {
        return Step::AddFinalizer;
    }
    let expires = status.expires_at.as_deref().and_then(parse_time);
    if let Some(at) = expires
        && now >= at
    {
        return Step::Expire;
    }
    if readmission_due(session) {
        return Step::Readmit;
    }
    let until_expiry = expires.map(|at| {
        let left = at.duration_since(now);
        Duration::try_from(left).unwrap_or_default()
    });
    match status.phase() {
        SessionPhase::Pending if status.admitted.is_none() => Step::Admit,
        SessionPhase::Pending | SessionPhase::Admitted => Step::Schedule,
        SessionPhase::Scheduled => Step::Provision,
        SessionPhase::Provisioning => match &observed.pod {
            Some(PodView {
                failure: Some((reason, message)),
                ..
            }) => Step::MarkFailed {
                reason: reason.clone(),
                message: message.clone(),
            },
            Some(PodView { ready: true, .. }) => Step::MarkRunning,
            Some(PodView { deleting: true, .. }) => Step::Wait(until_expiry),
            Some(_) => Step::Wait(until_expiry),
            None => Step::Provision,
        },
        SessionPhase::Running => match &observed.pod {
            Some(PodView {
                failure: Some((reason, message)),
                ..
            }) => Step::MarkFailed {
                reason: reason.clone(),
                message: message.clone(),
            },
            Some(PodView {
                deleting: false, ..
            }) => Step::Wait(until_expiry),
            _ => Step::MarkFailed {
                reason: "PodDeleted".into(),
                message: "the desktop pod was removed while the session ran".into(),
            },
        },
        // Ends wait for deletion (or expiry, for sessions that were admitted).
        SessionPhase::Denied
        | SessionPhase::Failed
        | SessionPhase::Terminating
        | SessionPhase::Terminated => Step::Wait(until_expiry),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
        PodCondition, PodStatus,
    };

    use super::*;
    use crate::session::{AdmittedSpec, EffectiveResources};

    fn now() -> Timestamp {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    fn status(phase: SessionPhase) -> VDISessionStatus {
        VDISessionStatus {
            phase: Some(phase),
            admitted: (phase != SessionPhase::Pending).then(|| AdmittedSpec {
                template: "ubuntu".into(),
                resources: EffectiveResources::default(),
                timeout_seconds: 3600,
            }),
            expires_at: Some("2026-11-26T13:00:00Z".into()),
            ..VDISessionStatus::default()
        }
    }

    fn step(status: &VDISessionStatus, observed: &Observed) -> Step {
        next_step(
            SessionView {
                deleting: false,
                has_finalizer: true,
                generation: status.observed_generation,
                status,
            },
            observed,
            now(),
        )
    }

    fn pod(ready: bool) -> Observed {
        Observed {
            pod: Some(PodView {
                ready,
                failure: None,
                deleting: false,
            }),
            objects_remaining: 5,
        }
    }

    #[test]
    fn walks_the_happy_path() {
        let mut fresh = VDISessionStatus::default();
        let view = SessionView {
            deleting: false,
            has_finalizer: false,
            generation: Some(1),
            status: &fresh,
        };
        assert_eq!(
            next_step(view, &Observed::default(), now()),
            Step::AddFinalizer
        );
        assert_eq!(step(&fresh, &Observed::default()), Step::Admit);
        fresh.expires_at = None;
        let admitted = status(SessionPhase::Admitted);
        assert_eq!(step(&admitted, &Observed::default()), Step::Schedule);
        let scheduled = status(SessionPhase::Scheduled);
        assert_eq!(step(&scheduled, &Observed::default()), Step::Provision);
        let provisioning = status(SessionPhase::Provisioning);
        assert_eq!(
            step(&provisioning, &pod(false)),
            Step::Wait(Some(Duration::from_secs(3600)))
        );
        assert_eq!(step(&provisioning, &pod(true)), Step::MarkRunning);
        let running = status(SessionPhase::Running);
        assert_eq!(
            step(&running, &pod(true)),
            Step::Wait(Some(Duration::from_secs(3600))),
            "requeues for its expiry"
        );
    }

    #[test]
    fn unschedulable_retries_back_off_within_bounds() {
        let ago = |secs: i64| Some(now() - jiff::SignedDuration::from_secs(secs));
        assert_eq!(unschedulable_retry(None, now()), UNSCHEDULABLE_RETRY_MIN);
        assert_eq!(unschedulable_retry(ago(1), now()), UNSCHEDULABLE_RETRY_MIN);
        assert_eq!(unschedulable_retry(ago(20), now()), Duration::from_secs(10));
        assert_eq!(
            unschedulable_retry(ago(3600), now()),
            UNSCHEDULABLE_RETRY_MAX
        );
    }

    #[test]
    fn unschedulable_sessions_stay_pending_and_retry_scheduling() {
        let mut s = status(SessionPhase::Pending);
        s.admitted = Some(AdmittedSpec {
            template: "ubuntu".into(),
            resources: EffectiveResources::default(),
            timeout_seconds: 60,
        });
        assert_eq!(step(&s, &Observed::default()), Step::Schedule);
    }

    #[test]
    fn a_missing_pod_while_provisioning_is_applied_again() {
        let s = status(SessionPhase::Provisioning);
        assert_eq!(step(&s, &Observed::default()), Step::Provision);
    }

    #[test]
    fn pod_failures_fail_the_session_with_their_reason() {
        for s in [
            status(SessionPhase::Provisioning),
            status(SessionPhase::Running),
        ] {
            let observed = Observed {
                pod: Some(PodView {
                    ready: false,
                    failure: Some(("OOMKilled".into(), "container desktop terminated".into())),
                    deleting: false,
                }),
                objects_remaining: 5,
            };
            assert_eq!(
                step(&s, &observed),
                Step::MarkFailed {
                    reason: "OOMKilled".into(),
                    message: "container desktop terminated".into()
                }
            );
        }
        assert!(matches!(
            step(&status(SessionPhase::Running), &Observed::default()),
            Step::MarkFailed { reason, .. } if reason == "PodDeleted"
        ));
    }

    #[test]
    fn expiry_comes_before_anything_but_deletion() {
        let mut s = status(SessionPhase::Running);
        s.expires_at = Some("2026-11-26T11:59:59Z".into());
        assert_eq!(step(&s, &pod(true)), Step::Expire);
        let deleting = SessionView {
            deleting: true,
            has_finalizer: true,
            generation: None,
            status: &s,
        };
        assert_eq!(next_step(deleting, &pod(true), now()), Step::Cleanup);
    }

    #[test]
    fn deletion_cleans_up_then_finishes() {
        let s = status(SessionPhase::Running);
        let view = SessionView {
            deleting: true,
            has_finalizer: true,
            generation: None,
            status: &s,
        };
        assert_eq!(next_step(view, &pod(true), now()), Step::Cleanup);
        let gone = Observed::default();
        assert_eq!(next_step(view, &gone, now()), Step::Finish);
        let without = SessionView {
            has_finalizer: false,
            ..view
        };
        assert_eq!(next_step(without, &gone, now()), Step::Wait(None));
    }

    /// `status` (observed generation 1) under a spec of `generation`.
    fn step_at_generation(
        status: &mut VDISessionStatus,
        generation: i64,
        observed: &Observed,
    ) -> Step {
        status.observed_generation = Some(1);
        let view = SessionView {
            deleting: false,
            has_finalizer: true,
            generation: Some(generation),
            status,
        };
        next_step(view, observed, now())
    }

    #[test]
    fn an_unchanged_spec_needs_no_readmission() {
        let mut s = status(SessionPhase::Running);
        assert_eq!(
            step_at_generation(&mut s, 1, &pod(true)),
            Step::Wait(Some(Duration::from_secs(3600)))
        );
    }

    #[test]
    fn a_spec_changed_after_admission_is_readmitted() {
        for (phase, observed) in [
            (SessionPhase::Admitted, Observed::default()),
            (SessionPhase::Scheduled, Observed::default()),
            (SessionPhase::Provisioning, pod(false)),
            (SessionPhase::Running, pod(true)),
        ] {
            let mut s = status(phase);
            assert_eq!(
                step_at_generation(&mut s, 2, &observed),
                Step::Readmit,
                "{phase:?}"
            );
        }
        let mut waiting = status(SessionPhase::Pending);
        assert!(waiting.admitted.is_none());
        assert_eq!(
            step_at_generation(&mut waiting, 2, &Observed::default()),
            Step::Admit,
            "not admitted yet: the first admission reads the newest spec anyway"
        );
    }

    #[test]
    fn ends_and_deletion_are_not_readmitted() {
        for phase in [
            SessionPhase::Terminating,
            SessionPhase::Failed,
            SessionPhase::Denied,
            SessionPhase::Terminated,
        ] {
            let mut s = status(phase);
            assert!(
                !matches!(step_at_generation(&mut s, 2, &pod(false)), Step::Readmit),
                "{phase:?}"
            );
        }
        let mut s = status(SessionPhase::Running);
        s.observed_generation = Some(1);
        let deleting = SessionView {
            deleting: true,
            has_finalizer: true,
            generation: Some(2),
            status: &s,
        };
        assert_eq!(next_step(deleting, &pod(true), now()), Step::Cleanup);
    }

    #[test]
    fn expiry_comes_before_readmission() {
        let mut s = status(SessionPhase::Running);
        s.expires_at = Some("2026-11-26T11:59:59Z".into());
        assert_eq!(step_at_generation(&mut s, 2, &pod(true)), Step::Expire);
    }

    #[test]
    fn ends_only_wait() {
        for phase in [SessionPhase::Denied, SessionPhase::Failed] {
            let mut s = status(phase);
            s.expires_at = None;
            assert_eq!(step(&s, &pod(false)), Step::Wait(None));
        }
    }

    fn pod_with(phase: &str, ready: bool, state: ContainerState) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                container_statuses: Some(vec![ContainerStatus {
                    name: "desktop".into(),
                    state: Some(state),
                    ..ContainerStatus::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn pod_view_reads_readiness_and_failures() {
        let running = pod_with("Running", true, ContainerState::default());
        assert!(PodView::of(&running).ready);
        let pulling = pod_with(
            "Pending",
            false,
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("ImagePullBackOff".into()),
                    message: Some("no such image".into()),
                }),
                ..ContainerState::default()
            },
        );
        let v = PodView::of(&pulling);
        assert_eq!(v.failure.unwrap().0, "ImagePullBackOff");
        let creating = pod_with(
            "Pending",
            false,
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("ContainerCreating".into()),
                    message: None,
                }),
                ..ContainerState::default()
            },
        );
        assert_eq!(PodView::of(&creating).failure, None, "still starting");
        let oom = pod_with(
            "Failed",
            false,
            ContainerState {
                terminated: Some(ContainerStateTerminated {
                    reason: Some("OOMKilled".into()),
                    exit_code: 137,
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            },
        );
        let (reason, message) = PodView::of(&oom).failure.unwrap();
        assert_eq!(reason, "OOMKilled");
        assert!(message.contains("exit code 137"), "{message}");
    }
}
