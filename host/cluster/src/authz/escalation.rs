//! RBAC's escalation prevention: nobody grants, through a Role, a ClusterRole or a binding, a
//! permission they do not hold themselves, unless RBAC gives them `escalate` on the role (to
//! write it) or `bind` on it (to bind it), as kube-apiserver's RBAC storage enforces.
//!
//! A rule counts as held when every request it covers is allowed to the writer. Wildcards are
//! checked as wildcards (granting `*` takes holding `*`), which is what kube-apiserver's rule
//! coverage amounts to for them.

use std::sync::{Arc, Weak};

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use serde_json::Value;

use super::RbacCache;
use crate::admission::{AdmissionHook, Operation, Requester};
use crate::error::{ApiError, Result};
use crate::rbac::RBAC_GROUP as RBAC;
use crate::rbac::{Attributes, Authorizer, UserInfo};
use crate::resources::ResourceType;
use crate::store::Store;

/// The admission hook that refuses RBAC writes granting more than the writer holds.
pub struct EscalationCheck {
    store: Weak<Store>,
    rbac: Arc<RbacCache>,
}

impl EscalationCheck {
    /// Checks writes to `store` against the authorizer `rbac` builds from it.
    pub fn new(store: &Arc<Store>, rbac: Arc<RbacCache>) -> Self {
        Self {
            store: Arc::downgrade(store),
            rbac,
        }
    }
}

impl AdmissionHook for EscalationCheck {
    fn handles(&self, rt: &ResourceType) -> bool {
        rt.group == RBAC
    }

    fn admit(
        &self,
        _op: Operation,
        requester: &Requester,
        rt: &ResourceType,
        obj: &mut Value,
        _old: Option<&Value>,
    ) -> Result<()> {
        let Some(store) = self.store.upgrade() else {
            return Ok(());
        };
        let authorizer = self.rbac.authorizer(&store);
        let user = UserInfo::new(requester.user.clone(), requester.groups.clone());
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let parse_error = |e: serde_json::Error| ApiError::BadRequest(format!("{}: {e}", rt.kind));
        let may = |verb: &str, resource: &str, ns: &str, role: &str| {
            authorizer
                .authorize(
                    &Attributes::resource(user.clone(), verb, RBAC, resource)
                        .in_namespace(ns)
                        .named(role),
                )
                .is_allowed()
        };
        let (rules, scope, exempt) = match rt.plural.as_str() {
            "roles" => {
                let role: Role = serde_json::from_value(obj.clone()).map_err(parse_error)?;
                (
                    role.rules.unwrap_or_default(),
                    ns.clone(),
                    may("escalate", "roles", &ns, &name),
                )
            }
            "clusterroles" => {
                let role: ClusterRole = serde_json::from_value(obj.clone()).map_err(parse_error)?;
                let escalate = may("escalate", "clusterroles", "", &name);
                if role.aggregation_rule.is_some() && !escalate {
                    return Err(refusal(rt, &name, &user, "an aggregation rule"));
                }
                (role.rules.unwrap_or_default(), String::new(), escalate)
            }
            "rolebindings" => {
                let binding: RoleBinding =
                    serde_json::from_value(obj.clone()).map_err(parse_error)?;
                let role_ref = binding.role_ref;
                let plural = role_plural(&role_ref.kind);
                let bind = may("bind", plural, &ns, &role_ref.name);
                let rules = role_rules(&authorizer, rt, &role_ref.kind, &ns, &role_ref.name, bind)?;
                (rules, ns.clone(), bind)
            }
            "clusterrolebindings" => {
                let binding: ClusterRoleBinding =
                    serde_json::from_value(obj.clone()).map_err(parse_error)?;
                let role_ref = binding.role_ref;
                if role_ref.kind != "ClusterRole" {
                    return Err(ApiError::Invalid {
                        kind: rt.kind.clone(),
                        name,
                        field: "roleRef.kind".into(),
                        reason: "must be ClusterRole".into(),
                    });
                }
                let bind = may("bind", "clusterroles", "", &role_ref.name);
                let rules = role_rules(&authorizer, rt, "ClusterRole", "", &role_ref.name, bind)?;
                (rules, String::new(), bind)
            }
            _ => return Ok(()),
        };
        if exempt {
            return Ok(());
        }
        let missing: Vec<&PolicyRule> = rules
            .iter()
            .filter(|rule| !held(&authorizer, &user, &scope, rule))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let listed: Vec<String> = missing.iter().map(|r| describe(r)).collect();
        Err(refusal(
            rt,
            &name,
            &user,
            &format!("permissions not currently held:\n{}", listed.join("\n")),
        ))
    }
}

