//! Confinement of Pods, claims, Services and NetworkPolicies: each test changes one field of
//! the fixture session and expects the refusal to name it and the rule.

use serde_json::{Value, json};

use crate::render::tests::{
    assert_forbidden, check_placed, passes, policy, refused, request, session,
};

const POD: usize = 1;
const SERVICE: usize = 2;
const NETPOL: usize = 4;

#[test]
fn the_host_sets_node_service_account_and_no_token() {
    let pod = passes(POD, |p| {
        p["spec"]["nodeName"] = json!("node-1");
        p["spec"]["automountServiceAccountToken"] = json!(true);
    });
    assert_eq!(pod["spec"]["nodeName"], "node-1");
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    let pod = passes(POD, |_| {});
    assert_eq!(pod["spec"]["nodeName"], "node-1", "filled in when unset");
}

#[test]
fn refuses_a_node_other_than_the_placement() {
    let err = refused(POD, |p| p["spec"]["nodeName"] = json!("node-2"));
    assert_forbidden(&err, "spec.nodeName", "confine/node-name");
}

#[test]
fn without_a_placement_the_node_is_left_as_rendered() {
    let mut objects = session();
    objects[POD]["spec"]["nodeName"] = json!("node-2");
    let out = policy()
        .check(&request(), objects.iter().map(Value::to_string).collect())
        .expect("allowed");
    assert_eq!(out[POD]["spec"]["nodeName"], "node-2");
}

#[test]
fn refuses_other_service_accounts() {
    let err = refused(POD, |p| p["spec"]["serviceAccountName"] = json!("operator"));
    assert_forbidden(&err, "spec.serviceAccountName", "confine/service-account");
    let err = refused(POD, |p| p["spec"]["serviceAccount"] = json!("operator"));
    assert_forbidden(&err, "spec.serviceAccount", "confine/service-account");
    passes(POD, |p| p["spec"]["serviceAccountName"] = json!("default"));
}

#[test]
fn refuses_projected_api_tokens() {
    let err = refused(POD, |p| {
        p["spec"]["volumes"][1] = json!({"name": "t", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "audience": "api"}},
        ]}});
    });
    assert_forbidden(
        &err,
        "spec.volumes[1].projected.sources[0].serviceAccountToken",
        "confine/service-account",
    );
}

#[test]
fn refuses_secrets_the_template_does_not_list() {
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 6] = [
        ("spec.volumes[1].secret.secretName", |p| {
            p["spec"]["volumes"][1] = json!({"name": "s", "secret": {"secretName": "admin-creds"}});
        }),
        ("spec.volumes[1].projected.sources[0].secret.name", |p| {
            p["spec"]["volumes"][1] = json!({"name": "s", "projected": {"sources": [{"secret": {"name": "admin-creds"}}]}});
        }),
        ("spec.volumes[1].csi.nodePublishSecretRef.name", |p| {
            p["spec"]["volumes"][1] = json!({"name": "s", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "admin-creds"}}});
        }),
        (
            "spec.containers[0].env[0].valueFrom.secretKeyRef.name",
            |p| {
                p["spec"]["containers"][0]["env"] = json!([{"name": "T", "valueFrom": {"secretKeyRef": {"name": "admin-creds", "key": "k"}}}]);
            },
        ),
        ("spec.containers[0].envFrom[0].secretRef.name", |p| {
            p["spec"]["containers"][0]["envFrom"] = json!([{"secretRef": {"name": "admin-creds"}}]);
        }),
        ("spec.imagePullSecrets[0].name", |p| {
            p["spec"]["imagePullSecrets"] = json!([{"name": "admin-creds"}]);
        }),
    ];
    for (field, edit) in cases {
        let err = refused(POD, edit);
        assert_forbidden(&err, field, "confine/secret-ref");
        assert!(
            err.to_string()
                .contains(r#"secret "admin-creds" is not one the template lists (pull)"#),
            "{err}"
        );
    }
    passes(POD, |p| {
        p["spec"]["imagePullSecrets"] = json!([{"name": "pull"}]);
        p["spec"]["volumes"][1] = json!({"name": "s", "secret": {"secretName": "pull"}});
        p["spec"]["containers"][0]["envFrom"] = json!([{"configMapRef": {"name": "cm"}}]);
    });
}

