//! The operator runs as `system:serviceaccount:vdi-system:vdi-operator` with the RBAC from
//! `deploy/operator/rbac.yaml`, which the embedded control plane enforces: outside those rules
//! it is refused, and taking one of them away stops sessions until it is given back.

mod common;

use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use vdi_crd::SessionPhase;

use common::{create, nodes, phase, session, start, wait_phase};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operator_acts_as_its_service_account_under_deploys_rbac() {
    let env = start(nodes(1, 8)).await;
    let operator = env.platform.operator_client.clone();

    let me = Api::<SelfSubjectReview>::all(operator.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("whoami");
    let user = me.status.and_then(|s| s.user_info).expect("user info");
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:vdi-system:vdi-operator")
    );
    assert!(
        user.groups
            .unwrap_or_default()
            .contains(&"system:serviceaccounts:vdi-system".to_owned())
    );

    // Secrets are not in its rules.
    match Api::<Secret>::namespaced(operator, "default")
        .list(&ListParams::default())
        .await
    {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 403, "{e:?}");
            assert!(
                e.message.contains(
                    "User \"system:serviceaccount:vdi-system:vdi-operator\" cannot list resource \"secrets\""
                ),
                "{}",
                e.message
            );
        }
        other => panic!("the operator listed secrets: {other:?}"),
    }

    create(
        &env,
        &session("before", "alice", &["staff"], "ubuntu-desktop", None),
    )
    .await
    .unwrap();
    wait_phase(&env, "before", SessionPhase::Running).await;

    // Take away the rule that lets it create the desktops' pods: a new session stalls.
    let roles: Api<ClusterRole> = Api::all(env.client());
    let full = roles.get("vdi-operator").await.unwrap();
    let rules = full.rules.clone().unwrap_or_default();
    let without_pods: Vec<_> = rules
        .iter()
        .filter(|r| {
            !r.resources
                .as_ref()
                .is_some_and(|rs| rs.iter().any(|x| x == "pods"))
        })
        .cloned()
        .collect();
    assert!(without_pods.len() < rules.len(), "the pods rule exists");
    let set_rules = |rules| serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "rules": rules});
    roles
        .patch(
            "vdi-operator",
            &PatchParams::default(),
            &Patch::Merge(set_rules(&without_pods)),
        )
        .await
        .unwrap();
    create(
        &env,
        &session("after", "alice", &["staff"], "ubuntu-desktop", None),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stalled = env.sessions().get("after").await.unwrap();
    assert_ne!(
        phase(Some(&stalled)),
        Some(SessionPhase::Running),
        "the operator started a desktop without the right to create its pod"
    );
    println!(
        "without the pods rule, the session stayed {:?}",
        phase(Some(&stalled))
    );

    // Give it back: the same session goes on.
    roles
        .patch(
            "vdi-operator",
            &PatchParams::default(),
            &Patch::Merge(set_rules(&rules)),
        )
        .await
        .unwrap();
    wait_phase(&env, "after", SessionPhase::Running).await;
    env.platform.stop().await;
}
