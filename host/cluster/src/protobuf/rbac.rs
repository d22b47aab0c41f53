//! `rbac.authorization.k8s.io/v1`: Role, ClusterRole, RoleBinding, ClusterRoleBinding.

use k8s_pb::api::rbac::v1 as rbac;

use super::fields::{Converted, Obj};
use super::meta::{label_selector, object};

/// Role (`kubectl create role`).
pub(super) fn role(mut r: rbac::Role) -> Converted {
    let mut o = object(r.metadata.take())?;
    o.list("rules", &mut r.rules, rule)?;
    o.done(r, "Role")
}

/// ClusterRole (`kubectl create clusterrole`, with `--aggregation-rule`).
pub(super) fn cluster_role(mut r: rbac::ClusterRole) -> Converted {
    let mut o = object(r.metadata.take())?;
    o.list("rules", &mut r.rules, rule)?;
    o.obj("aggregationRule", &mut r.aggregation_rule, |mut a| {
        let mut o = Obj::default();
        o.list(
            "clusterRoleSelectors",
            &mut a.cluster_role_selectors,
            label_selector,
        )?;
        o.done(a, "AggregationRule")
    })?;
    o.done(r, "ClusterRole")
}

/// RoleBinding (`kubectl create rolebinding`).
pub(super) fn role_binding(mut b: rbac::RoleBinding) -> Converted {
    let mut o = object(b.metadata.take())?;
    o.list("subjects", &mut b.subjects, subject)?;
    o.obj("roleRef", &mut b.role_ref, role_ref)?;
    o.done(b, "RoleBinding")
}

/// ClusterRoleBinding (`kubectl create clusterrolebinding`).
pub(super) fn cluster_role_binding(mut b: rbac::ClusterRoleBinding) -> Converted {
    let mut o = object(b.metadata.take())?;
    o.list("subjects", &mut b.subjects, subject)?;
    o.obj("roleRef", &mut b.role_ref, role_ref)?;
    o.done(b, "ClusterRoleBinding")
}

fn rule(mut r: rbac::PolicyRule) -> Converted {
    let mut o = Obj::default();
    o.strs("verbs", &mut r.verbs);
    o.strs("apiGroups", &mut r.api_groups);
    o.strs("resources", &mut r.resources);
    o.strs("resourceNames", &mut r.resource_names);
    o.strs("nonResourceURLs", &mut r.non_resource_ur_ls);
    o.done(r, "PolicyRule")
}

fn subject(mut s: rbac::Subject) -> Converted {
    let mut o = Obj::default();
    o.str("kind", &mut s.kind);
    o.str("apiGroup", &mut s.api_group);
    o.str("name", &mut s.name);
    o.str("namespace", &mut s.namespace);
    o.done(s, "Subject")
}

fn role_ref(mut r: rbac::RoleRef) -> Converted {
    let mut o = Obj::default();
    o.str("apiGroup", &mut r.api_group);
    o.str("kind", &mut r.kind);
    o.str("name", &mut r.name);
    o.done(r, "RoleRef")
}
