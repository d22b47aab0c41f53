//! The session controller: drives each `VDISession` through the phase machine of `vdi-crd`,
//! performing the side effect of each step (plugin calls, applies, deletes) and recording it in
//! the session's status and Events.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource as _, ResourceExt as _};
use serde_json::json;
use tokio::sync::mpsc;
use vdi_crd::phase::{Observed, PodView, SessionView, Step, next_step};
use vdi_crd::{
    DecisionRecord, ObjectRecord, SESSION_FINALIZER, SessionPhase, VDISession, VDISessionStatus,
    VDITemplate,
};
use vdi_plugin_host::RenderPolicy;

use crate::admission::{AdmissionSources, Review, admitted_request, labels_of};
use crate::metrics::OperatorMetrics;
use crate::objects::{ProvisionError, delete_objects, get_owned, provision};
use crate::registry::Registry;
use crate::scheduler::{Placement, Scheduler};

/// First retry of an unschedulable session when nothing wakes it sooner.
pub const UNSCHEDULABLE_RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest wait between retries of an unschedulable session.
pub const UNSCHEDULABLE_RETRY_MAX: Duration = Duration::from_secs(60);

/// Backoff for a session unschedulable since `since`: half the time it has waited, within
/// [`UNSCHEDULABLE_RETRY_MIN`, `UNSCHEDULABLE_RETRY_MAX`]. Freed capacity wakes it at once anyway.
pub fn unschedulable_retry(since: Option<Timestamp>, now: Timestamp) -> Duration {
    let waited = since
        .and_then(|t| Duration::try_from(now.duration_since(t)).ok())
        .unwrap_or_default();
    (waited / 2).clamp(UNSCHEDULABLE_RETRY_MIN, UNSCHEDULABLE_RETRY_MAX)
}
/// How often a terminating session checks its objects are gone.
pub const CLEANUP_POLL: Duration = Duration::from_secs(1);

/// Errors that make a reconcile retry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused or failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Something else went wrong (said how).
    #[error("{0}")]
    Other(String),
}

/// Settings of the session controller.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// URL of a running session; `{namespace}` and `{name}` are replaced.
    pub url_template: String,
    /// What rendered objects must respect.
    pub render_policy: RenderPolicy,
}

/// Everything a reconcile needs.
pub struct Context {
    pub(crate) client: Client,
    pub(crate) registry: Arc<Registry>,
    pub(crate) scheduler: Scheduler,
    pub(crate) sessions: Store<VDISession>,
    pub(crate) templates: Store<VDITemplate>,
    pub(crate) recorder: Recorder,
    pub(crate) metrics: Arc<OperatorMetrics>,
    pub(crate) settings: SessionSettings,
    pub(crate) kinds: Mutex<HashMap<(String, String), ApiResource>>,
    pub(crate) waiting: Mutex<HashSet<ObjectRef<VDISession>>>,
    /// The resourceVersion of our last write per session uid, until the cache shows it.
    pub(crate) written: Mutex<HashMap<String, u64>>,
    pub(crate) wake: mpsc::UnboundedSender<()>,
}

/// Admission reads templates and the user's sessions from the operator's caches.
pub(crate) struct CachedSources<'a> {
    pub(crate) sessions: &'a Store<VDISession>,
    pub(crate) templates: &'a Store<VDITemplate>,
}

impl AdmissionSources for CachedSources<'_> {
    fn template(&self, name: &str) -> Option<vdi_crd::VDITemplateSpec> {
        self.templates
            .get(&ObjectRef::new(name))
            .map(|t| t.spec.clone())
    }

    fn sessions_of(
        &self,
        user: &str,
    ) -> Vec<(String, String, vdi_crd::VDISessionSpec, SessionPhase)> {
        self.sessions
            .state()
            .iter()
            .filter(|s| s.spec.user.name == user && s.metadata.deletion_timestamp.is_none())
            .map(|s| {
                (
                    s.namespace().unwrap_or_default(),
                    s.name_any(),
                    s.spec.clone(),
                    s.status.as_ref().map(|st| st.phase()).unwrap_or_default(),
                )
            })
            .collect()
    }
}

