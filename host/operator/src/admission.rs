//! Admission of `VDISession` requests through the plugin chain, shared by the validating and
//! mutating webhook (real clusters), the embedded control plane's in-process hook, and the
//! session controller (which records the decisions in the session's status).

use serde_json::Value;
use vdi_crd::change::{frozen_change, frozen_message};
use vdi_crd::{
    AdmittedSpec, DecisionRecord, SESSION_FINALIZER, SessionPhase, SessionUser, VDISession,
    VDISessionSpec, VDITemplateSpec,
};
use vdi_plugin_host::ChainVerdict;
use vdi_plugin_host::types::AdmissionContext;

use crate::registry::PluginSet;
use crate::wit;

/// Groups whose members may create sessions for other users by default (cluster admins,
/// session admins and the platform admins of `deploy/rbac/users.yaml`, as OIDC names them).
pub const TRUSTED_GROUPS: &[&str] = &["system:masters", "vdi:session-admins", "oidc:vdi-admins"];
/// Service accounts that may by default: the dashboard API (it acts for its users) and the
/// operator itself.
pub const TRUSTED_SERVICE_ACCOUNTS: &[&str] = &[
    "system:serviceaccount:vdi-system:vdi-api",
    "system:serviceaccount:vdi-system:vdi-operator",
];

/// Who admission trusts to name another user in `spec.user`; everyone else gets (on the
/// mutating path) or must give (on the validating path) their own identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionSettings {
    /// Groups whose members are trusted.
    pub trusted_groups: Vec<String>,
    /// Trusted users by full name, e.g. `system:serviceaccount:vdi-system:vdi-api`. Listed one
    /// by one: other service accounts of the same namespace are not trusted.
    pub trusted_service_accounts: Vec<String>,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        Self {
            trusted_groups: owned(TRUSTED_GROUPS),
            trusted_service_accounts: owned(TRUSTED_SERVICE_ACCOUNTS),
        }
    }
}

impl AdmissionSettings {
    /// Whether `requester` may name another user in `spec.user`.
    pub fn trusts(&self, requester: &Requester) -> bool {
        requester
            .groups
            .iter()
            .any(|g| self.trusted_groups.contains(g))
            || self.trusted_service_accounts.contains(&requester.user)
    }
}

/// Where admission reads what it needs besides the request.
pub trait AdmissionSources: Send + Sync {
    /// The template called `name`.
    fn template(&self, name: &str) -> Option<VDITemplateSpec>;
    /// The sessions `user` has, as `(namespace, name, spec, phase)`.
    fn sessions_of(&self, user: &str) -> Vec<(String, String, VDISessionSpec, SessionPhase)>;
}

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// User name.
    pub user: String,
    /// Groups.
    pub groups: Vec<String>,
}

impl Requester {
    /// Whether `user` names this requester (the same name and the same set of groups).
    fn is(&self, user: &SessionUser) -> bool {
        let mut mine = self.groups.clone();
        let mut theirs = user.groups.clone();
        mine.sort();
        theirs.sort();
        user.name == self.user && mine == theirs
    }
}

/// The chain's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Review {
    /// Admitted, with the spec to store (changed when a plugin mutated it).
    Allowed {
        /// The spec, mutations applied.
        spec: VDISessionSpec,
        /// The values scheduling and rendering use.
        admitted: AdmittedSpec,
        /// Plugin decisions.
        decisions: Vec<DecisionRecord>,
    },
    /// Refused.
    Denied {
        /// One CamelCase word (`AdmissionDenied`, `PluginFailed`, `TemplateNotFound`, ...).
        reason: String,
        /// For the user.
        message: String,
        /// Plugin decisions.
        decisions: Vec<DecisionRecord>,
    },
}

/// Runs the chain in `set` over a session request.
pub fn review(
    set: &PluginSet,
    sources: &dyn AdmissionSources,
    create: bool,
    name: &str,
    namespace: &str,
    spec: &VDISessionSpec,
    labels: Vec<(String, String)>,
) -> Review {
    let deny = |reason: &str, message: String| Review::Denied {
        reason: reason.into(),
        message,
        decisions: Vec::new(),
    };
    let Some(template) = sources.template(&spec.template) else {
        return deny(
            "TemplateNotFound",
            format!(
                "spec.template: VDITemplate {:?} does not exist",
                spec.template
            ),
        );
    };
    let request = match wit::session_request(name, namespace, spec, labels, Some(&template)) {
        Ok(r) => r,
        Err(e) => return deny("Invalid", e),
    };
    let active_sessions = sources
        .sessions_of(&spec.user.name)
        .into_iter()
        .filter(|(ns, n, _, phase)| !phase.is_final() && (ns != namespace || n != name))
        .map(|(_, n, s, _)| wit::active_session(n, &s, sources.template(&s.template).as_ref()))
        .collect();
    let context = AdmissionContext {
        operation: wit::operation(create),
        active_sessions,
    };
    let outcome = set
        .chain_for(&spec.template, namespace)
        .review(&request, &context);
    let decisions: Vec<DecisionRecord> =
        outcome.decisions.iter().map(wit::decision_record).collect();
    match outcome.verdict {
        ChainVerdict::Allowed { spec: admitted, .. } => {
            let (spec, admitted) = wit::admitted_spec(spec, &request.spec.resources, admitted);
            Review::Allowed {
                spec,
                admitted,
                decisions,
            }
        }
        ChainVerdict::Denied { plugin, reason } => Review::Denied {
            reason: "AdmissionDenied".into(),
            message: format!("denied by plugin {plugin}: {reason}"),
            decisions,
        },
        ChainVerdict::Failed { plugin, error } => Review::Denied {
            reason: "PluginFailed".into(),
            message: format!("plugin {plugin} failed (failurePolicy Fail): {error}"),
            decisions,
        },
    }
}

