//! The render check as a whole, and the fixtures the rule modules' tests share: a session's
//! objects that pass every rule, so each test changes one field and expects one refusal.

use serde_json::json;

use super::*;

/// Session `desk` in namespace `team`.
pub(super) fn request() -> SessionRequest {
    crate::fixtures::request("desk", "team", 0, false)
}

/// Placed on `node-1`.
pub(super) fn placement() -> Placement {
    Placement {
        node: "node-1".into(),
        gpu: None,
        reason: "test".into(),
    }
}

/// The default policy for a template listing the pull secret `pull`.
pub(super) fn policy() -> RenderPolicy {
    RenderPolicy::default().with_allowed_secrets(["pull"])
}

/// A Pod within `restricted`, mounting the session's claim.
pub(super) fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "desk"},
        "spec": {
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [{
                "name": "desktop",
                "image": "desktop:1",
                "ports": [{"containerPort": 8080}],
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]},
                },
            }],
            "volumes": [
                {"name": "home", "persistentVolumeClaim": {"claimName": "desk-home"}},
                {"name": "tmp", "emptyDir": {}},
            ],
        },
    })
}

/// The session's home claim.
pub(super) fn claim() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "desk-home"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })
}

/// A ClusterIP Service over the session's pods.
pub(super) fn service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "desk"},
        "spec": {
            "selector": {SESSION_LABEL: "desk"},
            "ports": [{"port": 8080, "targetPort": 8080}],
        },
    })
}

/// The desktop template's route: the session's path on one host.
pub(super) fn ingress_route() -> Value {
    json!({
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {"name": "desk"},
        "spec": {
            "entryPoints": ["websecure"],
            "routes": [{
                "kind": "Rule",
                "match": "Host(`vdi.example.com`) && PathPrefix(`/sessions/team/desk`)",
                "services": [{"name": "desk", "port": 8080}],
            }],
        },
    })
}

/// The desktop template's policy: in from the ingress controller and the TURN server.
pub(super) fn network_policy() -> Value {
    let peer = |ns: &str, app: &str| {
        json!({
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": app}},
        })
    };
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "desk"},
        "spec": {
            "podSelector": {"matchLabels": {SESSION_LABEL: "desk"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [peer("kube-system", "traefik")], "ports": [{"port": 8080}]},
                {"from": [peer("vdi-system", "coturn")]},
            ],
        },
    })
}

/// Claim, Pod, Service, IngressRoute, NetworkPolicy: indexes 0 to 4.
pub(super) fn session() -> Vec<Value> {
    vec![claim(), pod(), service(), ingress_route(), network_policy()]
}

/// Checks `objects` with [`policy`] for the session placed by [`placement`].
pub(super) fn check_placed(objects: &[Value]) -> Result<Vec<Value>, RenderError> {
    policy().check_placed(
        &request(),
        &placement(),
        objects.iter().map(Value::to_string).collect(),
    )
}

/// The error for [`session`] with object `index` changed by `edit`.
pub(super) fn refused(index: usize, edit: impl FnOnce(&mut Value)) -> RenderError {
    let mut objects = session();
    edit(&mut objects[index]);
    check_placed(&objects).expect_err("refused")
}

/// The [`session`] with object `index` changed by `edit` passes; returns that object as checked.
pub(super) fn passes(index: usize, edit: impl FnOnce(&mut Value)) -> Value {
    let mut objects = session();
    edit(&mut objects[index]);
    let mut out = check_placed(&objects).unwrap_or_else(|e| panic!("refused: {e}"));
    out.swap_remove(index)
}

/// `err` names `field` and `rule`, in its fields and in its message.
#[track_caller]
pub(super) fn assert_forbidden(err: &RenderError, field: &str, rule: &str) {
    let RenderError::Forbidden {
        field: f, rule: r, ..
    } = err
    else {
        panic!("expected a Forbidden error, got {err:?}");
    };
    assert_eq!((f.as_str(), *r), (field, rule), "{err}");
    let text = err.to_string();
    assert!(text.contains(field) && text.contains(rule), "{text}");
}

fn check(policy: &RenderPolicy, objects: &[Value]) -> Result<Vec<Value>, RenderError> {
    policy.check(&request(), objects.iter().map(Value::to_string).collect())
}

