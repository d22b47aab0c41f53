//! RBAC decisions, as kube-apiserver's RBAC authorizer makes them.
//!
//! Owns: matching a request's attributes (user, groups, verb, API group, resource and
//! subresource, namespace, name, or a non-resource path) against Roles, ClusterRoles,
//! RoleBindings and ClusterRoleBindings; ClusterRole aggregation ([`aggregate`]); the default
//! roles and bindings kube-apiserver bootstraps ([`bootstrap_policy`]); the rules a user holds in
//! a namespace ([`Authorizer::rules_for`], for SelfSubjectRulesReview); and the Kubernetes
//! wording of a denial ([`forbidden_message`], [`status_message`]).
//!
//! Does not own: authentication (who the user is and which groups they carry arrives as a
//! [`UserInfo`]), reading RBAC objects from the store or watching them, or HTTP (turning a
//! request into [`Attributes`] and a denial into a 403). Everything here is pure and synchronous.

mod aggregate;
mod attributes;
mod defaults;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::api::authorization::v1::{
    NonResourceRule, ResourceRule, SubjectRulesReviewStatus,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

pub use aggregate::{aggregate, selector_matches};
pub use attributes::{
    AUTHENTICATED_GROUP, Attributes, MASTERS_GROUP, ResourceAttributes, SERVICE_ACCOUNTS_GROUP,
    Target, UNAUTHENTICATED_GROUP, UserInfo, forbidden_message, service_account_username,
    status_message,
};
pub use defaults::{
    AGGREGATE_TO_ADMIN, AGGREGATE_TO_EDIT, AGGREGATE_TO_VIEW, BOOTSTRAPPING_LABEL, BootstrapPolicy,
    RBAC_GROUP, bootstrap_policy,
};
pub use rules::{ALL, rule_allows};

/// The authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Some binding of the user grants a rule that covers the request.
    Allow,
    /// Nothing grants it.
    Deny {
        /// kube-apiserver's text: [`forbidden_message`], followed by `: RBAC: <errors>` when a
        /// binding referred to a role that does not exist.
        reason: String,
    },
}

impl Decision {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow)
    }
}

/// Roles and bindings, indexed for decisions. Rules are used as given: aggregated ClusterRoles
/// must already hold their rules (see [`aggregate`]).
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    /// Role rules by (namespace, name).
    roles: BTreeMap<(String, String), Vec<PolicyRule>>,
    /// ClusterRole rules by name.
    cluster_roles: BTreeMap<String, Vec<PolicyRule>>,
    /// RoleBindings by namespace; those without a namespace apply nowhere and are dropped.
    role_bindings: BTreeMap<String, Vec<RoleBinding>>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
}

/// One step of walking a user's grants.
enum Grant<'a> {
    Rule(&'a PolicyRule),
    /// A binding refers to a role that does not exist (kube-apiserver's error text).
    Missing(String),
}

impl Authorizer {
    /// Indexes the given RBAC objects. Objects without a name are ignored.
    pub fn new(
        roles: impl IntoIterator<Item = Role>,
        cluster_roles: impl IntoIterator<Item = ClusterRole>,
        role_bindings: impl IntoIterator<Item = RoleBinding>,
        cluster_role_bindings: impl IntoIterator<Item = ClusterRoleBinding>,
    ) -> Self {
        let mut this = Self {
            cluster_role_bindings: cluster_role_bindings.into_iter().collect(),
            ..Self::default()
        };
        for role in roles {
            if let (Some(ns), Some(name)) = (role.metadata.namespace, role.metadata.name) {
                this.roles
                    .insert((ns, name), role.rules.unwrap_or_default());
            }
        }
        for role in cluster_roles {
            if let Some(name) = role.metadata.name {
                this.cluster_roles
                    .insert(name, role.rules.unwrap_or_default());
            }
        }
        for binding in role_bindings {
            if let Some(ns) = binding.metadata.namespace.clone() {
                this.role_bindings.entry(ns).or_default().push(binding);
            }
        }
        this
    }

    /// The rules of the Role `namespace/name` (`kind` "Role") or the ClusterRole `name`;
    /// `None` when it does not exist.
    pub fn role_rules(&self, kind: &str, namespace: &str, name: &str) -> Option<&[PolicyRule]> {
        match kind {
            "Role" => self
                .roles
                .get(&(namespace.to_owned(), name.to_owned()))
                .map(Vec::as_slice),
            "ClusterRole" => self.cluster_roles.get(name).map(Vec::as_slice),
            _ => None,
        }
    }

    /// The default policy alone ([`bootstrap_policy`]).
    pub fn bootstrap() -> Self {
        let p = bootstrap_policy();
        Self::new([], p.cluster_roles, [], p.cluster_role_bindings)
    }