impl Context {
    /// Whether the cached version `rv` of session `uid` is older than our last write to it.
    /// resourceVersions are opaque to clients in general; where they are not numbers (they are
    /// on etcd and the embedded control plane) this says no and optimistic concurrency guards.
    fn cache_is_behind(&self, uid: &str, rv: &str) -> bool {
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (Some(last), Ok(cached)) = (written.get(uid).copied(), rv.parse::<u64>()) else {
            return false;
        };
        if cached >= last {
            written.remove(uid);
            return false;
        }
        true
    }

    fn wrote(&self, uid: &str, rv: &str) {
        if let Ok(rv) = rv.parse::<u64>() {
            self.written
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(uid.to_owned(), rv);
        }
    }

    /// Wakes the sessions waiting for capacity or for a scheduler (by reconciling all: a
    /// reconcile of a session with nothing to do costs no API call).
    pub(crate) fn wake_waiting(&self) {
        let mut waiting = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !waiting.is_empty() {
            waiting.clear();
            let _ = self.wake.send(());
        }
    }

    async fn event(
        &self,
        session: &VDISession,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &session.object_ref(&())).await {
            tracing::debug!(error = %e, "event not published");
        }
    }
}

fn now_string() -> String {
    Timestamp::now().to_string()
}

/// The reconcile loop's entry point.
pub async fn reconcile(session: Arc<VDISession>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&session, &ctx).await;
    ctx.metrics
        .observe_reconcile(started.elapsed(), result.is_err());
    result
}

