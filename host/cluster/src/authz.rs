//! Authorization on the request path: the RBAC [`Authorizer`] built from the stored Roles,
//! ClusterRoles and bindings (rebuilt when one of them changes), impersonation authorized by
//! RBAC, and the access reviews (`kubectl auth can-i`).
//!
//! The decisions themselves are [`crate::rbac`]'s; this module reads the store and the request.

pub mod aggregation;
mod escalation;
mod request;
mod reviews;

use std::sync::{Arc, Mutex, RwLock};

use axum::http::HeaderMap;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;

use crate::authn::ANONYMOUS_USER;
use crate::error::{ApiError, Result};
use crate::rbac::RBAC_GROUP as RBAC;
use crate::rbac::{
    AUTHENTICATED_GROUP, Attributes, Authorizer, Decision, MASTERS_GROUP, UNAUTHENTICATED_GROUP,
    UserInfo, aggregate, bootstrap_policy, status_message,
};
use crate::store::Store;

pub use escalation::EscalationCheck;
pub use request::request_attributes;
pub(crate) use reviews::review;

/// Identities of the cluster itself.
const RESERVED_PREFIX: &str = "system:";

/// The storage keys of the RBAC kinds: a change to any of them rebuilds the authorizer.
const RBAC_KEYS: [&str; 4] = [
    "roles.rbac.authorization.k8s.io",
    "clusterroles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
];

/// How requests are authorized (kube-apiserver's `--authorization-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthorizationMode {
    /// Kubernetes RBAC from the stored Roles, ClusterRoles and bindings.
    #[default]
    Rbac,
    /// Everything authenticated is allowed: for measuring what RBAC costs, never for serving.
    AlwaysAllow,
}

/// The authorizer for the store's current RBAC objects, rebuilt only when they change.
#[derive(Default)]
pub struct RbacCache {
    built: RwLock<Option<(u64, Arc<Authorizer>)>>,
    rebuilding: Mutex<()>,
    mode: AuthorizationMode,
}

impl std::fmt::Debug for RbacCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RbacCache").finish_non_exhaustive()
    }
}