/// Why an object is refused: HTTP status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 403 for a policy denial, 422 for an invalid object.
    pub code: u16,
    /// For the user.
    pub message: String,
}

/// What admission of a `VDISession` write judges with.
#[derive(Clone, Copy)]
pub struct Admission<'a> {
    /// The plugins in force.
    pub set: &'a PluginSet,
    /// Templates and the user's sessions.
    pub sources: &'a dyn AdmissionSources,
    /// Who is trusted to act for others.
    pub settings: &'a AdmissionSettings,
}

impl Admission<'_> {
    /// The mutating path: admits a `VDISession` object (as JSON), mutating it in place.
    /// Untrusted requesters creating a session get their own identity in `spec.user`.
    pub fn mutate(
        &self,
        requester: &Requester,
        create: bool,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), Refusal> {
        self.judge(requester, create, obj, old, true)
    }

    /// The validating path: refuses what the mutating path would have had to change about the
    /// requester's identity (an untrusted requester naming someone else in `spec.user`) and
    /// what the plugins deny. `obj` may come back mutated; the caller does not apply it.
    pub fn validate(
        &self,
        requester: &Requester,
        create: bool,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), Refusal> {
        self.judge(requester, create, obj, old, false)
    }

    /// Updates that leave the spec alone are not re-judged, but an admitted session may change
    /// nothing but `spec.timeout` (labels included). `stamp` says whether an untrusted
    /// requester's identity is written into a new session (else a different one is refused).
    fn judge(
        &self,
        requester: &Requester,
        create: bool,
        obj: &mut Value,
        old: Option<&Value>,
        stamp: bool,
    ) -> Result<(), Refusal> {
        let invalid = |message: String| Refusal { code: 422, message };
        let old = old.filter(|_| !create);
        let same = |o: &Value, path: &str| o.pointer(path) == obj.pointer(path);
        if old.is_some_and(|o| same(o, "/spec") && same(o, "/metadata/labels")) {
            return Ok(());
        }
        let old = match old {
            Some(o) => Some((
                o,
                serde_json::from_value::<VDISession>(o.clone())
                    .map_err(|e| invalid(format!("old VDISession: {e}")))?,
            )),
            None => None,
        };
        let mut session: VDISession =
            serde_json::from_value(obj.clone()).map_err(|e| invalid(format!("VDISession: {e}")))?;
        if let Some((_, old)) = &old {
            match frozen_change(old, &session) {
                // Never changes, admitted or not: `check_user` says so below.
                None | Some("spec.user") => {}
                Some(field) => return Err(invalid(frozen_message(field))),
            }
        }
        if old.as_ref().is_some_and(|(o, _)| same(o, "/spec")) {
            return Ok(());
        }
        let old_user = old.map(|(_, o)| o.spec.user);
        check_user(
            self.settings,
            requester,
            &mut session.spec.user,
            old_user.as_ref(),
            stamp,
        )?;
        let name = session.metadata.name.clone().unwrap_or_default();
        let namespace = session.metadata.namespace.clone().unwrap_or_default();
        check_pool_identity(&namespace, &session.spec.user)?;
        let labels = wit::labels_of(session.metadata.labels.as_ref());
        match review(
            self.set,
            self.sources,
            create,
            &name,
            &namespace,
            &session.spec,
            labels,
        ) {
            Review::Allowed { spec, .. } => {
                obj["spec"] = serde_json::to_value(&spec).map_err(|e| invalid(e.to_string()))?;
                if create && stamp {
                    add_finalizer(obj).map_err(invalid)?;
                }
                Ok(())
            }
            Review::Denied {
                reason, message, ..
            } => Err(Refusal {
                code: if reason == "Invalid" || reason == "TemplateNotFound" {
                    422
                } else {
                    403
                },
                message,
            }),
        }
    }
}

