//! The default ClusterRoles and ClusterRoleBindings kube-apiserver bootstraps (a useful subset
//! of `plugin/pkg/auth/authorizer/rbac/bootstrappolicy`).

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::aggregate::aggregate;
use super::attributes::{AUTHENTICATED_GROUP, MASTERS_GROUP, UNAUTHENTICATED_GROUP};

/// The API group of RBAC objects, which role references name.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// The label kube-apiserver puts on the objects it bootstraps.
pub const BOOTSTRAPPING_LABEL: &str = "kubernetes.io/bootstrapping";
/// A ClusterRole with this label set to `"true"` adds its rules to `admin`.
pub const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
/// A ClusterRole with this label set to `"true"` adds its rules to `edit` (and so to `admin`).
pub const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
/// A ClusterRole with this label set to `"true"` adds its rules to `view` (and so to `edit`, `admin`).
pub const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const READ_WRITE: &[&str] = crate::resources::RESOURCE_VERBS;

/// The default RBAC objects.
#[derive(Debug, Clone, Default)]
pub struct BootstrapPolicy {
    /// `cluster-admin`, `admin`, `edit`, `view` (aggregated), `system:aggregate-to-*`,
    /// `system:discovery`, `system:basic-user`, `system:public-info-viewer`.
    pub cluster_roles: Vec<ClusterRole>,
    /// `cluster-admin` (`system:masters`), `system:discovery` and `system:basic-user`
    /// (`system:authenticated`), `system:public-info-viewer` (authenticated and unauthenticated).
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
}

/// The default roles and bindings, with `admin`, `edit` and `view` already aggregated (as the
/// aggregation controller would leave them).
pub fn bootstrap_policy() -> BootstrapPolicy {
    let mut cluster_roles = vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![
                rule(&["*"], &["*"], &["*"]),
                PolicyRule {
                    verbs: strings(&["*"]),
                    non_resource_urls: Some(strings(&["*"])),
                    ..PolicyRule::default()
                },
            ],
        ),
        aggregated("admin", &[], AGGREGATE_TO_ADMIN),
        aggregated("edit", &[AGGREGATE_TO_ADMIN], AGGREGATE_TO_EDIT),
        aggregated("view", &[AGGREGATE_TO_EDIT], AGGREGATE_TO_VIEW),
        cluster_role(
            "system:aggregate-to-admin",
            &[AGGREGATE_TO_ADMIN],
            to_admin(),
        ),
        cluster_role("system:aggregate-to-edit", &[AGGREGATE_TO_EDIT], to_edit()),
        cluster_role("system:aggregate-to-view", &[AGGREGATE_TO_VIEW], to_view()),
        // What metrics-server installs, so `view` (and above) may run `kubectl top pods`.
        cluster_role(
            "system:aggregated-metrics-reader",
            &[AGGREGATE_TO_VIEW, AGGREGATE_TO_EDIT, AGGREGATE_TO_ADMIN],
            vec![rule(READ, &["metrics.k8s.io"], &["pods", "nodes"])],
        ),
        cluster_role(
            "system:discovery",
            &[],
            vec![non_resource(&[
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            ])],
        ),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![non_resource(&[
                "/healthz",
                "/livez",
                "/readyz",
                "/version",
                "/version/",
            ])],
        ),
    ];
    aggregate(&mut cluster_roles);
    let cluster_role_bindings = vec![
        binding("cluster-admin", "cluster-admin", &[MASTERS_GROUP]),
        binding(
            "system:discovery",
            "system:discovery",
            &[AUTHENTICATED_GROUP],
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            &[AUTHENTICATED_GROUP],
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &[AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP],
        ),
    ];
    BootstrapPolicy {
        cluster_roles,
        cluster_role_bindings,
    }
}

/// Namespace administration beyond `edit`: granting roles in the namespace.
fn to_admin() -> Vec<PolicyRule> {
    vec![
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews"],
        ),
        rule(READ_WRITE, &[RBAC_GROUP], &["rolebindings", "roles"]),
    ]
}

/// Writing the namespaced workload resources, and reading the escalating ones (secrets, exec).
fn to_edit() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            &[""],
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], &[""], &["serviceaccounts"]),
        rule(
            WRITE,
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
        ),
        rule(&["create"], &[""], &["pods/eviction"]),
        rule(
            WRITE,
            &[""],
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        rule(&["create"], &[""], &["serviceaccounts/token"]),
        rule(
            WRITE,
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        rule(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
        rule(WRITE, &["batch"], &["cronjobs", "jobs"]),
        rule(WRITE, &["policy"], &["poddisruptionbudgets"]),
        rule(
            WRITE,
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
        ),
        rule(WRITE, &["coordination.k8s.io"], &["leases"]),
    ]
}

/// Reading the namespaced resources that hold no secrets.
fn to_view() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
        ),
        rule(
            READ,
            &[""],
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
        ),
        rule(READ, &[""], &["namespaces"]),
        rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
        rule(
            READ,
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        rule(
            READ,
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        ),
        rule(
            READ,
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            &["networking.k8s.io"],
            &["ingresses", "ingresses/status", "networkpolicies"],
        ),
    ]
}

pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub(super) fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: strings(verbs),
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        ..PolicyRule::default()
    }
}

fn non_resource(urls: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: strings(&["get"]),
        non_resource_urls: Some(strings(urls)),
        ..PolicyRule::default()
    }
}

fn metadata(name: &str, true_labels: &[&str]) -> ObjectMeta {
    let mut labels = BTreeMap::from([(BOOTSTRAPPING_LABEL.to_owned(), "rbac-defaults".to_owned())]);
    labels.extend(
        true_labels
            .iter()
            .map(|l| ((*l).to_owned(), "true".to_owned())),
    );
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

fn cluster_role(name: &str, true_labels: &[&str], rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: metadata(name, true_labels),
        rules: Some(rules),
        aggregation_rule: None,
    }
}

/// A ClusterRole gathering the roles labelled `selector_label: "true"`.
fn aggregated(name: &str, true_labels: &[&str], selector_label: &str) -> ClusterRole {
    ClusterRole {
        metadata: metadata(name, true_labels),
        rules: None,
        aggregation_rule: Some(AggregationRule {
            cluster_role_selectors: Some(vec![LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    selector_label.to_owned(),
                    "true".to_owned(),
                )])),
                match_expressions: None,
            }]),
        }),
    }
}

fn binding(name: &str, cluster_role: &str, groups: &[&str]) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: metadata(name, &[]),
        role_ref: RoleRef {
            api_group: Some(RBAC_GROUP.to_owned()),
            kind: "ClusterRole".to_owned(),
            name: cluster_role.to_owned(),
        },
        subjects: Some(
            groups
                .iter()
                .map(|g| Subject {
                    api_group: Some(RBAC_GROUP.to_owned()),
                    kind: "Group".to_owned(),
                    name: (*g).to_owned(),
                    namespace: None,
                })
                .collect(),
        ),
    }
}