impl RbacCache {
    /// A cache that decides in `mode`.
    pub fn new(mode: AuthorizationMode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// The authorizer for what `store` holds now.
    pub fn authorizer(&self, store: &Store) -> Arc<Authorizer> {
        let version = store.changed_at(&RBAC_KEYS);
        if let Some((built_at, authorizer)) = &*self
            .built
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            && *built_at == version
        {
            return authorizer.clone();
        }
        // One rebuild at a time: a burst of RBAC writes must not make every request rebuild.
        let _rebuilding = self
            .rebuilding
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let version = store.changed_at(&RBAC_KEYS);
        if let Some((built_at, authorizer)) = &*self
            .built
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            && *built_at == version
        {
            return authorizer.clone();
        }
        let authorizer = Arc::new(build(store));
        *self
            .built
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((version, authorizer.clone()));
        authorizer
    }

    /// Allows `attrs` or answers kube-apiserver's 403 (401 for an anonymous request, which
    /// may only reach what RBAC grants `system:unauthenticated`).
    pub fn check(&self, store: &Store, attrs: &Attributes) -> Result<()> {
        if self.mode == AuthorizationMode::AlwaysAllow {
            return Ok(());
        }
        match self.authorizer(store).authorize(attrs) {
            Decision::Allow => Ok(()),
            Decision::Deny { .. } if attrs.user.name == ANONYMOUS_USER => {
                Err(ApiError::Unauthorized)
            }
            Decision::Deny { reason } => Err(ApiError::Forbidden(status_message(attrs, &reason))),
        }
    }
}

/// Reads every stored RBAC object (one that does not parse is logged and left out, never a
/// reason to deny everything), aggregates the ClusterRoles and indexes the result.
fn build(store: &Store) -> Authorizer {
    let mut cluster_roles: Vec<ClusterRole> = objects(store, "clusterroles");
    aggregate(&mut cluster_roles);
    Authorizer::new(
        objects::<Role>(store, "roles"),
        cluster_roles,
        objects::<RoleBinding>(store, "rolebindings"),
        objects::<ClusterRoleBinding>(store, "clusterrolebindings"),
    )
}

fn objects<T: DeserializeOwned>(store: &Store, plural: &str) -> Vec<T> {
    let Some(rt) = store.registry.find(RBAC, "v1", plural) else {
        return Vec::new();
    };
    let (items, _, _) = store.list(&rt, None, None, None, &|_| true);
    items
        .into_iter()
        .filter_map(|item| {
            serde_json::from_value(item.clone())
                .inspect_err(|e| {
                    tracing::warn!(
                        resource = plural,
                        name = item["metadata"]["name"].as_str().unwrap_or_default(),
                        error = %e,
                        "RBAC object ignored: it does not parse"
                    );
                })
                .ok()
        })
        .collect()
}

/// Creates the default ClusterRoles and ClusterRoleBindings that are missing (as
/// kube-apiserver's bootstrap-roles post-start hook does); existing ones are left as they are.
pub fn seed_bootstrap_policy(store: &Store) -> Result<()> {
    let policy = bootstrap_policy();
    let ensure = |plural: &str, obj: serde_json::Value| -> Result<()> {
        let rt = store
            .registry
            .find(RBAC, "v1", plural)
            .ok_or_else(|| ApiError::Internal(format!("{plural} are not served")))?;
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        if store.get(&rt, "", name).is_ok() {
            return Ok(());
        }
        match store.create(&rt, "", obj) {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    };
    let as_json = |kind: &str, v: serde_json::Result<serde_json::Value>| {
        v.map(|mut obj| {
            obj["apiVersion"] = format!("{RBAC}/v1").into();
            obj["kind"] = kind.into();
            obj
        })
        .map_err(|e| ApiError::Internal(e.to_string()))
    };
    for role in &policy.cluster_roles {
        ensure(
            "clusterroles",
            as_json("ClusterRole", serde_json::to_value(role))?,
        )?;
    }
    for binding in &policy.cluster_role_bindings {
        ensure(
            "clusterrolebindings",
            as_json("ClusterRoleBinding", serde_json::to_value(binding))?,
        )?;
    }
    Ok(())
}

/// The identity a request acts as: `user` itself, or the user its `Impersonate-*` headers name
/// when RBAC grants `user` the `impersonate` verb on that user (or service account), on each
/// group and on the uid. A denial is kube-apiserver's 403.
pub fn impersonate(
    rbac: &RbacCache,
    store: &Store,
    user: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo> {
    let values = |name: &str| -> Result<Vec<String>> {
        headers
            .get_all(name)
            .iter()
            .map(|v| {
                v.to_str().map(str::to_owned).map_err(|_| {
                    ApiError::BadRequest(format!("the {name} header is not valid text"))
                })
            })
            .collect()
    };
    // An empty Impersonate-User is no impersonation (as kube-apiserver reads it); empty groups
    // or uids are refused.
    let users: Vec<String> = values("impersonate-user")?
        .into_iter()
        .filter(|u| !u.is_empty())
        .collect();
    let groups = values("impersonate-group")?;
    let uids = values("impersonate-uid")?;
    if groups.iter().chain(&uids).any(String::is_empty) {
        return Err(ApiError::BadRequest(
            "an Impersonate-Group or Impersonate-Uid header is empty".into(),
        ));
    }
    let extras: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| {
            let key = name.as_str().strip_prefix("impersonate-extra-")?;
            Some(
                value
                    .to_str()
                    .map(|v| (key.to_owned(), v.to_owned()))
                    .map_err(|_| {
                        ApiError::BadRequest(format!("the {name} header is not valid text"))
                    }),
            )
        })
        .collect::<Result<_>>()?;
    let Some(target) = users.first() else {
        if groups.is_empty() && uids.is_empty() && extras.is_empty() {
            return Ok(user);
        }
        return Err(ApiError::BadRequest(
            "impersonating groups, a uid or extra fields requires impersonating a user".into(),
        ));
    };
    if users.len() > 1 {
        return Err(ApiError::BadRequest(
            "only one Impersonate-User header may be sent".into(),
        ));
    }
    // The cluster's own identities (`system:admin`, `system:masters`, nodes, ...) may be taken on
    // only by those who hold them all already: a grant of `impersonate` on every user and group
    // (what an API server acting for its users needs) must not reach cluster-admin. Stricter
    // than kube-apiserver, where only resourceNames would stop it. Service accounts are named by
    // the serviceaccounts check below.
    let reserved = |name: &str| {
        name.starts_with(RESERVED_PREFIX) && !name.starts_with("system:serviceaccount:")
    };
    if !user.in_group(MASTERS_GROUP)
        && (reserved(target)
            || groups
                .iter()
                .any(|g| reserved(g) && g != AUTHENTICATED_GROUP))
    {
        return Err(ApiError::Forbidden(format!(
            "User {:?} cannot impersonate the reserved identity {target:?} (groups {groups:?}):              only members of system:masters may impersonate system: users and groups",
            user.name
        )));
    }
    let may = |resource: &str, namespace: &str, name: &str| {
        let attrs = Attributes::resource(user.clone(), "impersonate", "", resource)
            .in_namespace(namespace)
            .named(name);
        rbac.check(store, &attrs)
    };
    let service_account = target
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'));
    match service_account {
        Some((ns, name)) => may("serviceaccounts", ns, name)?,
        None => may("users", "", target)?,
    }
    for group in &groups {
        may("groups", "", group)?;
    }
    for uid in &uids {
        may("uids", "", uid)?;
    }
    for (key, value) in &extras {
        may(&format!("userextras/{key}"), "", value)?;
    }
    let mut impersonated = match (service_account, groups.is_empty()) {
        (Some((ns, name)), true) => UserInfo::service_account(ns, name),
        _ => UserInfo::new(target.clone(), groups),
    };
    let implied = if impersonated.name == ANONYMOUS_USER {
        UNAUTHENTICATED_GROUP
    } else {
        AUTHENTICATED_GROUP
    };
    if !impersonated.in_group(implied) {
        impersonated.groups.push(implied.to_owned());
    }
    Ok(impersonated)
}

#[cfg(test)]
mod tests;
