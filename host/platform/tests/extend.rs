//! Extending a running session over real HTTPS: its owner raises `spec.timeout` (RBAC lets a
//! user patch sessions in their own namespace), admission re-judges it as an update (quota
//! clamps it to the policy's maximum), and the operator re-admits the new generation and moves
//! `status.expiresAt` to the admission time plus the new lifetime, with an `Extended` event.
//! Nothing else of an admitted session may change; another user may not touch it; a lifetime
//! already past ends the session.

mod common;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::{Value, json};
use vdi_crd::{SessionPhase, VDIPlugin, VDISession};
use vdi_platform::{Platform, add_user};

use common::{
    WAIT, create, nodes, operator_config, session, start, start_with, wait_plugins_ready,
};

/// A client of the platform acting as `user` in `groups` (the admin impersonating them, as the
/// API does for its callers).
async fn client_as(platform: &Platform, user: &str, groups: &[&str]) -> Client {
    let kc = Kubeconfig::from_yaml(&platform.kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.auth_info.impersonate = Some(user.to_owned());
    config.auth_info.impersonate_groups = Some(groups.iter().map(|g| (*g).to_owned()).collect());
    Client::try_from(config).unwrap()
}

/// Polls the session until `pred` holds; returns it.
async fn wait_for(
    api: &Api<VDISession>,
    name: &str,
    what: &str,
    pred: impl Fn(Option<&VDISession>) -> bool,
) -> Option<VDISession> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = api.get_opt(name).await.unwrap();
        if pred(s.as_ref()) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "session {name} never {what}; last seen: {:#?}",
            s.map(|s| (s.metadata.generation, s.status))
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// When the session was admitted.
fn admitted_at(s: &VDISession) -> Timestamp {
    let st = s.status.as_ref().unwrap();
    st.timings.admitted.as_deref().unwrap().parse().unwrap()
}

/// Waits until the operator has seen the session's newest generation with a lifetime of
/// `secs`, and checks the expiry is the admission time plus it.
async fn wait_lifetime(api: &Api<VDISession>, name: &str, secs: u64) -> VDISession {
    let what = format!("re-admitted with a {secs} s lifetime");
    let s = wait_for(api, name, &what, |s| {
        s.is_some_and(|s| {
            let st = s.status.clone().unwrap_or_default();
            st.observed_generation == s.metadata.generation
                && st.admitted.is_some_and(|a| a.timeout_seconds == secs)
        })
    })
    .await
    .unwrap();
    let st = s.status.clone().unwrap();
    let expires: Timestamp = st.expires_at.as_deref().unwrap().parse().unwrap();
    let lifetime = SignedDuration::from_secs(i64::try_from(secs).unwrap());
    assert_eq!(expires, admitted_at(&s) + lifetime, "{st:?}");
    assert_eq!(st.phase(), SessionPhase::Running, "still running");
    s
}

/// The notes of the session's events with `reason`.
async fn notes(client: &Client, ns: &str, name: &str, reason: &str) -> Vec<String> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

/// Merge-patches the session's spec with `spec`.
async fn patch_spec(
    api: &Api<VDISession>,
    name: &str,
    spec: Value,
) -> Result<VDISession, kube::Error> {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": spec })),
    )
    .await
}

