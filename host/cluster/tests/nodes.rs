//! Simulated GPU nodes and the binder, observed through `kube::Client`.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use vdi_cluster::{Cluster, SimulatedNodes};

async fn start(dir: &std::path::Path, sim: SimulatedNodes) -> (Cluster, Client) {
    let (cluster, client) = common::start(dir).await;
    sim.start(cluster.store().clone()).expect("nodes");
    (cluster, client)
}

fn pod(name: &str, placement: serde_json::Value, gpus: u32) -> Pod {
    let mut spec = json!({"containers": [{"name": "desktop", "image": "i", "resources": {"limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": gpus.to_string()}}}]});
    if let (Some(s), Some(p)) = (spec.as_object_mut(), placement.as_object()) {
        s.extend(p.clone());
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pod")
}

async fn wait_for(pods: &Api<Pod>, name: &str, what: &str, ok: impl Fn(&Pod) -> bool) -> Pod {
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(p) = pods.get(name).await
                && ok(&p)
            {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("pod {name} never became {what}"))
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test]
async fn simulated_nodes_advertise_gpu_slices_and_run_pods() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimulatedNodes {
        count: 2,
        gpus_per_node: 2,
        slices_per_gpu: 4,
        start_delay: Duration::from_millis(100),
        ..SimulatedNodes::default()
    };
    let (_cluster, client) = start(dir.path(), sim).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let listed = nodes
        .list(&ListParams::default().labels("nvidia.com/gpu.replicas=4"))
        .await
        .expect("nodes");
    assert_eq!(listed.items.len(), 2);
    let n = &listed.items[0];
    let alloc = n
        .status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .expect("allocatable");
    assert_eq!(alloc["nvidia.com/gpu"].0, "8");
    assert_eq!(
        n.metadata.labels.as_ref().expect("labels")["nvidia.com/gpu.count"],
        "2"
    );

    let pods: Api<Pod> = Api::default_namespaced(client);
    pods.create(
        &PostParams::default(),
        &pod("pinned", json!({"nodeName": "sim-gpu-000"}), 1),
    )
    .await
    .expect("create");
    let running = wait_for(&pods, "pinned", "Running", |p| phase(p) == "Running").await;
    assert!(ready(&running));
}

#[tokio::test]
async fn the_binder_checks_fit_and_retries_when_capacity_frees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimulatedNodes {
        count: 1,
        gpus_per_node: 1,
        slices_per_gpu: 8,
        ..SimulatedNodes::default()
    };
    let (_cluster, client) = start(dir.path(), sim).await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let by_selector = json!({"nodeSelector": {"kubernetes.io/hostname": "sim-gpu-000"}});
    let by_affinity = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["sim-gpu-000"]}]}]}}}});
    pods.create(&PostParams::default(), &pod("big", by_selector, 8))
        .await
        .expect("create");
    let big = wait_for(&pods, "big", "Running", |p| phase(p) == "Running").await;
    assert_eq!(
        big.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some("sim-gpu-000")
    );

    pods.create(&PostParams::default(), &pod("late", by_affinity, 1))
        .await
        .expect("create");
    let waiting = wait_for(&pods, "late", "Unschedulable", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.reason.as_deref() == Some("Unschedulable"))
            })
    })
    .await;
    let message = waiting
        .status
        .and_then(|s| s.conditions)
        .and_then(|c| c[0].message.clone())
        .unwrap_or_default();
    assert_eq!(
        message,
        "0/1 nodes are available: Insufficient nvidia.com/gpu."
    );

    pods.delete("big", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for(&pods, "late", "Running", |p| phase(p) == "Running").await;
}

#[tokio::test]
async fn failure_injection_fails_the_chosen_share_with_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimulatedNodes {
        count: 1,
        failure: Some((1.0, "ImagePullBackOff".into())),
        ..SimulatedNodes::default()
    };
    let (_cluster, client) = start(dir.path(), sim).await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    pods.create(
        &PostParams::default(),
        &pod("doomed", json!({"nodeName": "sim-gpu-000"}), 1),
    )
    .await
    .expect("create");
    let doomed = wait_for(&pods, "doomed", "failed to pull", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.state
                        .as_ref()
                        .and_then(|s| s.waiting.as_ref())
                        .and_then(|w| w.reason.as_deref())
                        == Some("ImagePullBackOff")
                })
            })
    })
    .await;
    assert_eq!(phase(&doomed), "Pending");
    assert!(!ready(&doomed));
}

#[tokio::test]
async fn the_binding_subresource_places_a_pod_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(
        dir.path(),
        SimulatedNodes {
            count: 1,
            ..SimulatedNodes::default()
        },
    )
    .await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &pod("free", json!({}), 1))
        .await
        .expect("create");
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "free"}, "target": {"kind": "Node", "name": "sim-gpu-000"}});
    let request = |body: &serde_json::Value| {
        http::Request::post("/api/v1/namespaces/default/pods/free/binding")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).expect("json"))
            .expect("request")
    };
    client.request_text(request(&binding)).await.expect("bind");
    wait_for(&pods, "free", "Running", |p| phase(p) == "Running").await;
    match client
        .request_text(request(&binding))
        .await
        .expect_err("already bound")
    {
        kube::Error::Api(s) => assert_eq!(s.code, 409),
        other => panic!("expected 409, got {other:?}"),
    }
}
