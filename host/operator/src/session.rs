//! The session controller: drives each `VDISession` through the phase machine of `vdi-crd`.
//! Each pass asks [`next_step`] what is due, performs that step's side effect through
//! [`crate::admission`], [`crate::scheduler`] or [`crate::objects`], and writes the status
//! `vdi_crd::status` computed for the outcome, with an Event. Only I/O happens here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt as _};
use serde_json::json;
use vdi_crd::phase::{Observed, PodView, SessionView, Step, next_step};
use vdi_crd::{SESSION_FINALIZER, SessionPhase, VDISession, VDISessionStatus};
use vdi_plugin_host::types::SessionRequest;

use crate::admission::Review;
use crate::context::CachedSources;
pub use crate::context::{Context, SessionSettings};
pub use crate::error::Error;
use crate::error::Result;
use crate::objects::{ProvisionError, delete_objects, get_owned, provision};
use crate::scheduler::Placement;
use crate::wit;
pub use vdi_crd::phase::{UNSCHEDULABLE_RETRY_MAX, UNSCHEDULABLE_RETRY_MIN, unschedulable_retry};

mod claim;
pub(crate) mod held;
mod readmit;
mod running;

/// When a session whose cache is older than our last write is looked at again at the latest.
const CACHE_BEHIND_RETRY: Duration = Duration::from_millis(500);

/// How often a terminating session checks its objects are gone.
pub const CLEANUP_POLL: Duration = Duration::from_secs(1);

/// The reconcile loop's entry point.
pub async fn reconcile(session: Arc<VDISession>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let result = reconcile_inner(&session, &ctx).await;
    ctx.metrics
        .observe_reconcile(started.elapsed(), result.is_err());
    result
}

/// Checks a running session again after its streamer's report changed (the first frame, new
/// input): the same check a reconcile of a running session makes. Runs beside the controller,
/// so a write may meet a concurrent one (409): it is then left to the next report or reconcile.
pub(crate) async fn on_activity(ctx: &Context, session: &VDISession) {
    let Some(mut status) = session.status.clone() else {
        return;
    };
    let uid = session.uid().unwrap_or_default();
    let rv = session.resource_version().unwrap_or_default();
    if status.phase() != SessionPhase::Running
        || session.metadata.deletion_timestamp.is_some()
        || ctx.cache_is_behind(&uid, &rv)
    {
        return;
    }
    let mut pass = Pass {
        ctx,
        session,
        api: Api::namespaced(ctx.client.clone(), &session.namespace().unwrap_or_default()),
        name: session.name_any(),
        rv,
        stored: SessionPhase::Running,
    };
    if let Err(e) = pass.running(&mut status).await {
        tracing::debug!(session = %session.name_any(), error = %e, "activity not recorded yet");
    }
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

/// One reconcile of one session: what it read, and where it writes.
struct Pass<'a> {
    ctx: &'a Context,
    session: &'a VDISession,
    api: Api<VDISession>,
    name: String,
    /// The resourceVersion the next write must match (moves on with each write).
    rv: String,
    /// The phase the stored status has (moves on with each write).
    stored: SessionPhase,
}