#[test]
fn refuses_claims_not_rendered_for_the_session() {
    let err = refused(POD, |p| {
        p["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = json!("other-home");
    });
    assert_forbidden(
        &err,
        "spec.volumes[0].persistentVolumeClaim.claimName",
        "confine/volume-claim",
    );
    let err = refused(0, |c| {
        c["spec"]["dataSource"] = json!({"kind": "PersistentVolumeClaim", "name": "other-home"});
    });
    assert_forbidden(&err, "spec.dataSource", "confine/volume-claim");
    let err = refused(POD, |p| {
        p["spec"]["volumes"][1] = json!({"name": "copy", "ephemeral": {"volumeClaimTemplate": {"spec": {
            "dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "other-home"},
        }}}});
    });
    assert_forbidden(
        &err,
        "spec.volumes[1].ephemeral.volumeClaimTemplate.spec.dataSourceRef",
        "confine/volume-claim",
    );
}

#[test]
fn refuses_services_selecting_other_pods() {
    let err = refused(SERVICE, |s| {
        s["spec"]["selector"] = json!({"app": "desktop"})
    });
    assert_forbidden(&err, "spec.selector", "confine/service-selector");
    let err = refused(SERVICE, |s| {
        s["spec"]["selector"]["vdi.dev/session"] = json!("other")
    });
    assert_forbidden(&err, "spec.selector", "confine/service-selector");
    let err = refused(SERVICE, |s| s["spec"]["selector"] = Value::Null);
    assert_forbidden(&err, "spec.selector", "confine/service-selector");
}

#[test]
fn refuses_services_exposed_outside_the_cluster() {
    for kind in ["ExternalName", "NodePort", "LoadBalancer"] {
        let err = refused(SERVICE, |s| s["spec"]["type"] = json!(kind));
        assert_forbidden(&err, "spec.type", "confine/service-type");
    }
    let err = refused(SERVICE, |s| {
        s["spec"]["externalIPs"] = json!(["203.0.113.9"])
    });
    assert_forbidden(&err, "spec.externalIPs", "confine/service-type");
    passes(SERVICE, |s| s["spec"]["type"] = json!("ClusterIP"));
}

#[test]
fn refuses_network_policies_over_other_pods() {
    let err = refused(NETPOL, |n| n["spec"]["podSelector"] = json!({}));
    assert_forbidden(
        &err,
        "spec.podSelector.matchLabels",
        "confine/network-policy-selector",
    );
    let err = refused(NETPOL, |n| {
        n["spec"]["podSelector"] =
            json!({"matchLabels": {"app.kubernetes.io/name": "vdi-session"}});
    });
    assert_forbidden(
        &err,
        "spec.podSelector.matchLabels",
        "confine/network-policy-selector",
    );
}

#[test]
fn network_policy_peers_are_own_pods_or_platform_namespaces() {
    let peer_err =
        |peer: Value| refused(NETPOL, |n| n["spec"]["ingress"][0]["from"] = json!([peer]));
    let field = "spec.ingress[0].from[0].";
    // Every pod in the session's namespace: other sessions.
    let err = peer_err(json!({"podSelector": {}}));
    assert_forbidden(
        &err,
        &format!("{field}podSelector.matchLabels"),
        "confine/network-policy-peer",
    );
    // Every namespace, or another tenant's.
    for selector in [
        json!({}),
        json!({"matchLabels": {"kubernetes.io/metadata.name": "team-b"}}),
    ] {
        let err = peer_err(json!({"namespaceSelector": selector}));
        assert_forbidden(
            &err,
            &format!("{field}namespaceSelector.matchLabels"),
            "confine/network-policy-peer",
        );
    }
    // The session's namespace names its own pods only.
    let err = peer_err(
        json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team"}}}),
    );
    assert_forbidden(
        &err,
        &format!("{field}podSelector.matchLabels"),
        "confine/network-policy-peer",
    );
    let err = peer_err(json!({"ipBlock": {"cidr": "0.0.0.0/0"}}));
    assert_forbidden(
        &err,
        &format!("{field}ipBlock"),
        "confine/network-policy-peer",
    );
    // No peers: everyone, in either direction.
    let err = refused(NETPOL, |n| {
        n["spec"]["ingress"][1] = json!({"ports": [{"port": 53}]})
    });
    assert_forbidden(&err, "spec.ingress[1].from", "confine/network-policy-peer");
    let err = refused(NETPOL, |n| n["spec"]["egress"] = json!([{"to": []}]));
    assert_forbidden(&err, "spec.egress[0].to", "confine/network-policy-peer");
    passes(NETPOL, |n| {
        n["spec"]["egress"] = json!([
            {"to": [{"podSelector": {"matchLabels": {"vdi.dev/session": "desk"}}}]},
            {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "vdi-system"}}}]},
        ]);
    });
}

#[test]
fn the_whole_fixture_session_passes() {
    assert!(check_placed(&session()).is_ok());
}
