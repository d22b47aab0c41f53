//! One test per kind: the message as `kubectl create <generator>` builds it (Go zeros included),
//! and the JSON it becomes. Workloads and the other groups are in `workloads.rs`.

use std::collections::BTreeMap;

use k8s_pb::api::authentication::v1 as authn;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::rbac::v1 as rbac;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::{convert, go_meta};

pub(super) fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

pub(super) fn empty() -> Option<String> {
    Some(String::new())
}

pub(super) fn int(v: i32) -> IntOrString {
    IntOrString {
        r#type: Some(0),
        int_val: Some(v),
        str_val: empty(),
    }
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn namespace() {
    let ns = core::Namespace {
        metadata: go_meta("x", ""),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus {
            phase: empty(),
            conditions: vec![],
        }),
    };
    assert_eq!(
        convert("v1", "Namespace", &ns),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}, "spec": {}})
    );
}

#[test]
fn config_map_with_binary_data() {
    let mut metadata = go_meta("c", "team");
    if let Some(m) = metadata.as_mut() {
        m.labels = labels(&[("app", "demo")]);
        m.annotations = labels(&[("note", "n")]);
        m.finalizers = vec!["vdi.dev/keep".into()];
        m.owner_references = vec![meta::OwnerReference {
            api_version: s("v1"),
            kind: s("Namespace"),
            name: s("team"),
            uid: s("u-1"),
            controller: Some(false),
            block_owner_deletion: None,
        }];
        m.creation_timestamp = Some(meta::Time {
            seconds: Some(1),
            nanos: Some(0),
        });
    }
    let cm = core::ConfigMap {
        metadata,
        immutable: Some(true),
        data: labels(&[("a", "1")]),
        binary_data: [("bin".to_owned(), vec![0u8, 255, 1])].into(),
    };
    assert_eq!(
        convert("v1", "ConfigMap", &cm),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "team", "labels": {"app": "demo"},
                "annotations": {"note": "n"}, "finalizers": ["vdi.dev/keep"],
                "ownerReferences": [{"apiVersion": "v1", "kind": "Namespace", "name": "team", "uid": "u-1", "controller": false}]},
            "immutable": true, "data": {"a": "1"}, "binaryData": {"bin": "AP8B"}})
    );
}

#[test]
fn secrets_generic_docker_registry_and_tls() {
    let secret = |kind: &str, data: &[(&str, &[u8])]| core::Secret {
        metadata: go_meta("s", "team"),
        immutable: None,
        data: data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect(),
        string_data: BTreeMap::new(),
        r#type: s(kind),
    };
    assert_eq!(
        convert("v1", "Secret", &secret("", &[("p", b"q")])),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "team"}, "data": {"p": "cQ=="}})
    );
    let docker = secret(
        "kubernetes.io/dockerconfigjson",
        &[(".dockerconfigjson", b"{}")],
    );
    assert_eq!(
        convert("v1", "Secret", &docker)["data"],
        json!({".dockerconfigjson": "e30="})
    );
    let tls = secret("kubernetes.io/tls", &[("tls.crt", b"C"), ("tls.key", b"K")]);
    let v = convert("v1", "Secret", &tls);
    assert_eq!(v["type"], "kubernetes.io/tls");
    assert_eq!(v["data"], json!({"tls.crt": "Qw==", "tls.key": "Sw=="}));
}

#[test]
fn service_account() {
    let sa = core::ServiceAccount {
        metadata: go_meta("robot", "team"),
        image_pull_secrets: vec![core::LocalObjectReference { name: s("regcred") }],
        automount_service_account_token: Some(false),
        ..Default::default()
    };
    assert_eq!(
        convert("v1", "ServiceAccount", &sa),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot", "namespace": "team"},
            "imagePullSecrets": [{"name": "regcred"}], "automountServiceAccountToken": false})
    );
}

