//! The warm pool's pure parts: which pool session a launch may claim, the status a claim leaves
//! on the user's session, and how a claimed session's state follows its pool session.

use jiff::Timestamp;

use crate::phase::{PodView, parse_time};
use crate::session::{EffectiveResources, SessionPhase, VDISession, VDISessionStatus, set_once};
use crate::{CLAIMED_BY_ANNOTATION, POOL_LABEL, POOL_NAMESPACE};

/// `status.servedBy` of a session served by pool session `name`.
pub fn served_by(name: &str) -> String {
    format!("{POOL_NAMESPACE}/{name}")
}

/// The pool session's name in `status.servedBy`, if it names one in the pool namespace.
pub fn pool_session_name(served_by: &str) -> Option<&str> {
    let name = served_by.strip_prefix(POOL_NAMESPACE)?.strip_prefix('/')?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// Whether `s` is a pool session a launch of `template` needing `resources` until
/// `expires_at` may claim: in the pool namespace, of that template, Running, unclaimed, not
/// going, admitted with the same resources, and not expiring before the launch would (the
/// launch lives no longer than the pool session serving it).
pub fn claimable(
    s: &VDISession,
    template: &str,
    resources: &EffectiveResources,
    expires_at: Option<Timestamp>,
) -> bool {
    let Some(status) = &s.status else {
        return false;
    };
    if s.metadata.namespace.as_deref() != Some(POOL_NAMESPACE) {
        return false; // the common case, before any parsing
    }
    let pool_expiry = status.expires_at.as_deref().and_then(parse_time);
    let lives_long_enough = match (pool_expiry, expires_at) {
        (Some(pool), Some(launch)) => pool >= launch,
        (None, _) => true,
        (Some(_), None) => false,
    };
    s.metadata.namespace.as_deref() == Some(POOL_NAMESPACE)
        && s.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(POOL_LABEL))
            .map(String::as_str)
            == Some(template)
        && !s
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(CLAIMED_BY_ANNOTATION))
        && s.metadata.deletion_timestamp.is_none()
        && status.phase() == SessionPhase::Running
        && status.admitted.as_ref().map(|a| &a.resources) == Some(resources)
        && lives_long_enough
}

/// What a claimed session sees of the pool session serving it, as the phase machine reads a
/// pod: ready while it runs, failed with its reason when it failed, ended or went.
pub fn pool_view(pool: Option<&VDISession>) -> PodView {
    let failed = |reason: &str, message: String| PodView {
        ready: false,
        failure: Some((reason.to_owned(), message)),
        deleting: false,
    };
    let Some(pool) = pool else {
        return failed(
            "PoolSessionGone",
            "the pool session serving this desktop is gone".into(),
        );
    };
    let status = pool.status.clone().unwrap_or_default();
    match status.phase() {
        SessionPhase::Running if pool.metadata.deletion_timestamp.is_none() => PodView {
            ready: true,
            failure: None,
            deleting: false,
        },
        SessionPhase::Failed => failed(
            status.reason.as_deref().unwrap_or("PoolSessionFailed"),
            status
                .message
                .unwrap_or_else(|| "the pool session serving this desktop failed".into()),
        ),
        phase => failed(
            "PoolSessionEnded",
            format!(
                "the pool session serving this desktop is {}",
                phase.as_str()
            ),
        ),
    }
}

