//! The warm pool: for each `VDITemplate` with `spec.warmPool` N, N sessions of it kept started
//! and unclaimed in [`POOL_NAMESPACE`] under the pool identity ([`POOL_USER`]). The decision
//! ([`plan`]) is pure; [`run`] lists the pool, applies the plan every [`POOL_RESYNC`], and
//! refills what expired, failed or was claimed.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt as _};
use tokio::sync::Notify;
use vdi_crd::{
    CLAIMED_BY_ANNOTATION, CLAIMED_UID_ANNOTATION, MAX_WARM_POOL, POOL_LABEL, POOL_NAMESPACE,
    POOL_USER, SessionPhase, SessionUser, VDISession, VDISessionSpec, VDITemplate,
};

/// How often the pool is checked against the templates.
pub const POOL_RESYNC: Duration = Duration::from_secs(2);
/// How long an ended pool session (denied, failed) holds its slot before it is replaced.
pub const POOL_RETRY: Duration = Duration::from_secs(60);
/// The lifetime a pool session asks for (admission policies may clamp it; an expired pool
/// session is refilled like any other).
pub const POOL_TIMEOUT: &str = "24h";

/// What the plan needs to know of one pool session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolMember {
    /// Its name.
    pub name: String,
    /// The template it keeps warm (its [`POOL_LABEL`]).
    pub template: String,
    /// A user's session claimed it: no longer the pool's to count or delete.
    pub claimed: bool,
    /// Claimed by a session that no longer exists (removed without its finalizer running).
    pub orphaned: bool,
    /// Being deleted already.
    pub terminating: bool,
    /// Created less than [`POOL_RETRY`] ago: an ended one (denied by a policy, failed) keeps its
    /// slot until then, so a pool a policy refuses is retried every minute, not every pass.
    pub young: bool,
    /// Its phase.
    pub phase: SessionPhase,
}

impl PoolMember {
    /// The member as the plan sees `s`, given whether a session of uid `uid` exists;
    /// `None` for a session without a pool label.
    pub fn of(s: &VDISession, live: &dyn Fn(&str) -> bool) -> Option<Self> {
        let template = s.labels().get(POOL_LABEL)?.clone();
        let claimer = s.annotations().get(CLAIMED_UID_ANNOTATION);
        Some(Self {
            name: s.name_any(),
            template,
            claimed: s.annotations().contains_key(CLAIMED_BY_ANNOTATION),
            orphaned: claimer.is_some_and(|uid| !live(uid)),
            terminating: s.metadata.deletion_timestamp.is_some(),
            young: s.metadata.creation_timestamp.as_ref().is_none_or(|t| {
                let age = jiff::Timestamp::now().duration_since(t.0).as_secs_f64();
                age < POOL_RETRY.as_secs_f64()
            }),
            phase: s.status.as_ref().map(|st| st.phase()).unwrap_or_default(),
        })
    }

    /// Unclaimed, not going, and not ended: it will serve (or serves) a launch.
    fn available(&self) -> bool {
        !self.claimed && !self.terminating && !self.phase.is_final()
    }

    /// Holds one of its template's slots: available, or ended too recently to be replaced.
    fn occupies(&self) -> bool {
        self.available() || (!self.claimed && !self.terminating && self.young)
    }
}

/// What the pool controller does in one pass.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PoolPlan {
    /// Templates to start one more pool session of (a template appears once per session).
    pub create: Vec<String>,
    /// Pool sessions to delete: unclaimed extras, failed ones, those of templates gone or
    /// without a pool.
    pub delete: Vec<String>,
}

/// The pool sizes the templates ask for (`spec.warmPool`, capped at [`MAX_WARM_POOL`]).
pub fn wanted(templates: &[VDITemplate]) -> BTreeMap<String, u32> {
    templates
        .iter()
        .filter(|t| t.spec.warm_pool > 0)
        .map(|t| (t.name_any(), t.spec.warm_pool.min(MAX_WARM_POOL)))
        .collect()
}