#[test]
fn services_clusterip_nodeport_and_externalname() {
    let port = |target: IntOrString, node_port: i32| core::ServicePort {
        name: s("5678-8080"),
        protocol: s("TCP"),
        app_protocol: None,
        port: Some(5678),
        target_port: Some(target),
        node_port: Some(node_port),
    };
    let service = |kind: &str, ports, external: &str| core::Service {
        metadata: go_meta("web", "team"),
        spec: Some(core::ServiceSpec {
            ports,
            selector: labels(&[("app", "web")]),
            cluster_ip: empty(),
            r#type: s(kind),
            session_affinity: empty(),
            load_balancer_ip: empty(),
            external_name: s(external),
            external_traffic_policy: empty(),
            health_check_node_port: Some(0),
            publish_not_ready_addresses: Some(false),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus {
            load_balancer: Some(core::LoadBalancerStatus::default()),
            conditions: vec![],
        }),
    };
    let cluster_ip = service("ClusterIP", vec![port(int(8080), 0)], "");
    assert_eq!(
        convert("v1", "Service", &cluster_ip),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "team"},
            "spec": {"type": "ClusterIP", "selector": {"app": "web"},
                "ports": [{"name": "5678-8080", "protocol": "TCP", "port": 5678, "targetPort": 8080}]}})
    );
    let named = IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: s("http"),
    };
    let node_port = service("NodePort", vec![port(named, 30080)], "");
    assert_eq!(
        convert("v1", "Service", &node_port)["spec"]["ports"],
        json!([{"name": "5678-8080", "protocol": "TCP", "port": 5678, "targetPort": "http", "nodePort": 30080}])
    );
    let mut external = service("ExternalName", vec![], "db.example.com");
    if let Some(spec) = external.spec.as_mut() {
        spec.cluster_ips = vec!["None".into()];
        spec.session_affinity_config = Some(core::SessionAffinityConfig {
            client_ip: Some(core::ClientIpConfig {
                timeout_seconds: Some(60),
            }),
        });
    }
    let spec = &convert("v1", "Service", &external)["spec"];
    assert_eq!(spec["externalName"], "db.example.com");
    assert_eq!(spec["clusterIPs"], json!(["None"]));
    assert_eq!(
        spec["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 60}})
    );
}

#[test]
fn roles_and_bindings() {
    let rule = rbac::PolicyRule {
        verbs: vec!["get".into(), "list".into()],
        api_groups: vec![String::new()],
        resources: vec!["pods".into()],
        resource_names: vec![],
        non_resource_ur_ls: vec![],
    };
    let role = rbac::Role {
        metadata: go_meta("reader", "team"),
        rules: vec![rule.clone()],
    };
    assert_eq!(
        convert("rbac.authorization.k8s.io/v1", "Role", &role)["rules"],
        json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}])
    );
    let cluster_role = rbac::ClusterRole {
        metadata: go_meta("agg", ""),
        rules: vec![],
        aggregation_rule: Some(rbac::AggregationRule {
            cluster_role_selectors: vec![meta::LabelSelector {
                match_labels: labels(&[("rbac.vdi.dev/aggregate", "true")]),
                match_expressions: vec![],
            }],
        }),
    };
    assert_eq!(
        convert("rbac.authorization.k8s.io/v1", "ClusterRole", &cluster_role)["aggregationRule"],
        json!({"clusterRoleSelectors": [{"matchLabels": {"rbac.vdi.dev/aggregate": "true"}}]})
    );
    let subjects = vec![
        rbac::Subject {
            kind: s("User"),
            api_group: s("rbac.authorization.k8s.io"),
            name: s("alice"),
            namespace: empty(),
        },
        rbac::Subject {
            kind: s("ServiceAccount"),
            api_group: empty(),
            name: s("robot"),
            namespace: s("team"),
        },
    ];
    let role_ref = Some(rbac::RoleRef {
        api_group: s("rbac.authorization.k8s.io"),
        kind: s("Role"),
        name: s("reader"),
    });
    let binding = rbac::RoleBinding {
        metadata: go_meta("b", "team"),
        subjects: subjects.clone(),
        role_ref: role_ref.clone(),
    };
    assert_eq!(
        convert("rbac.authorization.k8s.io/v1", "RoleBinding", &binding),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "b", "namespace": "team"},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
                {"kind": "ServiceAccount", "name": "robot", "namespace": "team"}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}})
    );
    let cluster_binding = rbac::ClusterRoleBinding {
        metadata: go_meta("cb", ""),
        subjects,
        role_ref,
    };
    let v = convert(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &cluster_binding,
    );
    assert_eq!(v["roleRef"]["name"], "reader");
    assert_eq!(v["subjects"].as_array().map(Vec::len), Some(2));
}