impl VDISessionStatus {
    /// The session claimed the running pool session `pool` (uid `pool_uid`, status
    /// `pool_status`): `Running` at once, reached at its url, on its node and GPU; placed,
    /// applied and ready now.
    pub fn claim(
        &mut self,
        pool: &str,
        pool_uid: &str,
        pool_status: &VDISessionStatus,
        now: Timestamp,
    ) -> String {
        let at = now.to_string();
        self.phase = Some(SessionPhase::Running);
        self.served_by = Some(served_by(pool));
        self.served_by_uid = Some(pool_uid.to_owned());
        self.url.clone_from(&pool_status.url);
        self.node.clone_from(&pool_status.node);
        self.gpu = pool_status.gpu;
        set_once(&mut self.timings.placed, &at);
        set_once(&mut self.timings.objects_applied, &at);
        set_once(&mut self.timings.pod_ready, &at);
        self.started_at = Some(at.clone());
        let message = format!("claimed the warm pool's session {}", served_by(pool));
        self.message = Some(message.clone());
        self.set_condition("Ready", true, "Claimed", &message, &at);
        message
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::session::AdmittedSpec;

    fn pool_session(phase: SessionPhase, claimed: bool) -> VDISession {
        let mut annotations = json!({});
        if claimed {
            annotations = json!({CLAIMED_BY_ANNOTATION: "default.alice"});
        }
        let mut s: VDISession = serde_json::from_value(json!({
            "apiVersion": "vdi.dev/v1alpha1", "kind": "VDISession",
            "metadata": {"name": "p-1", "namespace": POOL_NAMESPACE,
                "labels": {POOL_LABEL: "desk"}, "annotations": annotations},
            "spec": {"user": {"name": "system:vdi-pool"}, "template": "desk"},
        }))
        .unwrap();
        s.status = Some(VDISessionStatus {
            phase: Some(phase),
            url: Some("https://vdi/p-1".into()),
            node: Some("n1".into()),
            gpu: Some(2),
            admitted: Some(AdmittedSpec {
                template: "desk".into(),
                resources: EffectiveResources::default(),
                timeout_seconds: 60,
            }),
            ..VDISessionStatus::default()
        });
        s
    }

    #[test]
    fn only_running_unclaimed_pool_sessions_of_the_template_and_resources_are_claimable() {
        let r = EffectiveResources::default();
        let until = "2026-12-01T11:00:00Z".parse().ok();
        let ok = |s: &VDISession, t: &str, r: &EffectiveResources| claimable(s, t, r, until);
        assert!(ok(&pool_session(SessionPhase::Running, false), "desk", &r));
        assert!(!ok(&pool_session(SessionPhase::Running, true), "desk", &r));
        assert!(!ok(
            &pool_session(SessionPhase::Provisioning, false),
            "desk",
            &r
        ));
        assert!(!ok(
            &pool_session(SessionPhase::Running, false),
            "other",
            &r
        ));
        let more = EffectiveResources { cpu_millis: 1, ..r };
        assert!(!ok(
            &pool_session(SessionPhase::Running, false),
            "desk",
            &more
        ));
        let mut elsewhere = pool_session(SessionPhase::Running, false);
        elsewhere.metadata.namespace = Some("default".into());
        assert!(!ok(&elsewhere, "desk", &r));
        let mut ending = pool_session(SessionPhase::Running, false);
        if let Some(st) = ending.status.as_mut() {
            st.expires_at = Some("2026-12-01T10:30:00Z".into());
        }
        assert!(!ok(&ending, "desk", &r), "it would end before the launch");
        if let Some(st) = ending.status.as_mut() {
            st.expires_at = Some("2026-12-01T12:00:00Z".into());
        }
        assert!(ok(&ending, "desk", &r));
    }

    #[test]
    fn a_claim_runs_the_session_where_the_pool_session_runs() {
        let pool = pool_session(SessionPhase::Running, false);
        let mut status = VDISessionStatus::default();
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        status.claim("p-1", "uid-1", pool.status.as_ref().unwrap(), now);
        assert_eq!(status.phase(), SessionPhase::Running);
        assert_eq!(status.served_by.as_deref(), Some("vdi-pool/p-1"));
        assert_eq!(status.served_by_uid.as_deref(), Some("uid-1"));
        assert_eq!(status.url.as_deref(), Some("https://vdi/p-1"));
        assert_eq!((status.node.as_deref(), status.gpu), (Some("n1"), Some(2)));
        assert_eq!(
            status.timings.pod_ready.as_deref(),
            Some("2026-12-01T10:00:00Z")
        );
        assert_eq!(status.ready_at(), Some(now));
    }

    #[test]
    fn served_by_names_only_pool_sessions() {
        assert_eq!(pool_session_name(&served_by("p-1")), Some("p-1"));
        assert_eq!(pool_session_name("default/p-1"), None);
        assert_eq!(pool_session_name("vdi-pool/"), None);
        assert_eq!(pool_session_name("vdi-pool/a/b"), None);
    }

    #[test]
    fn a_claimed_session_follows_its_pool_session() {
        assert!(pool_view(Some(&pool_session(SessionPhase::Running, true))).ready);
        let failed = pool_view(Some(&pool_session(SessionPhase::Failed, true)));
        assert_eq!(failed.failure.unwrap().0, "PoolSessionFailed");
        assert_eq!(pool_view(None).failure.unwrap().0, "PoolSessionGone");
        let mut going = pool_session(SessionPhase::Running, true);
        going.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-12-01T10:00:00Z".parse().unwrap(),
            ));
        assert_eq!(
            pool_view(Some(&going)).failure.unwrap().0,
            "PoolSessionEnded"
        );
    }
}
