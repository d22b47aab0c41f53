//! A desktop's life as its streamer reports it, through the assembled platform: the template's
//! node selector places it, the operator reads the streamer's `/activity` at the loopback address
//! announced on the pod (a fake streamer here: simulated nodes run nothing), records the first
//! frame, warns when input stops, clears the warning on input, ends the session at the idle
//! timeout, and keeps the home claim for the next sessions of the same user and template.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node, PersistentVolumeClaim, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt as _};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use vdi_crd::{LOCAL_ENDPOINT_ANNOTATION, SessionPhase, VDISession, VDITemplate};

use common::{Env, WAIT, create, nodes, session, start, wait_gone, wait_phase, wait_session};

const TEMPLATE: &str = "idle-desktop";
const FIRST_FRAME: &str = "2026-12-01T10:00:02Z";

/// A streamer's `/activity` on a loopback port: what it reports is the test's to set.
struct FakeStreamer {
    addr: std::net::SocketAddr,
    last_input: Arc<Mutex<Option<String>>>,
    paths: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeStreamer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let last_input: Arc<Mutex<Option<String>>> = Arc::default();
        let paths: Arc<Mutex<Vec<String>>> = Arc::default();
        let (input, seen) = (last_input.clone(), paths.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (input, seen) = (input.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
                    seen.lock().unwrap().push(path);
                    let last = input.lock().unwrap().clone();
                    let body = json!({
                        "startedAt": "2026-12-01T10:00:00Z",
                        "firstFrameAt": FIRST_FRAME,
                        "lastInputAt": last,
                        "viewers": 1,
                        "controllerConnected": true,
                    })
                    .to_string();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self {
            addr,
            last_input,
            paths,
            task,
        }
    }

    fn input_now(&self) {
        *self.last_input.lock().unwrap() = Some(jiff::Timestamp::now().to_string());
    }
}

impl Drop for FakeStreamer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A CPU-only template for nodes labelled `vdi.dev/pool=idle`, ended after 10 s without input
/// (so warned after 8 s: the warning lasts 2 s, time enough to see it under load).
async fn create_template(env: &Env) {
    let template: VDITemplate = serde_json::from_value(json!({
        "apiVersion": "vdi.dev/v1alpha1",
        "kind": "VDITemplate",
        "metadata": {"name": TEMPLATE},
        "spec": {
            "displayName": "Idle test desktop",
            "image": "ghcr.io/vdi-platform/ubuntu-desktop:24.04",
            "resources": {"gpuSlices": 0, "cpuMillis": 500, "memoryMib": 512},
            "nodeSelector": {"vdi.dev/pool": "idle"},
            "idleTimeout": "10s",
        },
    }))
    .unwrap();
    Api::<VDITemplate>::all(env.client())
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
}

/// Waits for the session's pod and announces the fake streamer on it, as a node agent would.
async fn announce(env: &Env, name: &str, streamer: &FakeStreamer) {
    let pods: Api<Pod> = Api::namespaced(env.client(), "default");
    let deadline = tokio::time::Instant::now() + WAIT;
    while pods.get_opt(name).await.unwrap().is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no pod {name}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let patch = json!({"metadata": {"annotations": {
        LOCAL_ENDPOINT_ANNOTATION: streamer.addr.to_string(),
    }}});
    pods.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

fn idle_condition(s: Option<&VDISession>) -> Option<(String, String)> {
    let c = s?.status.as_ref()?.condition("Idle")?;
    Some((c.status.clone(), c.reason.clone()))
}

async fn warnings(env: &Env, session: &str) -> Vec<String> {
    Api::<Event>::namespaced(env.client(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(session))
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter_map(|e| e.reason)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_desktop_is_warned_then_ended_and_its_home_survives() {
    let env = start(nodes(2, 8)).await;
    let streamer = FakeStreamer::start().await;
    create_template(&env).await;
    let label = json!({"metadata": {"labels": {"vdi.dev/pool": "idle"}}});
    Api::<Node>::all(env.client())
        .patch(
            "sim-gpu-001",
            &PatchParams::default(),
            &Patch::Merge(&label),
        )
        .await
        .unwrap();

    create(
        &env,
        &session("idle-1", "alice", &["admins"], TEMPLATE, None),
    )
    .await
    .unwrap();
    announce(&env, "idle-1", &streamer).await;
    let running = wait_phase(&env, "idle-1", SessionPhase::Running).await;
    let st = running.status.unwrap();
    assert_eq!(st.node.as_deref(), Some("sim-gpu-001"), "the node selector");
    assert!(
        st.objects
            .iter()
            .any(|o| o.kind == "PersistentVolumeClaim" && o.name == "home-idle-desktop")
    );

    // The first frame, as the streamer reports it; every earlier step has its time.
    let framed = wait_session(&env, "idle-1", "framed", |s| {
        s.and_then(|s| s.status.as_ref())
            .and_then(|st| st.timings.first_frame.as_deref())
            == Some(FIRST_FRAME)
    })
    .await
    .unwrap();
    let t = framed.status.unwrap().timings;
    for (step, at) in [
        ("admitted", &t.admitted),
        ("placed", &t.placed),
        ("objectsApplied", &t.objects_applied),
        ("podReady", &t.pod_ready),
    ] {
        assert!(
            at.as_deref()
                .is_some_and(|a| a.parse::<jiff::Timestamp>().is_ok()),
            "timings.{step}: {at:?}"
        );
    }
    assert!(
        streamer
            .paths
            .lock()
            .unwrap()
            .iter()
            .all(|p| p == "/sessions/default/idle-1/activity"),
        "the streamer's base path: {:?}",
        streamer.paths.lock().unwrap()
    );
    let keys = Api::<ConfigMap>::namespaced(env.client(), "default")
        .get("vdi-connect-keys")
        .await
        .unwrap();
    let pem = keys
        .data
        .and_then(|d| d.get("keys.pem").cloned())
        .unwrap_or_default();
    assert!(pem.contains("BEGIN PUBLIC KEY"), "{pem:?}");

    // No input: the warning comes; input clears it.
    wait_session(&env, "idle-1", "warned", |s| {
        idle_condition(s) == Some(("True".into(), "IdleWarning".into()))
    })
    .await;
    streamer.input_now();
    wait_session(&env, "idle-1", "active again", |s| {
        idle_condition(s) == Some(("False".into(), "InputReceived".into()))
    })
    .await;
    // Then no more input: the session ends.
    wait_gone(&env, "idle-1").await;
    let reasons = warnings(&env, "idle-1").await;
    for reason in ["IdleWarning", "IdleTimeout"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} event in {reasons:?}"
        );
    }

    // The home claim stays, unowned, and the next two sessions share it.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(env.client(), "default");
    let home = claims.get("home-idle-desktop").await.unwrap();
    assert!(home.owner_references().is_empty());
    assert!(!home.labels().contains_key("vdi.dev/session-uid"));
    for name in ["idle-2", "idle-3"] {
        create(&env, &session(name, "alice", &["admins"], TEMPLATE, None))
            .await
            .unwrap();
        announce(&env, name, &streamer).await;
    }
    streamer.input_now();
    for name in ["idle-2", "idle-3"] {
        wait_phase(&env, name, SessionPhase::Running).await;
    }
    assert_eq!(
        claims.get("home-idle-desktop").await.unwrap().uid(),
        home.uid(),
        "the relaunch found the same claim"
    );
    for name in ["idle-2", "idle-3"] {
        env.sessions()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in ["idle-2", "idle-3"] {
        wait_gone(&env, name).await;
    }
    assert_eq!(
        claims.get("home-idle-desktop").await.unwrap().uid(),
        home.uid(),
        "deleting sessions keeps the claim"
    );
    env.platform.stop().await;
}
