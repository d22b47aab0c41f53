//! `pods/log` and `metrics.k8s.io` (what `kubectl logs` and `kubectl top` read) for pods on the
//! simulated nodes, through `kube::Client`.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, LogParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use vdi_cluster::SimulatedNodes;

fn pod(name: &str, node: Option<&str>, containers: &[&str]) -> Pod {
    let containers: Vec<_> = containers
        .iter()
        .map(|c| json!({"name": c, "image": "i", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}))
        .collect();
    let mut spec = json!({"containers": containers});
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": name}}, "spec": spec}),
    )
    .expect("pod")
}

async fn running(pods: &Api<Pod>, name: &str) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let phase = pods
                .get(name)
                .await
                .ok()
                .and_then(|p| p.status)
                .and_then(|s| s.phase);
            if phase.as_deref() == Some("Running") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} never ran"));
}

/// The message of a refused request, which must be a 400.
fn bad_request(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 400 => s.message,
        other => panic!("expected a 400, got {other:?}"),
    }
}

fn metrics_api(client: &Client, plural: &str, kind: &str, ns: Option<&str>) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

#[tokio::test]
async fn logs_say_why_there_are_none_and_check_their_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, client) = common::start(dir.path()).await;
    SimulatedNodes {
        count: 1,
        ..SimulatedNodes::default()
    }
    .start(cluster.store().clone())
    .expect("nodes");
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(
        &PostParams::default(),
        &pod("runs", Some("sim-gpu-000"), &["desktop"]),
    )
    .await
    .expect("create");
    pods.create(
        &PostParams::default(),
        &pod("two", Some("sim-gpu-000"), &["a", "b"]),
    )
    .await
    .expect("create");
    // Names no node the binder knows: never scheduled.
    pods.create(&PostParams::default(), &pod("nowhere", None, &["c"]))
        .await
        .expect("create");
    running(&pods, "runs").await;

    let params = LogParams {
        follow: true,
        tail_lines: Some(10),
        since_seconds: Some(60),
        timestamps: true,
        ..LogParams::default()
    };
    let simulated = bad_request(pods.logs("runs", &params).await.expect_err("no logs"));
    assert_eq!(
        simulated,
        "pod \"runs\" runs on simulated node \"sim-gpu-000\": simulated nodes run no containers and keep no logs"
    );
    let previous = LogParams {
        previous: true,
        container: Some("desktop".into()),
        ..LogParams::default()
    };
    assert!(
        bad_request(pods.logs("runs", &previous).await.expect_err("no logs"))
            .contains("simulated node")
    );
    assert_eq!(
        bad_request(
            pods.logs("nowhere", &LogParams::default())
                .await
                .expect_err("unscheduled")
        ),
        "pod nowhere does not have a host assigned"
    );
    let choose = bad_request(
        pods.logs("two", &LogParams::default())
            .await
            .expect_err("which container"),
    );
    assert_eq!(
        choose,
        "a container name must be specified for pod two, choose one of: [a b]"
    );
    let wrong = LogParams {
        container: Some("zzz".into()),
        ..LogParams::default()
    };
    assert_eq!(
        bad_request(
            pods.logs("runs", &wrong)
                .await
                .expect_err("no such container")
        ),
        "container zzz is not valid for pod runs"
    );
    // A parameter that does not parse is named.
    let request = http::Request::get("/api/v1/namespaces/default/pods/runs/log?tailLines=ten")
        .body(Vec::new())
        .expect("request");
    let err = client
        .request_text(request)
        .await
        .expect_err("bad tailLines");
    assert!(bad_request(err).contains("tailLines"));
    let missing = pods
        .logs("ghost", &LogParams::default())
        .await
        .expect_err("no pod");
    assert!(matches!(missing, kube::Error::Api(s) if s.code == 404));
}

#[tokio::test]
async fn metrics_report_requests_as_simulated_usage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, client) = common::start(dir.path()).await;
    SimulatedNodes {
        count: 2,
        ..SimulatedNodes::default()
    }
    .start(cluster.store().clone())
    .expect("nodes");
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(
        &PostParams::default(),
        &pod("one", Some("sim-gpu-000"), &["a", "b"]),
    )
    .await
    .expect("create");
    running(&pods, "one").await;

    let nodes = metrics_api(&client, "nodes", "NodeMetrics", None)
        .list(&ListParams::default())
        .await
        .expect("node metrics");
    assert_eq!(nodes.items.len(), 2);
    let busy = nodes
        .items
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some("sim-gpu-000"))
        .expect("sim-gpu-000");
    assert_eq!(
        busy.data["usage"],
        json!({"cpu": "1000m", "memory": "2097152Ki"})
    );
    assert_eq!(busy.data["window"], "30s");
    assert_eq!(
        busy.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("vdi.dev/simulated"))
            .map(String::as_str),
        Some("true")
    );

    let pod_metrics = metrics_api(&client, "pods", "PodMetrics", Some("default"));
    let one = pod_metrics.get("one").await.expect("pod metrics");
    assert_eq!(one.data["containers"][1]["name"], "b");
    assert_eq!(one.data["containers"][1]["usage"]["cpu"], "500m");
    let by_label = pod_metrics
        .list(&ListParams::default().labels("app=one"))
        .await
        .expect("list");
    assert_eq!(by_label.items.len(), 1);
    let all = metrics_api(&client, "pods", "PodMetrics", None)
        .list(&ListParams::default())
        .await
        .expect("all namespaces");
    assert_eq!(all.items.len(), 1);

    // Read-only.
    let obj: DynamicObject = serde_json::from_value(json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics", "metadata": {"name": "x"}})).expect("obj");
    let refused = pod_metrics
        .create(&PostParams::default(), &obj)
        .await
        .expect_err("read-only");
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 405),
        "{refused:?}"
    );
}
