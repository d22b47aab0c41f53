//! Who a session is for, through the embedded control plane's admission over real HTTPS with
//! impersonated users: untrusted requesters get their own identity, `spec.user` never changes
//! after create, and only its own user (or a trusted account) may change a session. RBAC lets
//! the test's users write sessions in `default`, so what refuses them here is admission.

mod common;

use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::json;
use vdi_crd::VDISession;
use vdi_platform::Platform;

use common::{nodes, session, start};

/// The sessions of `default` as `user` in `groups` (impersonated with the admin token).
async fn sessions_as(platform: &Platform, user: &str, groups: &[&str]) -> Api<VDISession> {
    let kc = Kubeconfig::from_yaml(&platform.kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.auth_info.impersonate = Some(user.to_owned());
    config.auth_info.impersonate_groups = Some(groups.iter().map(|g| (*g).to_owned()).collect());
    Api::namespaced(Client::try_from(config).unwrap(), "default")
}

/// Lets `staff` and every service account write sessions in `default` (what RBAC allows is
/// not under test here; admission is).
async fn let_staff_write_sessions(platform: &Platform) {
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "session-writers", "namespace": "default"},
        "rules": [{"apiGroups": ["vdi.dev"], "resources": ["vdisessions"], "verbs": ["*"]}],
    }))
    .unwrap();
    Api::<Role>::namespaced(platform.client.clone(), "default")
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "session-writers", "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "session-writers"},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "staff"},
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:serviceaccounts"},
        ],
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(platform.client.clone(), "default")
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

fn desk(name: &str, user: &str) -> VDISession {
    session(name, user, &["staff"], "ubuntu-desktop", None)
}

/// Merge-patches the session's spec and returns the API's refusal (code, message).
async fn refused_patch(
    api: &Api<VDISession>,
    name: &str,
    spec: serde_json::Value,
) -> (u16, String) {
    match api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
    {
        Err(kube::Error::Api(e)) => (e.code, e.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spec_user_is_the_requesters_and_never_changes() {
    let env = start(nodes(1, 8)).await;
    let platform = &env.platform;
    let_staff_write_sessions(platform).await;
    let alice = sessions_as(platform, "alice", &["staff"]).await;

    // A forged user on create is replaced by the requester's own identity.
    let created = alice
        .create(&PostParams::default(), &desk("desk", "root"))
        .await
        .unwrap();
    assert_eq!(created.spec.user.name, "alice");
    // The API server adds `system:authenticated` to every authenticated identity.
    assert_eq!(created.spec.user.groups, ["staff", "system:authenticated"]);

    // Not even the owner may hand the session to someone else.
    let (code, message) = refused_patch(&alice, "desk", json!({"user": {"name": "bob"}})).await;
    assert_eq!(code, 422, "{message}");
    assert!(message.contains("spec.user is immutable"), "{message}");

    // Nor may an admin.
    let admin: Api<VDISession> = Api::namespaced(platform.client.clone(), "default");
    let (code, message) = refused_patch(&admin, "desk", json!({"user": {"name": "bob"}})).await;
    assert_eq!(code, 422, "{message}");
    assert!(message.contains("spec.user is immutable"), "{message}");

    // Someone else may not change alice's session, even leaving spec.user alone.
    let mallory = sessions_as(platform, "mallory", &["staff"]).await;
    let (code, message) = refused_patch(&mallory, "desk", json!({"timeout": "2h"})).await;
    assert_eq!(code, 403, "{message}");
    assert!(message.contains("spec.user"), "{message}");

    // An untrusted service account of vdi-system gets its own identity; the API's may act
    // for a user.
    let other_sa = sessions_as(
        platform,
        "system:serviceaccount:vdi-system:something-else",
        &["system:serviceaccounts", "staff"],
    )
    .await;
    let made = other_sa
        .create(&PostParams::default(), &desk("by-other-sa", "carol"))
        .await
        .unwrap();
    assert_eq!(
        made.spec.user.name,
        "system:serviceaccount:vdi-system:something-else"
    );
    let api_sa = sessions_as(
        platform,
        "system:serviceaccount:vdi-system:vdi-api",
        &["system:serviceaccounts"],
    )
    .await;
    let made = api_sa
        .create(&PostParams::default(), &desk("by-api", "carol"))
        .await
        .unwrap();
    assert_eq!(made.spec.user.name, "carol");
    env.platform.stop().await;
}
