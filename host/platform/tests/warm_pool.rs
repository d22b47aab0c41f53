//! The warm pool through the assembled platform on simulated nodes: a template's
//! `spec.warmPool` keeps that many sessions started and unclaimed in `vdi-pool` under the pool
//! identity (the operator creates them as its own service account, under deploy/'s RBAC), a
//! smaller pool removes the extras, and a template without one gets none. A launch claims a
//! pooled desktop (Running at once, streamed by the pool session, which connect tokens name),
//! the pool refills, and ending the launch ends the pool session it claimed.

mod common;

use std::time::Duration;

use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt as _};
use serde_json::json;
use vdi_crd::{
    CLAIMED_BY_ANNOTATION, POOL_LABEL, POOL_NAMESPACE, POOL_USER, SessionPhase, VDISession,
    VDITemplate,
};
use vdi_operator::connect::{ConnectKeys, stream_target};

use common::{Env, WAIT, create, nodes, session, start, wait_gone, wait_phase};

async fn add_template(env: &Env, name: &str, warm_pool: u32) {
    let template: VDITemplate = serde_json::from_value(json!({
        "apiVersion": "vdi.dev/v1alpha1",
        "kind": "VDITemplate",
        "metadata": {"name": name},
        "spec": {
            "displayName": name,
            "image": "ghcr.io/vdi-platform/ubuntu-desktop:24.04",
            "resources": {"gpuSlices": 0, "cpuMillis": 500, "memoryMib": 512},
            "warmPool": warm_pool,
        },
    }))
    .unwrap();
    Api::<VDITemplate>::all(env.client())
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
}

/// The pool sessions of `template` that are not being deleted.
async fn pool_of(env: &Env, template: &str) -> Vec<VDISession> {
    let api: Api<VDISession> = Api::namespaced(env.client(), POOL_NAMESPACE);
    let selector = format!("{POOL_LABEL}={template}");
    api.list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .collect()
}

/// Polls until the live pool of `template` satisfies `pred`.
async fn wait_pool(
    env: &Env,
    template: &str,
    what: &str,
    pred: impl Fn(&[VDISession]) -> bool,
) -> Vec<VDISession> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let pool = pool_of(env, template).await;
        if pred(&pool) {
            return pool;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pool of {template} never became {what}; last seen: {:?}",
            pool.iter()
                .map(|s| (s.name_any(), s.status.as_ref().map(|st| st.phase())))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn all_running(pool: &[VDISession], n: usize) -> bool {
    pool.len() == n
        && pool
            .iter()
            .all(|s| s.status.as_ref().map(|st| st.phase()) == Some(SessionPhase::Running))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_templates_warm_pool_is_kept_started_and_resized() {
    let env = start(nodes(1, 4)).await;
    add_template(&env, "warm-desktop", 2).await;
    add_template(&env, "cold-desktop", 0).await;

    let pool = wait_pool(&env, "warm-desktop", "2 running sessions", |p| {
        all_running(p, 2)
    })
    .await;
    for s in &pool {
        assert_eq!(s.spec.user.name, POOL_USER, "pool sessions run as the pool");
        assert_eq!(s.spec.user.groups, [POOL_USER]);
        assert_eq!(s.spec.template, "warm-desktop");
        let status = s.status.as_ref().unwrap();
        assert!(status.node.is_some(), "pooled sessions hold a place");
        assert!(status.url.is_some());
    }

    // The pool shrinks to one: one of the two goes and no new one comes.
    Api::<VDITemplate>::all(env.client())
        .patch(
            "warm-desktop",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"warmPool": 1}})),
        )
        .await
        .unwrap();
    let left = wait_pool(&env, "warm-desktop", "1 session", |p| p.len() == 1).await;
    assert!(
        pool.iter().any(|s| s.name_any() == left[0].name_any()),
        "a shrinking pool keeps one it had"
    );

    // A pool session that ends is replaced.
    let api: Api<VDISession> = Api::namespaced(env.client(), POOL_NAMESPACE);
    api.delete(&left[0].name_any(), &Default::default())
        .await
        .unwrap();
    let refilled = wait_pool(&env, "warm-desktop", "refilled and running", |p| {
        all_running(p, 1) && p[0].name_any() != left[0].name_any()
    })
    .await;
    assert_eq!(refilled.len(), 1);

    // A template without a pool never gets one.
    assert!(pool_of(&env, "cold-desktop").await.is_empty());
}