/// What to do after a failed reconcile.
pub fn error_policy(session: Arc<VDISession>, error: &Error, _ctx: Arc<Context>) -> Action {
    if let Error::Kube(kube::Error::Api(e)) = error
        && e.code == 409
    {
        // The cache was behind our own writes: look again once it has caught up.
        tracing::debug!(session = %session.name_any(), "stale read; retrying");
        return Action::requeue(Duration::from_millis(50));
    }
    tracing::warn!(session = %session.name_any(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(1))
}

#[tracing::instrument(skip_all, fields(session = %format!("{}/{}", session.namespace().unwrap_or_default(), session.name_any())))]
async fn reconcile_inner(session: &VDISession, ctx: &Context) -> Result<Action, Error> {
    let ns = session.namespace().unwrap_or_default();
    let name = session.name_any();
    let api: Api<VDISession> = Api::namespaced(ctx.client.clone(), &ns);
    let mut status = session.status.clone().unwrap_or_default();
    let mut rv = session.resource_version().unwrap_or_default();
    let uid = session.uid().unwrap_or_default();
    if ctx.cache_is_behind(&uid, &rv) {
        // Acting on an older version would redo steps (and their writes) already done.
        tracing::trace!("cache behind our last write; looking again shortly");
        return Ok(Action::requeue(Duration::from_millis(20)));
    }
    let mut has_finalizer = session.finalizers().iter().any(|f| f == SESSION_FINALIZER);
    let deleting = session.metadata.deletion_timestamp.is_some();
    for _ in 0..8 {
        let observed = observe(ctx, session, &status, deleting).await?;
        let view = SessionView {
            deleting,
            has_finalizer,
            status: &status,
        };
        let step = next_step(view, &observed, Timestamp::now());
        tracing::debug!(?step, phase = status.phase().as_str(), "step");
        let before = status.phase();
        match step {
            Step::AddFinalizer => {
                let mut finalizers = session.finalizers().to_vec();
                finalizers.push(SESSION_FINALIZER.to_owned());
                rv = set_finalizers(&api, session, finalizers).await?;
                ctx.wrote(&uid, &rv);
                has_finalizer = true;
            }
            Step::Admit => {
                let set = ctx.registry.current();
                let (sessions, templates) = (ctx.sessions.clone(), ctx.templates.clone());
                let (spec, labels) = (
                    session.spec.clone(),
                    labels_of(session.metadata.labels.as_ref()),
                );
                let (n, namespace) = (name.clone(), ns.clone());
                let budget = crate::calls::admission_budget(&set);
                let review = crate::calls::on_pool(&ctx.registry, budget, move || {
                    let sources = CachedSources {
                        sessions: &sessions,
                        templates: &templates,
                    };
                    crate::admission::review(&set, &sources, true, &n, &namespace, &spec, labels)
                })
                .await?;
                let now = now_string();
                match review {
                    Review::Allowed {
                        admitted,
                        decisions,
                        ..
                    } => {
                        status.phase = Some(SessionPhase::Admitted);
                        if admitted.timeout_seconds > 0 {
                            let at =
                                Timestamp::now() + Duration::from_secs(admitted.timeout_seconds);
                            status.expires_at = Some(at.to_string());
                        }
                        let summary = decision_summary(&decisions);
                        status.admitted = Some(admitted);
                        status.decisions = decisions;
                        status.observed_generation = session.metadata.generation;
                        status.message = Some(format!("admitted ({summary})"));
                        status.set_condition("Admitted", true, "Allowed", &summary, &now);
                        // Not written on its own: the placement that follows at once writes
                        // both (and a restart before it simply admits again).
                    }
                    Review::Denied {
                        reason,
                        message,
                        decisions,
                    } => {
                        status.phase = Some(SessionPhase::Denied);
                        status.reason = Some(reason.clone());
                        status.message = Some(message.clone());
                        status.decisions = decisions;
                        status.observed_generation = session.metadata.generation;
                        status.set_condition("Admitted", false, &reason, &message, &now);
                        write_status(ctx, &api, &name, &mut rv, before, &status).await?;
                        ctx.event(session, true, &reason, "Admit", message).await;
                        return Ok(Action::await_change());
                    }
                }
            }
            Step::Schedule => {
                if let Some(action) = schedule(ctx, session, &api, &mut rv, &mut status).await? {
                    return Ok(action);
                }
            }
            Step::Provision => match provision(ctx, session, &status).await {
                Ok((objects, decision)) => {
                    status.phase = Some(SessionPhase::Provisioning);
                    status.url = Some(
                        ctx.settings
                            .url_template
                            .replace("{namespace}", &ns)
                            .replace("{name}", &name),
                    );
                    let count = objects.len();
                    status.objects = objects;
                    push_decision(&mut status, decision);
                    status.message =
                        Some(format!("{count} objects applied; waiting for the desktop"));
                    status.set_condition(
                        "Provisioned",
                        true,
                        "Applied",
                        &format!("{count} objects applied"),
                        &now_string(),
                    );
                    write_status(ctx, &api, &name, &mut rv, before, &status).await?;
                    return Ok(Action::await_change());
                }
                Err(ProvisionError::Fatal {
                    reason,
                    message,
                    decision,
                }) => {
                    if let Some(d) = decision {
                        push_decision(&mut status, d);
                    }
                    fail(ctx, session, &api, &mut rv, &mut status, reason, &message).await?;
                    return Ok(Action::await_change());
                }
                Err(ProvisionError::Api(e)) => return Err(e),
            },
            Step::MarkRunning => {
                let now = now_string();
                status.phase = Some(SessionPhase::Running);
                status.started_at = Some(now.clone());
                status.message = Some("the desktop is ready".into());
                status.set_condition(
                    "Ready",
                    true,
                    "DesktopReady",
                    "the desktop pod is ready",
                    &now,
                );
                write_status(ctx, &api, &name, &mut rv, before, &status).await?;
                if let Some(created) = &session.metadata.creation_timestamp {
                    let secs = Timestamp::now().duration_since(created.0).as_secs_f64();
                    ctx.metrics.observe_startup(secs.max(0.0));
                }
                ctx.event(
                    session,
                    false,
                    "Running",
                    "Start",
                    format!(
                        "desktop ready at {}",
                        status.url.clone().unwrap_or_default()
                    ),
                )
                .await;
            }
            Step::MarkFailed { reason, message } => {
                fail(ctx, session, &api, &mut rv, &mut status, &reason, &message).await?;
                return Ok(Action::await_change());
            }
            Step::Expire => {
                ctx.event(
                    session,
                    false,
                    "Expired",
                    "Expire",
                    "the session's timeout passed".into(),
                )
                .await;
                match api.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
                return Ok(Action::await_change());
            }
            Step::Cleanup => {
                if status.phase() != SessionPhase::Terminating {
                    status.phase = Some(SessionPhase::Terminating);
                    status.message = Some("removing the session's objects".into());
                    write_status(ctx, &api, &name, &mut rv, before, &status).await?;
                }
                delete_objects(ctx, session, &status.objects).await?;
                return Ok(Action::requeue(CLEANUP_POLL));
            }
            Step::Finish => {
                status.phase = Some(SessionPhase::Terminated);
                status.message = Some("all objects removed".into());
                // The object is going: a failed status write must not keep the finalizer.
                if let Err(e) = write_status(ctx, &api, &name, &mut rv, before, &status).await {
                    tracing::debug!(error = %e, "terminated status not written");
                }
                let finalizers: Vec<String> = session
                    .finalizers()
                    .iter()
                    .filter(|f| *f != SESSION_FINALIZER)
                    .cloned()
                    .collect();
                match set_finalizers(&api, session, finalizers).await {
                    Ok(_) => {}
                    Err(Error::Kube(kube::Error::Api(e))) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
                ctx.wake_waiting();
                return Ok(Action::await_change());
            }
            Step::Wait(after) => {
                return Ok(after.map_or_else(Action::await_change, |d| {
                    Action::requeue(d + Duration::from_millis(50))
                }));
            }
        }
    }
    Ok(Action::requeue(Duration::from_millis(100)))
}

/// Replaces the finalizers if nobody changed them since `session` was read (a JSON patch
/// `test`: status writes in between do not conflict, a concurrent finalizer change does).
async fn set_finalizers(
    api: &Api<VDISession>,
    session: &VDISession,
    finalizers: Vec<String>,
) -> Result<String, Error> {
    let patch = if session.metadata.finalizers.is_some() {
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": session.finalizers()},
            {"op": "replace", "path": "/metadata/finalizers", "value": finalizers},
        ])
    } else {
        json!([{"op": "add", "path": "/metadata/finalizers", "value": finalizers}])
    };
    let patch: json_patch::Patch =
        serde_json::from_value(patch).map_err(|e| Error::Other(e.to_string()))?;
    let patched = api
        .patch(
            &session.name_any(),
            &PatchParams::default(),
            &Patch::Json::<()>(patch),
        )
        .await?;
    Ok(patched.resource_version().unwrap_or_default())
}

