//! Persistence of the embedded control plane under `kill -9`: no acknowledged write is lost and
//! resourceVersions keep growing after a restart.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::ClusterProcess;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, ResourceExt};

async fn client(cluster: &ClusterProcess) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&cluster.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    Client::try_from(config).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_write_storm_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = ClusterProcess::start(dir.path());
    let cms: Api<ConfigMap> = Api::default_namespaced(client(&cluster).await);
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();

    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (cms, acked) = (cms.clone(), acked.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
                        "metadata": {"name": format!("w{w}-{i}")}, "data": {"i": i.to_string()}
                    }))
                    .expect("configmap");
                    match cms.create(&PostParams::default(), &cm).await {
                        Ok(made) => {
                            let rv = made
                                .resource_version()
                                .and_then(|r| r.parse().ok())
                                .expect("rv");
                            acked.lock().expect("lock").push((made.name_any(), rv));
                        }
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.kill();
    for w in writers {
        tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("writers stop")
            .expect("join");
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 20,
        "only {} writes were acknowledged before the kill",
        acked.len()
    );

    let restarted = ClusterProcess::start(dir.path());
    let cms: Api<ConfigMap> = Api::default_namespaced(client(&restarted).await);
    let stored: std::collections::HashSet<String> = cms
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    let lost: Vec<&String> = acked
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !stored.contains(*n))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );

    let newest = acked.iter().map(|(_, rv)| *rv).max().expect("some");
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "after-restart"}}))
            .expect("configmap");
    let after = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("create after restart");
    let rv: u64 = after
        .resource_version()
        .and_then(|r| r.parse().ok())
        .expect("rv");
    assert!(rv > newest, "resourceVersion went back: {rv} <= {newest}");
}