#[tracing::instrument(skip_all, fields(session = %format!("{}/{}", session.namespace().unwrap_or_default(), session.name_any())))]
async fn reconcile_inner(session: &VDISession, ctx: &Context) -> Result<Action> {
    let ns = session.namespace().unwrap_or_default();
    let name = session.name_any();
    let mut status = session.status.clone().unwrap_or_default();
    let uid = session.uid().unwrap_or_default();
    let mut pass = Pass {
        ctx,
        session,
        api: Api::namespaced(ctx.client.clone(), &ns),
        name: name.clone(),
        rv: session.resource_version().unwrap_or_default(),
        stored: session
            .status
            .as_ref()
            .map(VDISessionStatus::phase)
            .unwrap_or_default(),
    };
    if ctx.cache_is_behind(&uid, &pass.rv) {
        // Acting on an older version would redo steps (and their writes) already done. Our
        // write's own watch event reconciles the session again once the cache has it; the
        // requeue is only a fallback (polling every few ms kept a burst's reconcilers busy
        // re-reading a lagging cache: 17-24 reconciles per session).
        tracing::trace!("cache behind our last write; waiting for it");
        return Ok(Action::requeue(CACHE_BEHIND_RETRY));
    }
    // A desktop provisioned by an earlier pass whose status is held back (see `held`). Looked
    // up only now: a cache older than our last write would not show the `Scheduled` it follows.
    let mut held = ctx.held.continuing(&uid, &status);
    if let Some(h) = &held {
        status = h.status.clone();
    }
    // What the scheduler and the renderer see, built once (again only when admission settles it).
    let mut request: Option<SessionRequest> = status
        .admitted
        .as_ref()
        .map(|a| wit::admitted_request(session, a));
    let mut has_finalizer = session.finalizers().iter().any(|f| f == SESSION_FINALIZER);
    let deleting = session.metadata.deletion_timestamp.is_some();
    for _ in 0..8 {
        let (observed, ready_at) = observe(ctx, session, &status, deleting).await?;
        let view = SessionView {
            deleting,
            has_finalizer,
            generation: session.metadata.generation,
            status: &status,
        };
        let step = next_step(view, &observed, Timestamp::now());
        tracing::debug!(?step, phase = status.phase().as_str(), "step");
        match step {
            Step::AddFinalizer => {
                let mut finalizers = session.finalizers().to_vec();
                finalizers.push(SESSION_FINALIZER.to_owned());
                pass.rv = set_finalizers(&pass.api, session, finalizers).await?;
                ctx.wrote(&uid, &pass.rv);
                has_finalizer = true;
            }
            Step::Admit => match pass.review(true).await? {
                Review::Allowed {
                    admitted,
                    decisions,
                    ..
                } => {
                    request = Some(wit::admitted_request(session, &admitted));
                    let generation = session.metadata.generation;
                    status.admit(admitted, decisions, generation, Timestamp::now());
                    // Not written on its own: the placement that follows at once writes both
                    // (and a restart before it simply admits again).
                }
                Review::Denied {
                    reason,
                    message,
                    decisions,
                } => {
                    let generation = session.metadata.generation;
                    status.deny(&reason, &message, decisions, generation, Timestamp::now());
                    pass.write_status(&status).await?;
                    ctx.event(session, true, &reason, "Admit", message).await;
                    return Ok(Action::await_change());
                }
            },
            Step::Readmit => {
                pass.readmit(&mut status).await?;
                request = status
                    .admitted
                    .as_ref()
                    .map(|a| wit::admitted_request(session, a));
            }
            Step::Schedule => {
                if pass.try_claim(&mut status).await? {
                    return Ok(Action::await_change());
                }
                let Some(request) = request.clone() else {
                    return Err(Error::Other("scheduling before admission".into()));
                };
                if let Some(action) = pass.schedule(request, &mut status).await? {
                    return Ok(action);
                }
            }
            Step::Provision => {
                let Some(request) = &request else {
                    return Err(Error::Other("provisioning before admission".into()));
                };
                match provision(ctx, session, &status, request).await {
                    Ok((objects, decision)) => {
                        let url = ctx.settings.url_of(&ns, &name);
                        status.provision(url, objects, decision, Timestamp::now());
                        if pass.stored == SessionPhase::Provisioning {
                            // Provisioning was written already (the pod went missing since).
                            pass.write_status(&status).await?;
                            return Ok(Action::await_change());
                        }
                        // Held, not written: a desktop ready within the grace goes straight
                        // to Running in one write. The pod's events wake this session (a pod
                        // just created is not ready: looking at it now would be a wasted read).
                        ctx.held.hold(&uid, status, Instant::now());
                        return Ok(Action::requeue(held::PROVISIONED_GRACE));
                    }
                    Err(ProvisionError::Fatal {
                        reason,
                        message,
                        decision,
                    }) => {
                        status.fail(reason, &message, decision, Timestamp::now());
                        pass.fail(&status).await?;
                        return Ok(Action::await_change());
                    }
                    Err(ProvisionError::Api(e)) => return Err(e),
                }
            }
            Step::MarkRunning => {
                status.run(Timestamp::now(), ready_at);
                pass.write_status(&status).await?;
                if let Some(created) = &session.metadata.creation_timestamp {
                    let secs = Timestamp::now().duration_since(created.0).as_secs_f64();
                    ctx.metrics.observe_startup(secs.max(0.0));
                }
                let url = status.url.clone().unwrap_or_default();
                let note = match (&status.node, status.gpu) {
                    (Some(node), Some(gpu)) => {
                        format!("desktop ready at {url} (on {node}, GPU {gpu})")
                    }
                    (Some(node), None) => format!("desktop ready at {url} (on {node})"),
                    _ => format!("desktop ready at {url}"),
                };
                ctx.event(session, false, "Running", "Start", note).await;
            }
            Step::MarkFailed { reason, message } => {
                status.fail(&reason, &message, None, Timestamp::now());
                pass.fail(&status).await?;
                return Ok(Action::await_change());
            }
            Step::Expire => {
                let note = "the session's timeout passed".into();
                ctx.event(session, false, "Expired", "Expire", note).await;
                pass.delete_session().await?;
                return Ok(Action::await_change());
            }
            Step::Cleanup => {
                if status.terminate() {
                    pass.write_status(&status).await?;
                }
                delete_objects(ctx, session, &status.objects).await?;
                claim::delete_served(ctx, session, &status).await?;
                return Ok(Action::requeue(CLEANUP_POLL));
            }
            Step::Finish => {
                status.finish();
                // The object is going: a failed status write must not keep the finalizer.
                if let Err(e) = pass.write_status(&status).await {
                    tracing::debug!(error = %e, "terminated status not written");
                }
                let finalizers: Vec<String> = session
                    .finalizers()
                    .iter()
                    .filter(|f| *f != SESSION_FINALIZER)
                    .cloned()
                    .collect();
                match set_finalizers(&pass.api, session, finalizers).await {
                    Ok(_) => {}
                    Err(Error::Kube(kube::Error::Api(e))) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
                ctx.held.release(&uid);
                ctx.wake_waiting();
                return Ok(Action::await_change());
            }
            Step::Wait(mut after) => {
                if let Some(h) = held.take() {
                    // Still starting: write Provisioning once the grace is over.
                    let due = h.due_in(Instant::now());
                    if due.is_zero() {
                        pass.write_status(&status).await?;
                        let message = status.message.clone().unwrap_or_default();
                        ctx.event(session, false, "Provisioned", "Provision", message)
                            .await;
                    } else {
                        after = [after, Some(due)].into_iter().flatten().min();
                    }
                }
                if status.phase() == SessionPhase::Running && !deleting {
                    match pass.running(&mut status).await? {
                        running::Next::Ended => return Ok(Action::await_change()),
                        running::Next::After(d) => {
                            after = [after, d].into_iter().flatten().min();
                        }
                    }
                }
                return Ok(after.map_or_else(Action::await_change, |d| {
                    Action::requeue(d + Duration::from_millis(50))
                }));
            }
        }
    }
    Ok(Action::requeue(Duration::from_millis(100)))
}

impl Pass<'_> {
    /// Deletes the session (its finalizer then removes its objects); gone already is fine.
    async fn delete_session(&self) -> Result<()> {
        match self
            .api
            .delete(&self.name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the status if the session is still at `rv` (a stale read must not overwrite a
    /// newer status), and moves `rv` on.
    async fn write_status(&mut self, status: &VDISessionStatus) -> Result<()> {
        let before = self.stored;
        let patch = json!({ "metadata": {"resourceVersion": self.rv}, "status": status });
        let written = self
            .api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.rv = written.resource_version().unwrap_or_default();
        let uid = written.uid().unwrap_or_default();
        self.ctx.wrote(&uid, &self.rv);
        self.ctx.held.release(&uid);
        let after = status.phase();
        self.stored = after;
        if after != before {
            self.ctx.metrics.transition(before, after);
        }
        Ok(())
    }

    /// Runs the admission chain over the session on the plugin pool, as a create (its first
    /// admission) or an update (a spec changed after admission).
    async fn review(&self, create: bool) -> Result<Review> {
        let ctx = self.ctx;
        let set = ctx.registry.current();
        let (sessions, templates) = (ctx.sessions.clone(), ctx.templates.clone());
        let spec = self.session.spec.clone();
        let labels = wit::labels_of(self.session.metadata.labels.as_ref());
        let name = self.name.clone();
        let namespace = self.session.namespace().unwrap_or_default();
        let budget = crate::calls::admission_budget(&set);
        crate::calls::on_pool(&ctx.registry, budget, move || {
            let sources = CachedSources {
                sessions: &sessions,
                templates: &templates,
            };
            crate::admission::review(&set, &sources, create, &name, &namespace, &spec, labels)
        })
        .await
    }

    /// Writes the `Failed` status `status` after deleting the desktop's pods: a failed desktop
    /// gives its node and GPU back, the rest stays to inspect.
    async fn fail(&mut self, status: &VDISessionStatus) -> Result<()> {
        delete_objects(self.ctx, self.session, &status.pods()).await?;
        self.write_status(status).await?;
        let reason = status.reason.clone().unwrap_or_default();
        let message = status.message.clone().unwrap_or_default();
        self.ctx
            .event(self.session, true, &reason, "Fail", message)
            .await;
        self.ctx.wake_waiting();
        Ok(())
    }

    /// Asks the placement task for a place. `None` goes straight on to provisioning; otherwise
    /// the session waits (woken when capacity frees, else retried with backoff).
    async fn schedule(
        &mut self,
        request: SessionRequest,
        status: &mut VDISessionStatus,
    ) -> Result<Option<Action>> {
        let (ctx, session) = (self.ctx, self.session);
        let Some(resources) = status.admitted.as_ref().map(|a| a.resources) else {
            return Err(Error::Other("scheduling before admission".into()));
        };
        let uid = session.uid().unwrap_or_default();
        let template = status.admitted.as_ref().map(|a| a.template.as_str());
        let node_selector = template
            .and_then(|t| ctx.templates.get(&ObjectRef::new(t)))
            .map(|t| t.spec.node_selector.clone())
            .unwrap_or_default();
        let placement = ctx
            .scheduler
            .place(&uid, request, resources, node_selector)
            .await;
        let (reason, message, decision) = match placement {
            Placement::Placed(p, decision) => {
                // No Event of its own: the Running event names the place, and one that is
                // slow to start gets a `Provisioned` event with it (see `held`).
                status.place(&p.node, p.gpu, &p.reason, decision, Timestamp::now());
                self.write_status(status).await?;
                return Ok(None);
            }
            Placement::Unschedulable(why, d) => ("Unschedulable", why, Some(d)),
            Placement::Unavailable(why, d) => ("SchedulerUnavailable", why, d),
        };
        ctx.wait_for_wake(session);
        if status.wait_for_capacity(reason, &message, decision, Timestamp::now()) {
            self.write_status(status).await?;
            ctx.event(session, true, "FailedScheduling", "Schedule", message)
                .await;
        }
        let retry = unschedulable_retry(status.waiting_since(), Timestamp::now());
        Ok(Some(Action::requeue(retry)))
    }
}

/// Replaces the finalizers if nobody changed them since `session` was read (a JSON patch
/// `test`: status writes in between do not conflict, a concurrent finalizer change does).
async fn set_finalizers(
    api: &Api<VDISession>,
    session: &VDISession,
    finalizers: Vec<String>,
) -> Result<String> {
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

/// When `pod` became Ready (its `Ready=True` condition's transition time).
fn ready_since(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// What the phase machine needs to see: the desktop pod, and (while deleting) how many of the
/// session's objects remain; and when the pod became ready.
async fn observe(
    ctx: &Context,
    session: &VDISession,
    status: &VDISessionStatus,
    deleting: bool,
) -> Result<(Observed, Option<Timestamp>)> {
    let ns = session.namespace().unwrap_or_default();
    if status.served_by.is_some() {
        let observed = claim::observe_served(ctx, session, status, deleting).await?;
        return Ok((observed, None));
    }
    let mut observed = Observed::default();
    let mut ready_at = None;
    let phase = status.phase();
    if !(deleting || matches!(phase, SessionPhase::Provisioning | SessionPhase::Running)) {
        return Ok((observed, ready_at));
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
                    ready_at = ready_since(&pod);
                    observed.pod = Some(PodView::of(&pod));
                    observed.objects_remaining += 1;
                }
            }
        } else if deleting && get_owned(ctx, session, o).await?.is_some() {
            // A same-named object someone else made is not the session's to wait for.
            observed.objects_remaining += 1;
        }
    }
    Ok((observed, ready_at))
}