fn role_plural(kind: &str) -> &'static str {
    if kind == "Role" {
        "roles"
    } else {
        "clusterroles"
    }
}

/// The rules of the role a binding names. A role that does not exist yet may be bound only by
/// whoever may `bind` it: otherwise the binding would grant, unchecked, whatever the role is
/// later created with (kube-apiserver refuses it the same way).
fn role_rules(
    authorizer: &Authorizer,
    rt: &ResourceType,
    kind: &str,
    ns: &str,
    name: &str,
    bind: bool,
) -> Result<Vec<PolicyRule>> {
    match authorizer.role_rules(kind, ns, name) {
        Some(rules) => Ok(rules.to_vec()),
        None if bind => Ok(Vec::new()),
        None => Err(ApiError::Forbidden(format!(
            "{}.{RBAC} is forbidden: the {kind} {name:?} it binds does not exist, and only who may \
             bind it may bind it before it exists",
            rt.plural
        ))),
    }
}

/// Whether `user` may make every request `rule` covers, in `ns` ("" for the cluster scope).
fn held(authorizer: &Authorizer, user: &UserInfo, ns: &str, rule: &PolicyRule) -> bool {
    let empty = Vec::new();
    let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
    let allowed = |attrs: Attributes| authorizer.authorize(&attrs).is_allowed();
    let urls = rule.non_resource_urls.as_ref().unwrap_or(&empty);
    let urls_held = urls.iter().all(|url| {
        rule.verbs
            .iter()
            .all(|verb| allowed(Attributes::non_resource(user.clone(), verb, url)))
    });
    let names = match list(&rule.resource_names) {
        names if names.is_empty() => vec![String::new()],
        names => names,
    };
    let resources_held = list(&rule.api_groups).iter().all(|group| {
        list(&rule.resources).iter().all(|resource| {
            rule.verbs.iter().all(|verb| {
                names.iter().all(|name| {
                    allowed(
                        Attributes::resource(user.clone(), verb, group, resource)
                            .in_namespace(ns)
                            .named(name),
                    )
                })
            })
        })
    });
    urls_held && resources_held
}

/// A rule as kube-apiserver lists it in the refusal.
fn describe(rule: &PolicyRule) -> String {
    let quoted = |v: &Option<Vec<String>>| {
        v.as_deref()
            .unwrap_or_default()
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut parts = Vec::new();
    for (label, values) in [
        ("APIGroups", &rule.api_groups),
        ("Resources", &rule.resources),
        ("ResourceNames", &rule.resource_names),
        ("NonResourceURLs", &rule.non_resource_urls),
    ] {
        if values.as_ref().is_some_and(|v| !v.is_empty()) {
            parts.push(format!("{label}:[{}]", quoted(values)));
        }
    }
    parts.push(format!("Verbs:[{}]", quoted(&Some(rule.verbs.clone()))));
    format!("{{{}}}", parts.join(", "))
}

fn refusal(rt: &ResourceType, name: &str, user: &UserInfo, what: &str) -> ApiError {
    ApiError::Forbidden(format!(
        "{}.{RBAC} {name:?} is forbidden: user {:?} (groups={:?}) is attempting to grant RBAC {what}",
        rt.plural, user.name, user.groups
    ))
}