#[test]
fn fills_namespace_and_host_labels() {
    let out = check(
        &RenderPolicy::default(),
        &[json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})],
    )
    .expect("allowed");
    assert_eq!(out[0]["metadata"]["namespace"], "team");
    assert_eq!(out[0]["metadata"]["labels"][SESSION_LABEL], "desk");
    assert_eq!(out[0]["metadata"]["labels"][MANAGED_BY_LABEL], "vdi");
}

#[test]
fn a_confined_session_passes_whole() {
    let out = check_placed(&session()).expect("allowed");
    let kinds: Vec<&str> = out.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "PersistentVolumeClaim",
            "Pod",
            "Service",
            "IngressRoute",
            "NetworkPolicy"
        ]
    );
    assert_eq!(out[3], {
        let mut route = ingress_route();
        route["metadata"]["namespace"] = json!("team");
        route["metadata"]["labels"] = json!({SESSION_LABEL: "desk", MANAGED_BY_LABEL: "vdi"});
        route
    });
}

#[test]
fn a_refusal_names_object_field_and_rule() {
    let err = refused(1, |pod| {
        pod["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true);
    });
    assert_eq!(
        err.to_string(),
        r#"object 1 (Pod "desk"): spec.containers[0].securityContext.privileged: must be unset or false (rule pod-security/privileged)"#
    );
}

#[test]
fn one_bad_object_refuses_the_whole_output() {
    // The last object is wrong: nothing before it comes back to be applied.
    let err = refused(4, |netpol| netpol["spec"]["podSelector"] = json!({}));
    assert!(
        matches!(err, RenderError::Forbidden { index: 4, .. }),
        "{err:?}"
    );
}

#[test]
fn extra_kinds_are_checked_for_kind_and_namespace_only() {
    let policy = RenderPolicy {
        extra_kinds: vec![("apps".into(), "Deployment".into())],
        ..RenderPolicy::default()
    };
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"hostNetwork": true}});
    assert!(check(&policy, &[deployment]).is_ok());
}

#[test]
fn refuses_other_kinds_unless_configured() {
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "pwn"}});
    let err = check(&RenderPolicy::default(), std::slice::from_ref(&role)).expect_err("refused");
    assert_eq!(
        err.to_string(),
        r#"object 0 (ClusterRoleBinding "pwn"): kind rbac.authorization.k8s.io/v1/ClusterRoleBinding is not allowed"#
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
    assert!(matches!(
        check(&RenderPolicy::default(), std::slice::from_ref(&secret)),
        Err(RenderError::KindNotAllowed { .. })
    ));
    let policy = RenderPolicy {
        extra_kinds: vec![("".into(), "Secret".into())],
        ..RenderPolicy::default()
    };
    assert!(check(&policy, &[secret]).is_ok());
}

#[test]
fn refuses_other_namespaces() {
    let obj = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "kube-system"}});
    assert_eq!(
        check(&RenderPolicy::default(), &[obj]).expect_err("refused"),
        RenderError::WrongNamespace {
            index: 0,
            kind: "Service".into(),
            name: "s".into(),
            namespace: "kube-system".into(),
            expected: "team".into(),
        }
    );
}

#[test]
fn refuses_malformed_and_oversized_output() {
    let policy = RenderPolicy {
        max_object_bytes: 100,
        ..RenderPolicy::default()
    };
    let big = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "x".repeat(200)}});
    assert!(matches!(
        check(&policy, &[big]),
        Err(RenderError::TooLarge(_))
    ));
    let no_kind = json!({"apiVersion": "v1", "metadata": {"name": "c"}});
    assert_eq!(
        check(&RenderPolicy::default(), &[no_kind]).expect_err("refused"),
        RenderError::Malformed {
            index: 0,
            reason: "kind is missing".into()
        }
    );
    let err = RenderPolicy::default()
        .check(&request(), vec!["not json".into()])
        .expect_err("refused");
    assert!(
        matches!(err, RenderError::Malformed { index: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn a_list_field_of_another_type_is_refused() {
    let err = refused(1, |pod| pod["spec"]["volumes"] = json!({"name": "x"}));
    assert_forbidden(&err, "spec.volumes", "shape");
}
