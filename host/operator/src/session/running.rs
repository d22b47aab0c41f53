//! What a reconcile of a `Running` session adds to the phase machine: the first frame's time
//! and idle culling, from the streamer's activity reports (`crate::activity`). The decision is
//! `vdi_crd::idle`'s; this only reads the reports, writes the status and events, and ends the
//! session the way expiry does.

use std::time::Duration;

use jiff::Timestamp;
use kube::ResourceExt as _;
use kube::runtime::reflector::ObjectRef;
use vdi_crd::idle::{IDLE_TIMEOUT, IDLE_WARNING, IdleAction, IdleInput, decide, until};
use vdi_crd::{POOL_NAMESPACE, VDISessionStatus};

use super::Pass;
use crate::activity::{ActivityTimes, IDLE_POLL};
use crate::error::Result;

/// What comes after a running session's check.
pub(super) enum Next {
    /// Look again after this long (or on the next event when `None`).
    After(Option<Duration>),
    /// The session was ended for being idle.
    Ended,
}

impl Pass<'_> {
    /// The template's idle timeout, if it has a valid one.
    fn idle_timeout(&self, status: &VDISessionStatus) -> Option<Duration> {
        // An unclaimed pool session has no user to be idle; a claimed one is culled through
        // the user's session that claimed it.
        if self.session.namespace().as_deref() == Some(POOL_NAMESPACE) {
            return None;
        }
        let name = &status.admitted.as_ref()?.template;
        let template = self.ctx.templates.get(&ObjectRef::new(name))?;
        let text = template.spec.idle_timeout.as_deref()?;
        match vdi_crd::parse_duration(text) {
            Ok(secs) if secs > 0 => Some(Duration::from_secs(secs)),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(template = %name, error = %e, "spec.idleTimeout ignored");
                None
            }
        }
    }

    /// A fresh activity report of the session's pod (recorded for the poller), if it answers.
    async fn fresh_activity(&self, status: &VDISessionStatus) -> Option<ActivityTimes> {
        let (ns, pod) = match status.served_by.as_deref() {
            // Served by the warm pool: its pool session's pod streams the desktop.
            Some(served_by) => {
                let name = vdi_crd::pool::pool_session_name(served_by)?;
                let pool = self
                    .ctx
                    .sessions
                    .get(&ObjectRef::new(name).within(POOL_NAMESPACE))?;
                let pod = pool.status.as_ref()?.pods().into_iter().next()?;
                (POOL_NAMESPACE.to_owned(), pod)
            }
            None => (self.session.namespace()?, status.pods().into_iter().next()?),
        };
        let uid = self.session.uid()?;
        match self
            .ctx
            .prober
            .fetch_pod(&self.ctx.client, &ns, &pod.name)
            .await
        {
            Ok(a) => {
                let times = ActivityTimes::from(&a);
                self.ctx.activities.record(&uid, times, IDLE_POLL);
                Some(times)
            }
            Err(e) => {
                tracing::debug!(error = %e, "no fresh activity report");
                None
            }
        }
    }

    /// Records the first frame, and warns, clears the warning or ends the session for idleness.
    pub(super) async fn running(&mut self, status: &mut VDISessionStatus) -> Result<Next> {
        let (ctx, session) = (self.ctx, self.session);
        let uid = session.uid().unwrap_or_default();
        let now = Timestamp::now();
        let mut activity = ctx.activities.get(&uid);
        let mut next = None;
        let mut warning = None;
        let mut changed = false;
        if let (Some(timeout), Some(ready_at)) = (self.idle_timeout(status), status.ready_at()) {
            let mut input = IdleInput {
                idle_timeout: timeout,
                ready_at,
                last_input_at: activity.and_then(|a| a.last_input_at),
                warned: status.idle_warned(),
            };
            let mut action = decide(input, now);
            if matches!(
                action,
                IdleAction::Warn { .. } | IdleAction::Terminate { .. }
            ) {
                // The poller's report may be a poll interval old: warn and end only on a fresh one
                // (or none, when the streamer does not answer).
                if let Some(fresh) = self.fresh_activity(status).await {
                    activity = Some(fresh);
                    input.last_input_at = fresh.last_input_at;
                    action = decide(input, now);
                }
            }
            match action {
                IdleAction::Keep { next: at } => next = Some(until(at, now)),
                IdleAction::Warn { ends_at } => {
                    warning = Some(status.warn_idle(ends_at, now));
                    next = Some(until(ends_at, now));
                }
                IdleAction::Clear { next: at } => {
                    status.clear_idle(now);
                    changed = true;
                    next = Some(until(at, now));
                }
                IdleAction::Terminate { idle_since } => {
                    if let Some(at) = activity.and_then(|a| a.first_frame_at) {
                        status.first_frame(at);
                    }
                    let message = status.end_idle(idle_since, timeout, now);
                    self.write_status(status).await?;
                    ctx.event(session, true, IDLE_TIMEOUT, "Cull", message)
                        .await;
                    self.delete_session().await?;
                    return Ok(Next::Ended);
                }
            }
        }
        let first_frame = activity
            .and_then(|a| a.first_frame_at)
            .is_some_and(|at| status.first_frame(at));
        if changed || first_frame || warning.is_some() {
            self.write_status(status).await?;
        }
        if let Some(message) = warning {
            ctx.event(session, true, IDLE_WARNING, "Cull", message)
                .await;
        }
        Ok(Next::After(next))
    }
}
