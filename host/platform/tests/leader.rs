//! Leader election between two operator replicas sharing the platform's control plane: the
//! follower reconciles nothing, takes over when the leader dies, and releases the Lease on a
//! graceful shutdown.

mod common;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use vdi_crd::SessionPhase;
use vdi_operator::{LeaseSettings, OperatorConfig};

use common::{WAIT, create, nodes, operator_config, session, start_with, wait_phase};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_replica_takes_over_when_the_leader_dies() {
    let env = start_with(nodes(1, 8), None, true).await;
    let lease = |identity: &str| LeaseSettings {
        namespace: "vdi-system".into(),
        name: "vdi-operator".into(),
        identity: identity.into(),
        duration: Duration::from_secs(2),
    };
    let config = |identity: &str| OperatorConfig {
        lease: Some(lease(identity)),
        ..operator_config()
    };
    let a = vdi_operator::Operator::start(
        env.client(),
        env.platform.registry.clone(),
        config("replica-a"),
    )
    .await
    .unwrap();
    env.platform.registry.wait_synced().await;
    let leases: Api<Lease> = Api::namespaced(env.client(), "vdi-system");
    let holder = || async {
        leases
            .get_opt("vdi-operator")
            .await
            .unwrap()
            .and_then(|l| l.spec.and_then(|s| s.holder_identity))
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while holder().await.as_deref() != Some("replica-a") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replica-a never led"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b = vdi_operator::Operator::start(
        env.client(),
        env.platform.registry.clone(),
        config("replica-b"),
    )
    .await
    .unwrap();
    create(
        &env,
        &session("one", "alice", &["staff"], "ubuntu-cpu", None),
    )
    .await
    .unwrap();
    wait_phase(&env, "one", SessionPhase::Running).await;
    assert_eq!(
        holder().await.as_deref(),
        Some("replica-a"),
        "the leader keeps its lease"
    );
    assert_eq!(
        b.metrics().reconciles(),
        0,
        "the follower reconciles nothing"
    );

    a.abort();
    let deadline = tokio::time::Instant::now() + WAIT;
    while holder().await.as_deref() != Some("replica-b") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replica-b never took over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    create(&env, &session("two", "bob", &["staff"], "ubuntu-cpu", None))
        .await
        .unwrap();
    wait_phase(&env, "two", SessionPhase::Running).await;
    assert!(b.metrics().reconciles() > 0);
    b.shutdown().await;
    assert_eq!(
        holder().await,
        None,
        "a graceful shutdown releases the lease"
    );
    env.platform.stop().await;
}
