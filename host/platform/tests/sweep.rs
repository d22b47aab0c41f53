//! The orphan sweep on the running platform: objects labelled for sessions that are gone go,
//! a live session's stay, and young objects are left alone.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::api::PostParams;
use kube::{Api, ResourceExt as _};
use serde_json::json;
use vdi_crd::SessionPhase;

use common::{create, nodes, session, session_objects, start, wait_phase};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_orphan_sweep_removes_objects_of_sessions_that_are_gone() {
    let env = start(nodes(1, 8)).await;
    let live = create(
        &env,
        &session("live", "alice", &["staff"], "ubuntu-cpu", None),
    )
    .await
    .unwrap();
    wait_phase(&env, "live", SessionPhase::Running).await;
    let services: Api<Service> = Api::namespaced(env.client(), "default");
    let orphan: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "left-behind", "labels": {"vdi.dev/session-uid": "0000-gone"}},
        "spec": {"ports": [{"port": 8080}]},
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &orphan)
        .await
        .unwrap();
    let sessions = env.platform.operator.as_ref().unwrap().sessions().clone();
    let deleted = vdi_operator::sweep::sweep_once(&env.client(), &sessions, Duration::ZERO).await;
    assert_eq!(deleted, 1);
    assert!(services.get_opt("left-behind").await.unwrap().is_none());
    assert!(
        session_objects(&env, &live.uid().unwrap()).await > 0,
        "live objects stay"
    );
    let young =
        vdi_operator::sweep::sweep_once(&env.client(), &sessions, vdi_operator::sweep::MIN_AGE)
            .await;
    assert_eq!(young, 0);
    env.platform.stop().await;
}