fn unclaimed(pool: &[VDISession]) -> Vec<&VDISession> {
    pool.iter()
        .filter(|s| !s.annotations().contains_key(CLAIMED_BY_ANNOTATION))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_launch_claims_a_pooled_desktop_and_the_pool_refills() {
    let env = start(nodes(1, 4)).await;
    add_template(&env, "warm-desktop", 2).await;
    wait_pool(&env, "warm-desktop", "2 running sessions", |p| {
        all_running(p, 2)
    })
    .await;

    let started = std::time::Instant::now();
    create(
        &env,
        &session("alice-1", "alice", &["admins"], "warm-desktop", Some("1h")),
    )
    .await
    .unwrap();
    let alice = wait_phase(&env, "alice-1", SessionPhase::Running).await;
    let took = started.elapsed();
    let status = alice.status.clone().unwrap();
    let served_by = status.served_by.clone().expect("served by the pool");
    let pool_name = served_by.strip_prefix("vdi-pool/").unwrap().to_owned();
    assert!(
        took < Duration::from_secs(1),
        "a claim runs the session at once, took {took:?}"
    );
    assert!(status.url.as_deref().unwrap().contains(&pool_name));
    assert!(status.node.is_some());
    assert!(
        status.objects.is_empty(),
        "a claimed session renders nothing"
    );
    assert_eq!(alice.spec.user.name, "alice");

    let pool_api: Api<VDISession> = Api::namespaced(env.client(), POOL_NAMESPACE);
    let claimed = pool_api.get(&pool_name).await.unwrap();
    assert_eq!(
        claimed
            .annotations()
            .get(CLAIMED_BY_ANNOTATION)
            .map(String::as_str),
        Some("default.alice-1")
    );

    // The pool refills to two unclaimed desktops beside the claimed one.
    wait_pool(&env, "warm-desktop", "refilled", |p| {
        let free = unclaimed(p);
        free.len() == 2
            && free
                .iter()
                .all(|s| s.status.as_ref().map(|st| st.phase()) == Some(SessionPhase::Running))
    })
    .await;

    // Connect tokens name the pool session, whose streamer serves alice.
    let target = stream_target(&alice).unwrap();
    assert_eq!(target.namespace, POOL_NAMESPACE);
    assert_eq!(target.name, pool_name);
    assert_eq!(Some(target.uid.clone()), claimed.uid());
    let keys = ConnectKeys::generate().unwrap();
    let now = 1_800_000_000;
    let token = keys
        .mint(
            &target.namespace,
            &target.name,
            &target.uid,
            "alice",
            now + 3600,
            now,
        )
        .unwrap();
    let claims = keys
        .verify(&token, POOL_NAMESPACE, &pool_name, now + 1)
        .unwrap();
    assert_eq!((claims.sub.as_str(), claims.sid), ("alice", target.uid));

    // Ending alice's session ends the pool session it claimed.
    env.sessions()
        .delete("alice-1", &Default::default())
        .await
        .unwrap();
    wait_gone(&env, "alice-1").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while pool_api.get_opt(&pool_name).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the claimed pool session outlived its user's session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A template without a pool starts as before.
    add_template(&env, "cold-desktop", 0).await;
    create(
        &env,
        &session("bob-1", "bob", &["admins"], "cold-desktop", Some("1h")),
    )
    .await
    .unwrap();
    let bob = wait_phase(&env, "bob-1", SessionPhase::Running).await;
    let bob_status = bob.status.unwrap();
    assert!(bob_status.served_by.is_none());
    assert!(!bob_status.objects.is_empty());
}