/// Compares the pool with what the templates want. Claimed sessions are left to their user's
/// session (which deletes them when it goes) unless that session is gone; ended unclaimed ones
/// are deleted and replaced once [`POOL_RETRY`] old; when a pool shrinks, the extras not yet
/// running go first.
pub fn plan(wanted: &BTreeMap<String, u32>, members: &[PoolMember]) -> PoolPlan {
    let mut out = PoolPlan::default();
    let mut by_template: BTreeMap<&str, Vec<&PoolMember>> = BTreeMap::new();
    for m in members {
        if m.occupies() {
            by_template.entry(&m.template).or_default().push(m);
        } else if (!m.claimed || m.orphaned) && !m.terminating {
            // Ended unclaimed, or its claimer is gone: make room for its replacement.
            out.delete.push(m.name.clone());
        }
    }
    for (template, available) in &by_template {
        let mut available = available.clone();
        let want = wanted.get(*template).copied().unwrap_or(0) as usize;
        if available.len() > want {
            // Running ones serve a launch soonest: keep them.
            available.sort_by_key(|m| (m.phase == SessionPhase::Running, m.name.clone()));
            let extra = available.len() - want;
            out.delete
                .extend(available.iter().take(extra).map(|m| m.name.clone()));
        }
    }
    for (template, &want) in wanted {
        let have = by_template.get(template.as_str()).map_or(0, Vec::len);
        for _ in have..want as usize {
            out.create.push(template.clone());
        }
    }
    out
}

/// A new pool session of `template` (named by the API server).
pub fn pool_session(template: &str) -> VDISession {
    let spec = VDISessionSpec {
        user: SessionUser {
            name: POOL_USER.to_owned(),
            groups: vec![POOL_USER.to_owned()],
        },
        template: template.to_owned(),
        resources: None,
        timeout: Some(POOL_TIMEOUT.to_owned()),
    };
    let mut s = VDISession::new("", spec);
    s.metadata = ObjectMeta {
        generate_name: Some(format!("{template}-pool-")),
        namespace: Some(POOL_NAMESPACE.to_owned()),
        labels: Some(BTreeMap::from([(
            POOL_LABEL.to_owned(),
            template.to_owned(),
        )])),
        ..ObjectMeta::default()
    };
    s
}

/// One pass: lists the pool and applies [`plan`]. Errors are logged; the next pass retries.
pub async fn reconcile_once(
    client: &Client,
    templates: &Store<VDITemplate>,
    sessions: &Store<VDISession>,
) -> PoolPlan {
    let api: Api<VDISession> = Api::namespaced(client.clone(), POOL_NAMESPACE);
    let templates: Vec<VDITemplate> = templates.state().iter().map(|t| (**t).clone()).collect();
    let wanted = wanted(&templates);
    // Read from the API, not a cache: a cache that has not seen the last pass's creations
    // would make this one create them again.
    let list = match api.list(&ListParams::default().labels(POOL_LABEL)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "warm pool: cannot list pool sessions");
            return PoolPlan::default();
        }
    };
    // The sessions cache: a claimer is in it before it claims (its reconcile reads it there).
    let live: HashSet<String> = sessions.state().iter().filter_map(|s| s.uid()).collect();
    let is_live = |uid: &str| live.contains(uid);
    let members: Vec<PoolMember> = list
        .iter()
        .filter_map(|s| PoolMember::of(s, &is_live))
        .collect();
    let plan = plan(&wanted, &members);
    for template in &plan.create {
        match api
            .create(&PostParams::default(), &pool_session(template))
            .await
        {
            Ok(s) => tracing::info!(%template, session = %s.name_any(), "warm pool: started"),
            Err(e) => tracing::warn!(%template, error = %e, "warm pool: cannot start a session"),
        }
    }
    for name in &plan.delete {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => tracing::info!(session = %name, "warm pool: removed"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => tracing::warn!(session = %name, error = %e, "warm pool: cannot remove"),
        }
    }
    plan
}

