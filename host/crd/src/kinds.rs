//! The kinds of object a session may own: what template plugins may render, what the operator
//! applies, deletes and sweeps, and what its RBAC grants. One list, so they cannot drift apart.

/// A kind of object a session may own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKind {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Resource name (what RBAC rules and URLs say).
    pub plural: &'static str,
}

impl SessionKind {
    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
) -> SessionKind {
    SessionKind {
        group,
        version,
        kind,
        plural,
    }
}

/// Every kind a session may own (kinds a cluster does not serve are skipped where listed).
pub const SESSION_KINDS: &[SessionKind] = &[
    kind("", "v1", "Pod", "pods"),
    kind("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    kind("", "v1", "Service", "services"),
    kind("", "v1", "ConfigMap", "configmaps"),
    kind(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
    ),
    kind("traefik.io", "v1alpha1", "IngressRoute", "ingressroutes"),
    // Traefik before v3 serves IngressRoute under its old group.
    kind(
        "traefik.containo.us",
        "v1alpha1",
        "IngressRoute",
        "ingressroutes",
    ),
];

/// Verbs the operator needs on every session kind: read and watch, apply (create and patch),
/// delete, and list across namespaces for the orphan sweep.
pub const SESSION_KIND_VERBS: &[&str] = &["get", "list", "watch", "create", "patch", "delete"];

/// The session kind served as `kind` in API group `group`, if any.
pub fn session_kind(group: &str, kind: &str) -> Option<&'static SessionKind> {
    SESSION_KINDS
        .iter()
        .find(|k| k.group == group && k.kind == kind)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value;

    use super::*;

    fn strings(v: &Value) -> BTreeSet<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    }

    #[test]
    fn api_versions_name_the_group_unless_core() {
        assert_eq!(SESSION_KINDS[0].api_version(), "v1");
        assert_eq!(
            session_kind("networking.k8s.io", "NetworkPolicy").map(SessionKind::api_version),
            Some("networking.k8s.io/v1".to_owned())
        );
        assert_eq!(session_kind("apps", "Deployment"), None);
    }

    #[test]
    fn kinds_are_listed_once() {
        let unique: BTreeSet<(&str, &str)> =
            SESSION_KINDS.iter().map(|k| (k.group, k.kind)).collect();
        assert_eq!(unique.len(), SESSION_KINDS.len());
    }

    /// The operator's ClusterRole grants every verb it needs on every session kind.
    #[test]
    fn operator_rbac_grants_what_session_kinds_need() {
        let yaml = include_str!("../../../deploy/operator/rbac.yaml");
        let mut granted: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for doc in yaml.split("\n---\n") {
            let doc: Value = serde_saphyr::from_str(doc).expect("rbac.yaml parses");
            if doc["kind"] != "ClusterRole" || doc["metadata"]["name"] != "vdi-operator" {
                continue;
            }
            for rule in doc["rules"].as_array().into_iter().flatten() {
                for group in strings(&rule["apiGroups"]) {
                    for resource in strings(&rule["resources"]) {
                        granted
                            .entry((group.clone(), resource))
                            .or_default()
                            .extend(strings(&rule["verbs"]));
                    }
                }
            }
        }
        assert!(!granted.is_empty(), "no vdi-operator ClusterRole found");
        for k in SESSION_KINDS {
            let verbs = granted
                .get(&(k.group.to_owned(), k.plural.to_owned()))
                .cloned()
                .unwrap_or_default();
            let missing: Vec<&str> = SESSION_KIND_VERBS
                .iter()
                .copied()
                .filter(|v| !verbs.contains(*v))
                .collect();
            assert!(
                missing.is_empty(),
                "deploy/operator/rbac.yaml: the operator lacks {missing:?} on {}/{}",
                k.group,
                k.plural
            );
        }
    }
}