fn push_decision(status: &mut VDISessionStatus, d: DecisionRecord) {
    // One record per hook and plugin: a retry replaces the earlier one.
    status
        .decisions
        .retain(|x| !(x.hook == d.hook && x.plugin == d.plugin));
    status.decisions.push(d);
}

fn decision_summary(decisions: &[DecisionRecord]) -> String {
    if decisions.is_empty() {
        return "no admission plugin judged it".into();
    }
    decisions
        .iter()
        .map(|d| format!("{} {}", d.plugin, d.outcome.to_lowercase()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes the status if the session is still at `rv` (a stale read must not overwrite a newer
/// status), and moves `rv` on.
async fn write_status(
    ctx: &Context,
    api: &Api<VDISession>,
    name: &str,
    rv: &mut String,
    before: SessionPhase,
    status: &VDISessionStatus,
) -> Result<(), Error> {
    let patch = json!({ "metadata": {"resourceVersion": rv}, "status": status });
    let written = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    *rv = written.resource_version().unwrap_or_default();
    ctx.wrote(&written.uid().unwrap_or_default(), rv);
    let after = status.phase();
    if after != before {
        ctx.metrics.transition(before, after);
    }
    Ok(())
}

async fn fail(
    ctx: &Context,
    session: &VDISession,
    api: &Api<VDISession>,
    rv: &mut String,
    status: &mut VDISessionStatus,
    reason: &str,
    message: &str,
) -> Result<(), Error> {
    let before = status.phase();
    status.phase = Some(SessionPhase::Failed);
    status.reason = Some(reason.to_owned());
    status.message = Some(message.to_owned());
    status.set_condition("Ready", false, reason, message, &now_string());
    // The failed desktop gives its node and GPU back: its pod goes, the rest stays to inspect.
    let pods: Vec<ObjectRecord> = status
        .objects
        .iter()
        .filter(|o| o.kind == "Pod")
        .cloned()
        .collect();
    delete_objects(ctx, session, &pods).await?;
    write_status(ctx, api, &session.name_any(), rv, before, status).await?;
    ctx.event(session, true, reason, "Fail", message.to_owned())
        .await;
    ctx.wake_waiting();
    Ok(())
}

async fn observe(
    ctx: &Context,
    session: &VDISession,
    status: &VDISessionStatus,
    deleting: bool,
) -> Result<Observed, Error> {
    let ns = session.namespace().unwrap_or_default();
    let mut observed = Observed::default();
    let phase = status.phase();
    if !(deleting || matches!(phase, SessionPhase::Provisioning | SessionPhase::Running)) {
        return Ok(observed);
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    for o in &status.objects {
        if o.kind == "Pod" && o.api_version == "v1" {
            if let Some(pod) = pods.get_opt(&o.name).await? {
                let owned = pod
                    .owner_references()
                    .iter()
                    .any(|r| Some(&r.uid) == session.metadata.uid.as_ref());
                if owned {
                    observed.pod = Some(PodView::of(&pod));
                    observed.objects_remaining += 1;
                }
            }
        } else if deleting && get_owned(ctx, session, o).await?.is_some() {
            // A same-named object someone else made is not the session's to wait for.
            observed.objects_remaining += 1;
        }
    }
    Ok(observed)
}

async fn schedule(
    ctx: &Context,
    session: &VDISession,
    api: &Api<VDISession>,
    rv: &mut String,
    status: &mut VDISessionStatus,
) -> Result<Option<Action>, Error> {
    let before = status.phase();
    let name = session.name_any();
    let Some(admitted) = status.admitted.clone() else {
        return Err(Error::Other("scheduling before admission".into()));
    };
    let request = admitted_request(session, &admitted);
    let uid = session.uid().unwrap_or_default();
    let now = now_string();
    let (reason, message, decision) =
        match ctx.scheduler.place(&uid, request, admitted.resources).await {
            Placement::Placed(p, decision) => {
                status.phase = Some(SessionPhase::Scheduled);
                status.node = Some(p.node.clone());
                status.gpu = p.gpu;
                let gpu = p
                    .gpu
                    .map_or_else(|| "no GPU".to_owned(), |g| format!("GPU {g}"));
                let message = format!("placed on {} {gpu}: {}", p.node, p.reason);
                status.message = Some(message.clone());
                status.set_condition("Scheduled", true, "Placed", &message, &now);
                if let Some(d) = decision {
                    push_decision(status, d);
                }
                write_status(ctx, api, &name, rv, before, status).await?;
                ctx.event(session, false, "Scheduled", "Schedule", message)
                    .await;
                return Ok(None); // straight on to provisioning
            }
            Placement::Unschedulable(why, d) => ("Unschedulable", why, Some(d)),
            Placement::Unavailable(why, d) => ("SchedulerUnavailable", why, d),
        };
    let changed = status
        .condition("Scheduled")
        .is_none_or(|c| c.reason != reason || c.message != message);
    ctx.waiting
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(ObjectRef::from_obj(session));
    if changed {
        status.phase = Some(SessionPhase::Pending);
        status.message = Some(format!("waiting for capacity: {message}"));
        status.set_condition("Scheduled", false, reason, &message, &now);
        if let Some(d) = decision {
            push_decision(status, d);
        }
        write_status(ctx, api, &name, rv, before, status).await?;
        ctx.event(session, true, "FailedScheduling", "Schedule", message)
            .await;
    }
    let since = status
        .condition("Scheduled")
        .and_then(|c| c.last_transition_time.parse().ok());
    Ok(Some(Action::requeue(unschedulable_retry(
        since,
        Timestamp::now(),
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unschedulable_retries_back_off_within_bounds() {
        let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        let ago = |secs: i64| Some(now - jiff::SignedDuration::from_secs(secs));
        assert_eq!(unschedulable_retry(None, now), UNSCHEDULABLE_RETRY_MIN);
        assert_eq!(unschedulable_retry(ago(1), now), UNSCHEDULABLE_RETRY_MIN);
        assert_eq!(unschedulable_retry(ago(20), now), Duration::from_secs(10));
        assert_eq!(unschedulable_retry(ago(3600), now), UNSCHEDULABLE_RETRY_MAX);
    }
}