/// Keeps the pool at the templates' sizes until aborted: every [`POOL_RESYNC`], and at once
/// when `wake` is notified (a claim took a pool session).
pub async fn run(
    client: Client,
    templates: Store<VDITemplate>,
    sessions: Store<VDISession>,
    wake: Arc<Notify>,
) {
    let mut tick = tokio::time::interval(POOL_RESYNC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = wake.notified() => {}
        }
        reconcile_once(&client, &templates, &sessions).await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn member(name: &str, template: &str, phase: SessionPhase) -> PoolMember {
        PoolMember {
            name: name.into(),
            template: template.into(),
            claimed: false,
            orphaned: false,
            terminating: false,
            young: false,
            phase,
        }
    }

    fn want(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    #[test]
    fn an_empty_pool_is_filled() {
        let p = plan(&want(&[("a", 2)]), &[]);
        assert_eq!(p.create, ["a", "a"]);
        assert!(p.delete.is_empty());
    }

    #[test]
    fn claimed_and_terminating_sessions_do_not_count_and_are_left_alone() {
        let mut claimed = member("a-1", "a", SessionPhase::Running);
        claimed.claimed = true;
        let mut going = member("a-2", "a", SessionPhase::Running);
        going.terminating = true;
        let p = plan(
            &want(&[("a", 2)]),
            &[claimed, going, member("a-3", "a", SessionPhase::Pending)],
        );
        assert_eq!(p.create, ["a"]);
        assert!(p.delete.is_empty());
    }

    #[test]
    fn a_pool_session_whose_claimer_is_gone_is_removed() {
        let mut orphan = member("a-1", "a", SessionPhase::Running);
        orphan.claimed = true;
        orphan.orphaned = true;
        let p = plan(&want(&[("a", 1)]), &[orphan]);
        assert_eq!(p.delete, ["a-1"]);
        assert_eq!(p.create, ["a"]);
    }

    #[test]
    fn a_denied_pool_session_holds_its_slot_for_a_while_then_is_replaced() {
        let mut denied = member("a-1", "a", SessionPhase::Denied);
        denied.young = true;
        assert_eq!(
            plan(&want(&[("a", 1)]), &[denied.clone()]),
            PoolPlan::default(),
            "no create/deny/delete churn every pass"
        );
        denied.young = false;
        let p = plan(&want(&[("a", 1)]), &[denied]);
        assert_eq!(
            (p.create, p.delete),
            (vec!["a".to_owned()], vec!["a-1".to_owned()])
        );
    }

    #[test]
    fn a_full_pool_is_left_as_it_is() {
        let members = [
            member("a-1", "a", SessionPhase::Running),
            member("a-2", "a", SessionPhase::Provisioning),
        ];
        assert_eq!(plan(&want(&[("a", 2)]), &members), PoolPlan::default());
    }

    #[test]
    fn a_shrinking_pool_removes_extras_not_yet_running_first() {
        let members = [
            member("a-1", "a", SessionPhase::Running),
            member("a-2", "a", SessionPhase::Pending),
            member("a-3", "a", SessionPhase::Running),
        ];
        let p = plan(&want(&[("a", 1)]), &members);
        assert!(p.create.is_empty());
        assert_eq!(p.delete, ["a-2", "a-1"]);
    }

    #[test]
    fn ended_sessions_are_replaced_and_pools_of_gone_templates_emptied() {
        let members = [
            member("a-1", "a", SessionPhase::Failed),
            member("b-1", "b", SessionPhase::Running),
        ];
        let p = plan(&want(&[("a", 1)]), &members);
        assert_eq!(p.create, ["a"]);
        assert_eq!(p.delete, ["a-1", "b-1"]);
    }

    #[test]
    fn pool_sizes_are_capped_and_zero_means_none() {
        let t = |name: &str, n: u32| -> VDITemplate {
            serde_json::from_value(json!({
                "apiVersion": "vdi.dev/v1alpha1", "kind": "VDITemplate",
                "metadata": {"name": name},
                "spec": {"displayName": name, "image": "i", "warmPool": n},
            }))
            .unwrap()
        };
        assert_eq!(
            wanted(&[t("a", 0), t("b", 3), t("c", 99)]),
            want(&[("b", 3), ("c", MAX_WARM_POOL)])
        );
    }

    #[test]
    fn a_pool_session_runs_under_the_pool_identity_in_the_pool_namespace() {
        let s = pool_session("local-desktop");
        assert_eq!(s.metadata.namespace.as_deref(), Some(POOL_NAMESPACE));
        assert_eq!(s.spec.user.name, POOL_USER);
        assert_eq!(s.spec.user.groups, [POOL_USER]);
        assert_eq!(
            s.labels().get(POOL_LABEL).map(String::as_str),
            Some("local-desktop")
        );
        assert_eq!(
            PoolMember::of(&s, &|_| true).map(|m| m.available()),
            Some(true),
            "a new pool session counts as available"
        );
    }
}