fn assert_code(result: Result<VDISession, kube::Error>, code: u16, needle: &str) {
    match result {
        Err(kube::Error::Api(e)) if e.code == code && e.message.contains(needle) => {}
        other => panic!("expected {code} naming {needle:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_owner_extends_a_running_session_within_the_policy() {
    let env = start(nodes(2, 8)).await;
    let admin = env.client();
    let ns = add_user(&admin, "alice").await.unwrap();
    add_user(&admin, "bob").await.unwrap();
    let alice = client_as(&env.platform, "alice", &["staff"]).await;
    let sessions: Api<VDISession> = Api::namespaced(alice.clone(), &ns);
    let mut desk = session("desk", "alice", &["staff"], "ubuntu-desktop", Some("1h"));
    desk.metadata.namespace = Some(ns.clone());
    sessions
        .create(&PostParams::default(), &desk)
        .await
        .unwrap();
    let running = wait_for(&sessions, "desk", "Running", |s| {
        common::phase(s) == Some(SessionPhase::Running)
    })
    .await
    .unwrap();
    let first_expiry = running.status.clone().unwrap().expires_at;
    wait_lifetime(&sessions, "desk", 3600).await;

    // Raised by its owner: the expiry moves, counted from the admission.
    let patched = patch_spec(&sessions, "desk", json!({"timeout": "2h"}))
        .await
        .unwrap();
    assert_eq!(patched.spec.timeout.as_deref(), Some("2h"));
    let s = wait_lifetime(&sessions, "desk", 7200).await;
    assert_ne!(s.status.clone().unwrap().expires_at, first_expiry);
    let expires = s.status.clone().unwrap().expires_at.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let extended = notes(&alice, &ns, "desk", "Extended").await;
        if extended
            .iter()
            .any(|n| n.contains(&format!("expires at {expires}")))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Extended event for {expires}: {extended:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Above the policy's maximum (quota: 4 h): clamped, at the write and in the status.
    let patched = patch_spec(&sessions, "desk", json!({"timeout": "10h"}))
        .await
        .unwrap();
    assert_eq!(patched.spec.timeout.as_deref(), Some("4h"), "clamped");
    let s = wait_lifetime(&sessions, "desk", 4 * 3600).await;
    let quota = s.status.clone().unwrap().decisions;
    assert!(
        quota
            .iter()
            .any(|d| d.hook == "admission" && d.plugin == "quota"),
        "{quota:?}"
    );

    // Nothing else of an admitted session may change.
    assert_code(
        patch_spec(&sessions, "desk", json!({"template": "ubuntu-cpu"})).await,
        422,
        "spec.template",
    );
    assert_code(
        patch_spec(&sessions, "desk", json!({"resources": {"cpuMillis": 4000}})).await,
        422,
        "spec.resources",
    );
    let relabel = sessions
        .patch(
            "desk",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
        )
        .await;
    assert_code(relabel, 422, "metadata.labels");

    // Another user may not extend it.
    let bob = client_as(&env.platform, "bob", &["staff"]).await;
    let bobs_view: Api<VDISession> = Api::namespaced(bob, &ns);
    assert_code(
        patch_spec(&bobs_view, "desk", json!({"timeout": "4h"})).await,
        403,
        "forbidden",
    );

    // A lifetime already past ends the session.
    patch_spec(&sessions, "desk", json!({"timeout": "1s"}))
        .await
        .unwrap();
    wait_for(&sessions, "desk", "gone", |s| s.is_none()).await;
    let expired = notes(&admin, &ns, "desk", "Expired").await;
    assert!(!expired.is_empty(), "no Expired event");
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_readmission_keeps_the_expiry_with_a_warning() {
    // Without the in-process hook nothing judges the write: the operator's re-admission is
    // what refuses, as when the policy changed between the write and the reconcile.
    let env = start_with(nodes(1, 8), Some(operator_config()), false).await;
    let sessions = env.sessions();
    create(
        &env,
        &session("desk", "alice", &["staff"], "ubuntu-cpu", Some("1h")),
    )
    .await
    .unwrap();
    let running = wait_for(&sessions, "desk", "Running", |s| {
        common::phase(s) == Some(SessionPhase::Running)
    })
    .await
    .unwrap();
    let expiry = running.status.clone().unwrap().expires_at;
    assert!(expiry.is_some());
    // The policy now refuses ubuntu-cpu to staff.
    let settings = json!({"templatesByGroup": {"staff": ["ubuntu-desktop"]}});
    Api::<VDIPlugin>::all(env.client())
        .patch(
            "quota",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"settings": settings}})),
        )
        .await
        .unwrap();
    wait_plugins_ready(&env, &["quota"]).await;

    patch_spec(&sessions, "desk", json!({"timeout": "2h"}))
        .await
        .unwrap();
    let s = wait_for(&sessions, "desk", "seen at its new generation", |s| {
        s.is_some_and(|s| {
            s.metadata.generation > Some(1)
                && s.status.as_ref().and_then(|st| st.observed_generation) == s.metadata.generation
        })
    })
    .await
    .unwrap();
    let st = s.status.clone().unwrap();
    assert_eq!(st.expires_at, expiry, "the old expiry stays");
    assert_eq!(st.admitted.as_ref().map(|a| a.timeout_seconds), Some(3600));
    assert_eq!(st.phase(), SessionPhase::Running);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let denied = notes(&env.client(), "default", "desk", "ExtendDenied").await;
        if denied
            .iter()
            .any(|n| n.contains("denied by plugin quota") && n.contains("not allowed"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ExtendDenied event: {denied:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        notes(&env.client(), "default", "desk", "Extended")
            .await
            .is_empty(),
        "not extended"
    );
    env.platform.stop().await;
}