/// Puts the session's cleanup finalizer on a new session, as a mutating webhook may: the
/// operator would otherwise spend its first write on it. (It still adds it to a session that
/// came in without, e.g. while no mutating webhook was configured.)
fn add_finalizer(obj: &mut Value) -> Result<(), String> {
    let meta = obj
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or("metadata: must be an object")?;
    let list = meta
        .entry("finalizers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if list.is_null() {
        *list = Value::Array(Vec::new());
    }
    let list = list
        .as_array_mut()
        .ok_or("metadata.finalizers: must be a list")?;
    if !list.iter().any(|f| f == SESSION_FINALIZER) {
        list.push(Value::String(SESSION_FINALIZER.to_owned()));
    }
    Ok(())
}

/// The rules on `spec.user`: it never changes once the session exists (whoever asks); an
/// untrusted requester may only change their own session, and may only create one for
/// themselves (`stamp`: their identity is written in; else another identity is refused).
fn check_user(
    settings: &AdmissionSettings,
    requester: &Requester,
    user: &mut SessionUser,
    old: Option<&SessionUser>,
    stamp: bool,
) -> Result<(), Refusal> {
    let forbidden = |message: String| Refusal { code: 403, message };
    if let Some(old) = old {
        if old != user {
            return Err(Refusal {
                code: 422,
                message: "spec.user is immutable".into(),
            });
        }
        if !settings.trusts(requester) && user.name != requester.user {
            return Err(forbidden(format!(
                "spec.user: the session belongs to {:?}; {:?} may not change it",
                user.name, requester.user
            )));
        }
        return Ok(());
    }
    if settings.trusts(requester) || requester.is(user) {
        return Ok(());
    }
    if stamp {
        user.name.clone_from(&requester.user);
        user.groups.clone_from(&requester.groups);
        return Ok(());
    }
    Err(forbidden(format!(
        "spec.user: {:?} (groups {:?}) is not the requester {:?} (groups {:?}); only trusted \
         accounts may create sessions for others",
        user.name, user.groups, requester.user, requester.groups
    )))
}

/// The warm pool's identity runs the pool's sessions only, and they run as it only: a pool
/// session in `vdi-pool` names [`vdi_crd::POOL_USER`], and no session elsewhere does (the quota
/// settings let the pool identity start every template).
fn check_pool_identity(namespace: &str, user: &SessionUser) -> Result<(), Refusal> {
    let pool = vdi_crd::POOL_USER;
    let in_pool = namespace == vdi_crd::POOL_NAMESPACE;
    let as_pool = user.name == pool || user.groups.iter().any(|g| g == pool);
    let refuse = |message: String| Err(Refusal { code: 403, message });
    match (in_pool, as_pool) {
        (true, false) => refuse(format!(
            "spec.user: sessions in {} run as {pool} only",
            vdi_crd::POOL_NAMESPACE
        )),
        (false, true) => refuse(format!(
            "spec.user: {pool} runs only the warm pool's sessions (namespace {})",
            vdi_crd::POOL_NAMESPACE
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> SessionUser {
        SessionUser {
            name: name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    #[test]
    fn new_sessions_get_the_cleanup_finalizer_once_and_keep_others() {
        let mut obj = serde_json::json!({"metadata": {"name": "s"}});
        add_finalizer(&mut obj).unwrap();
        add_finalizer(&mut obj).unwrap();
        assert_eq!(
            obj["metadata"]["finalizers"],
            serde_json::json!([SESSION_FINALIZER])
        );
        let mut obj = serde_json::json!({"metadata": {"finalizers": ["x.example/hold"]}});
        add_finalizer(&mut obj).unwrap();
        assert_eq!(
            obj["metadata"]["finalizers"],
            serde_json::json!(["x.example/hold", SESSION_FINALIZER])
        );
        let mut bad = serde_json::json!({"metadata": {"finalizers": "x"}});
        assert_eq!(
            add_finalizer(&mut bad).unwrap_err(),
            "metadata.finalizers: must be a list"
        );
        assert!(add_finalizer(&mut serde_json::json!({"metadata": 1})).is_err());
    }

    #[test]
    fn only_the_pool_runs_in_the_pool_namespace_and_nowhere_else() {
        let pool = user("system:vdi-pool", &["system:vdi-pool"]);
        assert!(check_pool_identity("vdi-pool", &pool).is_ok());
        assert!(check_pool_identity("default", &user("alice", &["staff"])).is_ok());
        let refused = check_pool_identity("default", &pool).unwrap_err();
        assert_eq!(refused.code, 403);
        assert!(refused.message.starts_with("spec.user:"));
        assert!(check_pool_identity("vdi-pool", &user("alice", &[])).is_err());
        assert!(check_pool_identity("default", &user("alice", &["system:vdi-pool"])).is_err());
    }
}
