//! A user's session served by the warm pool (`crate::pool`): at its first placement it claims a
//! running, unclaimed pool session of its template and resources (an optimistic-concurrency
//! update of the pool session: of two launches racing for one, the second gets a 409 and tries
//! the next), and is `Running` at once. From then on it follows the pool session, renders
//! nothing, and deletes the pool session when it goes.

use jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt as _};
use serde_json::json;
use vdi_crd::phase::{Observed, parse_time};
use vdi_crd::pool::{claimable, pool_session_name, pool_view};
use vdi_crd::{
    CLAIMED_BY_ANNOTATION, CLAIMED_UID_ANNOTATION, POOL_NAMESPACE, VDISession, VDISessionStatus,
};

use super::Pass;
use crate::context::Context;
use crate::error::Result;

/// Whether `pool` is claimed by the session with uid `uid`.
fn claimed_by(pool: &VDISession, uid: &str) -> bool {
    pool.annotations()
        .get(CLAIMED_UID_ANNOTATION)
        .map(String::as_str)
        == Some(uid)
}

/// The pool session serving `status` (claimed by `session`), if it still exists.
async fn pool_session_of(
    ctx: &Context,
    session: &VDISession,
    status: &VDISessionStatus,
) -> Result<Option<VDISession>> {
    let Some(name) = status.served_by.as_deref().and_then(pool_session_name) else {
        return Ok(None);
    };
    let api: Api<VDISession> = Api::namespaced(ctx.client.clone(), POOL_NAMESPACE);
    let uid = session.uid().unwrap_or_default();
    Ok(api.get_opt(name).await?.filter(|p| claimed_by(p, &uid)))
}

/// What the phase machine sees of a served session: its pool session as its pod; while
/// deleting, the pool session as the object left to remove.
pub(super) async fn observe_served(
    ctx: &Context,
    session: &VDISession,
    status: &VDISessionStatus,
    deleting: bool,
) -> Result<Observed> {
    let pool = pool_session_of(ctx, session, status).await?;
    let mut observed = Observed::default();
    if deleting {
        observed.objects_remaining = usize::from(pool.is_some());
    } else {
        observed.pod = Some(pool_view(pool.as_ref()));
    }
    Ok(observed)
}

/// Deletes the pool session serving `status` (its own finalizer then removes its objects).
pub(super) async fn delete_served(
    ctx: &Context,
    session: &VDISession,
    status: &VDISessionStatus,
) -> Result<()> {
    let Some(pool) = pool_session_of(ctx, session, status).await? else {
        return Ok(());
    };
    let api: Api<VDISession> = Api::namespaced(ctx.client.clone(), POOL_NAMESPACE);
    match api
        .delete(&pool.name_any(), &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl Pass<'_> {
    /// Claims a pool session for this (admitted, not yet placed) session and writes it
    /// `Running`; returns whether it did. A user's session only: pool sessions never claim.
    pub(super) async fn try_claim(&mut self, status: &mut VDISessionStatus) -> Result<bool> {
        let (ctx, session) = (self.ctx, self.session);
        if session.namespace().as_deref() == Some(POOL_NAMESPACE) || status.served_by.is_some() {
            return Ok(false);
        }
        let Some(admitted) = status.admitted.clone() else {
            return Ok(false);
        };
        let pooled = ctx
            .templates
            .get(&ObjectRef::new(&admitted.template))
            .is_some_and(|t| t.spec.warm_pool > 0);
        if !pooled {
            // No pool to claim from: no scan of every session (a burst of N launches made
            // that N x N).
            return Ok(false);
        }
        let expires_at = status.expires_at.as_deref().and_then(parse_time);
        let uid = session.uid().unwrap_or_default();
        // One this session claimed already counts first: a claim whose status write was lost
        // (a crash, a conflict) is taken up again rather than leaked.
        let mut candidates: Vec<_> = ctx
            .sessions
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(POOL_NAMESPACE))
            .filter(|p| {
                let mine = claimed_by(p, &uid) && p.metadata.deletion_timestamp.is_none();
                mine || claimable(p, &admitted.template, &admitted.resources, expires_at)
            })
            .collect();
        if candidates.is_empty() {
            return Ok(false);
        }
        // The one that lives longest first.
        let expiry = |p: &VDISession| {
            let st = p.status.as_ref();
            st.and_then(|s| s.expires_at.as_deref())
                .and_then(parse_time)
        };
        candidates.sort_by_key(|p| (!claimed_by(p, &uid), std::cmp::Reverse(expiry(p))));
        let api: Api<VDISession> = Api::namespaced(ctx.client.clone(), POOL_NAMESPACE);
        let ns = session.namespace().unwrap_or_default();
        for pool in candidates {
            let name = pool.name_any();
            // The resourceVersion makes the update fail (409) if anyone changed it since the
            // cache saw it, e.g. another launch claimed it first.
            let patch = json!({"metadata": {
                "resourceVersion": pool.resource_version(),
                "annotations": {
                    CLAIMED_BY_ANNOTATION: format!("{ns}.{}", self.name),
                    CLAIMED_UID_ANNOTATION: uid,
                },
            }});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(claimed) => {
                    let pool_status = claimed.status.clone().unwrap_or_default();
                    let pool_uid = claimed.uid().unwrap_or_default();
                    let message = status.claim(&name, &pool_uid, &pool_status, Timestamp::now());
                    self.write_status(status).await?;
                    if let Some(created) = &session.metadata.creation_timestamp {
                        let secs = Timestamp::now().duration_since(created.0).as_secs_f64();
                        ctx.metrics.observe_startup(secs.max(0.0));
                    }
                    ctx.event(session, false, "Claimed", "Claim", message).await;
                    ctx.pool_changed();
                    return Ok(true);
                }
                Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {
                    tracing::debug!(pool = %name, "pool session taken meanwhile; trying the next");
                }
                Err(e) => {
                    // Placement as usual is the fallback for anything else.
                    tracing::warn!(pool = %name, error = %e, "cannot claim a pool session");
                    return Ok(false);
                }
            }
        }
        Ok(false)
    }
}