    /// Allows the request when a ClusterRoleBinding of the user, or a RoleBinding of the user in
    /// the request's namespace, grants a rule that covers it.
    pub fn authorize(&self, attrs: &Attributes) -> Decision {
        let mut allowed = false;
        let mut errors = Vec::new();
        self.visit(&attrs.user, attrs.namespace(), &mut |grant| match grant {
            Grant::Rule(rule) => {
                allowed = rule_allows(attrs, rule);
                !allowed
            }
            Grant::Missing(error) => {
                errors.push(error);
                true
            }
        });
        if allowed {
            return Decision::Allow;
        }
        let mut reason = forbidden_message(attrs);
        if !errors.is_empty() {
            reason.push_str(": RBAC: ");
            reason.push_str(&aggregate_errors(&errors));
        }
        Decision::Deny { reason }
    }

    /// The rules `user` holds in `namespace` (cluster-wide ones included; an empty namespace
    /// gives the cluster-wide ones only), shaped as a SelfSubjectRulesReview's status. A
    /// binding to a missing role makes it `incomplete` with the error in `evaluationError`.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> SubjectRulesReviewStatus {
        let mut status = SubjectRulesReviewStatus::default();
        let mut errors = Vec::new();
        self.visit(user, namespace, &mut |grant| {
            match grant {
                Grant::Rule(rule) => {
                    if rule.resources.as_ref().is_some_and(|r| !r.is_empty()) {
                        status.resource_rules.push(ResourceRule {
                            verbs: rule.verbs.clone(),
                            api_groups: rule.api_groups.clone(),
                            resources: rule.resources.clone(),
                            resource_names: rule.resource_names.clone(),
                        });
                    }
                    if rule
                        .non_resource_urls
                        .as_ref()
                        .is_some_and(|u| !u.is_empty())
                    {
                        status.non_resource_rules.push(NonResourceRule {
                            verbs: rule.verbs.clone(),
                            non_resource_urls: rule.non_resource_urls.clone(),
                        });
                    }
                }
                Grant::Missing(error) => errors.push(error),
            }
            true
        });
        if !errors.is_empty() {
            status.incomplete = true;
            status.evaluation_error = Some(aggregate_errors(&errors));
        }
        status
    }

    /// Walks the rules granted to `user` (ClusterRoleBindings first, then the RoleBindings of
    /// `namespace` when it is not empty) until `f` answers false.
    fn visit<'a>(&'a self, user: &UserInfo, namespace: &str, f: &mut dyn FnMut(Grant<'a>) -> bool) {
        for binding in &self.cluster_role_bindings {
            if applies_to(user, binding.subjects.as_deref(), "")
                && !self.visit_role(&binding.role_ref, "", f)
            {
                return;
            }
        }
        if namespace.is_empty() {
            return;
        }
        for binding in self.role_bindings.get(namespace).into_iter().flatten() {
            if applies_to(user, binding.subjects.as_deref(), namespace)
                && !self.visit_role(&binding.role_ref, namespace, f)
            {
                return;
            }
        }
    }

    /// Visits the rules of the role `role_ref` names, a Role looked up in `namespace`.
    fn visit_role<'a>(
        &'a self,
        role_ref: &RoleRef,
        namespace: &str,
        f: &mut dyn FnMut(Grant<'a>) -> bool,
    ) -> bool {
        let rules = match role_ref.kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(&role_ref.name).ok_or_else(|| {
                format!(
                    "clusterrole.rbac.authorization.k8s.io {:?} not found",
                    role_ref.name
                )
            }),
            "Role" => self
                .roles
                .get(&(namespace.to_owned(), role_ref.name.clone()))
                .ok_or_else(|| {
                    format!(
                        "role.rbac.authorization.k8s.io {:?} not found",
                        role_ref.name
                    )
                }),
            other => Err(format!("unsupported role reference kind: {other:?}")),
        };
        match rules {
            Ok(rules) => rules.iter().all(|rule| f(Grant::Rule(rule))),
            Err(error) => f(Grant::Missing(error)),
        }
    }
}

/// Whether one of `subjects` is `user`: by name, by group, or as a service account (whose
/// namespace defaults to the binding's for RoleBindings).
fn applies_to(user: &UserInfo, subjects: Option<&[Subject]>, binding_namespace: &str) -> bool {
    subjects
        .into_iter()
        .flatten()
        .any(|subject| match subject.kind.as_str() {
            "User" => user.name == subject.name,
            "Group" => user.in_group(&subject.name),
            "ServiceAccount" => {
                let ns = subject
                    .namespace
                    .as_deref()
                    .filter(|ns| !ns.is_empty())
                    .unwrap_or(binding_namespace);
                !ns.is_empty() && user.name == service_account_username(ns, &subject.name)
            }
            _ => false,
        })
}

/// Errors joined as Kubernetes' `utilerrors.NewAggregate` prints them.
fn aggregate_errors(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}