#[test]
fn event_times_are_rfc_3339() {
    let event = core::Event {
        metadata: go_meta("e", "team"),
        involved_object: Some(core::ObjectReference {
            kind: s("Pod"),
            name: s("p"),
            namespace: s("team"),
            ..Default::default()
        }),
        reason: s("Started"),
        first_timestamp: Some(meta::Time {
            seconds: Some(1_700_000_000),
            nanos: Some(0),
        }),
        last_timestamp: Some(meta::Time::default()),
        count: Some(1),
        event_time: Some(meta::MicroTime {
            seconds: Some(1_700_000_000),
            nanos: Some(1_000),
        }),
        ..Default::default()
    };
    let v = convert("v1", "Event", &event);
    assert_eq!(v["firstTimestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(v["eventTime"], "2023-11-14T22:13:20.000001Z");
    assert!(v.get("lastTimestamp").is_none());
    assert_eq!(
        v["involvedObject"],
        json!({"kind": "Pod", "name": "p", "namespace": "team"})
    );
}

#[test]
fn reviews_and_token_requests() {
    let review = authz::SelfSubjectAccessReview {
        metadata: go_meta("", ""),
        spec: Some(authz::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: s("team"),
                verb: s("create"),
                group: s("vdi.dev"),
                resource: s("vdisessions"),
                ..Default::default()
            }),
            non_resource_attributes: None,
        }),
        status: Some(authz::SubjectAccessReviewStatus {
            allowed: Some(false),
            ..Default::default()
        }),
    };
    assert_eq!(
        convert(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            &review
        ),
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
            "spec": {"resourceAttributes": {"namespace": "team", "verb": "create", "group": "vdi.dev", "resource": "vdisessions"}}})
    );
    let sar = authz::SubjectAccessReview {
        metadata: None,
        spec: Some(authz::SubjectAccessReviewSpec {
            non_resource_attributes: Some(authz::NonResourceAttributes {
                path: s("/healthz"),
                verb: s("get"),
            }),
            user: s("carol"),
            groups: vec!["dev".into()],
            extra: [(
                "scopes".to_owned(),
                authz::ExtraValue {
                    items: vec!["a".into()],
                },
            )]
            .into(),
            ..Default::default()
        }),
        status: None,
    };
    assert_eq!(
        convert("authorization.k8s.io/v1", "SubjectAccessReview", &sar)["spec"],
        json!({"nonResourceAttributes": {"path": "/healthz", "verb": "get"}, "user": "carol", "groups": ["dev"], "extra": {"scopes": ["a"]}})
    );
    let request = authn::TokenRequest {
        metadata: go_meta("robot", "team"),
        spec: Some(authn::TokenRequestSpec {
            audiences: vec!["vault".into()],
            expiration_seconds: Some(900),
            bound_object_ref: Some(authn::BoundObjectReference {
                kind: s("Pod"),
                name: s("p"),
                ..Default::default()
            }),
        }),
        status: Some(authn::TokenRequestStatus {
            token: empty(),
            expiration_timestamp: Some(meta::Time::default()),
        }),
    };
    assert_eq!(
        convert("authentication.k8s.io/v1", "TokenRequest", &request)["spec"],
        json!({"audiences": ["vault"], "expirationSeconds": 900, "boundObjectRef": {"kind": "Pod", "name": "p"}})
    );
    let whoami = authn::SelfSubjectReview {
        metadata: go_meta("", ""),
        status: Some(authn::SelfSubjectReviewStatus::default()),
    };
    assert_eq!(
        convert("authentication.k8s.io/v1", "SelfSubjectReview", &whoami),
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {}})
    );
}

#[test]
fn delete_options_in_any_group_version() {
    let options = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions {
            uid: s("u-1"),
            resource_version: None,
        }),
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    assert_eq!(
        convert("apps/v1", "DeleteOptions", &options),
        json!({"apiVersion": "apps/v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
            "preconditions": {"uid": "u-1"}, "propagationPolicy": "Foreground", "dryRun": ["All"]})
    );
}
