//! The process node runs pods as local process groups: real status, logs (`follow`,
//! `previous`), restarts, readiness probes, configuration from the store, memory limits and the
//! streamer image's mapping. Cleanup: `process_node_cleanup.rs`.

mod common;
mod process;

use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{LogParams, PostParams};
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use vdi_cluster::ProcessNode;

use process::*;

#[tokio::test]
async fn node_registers_and_shell_pod_logs_follows_restarts_and_keeps_previous() {
    let env = start(200).await;
    let nodes: Api<Node> = Api::all(env.client.clone());
    let node = serde_json::to_value(nodes.get("local").await.expect("node")).expect("json");
    assert_eq!(node["metadata"]["labels"]["vdi.dev/runtime"], "process");
    assert_eq!(
        node["metadata"]["labels"]["kubernetes.io/hostname"],
        "local"
    );
    assert!(
        node["status"]["nodeInfo"]["containerRuntimeVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("process://"))
    );
    assert!(node["status"]["allocatable"]["cpu"].as_str().is_some());
    assert_eq!(node["status"]["conditions"][0]["type"], "Ready");

    let pods = env.pods();
    // Bound by the binder through its node selector.
    pods.create(
        &PostParams::default(),
        &pod(
            "printer",
            json!({
                "nodeSelector": {"vdi.dev/runtime": "process"},
                "containers": [{"name": "sh", "image": "test/sh:1",
                    "args": ["echo line-1; echo line-2 >&2; sleep 1; echo line-3"],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
            }),
        ),
    )
    .await
    .expect("create");
    let running = wait_pod(&pods, "printer", "Running", |p| {
        p["status"]["phase"] == "Running" && container(p, "sh")["state"]["running"].is_object()
    })
    .await;
    assert_eq!(running["spec"]["nodeName"], "local");
    assert_eq!(running["status"]["podIP"], "127.0.0.1");

    // follow streams the instance's lines and ends with it.
    let stream = pods
        .log_stream(
            "printer",
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("follow");
    let followed: Vec<String> = tokio::time::timeout(DEADLINE, stream.lines().try_collect())
        .await
        .expect("follow ends with the container")
        .expect("lines");
    assert_eq!(followed, ["line-1", "line-2", "line-3"]);

    let restarted = wait_pod(&pods, "printer", "restarted", |p| {
        container(p, "sh")["restartCount"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(
        container(&restarted, "sh")["lastState"]["terminated"]["reason"],
        "Completed"
    );
    let previous = logs(
        &pods,
        "printer",
        &LogParams {
            previous: true,
            ..LogParams::default()
        },
    )
    .await;
    assert_eq!(previous, "line-1\nline-2\nline-3\n");
    let stamped = logs(
        &pods,
        "printer",
        &LogParams {
            previous: true,
            timestamps: true,
            tail_lines: Some(1),
            ..LogParams::default()
        },
    )
    .await;
    let (time, text) = stamped.trim_end().split_once(' ').expect("stamp");
    assert!(time.parse::<jiff::Timestamp>().is_ok(), "{stamped}");
    assert_eq!(text, "line-3");

    // The second exit backs off as the kubelet does.
    let backoff = wait_pod(&pods, "printer", "backing off", |p| {
        container(p, "sh")["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    })
    .await;
    assert_eq!(backoff["status"]["phase"], "Running");

    // An image the runtime table does not know waits, naming it.
    pods.create(
        &PostParams::default(),
        &pod(
            "web",
            json!({"nodeName": "local", "containers": [{"name": "nginx", "image": "nginx:1.27"}]}),
        ),
    )
    .await
    .expect("create");
    let waiting = wait_pod(&pods, "web", "ErrImagePull", |p| {
        container(p, "nginx")["state"]["waiting"]["reason"] == "ErrImagePull"
    })
    .await;
    assert_eq!(waiting["status"]["phase"], "Pending");
    assert!(
        container(&waiting, "nginx")["state"]["waiting"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nginx:1.27") && m.contains("runtime table"))
    );
    env.node.expect("node").stop().await;
}

#[tokio::test]
async fn readiness_follows_an_http_probe() {
    let env = start(500).await;
    let pods = env.pods();
    pods.create(
        &PostParams::default(),
        &pod("web", json!({"nodeName": "local",
            "containers": [{"name": "web", "image": "test/web",
                "ports": [{"name": "http", "containerPort": 8000}],
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
                "args": ["while [ ! -e go ]; do sleep 0.05; done; exec python3 -m http.server --bind 127.0.0.1 \"${LISTEN##*:}\""]}]})),
    )
    .await
    .expect("create");
    let running = wait_pod(&pods, "web", "Running", |p| {
        container(p, "web")["state"]["running"].is_object()
    })
    .await;
    assert_eq!(container(&running, "web")["ready"], false);
    let dir = pod_dir(&env, &running);
    // Nothing listens yet: two probe periods later it is still not ready.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let still = serde_json::to_value(pods.get("web").await.expect("web")).expect("json");
    assert_eq!(container(&still, "web")["ready"], false);
    std::fs::write(dir.join("containers/web/go"), b"").expect("go");
    let ready = wait_pod(&pods, "web", "ready", |p| {
        container(p, "web")["ready"] == true
    })
    .await;
    let conditions = ready["status"]["conditions"]
        .as_array()
        .expect("conditions");
    for t in ["Ready", "ContainersReady"] {
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == t && c["status"] == "True"),
            "{t}: {conditions:?}"
        );
    }
    let endpoint = ready["metadata"]["annotations"]["vdi.dev/local-endpoint"]
        .as_str()
        .expect("endpoint");
    assert!(std::net::TcpStream::connect(endpoint).is_ok());
    env.node.expect("node").stop().await;
}

#[tokio::test]
async fn a_missing_configmap_waits_until_it_appears() {
    let env = start(600).await;
    let pods = env.pods();
    pods.create(
        &PostParams::default(),
        &pod("late", json!({"nodeName": "local", "restartPolicy": "Never",
            "containers": [{"name": "sh", "image": "test/sh", "args": ["echo \"mode=$MODE\""],
                "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}]}]})),
    )
    .await
    .expect("create");
    let waiting = wait_pod(&pods, "late", "waiting on its ConfigMap", |p| {
        container(p, "sh")["state"]["waiting"]["reason"] == "CreateContainerConfigError"
    })
    .await;
    assert_eq!(
        container(&waiting, "sh")["state"]["waiting"]["message"],
        "configmap \"settings\" not found"
    );
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::default_namespaced(env.client.clone());
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "settings"}, "data": {"mode": "fast"}}),
        )
        .expect("configmap"),
    )
    .await
    .expect("create configmap");
    wait_pod(&pods, "late", "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    })
    .await;
    assert_eq!(
        logs(&pods, "late", &LogParams::default()).await,
        "mode=fast\n"
    );
    env.node.expect("node").stop().await;
}

#[tokio::test]
async fn a_memory_limit_bounds_the_data_segment() {
    let env = start(800).await;
    let pods = env.pods();
    pods.create(
        &PostParams::default(),
        &pod(
            "limited",
            json!({"nodeName": "local", "restartPolicy": "Never",
            "containers": [{"name": "sh", "image": "test/sh", "args": ["ulimit -d"],
                "resources": {"limits": {"memory": "64Mi"}}}]}),
        ),
    )
    .await
    .expect("create");
    wait_pod(&pods, "limited", "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    })
    .await;
    let log = logs(&pods, "limited", &LogParams::default()).await;
    if log == "unlimited\n" {
        // The limit went to a delegated cgroup v2 instead.
        assert!(
            Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
            "no limit at all"
        );
    } else {
        assert_eq!(log, "65536\n", "RLIMIT_DATA in KiB");
    }
    env.node.expect("node").stop().await;
}

#[tokio::test]
async fn the_streamer_image_runs_the_configured_binary_with_mapped_env_and_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, client) = common::start(&dir.path().join("cluster")).await;
    // A stand-in for vdi-streamer that reports what it was given.
    let streamer = dir.path().join("fake-streamer");
    std::fs::write(
        &streamer,
        "#!/bin/sh\necho \"listen=$VDI_LISTEN display=$DISPLAY args=$*\"\necho \"key=$(cat \"$VDI_TOKEN_PUBLIC_KEY\")\"\n",
    )
    .expect("script");
    std::fs::set_permissions(
        &streamer,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let mut node = ProcessNode::new(dir.path().join("node"), &streamer);
    node.display_base = 900;
    let node = node.start(cluster.store().clone()).await.expect("node");
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "vdi-connect-keys"},
            "data": {"keys.pem": "PUBLIC KEY"}}))
        .expect("configmap"),
    )
    .await
    .expect("configmap");
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(
        &PostParams::default(),
        &pod("streamer", json!({"nodeName": "local", "restartPolicy": "Never",
            "volumes": [{"name": "x11", "emptyDir": {}},
                        {"name": "connect-keys", "configMap": {"name": "vdi-connect-keys"}}],
            "containers": [{"name": "streamer", "image": "ghcr.io/vdi-platform/vdi-streamer:0.1",
                "args": ["--display", "$(DISPLAY)"],
                "ports": [{"name": "http", "containerPort": 8080}],
                "env": [{"name": "DISPLAY", "value": ":0"},
                        {"name": "VDI_LISTEN", "value": "0.0.0.0:8080"},
                        {"name": "VDI_TOKEN_PUBLIC_KEY", "value": "/etc/vdi/connect/keys.pem"}],
                "volumeMounts": [{"name": "x11", "mountPath": "/tmp/.X11-unix"},
                                 {"name": "connect-keys", "mountPath": "/etc/vdi/connect", "readOnly": true}]}]})),
    )
    .await
    .expect("create");
    let done = wait_pod(&pods, "streamer", "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    })
    .await;
    let endpoint = done["metadata"]["annotations"]["vdi.dev/local-endpoint"]
        .as_str()
        .expect("endpoint");
    let log = logs(&pods, "streamer", &LogParams::default()).await;
    assert_eq!(
        log,
        format!("listen={endpoint} display=:900 args=--display :900\nkey=PUBLIC KEY\n")
    );
    node.stop().await;
}

#[tokio::test]
async fn simulated_and_process_nodes_share_the_binder() {
    let env = start(1000).await;
    vdi_cluster::SimulatedNodes {
        count: 1,
        ..vdi_cluster::SimulatedNodes::default()
    }
    .start(env.cluster.store().clone())
    .expect("simulated nodes");
    let pods = env.pods();
    for (name, selector) in [
        ("here", json!({"vdi.dev/runtime": "process"})),
        ("there", json!({"kubernetes.io/hostname": "sim-gpu-000"})),
    ] {
        pods.create(
            &PostParams::default(),
            &pod(
                name,
                json!({"nodeSelector": selector, "restartPolicy": "Never",
                "containers": [{"name": "sh", "image": "test/sh", "args": ["echo ran"]}]}),
            ),
        )
        .await
        .expect("create");
    }
    let here = wait_pod(&pods, "here", "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    })
    .await;
    assert_eq!(here["spec"]["nodeName"], "local");
    assert_eq!(logs(&pods, "here", &LogParams::default()).await, "ran\n");
    let there = wait_pod(&pods, "there", "Running", |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    assert_eq!(there["spec"]["nodeName"], "sim-gpu-000");
    env.node.expect("node").stop().await;
}

#[tokio::test]
async fn a_program_that_cannot_start_fails_the_pod_and_its_log_ends() {
    let env = start(1100).await;
    let pods = env.pods();
    pods.create(
        &PostParams::default(),
        &pod(
            "broken",
            json!({"nodeName": "local", "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "test/missing"}]}),
        ),
    )
    .await
    .expect("create");
    let failed = wait_pod(&pods, "broken", "Failed", |p| {
        p["status"]["phase"] == "Failed"
    })
    .await;
    let terminated = &container(&failed, "c")["state"]["terminated"];
    assert_eq!(terminated["reason"], "StartError");
    assert_eq!(terminated["exitCode"], 128);
    assert!(
        terminated["message"]
            .as_str()
            .is_some_and(|m| m.contains("/nonexistent/program")),
        "{terminated}"
    );
    let follow = pods
        .log_stream(
            "broken",
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("follow");
    let lines: Vec<String> = tokio::time::timeout(DEADLINE, follow.lines().try_collect())
        .await
        .expect("the follow ends at once")
        .expect("lines");
    assert!(lines.is_empty(), "{lines:?}");
    env.node.expect("node").stop().await;
}

#[tokio::test]
async fn a_failing_liveness_probe_restarts_the_container() {
    let env = start(1200).await;
    let pods = env.pods();
    pods.create(
        &PostParams::default(),
        &pod("unhealthy", json!({"nodeName": "local",
            "containers": [{"name": "c", "image": "test/sh", "args": ["exec sleep 1000"],
                "ports": [{"name": "http", "containerPort": 8080}],
                "livenessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1, "failureThreshold": 1}}]})),
    )
    .await
    .expect("create");
    let restarted = wait_pod(&pods, "unhealthy", "restarted by its liveness probe", |p| {
        container(p, "c")["restartCount"].as_u64() >= Some(1)
    })
    .await;
    let last = &container(&restarted, "c")["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 143);
    assert_eq!(last["reason"], "Error");
    assert_eq!(last["message"], "killed by signal SIGTERM");
    env.node.expect("node").stop().await;
}
