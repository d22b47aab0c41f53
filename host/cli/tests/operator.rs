//! The operator against the embedded control plane over real HTTPS: sessions from creation to
//! Running and away again, admission denials, capacity waits, timeouts, restarts mid-way, plugin
//! hot swaps and failures, and leader election.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt as _};
use serde_json::json;
use vdi_cli::platform::{Platform, PlatformOptions};
use vdi_cluster::SimulatedNodes;
use vdi_crd::{PluginPhase, SessionPhase, VDIPlugin, VDISession};
use vdi_operator::{LeaseSettings, OperatorConfig};
use vdi_plugin_host::Digest;

use common::webhook::{http, post_review};

const WAIT: Duration = Duration::from_secs(20);

struct Env {
    platform: Platform,
    _dir: tempfile::TempDir,
}

impl Env {
    fn client(&self) -> Client {
        self.platform.client.clone()
    }

    fn sessions(&self) -> Api<VDISession> {
        Api::namespaced(self.client(), "default")
    }
}

fn operator_config() -> OperatorConfig {
    OperatorConfig {
        sweep_every: Duration::from_secs(3600),
        ..OperatorConfig::default()
    }
}

fn nodes(count: usize, slices: u32) -> SimulatedNodes {
    SimulatedNodes {
        count,
        slices_per_gpu: slices,
        ..SimulatedNodes::default()
    }
}

async fn start_with(nodes: SimulatedNodes, operator: Option<OperatorConfig>, hook: bool) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let guests = common::guests();
    let platform = Platform::start(PlatformOptions {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        nodes,
        plugins_dir: Some(guests.clone()),
        cache_dir: Some(guests.join("../../test-compile-cache")),
        operator,
        admission_hook: hook,
    })
    .await
    .expect("start the platform");
    Env {
        platform,
        _dir: dir,
    }
}

async fn start(nodes: SimulatedNodes) -> Env {
    start_with(nodes, Some(operator_config()), true).await
}

fn session(
    name: &str,
    user: &str,
    groups: &[&str],
    template: &str,
    timeout: Option<&str>,
) -> VDISession {
    serde_json::from_value(json!({
        "apiVersion": "vdi.dev/v1alpha1",
        "kind": "VDISession",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "user": {"name": user, "groups": groups},
            "template": template,
            "timeout": timeout,
        },
    }))
    .unwrap()
}

async fn create(env: &Env, s: &VDISession) -> Result<VDISession, kube::Error> {
    env.sessions().create(&PostParams::default(), s).await
}

/// Polls until `pred` holds for the session (or it is gone, for `None`).
async fn wait_session(
    env: &Env,
    name: &str,
    what: &str,
    pred: impl Fn(Option<&VDISession>) -> bool,
) -> Option<VDISession> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = env.sessions().get_opt(name).await.unwrap();
        if pred(s.as_ref()) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "session {name} never became {what}; last seen: {:#?}",
            s.map(|s| s.status)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn phase(s: Option<&VDISession>) -> Option<SessionPhase> {
    s.and_then(|s| s.status.as_ref()).map(|st| st.phase())
}

async fn wait_phase(env: &Env, name: &str, want: SessionPhase) -> VDISession {
    wait_session(env, name, want.as_str(), |s| phase(s) == Some(want))
        .await
        .unwrap()
}

async fn wait_gone(env: &Env, name: &str) {
    wait_session(env, name, "gone", |s| s.is_none()).await;
}

async fn session_objects(env: &Env, uid: &str) -> usize {
    let lp = ListParams::default().labels(&format!("vdi.dev/session-uid={uid}"));
    let c = env.client();
    Api::<Pod>::namespaced(c.clone(), "default")
        .list(&lp)
        .await
        .unwrap()
        .items
        .len()
        + Api::<Service>::namespaced(c.clone(), "default")
            .list(&lp)
            .await
            .unwrap()
            .items
            .len()
        + Api::<PersistentVolumeClaim>::namespaced(c, "default")
            .list(&lp)
            .await
            .unwrap()
            .items
            .len()
}

async fn wait_plugins_ready(env: &Env, names: &[&str]) {
    let api: Api<VDIPlugin> = Api::all(env.client());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut ready = true;
        for n in names {
            let p = api.get(n).await.unwrap();
            let st = p.status.clone().unwrap_or_default();
            ready &= st.phase == Some(PluginPhase::Ready)
                && st.observed_generation == p.metadata.generation;
        }
        if ready {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "plugins {names:?} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Server-side applies a `VDIPlugin` and waits until the operator serves it.
async fn apply_plugin(env: &Env, name: &str, obj: serde_json::Value) {
    Api::<VDIPlugin>::all(env.client())
        .patch(name, &PatchParams::apply("test"), &Patch::Apply(obj))
        .await
        .unwrap();
    wait_plugins_ready(env, &[name]).await;
}

/// Creating `s` is refused with 403 and a message containing `needle`.
async fn assert_refused(env: &Env, s: &VDISession, needle: &str) {
    match create(env, s).await {
        Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains(needle) => {}
        other => panic!("expected a 403 naming {needle:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_runs_through_every_hook_and_goes_away_with_its_objects() {
    let env = start(nodes(2, 8)).await;
    let created = create(
        &env,
        &session(
            "alice-desktop",
            "alice",
            &["staff"],
            "ubuntu-desktop",
            Some("2h"),
        ),
    )
    .await
    .unwrap();
    let s = wait_phase(&env, "alice-desktop", SessionPhase::Running).await;
    let st = s.status.clone().unwrap();
    assert_eq!(
        st.url.as_deref(),
        Some("https://localhost:8443/sessions/default/alice-desktop/")
    );
    assert!(
        st.node.as_deref().unwrap().starts_with("sim-gpu-"),
        "{st:?}"
    );
    assert_eq!(st.gpu, Some(0));
    assert!(st.started_at.is_some() && st.expires_at.is_some());
    assert_eq!(
        st.admitted.as_ref().unwrap().resources.gpu_slices,
        1,
        "template default"
    );
    let hooks: Vec<(&str, &str, &str)> = st
        .decisions
        .iter()
        .map(|d| (d.hook.as_str(), d.plugin.as_str(), d.outcome.as_str()))
        .collect();
    assert_eq!(
        hooks,
        [
            ("admission", "quota", "Allowed"),
            ("scheduler", "gpu-binpack", "Placed"),
            ("template", "desktop", "Rendered"),
        ]
    );
    assert!(st.decisions.iter().all(|d| d.digest.starts_with("sha256:")));
    let kinds: Vec<&str> = st.objects.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "PersistentVolumeClaim",
            "Pod",
            "Service",
            "IngressRoute",
            "NetworkPolicy"
        ]
    );
    let pod = Api::<Pod>::namespaced(env.client(), "default")
        .get("alice-desktop")
        .await
        .unwrap();
    let owner = &pod.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("VDISession", created.uid().unwrap().as_str())
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(pod.spec.unwrap().node_name, st.node);
    let events: Vec<String> = Api::<Event>::namespaced(env.client(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("alice-desktop"))
        .filter_map(|e| e.reason)
        .collect();
    for reason in ["Scheduled", "Running"] {
        assert!(
            events.iter().any(|e| e == reason),
            "no {reason} event in {events:?}"
        );
    }
    let metrics = env.platform.operator.as_ref().unwrap().metrics();
    assert_eq!(
        metrics.transitions(SessionPhase::Provisioning, SessionPhase::Running),
        1
    );

    env.sessions()
        .delete("alice-desktop", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&env, "alice-desktop").await;
    assert_eq!(
        session_objects(&env, &created.uid().unwrap()).await,
        0,
        "objects left behind"
    );
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_denied_session_is_refused_at_the_api_and_recorded_by_the_controller() {
    // With the in-process admission (the webhook's stand-in), the create itself is refused.
    let env = start(nodes(1, 8)).await;
    assert_refused(
        &env,
        &session(
            "bob-desktop",
            "bob",
            &["contractors"],
            "ubuntu-desktop",
            None,
        ),
        "denied by plugin quota: template \"ubuntu-desktop\" is not allowed for user \"bob\"",
    )
    .await;
    // A template that does not exist is an invalid field, not a policy denial.
    let invalid = create(&env, &session("x", "bob", &[], "no-such-template", None))
        .await
        .unwrap_err();
    assert!(
        matches!(invalid, kube::Error::Api(ref e) if e.code == 422 && e.message.contains("no-such-template")),
        "{invalid:?}"
    );
    env.platform.stop().await;

    // Without it (a real cluster with no webhook installed), the controller denies it and says
    // why in the status and an Event.
    let env = start_with(nodes(1, 8), Some(operator_config()), false).await;
    create(
        &env,
        &session(
            "bob-desktop",
            "bob",
            &["contractors"],
            "ubuntu-desktop",
            None,
        ),
    )
    .await
    .unwrap();
    let s = wait_phase(&env, "bob-desktop", SessionPhase::Denied).await;
    let st = s.status.unwrap();
    assert_eq!(st.reason.as_deref(), Some("AdmissionDenied"));
    assert!(
        st.message
            .unwrap()
            .contains("is not allowed for user \"bob\"")
    );
    assert_eq!(st.node, None, "a denied session is never placed");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = Api::<Event>::namespaced(env.client(), "default")
            .list(&ListParams::default())
            .await
            .unwrap();
        if events.items.iter().any(|e| {
            e.reason.as_deref() == Some("AdmissionDenied")
                && e.note.as_deref().is_some_and(|n| n.contains("bob"))
                && e.type_.as_deref() == Some("Warning")
        }) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no AdmissionDenied event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ninth_session_on_an_eight_slice_gpu_waits_and_is_placed_when_one_goes() {
    let env = start(nodes(1, 8)).await;
    let names: Vec<String> = (0..9).map(|i| format!("desk-{i}")).collect();
    let creates = names.iter().enumerate().map(|(i, n)| {
        let s = session(n, &format!("user-{i}"), &["staff"], "ubuntu-desktop", None);
        let api = env.sessions();
        async move { api.create(&PostParams::default(), &s).await.unwrap() }
    });
    futures::future::join_all(creates).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let (running, waiting) = loop {
        let list = env
            .sessions()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        let running: Vec<VDISession> = list
            .iter()
            .filter(|s| phase(Some(s)) == Some(SessionPhase::Running))
            .cloned()
            .collect();
        let waiting: Vec<VDISession> = list
            .iter()
            .filter(|s| {
                s.status
                    .as_ref()
                    .and_then(|st| st.condition("Scheduled"))
                    .is_some_and(|c| c.status == "False" && c.reason == "Unschedulable")
            })
            .cloned()
            .collect();
        if running.len() == 8 && waiting.len() == 1 {
            break (running, waiting);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected 8 running and 1 waiting, got {} and {}",
            running.len(),
            waiting.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let slots: HashSet<(String, u32)> = running
        .iter()
        .map(|s| {
            let st = s.status.as_ref().unwrap();
            (st.node.clone().unwrap(), st.gpu.unwrap())
        })
        .collect();
    assert_eq!(slots.len(), 1, "all on the one GPU");
    let waiter = waiting[0].name_any();
    let st = waiting[0].status.as_ref().unwrap();
    assert_eq!(st.phase(), SessionPhase::Pending);
    assert!(
        st.condition("Scheduled").unwrap().message.contains("slice"),
        "{st:?}"
    );

    env.sessions()
        .delete(&running[0].name_any(), &DeleteParams::default())
        .await
        .unwrap();
    let placed = wait_phase(&env, &waiter, SessionPhase::Running).await;
    assert_eq!(placed.status.unwrap().gpu, Some(0));
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_session_is_removed_with_everything_it_had() {
    let env = start(nodes(1, 8)).await;
    let s = create(
        &env,
        &session("short", "alice", &["staff"], "ubuntu-cpu", Some("3s")),
    )
    .await
    .unwrap();
    let running = wait_phase(&env, "short", SessionPhase::Running).await;
    let st = running.status.unwrap();
    assert!(st.node.is_some());
    assert_eq!(st.gpu, None, "CPU-only template");
    let expires: jiff::Timestamp = st.expires_at.unwrap().parse().unwrap();
    wait_gone(&env, "short").await;
    assert!(
        jiff::Timestamp::now() >= expires,
        "removed before its expiry"
    );
    assert_eq!(session_objects(&env, &s.uid().unwrap()).await, 0);
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_killed_mid_way_converges_without_duplicates_or_leaks() {
    let slow = SimulatedNodes {
        start_delay: Duration::from_millis(1500),
        ..nodes(2, 8)
    };
    let mut env = start(slow).await;
    let names = ["r-0", "r-1", "r-2"];
    for (i, n) in names.iter().enumerate() {
        create(
            &env,
            &session(n, &format!("u{i}"), &["staff"], "ubuntu-desktop", None),
        )
        .await
        .unwrap();
    }
    for n in names {
        wait_phase(&env, n, SessionPhase::Provisioning).await;
    }
    // Killed while the desktops start.
    env.platform.kill_operator();
    env.platform
        .start_operator(operator_config())
        .await
        .unwrap();
    let mut uids = Vec::new();
    for n in names {
        let s = wait_phase(&env, n, SessionPhase::Running).await;
        let pods = Api::<Pod>::namespaced(env.client(), "default")
            .list(&ListParams::default().labels(&format!("vdi.dev/session={n}")))
            .await
            .unwrap();
        assert_eq!(pods.items.len(), 1, "exactly one pod for {n}");
        uids.push(s.uid().unwrap());
    }
    let mut slots = HashSet::new();
    for n in names {
        let st = env.sessions().get(n).await.unwrap().status.unwrap();
        assert!(
            slots.insert((st.node.unwrap(), st.gpu.unwrap(), n)),
            "no slot given twice"
        );
    }

    // Killed while removing them: a finalizer on one desktop pod holds its session in
    // Terminating (as a slow graceful shutdown would).
    let pods: Api<Pod> = Api::namespaced(env.client(), "default");
    let hold = json!({"metadata": {"finalizers": ["test.vdi.dev/hold"]}});
    pods.patch("r-0", &PatchParams::default(), &Patch::Merge(&hold))
        .await
        .unwrap();
    for n in names {
        env.sessions()
            .delete(n, &DeleteParams::default())
            .await
            .unwrap();
    }
    wait_phase(&env, names[0], SessionPhase::Terminating).await;
    env.platform.kill_operator();
    env.platform
        .start_operator(operator_config())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        phase(env.sessions().get_opt("r-0").await.unwrap().as_ref()),
        Some(SessionPhase::Terminating),
        "waits for its pod"
    );
    let release = json!({"metadata": {"finalizers": null}});
    pods.patch("r-0", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    for n in names {
        wait_gone(&env, n).await;
    }
    for uid in uids {
        assert_eq!(
            session_objects(&env, &uid).await,
            0,
            "objects of {uid} leaked"
        );
    }
    env.platform.stop().await;
}

async fn put_module(env: &Env, crate_name: &str) -> Digest {
    let bytes = std::fs::read(common::guests().join(format!("{crate_name}.wasm"))).unwrap();
    env.platform
        .registry
        .fetcher()
        .store()
        .put(&bytes)
        .await
        .unwrap()
        .digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plugin_is_swapped_while_sessions_stream_in() {
    let env = start(nodes(4, 8)).await;
    let allow = put_module(&env, "vdi_hostile").await;
    let api = env.sessions();
    let stream = tokio::spawn(async move {
        for i in 0..24 {
            let s = session(
                &format!("s-{i:02}"),
                &format!("u-{i}"),
                &["staff"],
                "ubuntu-cpu",
                None,
            );
            api.create(&PostParams::default(), &s).await.unwrap();
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let plugins: Api<VDIPlugin> = Api::all(env.client());
    let old = plugins
        .get("quota")
        .await
        .unwrap()
        .status
        .unwrap()
        .digest
        .unwrap();
    plugins
        .patch(
            "quota",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([
                    {"op": "replace", "path": "/spec/sha256", "value": allow.to_string()},
                    {"op": "replace", "path": "/spec/settings", "value": {"mode": "allow"}},
                ]))
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    stream.await.unwrap();
    wait_plugins_ready(&env, &["quota"]).await;
    let mut digests = Vec::new();
    for i in 0..24 {
        let s = wait_phase(&env, &format!("s-{i:02}"), SessionPhase::Running).await;
        let d = s
            .status
            .unwrap()
            .decisions
            .into_iter()
            .find(|d| d.hook == "admission")
            .unwrap();
        assert_eq!(d.outcome, "Allowed", "{d:?}");
        digests.push(d.digest);
    }
    assert!(
        digests.iter().all(|d| *d == old || *d == allow.to_string()),
        "{digests:?}"
    );
    assert_eq!(
        digests[0], old,
        "early sessions were judged by the old module"
    );
    assert_eq!(
        digests[23],
        allow.to_string(),
        "late sessions by the new one"
    );
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trapping_plugin_blocks_only_what_it_judges_and_ignore_skips_it() {
    let env = start(nodes(1, 8)).await;
    let trap = put_module(&env, "vdi_hostile").await;
    let spec = |policy: &str| {
        json!({
            "apiVersion": "vdi.dev/v1alpha1", "kind": "VDIPlugin", "metadata": {"name": "trap"},
            "spec": {"hook": "admission", "source": {"upload": {}}, "sha256": trap.to_string(),
                     "settings": {"mode": "panic"}, "order": 5, "failurePolicy": policy,
                     "match": {"templates": ["ubuntu-cpu"]}},
        })
    };
    apply_plugin(&env, "trap", spec("Fail")).await;
    assert_refused(
        &env,
        &session("cpu-1", "alice", &["staff"], "ubuntu-cpu", None),
        "plugin trap failed",
    )
    .await;
    create(
        &env,
        &session("gpu-1", "alice", &["staff"], "ubuntu-desktop", None),
    )
    .await
    .unwrap();
    let s = wait_phase(&env, "gpu-1", SessionPhase::Running).await;
    assert!(
        s.status
            .unwrap()
            .decisions
            .iter()
            .all(|d| d.plugin != "trap"),
        "not judged by trap"
    );

    apply_plugin(&env, "trap", spec("Ignore")).await;
    create(
        &env,
        &session("cpu-2", "alice", &["staff"], "ubuntu-cpu", None),
    )
    .await
    .unwrap();
    let s = wait_phase(&env, "cpu-2", SessionPhase::Running).await;
    let trap_decision = s
        .status
        .unwrap()
        .decisions
        .into_iter()
        .find(|d| d.plugin == "trap")
        .unwrap();
    assert_eq!(trap_decision.outcome, "Skipped");
    assert!(trap_decision.message.contains("trap") || !trap_decision.message.is_empty());
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plugin_with_a_wrong_digest_never_loads() {
    let env = start(nodes(1, 8)).await;
    let bytes = std::fs::read(common::guests().join("vdi_quota.wasm")).unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(env.client(), "vdi-system");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("strict-quota".into());
    cm.binary_data = Some(BTreeMap::from([(
        "module.wasm".to_owned(),
        ByteString(bytes.clone()),
    )]));
    maps.create(&PostParams::default(), &cm).await.unwrap();
    let plugins: Api<VDIPlugin> = Api::all(env.client());
    let wrong = Digest::of(b"something else");
    let obj = |digest: &Digest| {
        json!({
            "apiVersion": "vdi.dev/v1alpha1", "kind": "VDIPlugin", "metadata": {"name": "strict"},
            "spec": {"hook": "admission", "sha256": digest.to_string(), "order": 1,
                     "source": {"configMap": {"namespace": "vdi-system", "name": "strict-quota", "key": "module.wasm"}},
                     "settings": {"maxSessionsPerUser": 1}},
        })
    };
    plugins
        .patch(
            "strict",
            &PatchParams::apply("test"),
            &Patch::Apply(obj(&wrong)),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let status = loop {
        let st = plugins
            .get("strict")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        if st.phase == Some(PluginPhase::Error) {
            break st;
        }
        assert!(tokio::time::Instant::now() < deadline, "no Error status");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        status
            .message
            .as_deref()
            .unwrap()
            .contains("digest mismatch"),
        "{status:?}"
    );
    assert_eq!(status.digest, None, "nothing serves");
    assert!(
        env.platform
            .registry
            .current()
            .admission
            .iter()
            .all(|a| a.plugin.name() != "strict"),
        "the module must not be in the chain"
    );
    // Sessions are unaffected.
    create(
        &env,
        &session("ok", "alice", &["staff"], "ubuntu-cpu", None),
    )
    .await
    .unwrap();
    wait_phase(&env, "ok", SessionPhase::Running).await;

    // The right digest loads it from the ConfigMap.
    apply_plugin(&env, "strict", obj(&Digest::of(&bytes))).await;
    assert_refused(
        &env,
        &session("second", "alice", &["staff"], "ubuntu-cpu", None),
        "limit 1",
    )
    .await;
    env.platform.stop().await;
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_webhook_metrics_and_upload_endpoints_answer_over_http() {
    let config = OperatorConfig {
        http_listen: Some("127.0.0.1:0".parse().unwrap()),
        upload_token: Some("s3cret".into()),
        ..operator_config()
    };
    let env = start_with(nodes(1, 8), Some(config), true).await;
    let addr = env.platform.operator.as_ref().unwrap().http_addr().unwrap();

    // Validating: a denial carries the plugin's reason and 403.
    let bob = serde_json::to_value(session(
        "bob-desktop",
        "bob",
        &["contractors"],
        "ubuntu-desktop",
        None,
    ))
    .unwrap();
    let answer = post_review(addr, "/validate", "admin", &["system:masters"], bob).await;
    let response = &answer["response"];
    assert_eq!(response["uid"], "7d1d6e4c-0000-4000-8000-000000000001");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("is not allowed for user \"bob\""),
        "{answer}"
    );

    // Mutating: a user who is not trusted gets their own identity, and the timeout is clamped.
    let mallory = serde_json::to_value(session(
        "carol-desktop",
        "mallory",
        &["admins"],
        "ubuntu-desktop",
        Some("24h"),
    ))
    .unwrap();
    let answer = post_review(addr, "/mutate", "carol", &["staff"], mallory).await;
    let response = &answer["response"];
    assert_eq!(response["allowed"], true, "{answer}");
    assert_eq!(response["patchType"], "JSONPatch");
    // Go's []byte: kube-core writes a JSON array of bytes (which the API server accepts, as it
    // accepts base64).
    let bytes: Vec<u8> = match &response["patch"] {
        serde_json::Value::String(b64) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap()
        }
        other => serde_json::from_value(other.clone()).unwrap(),
    };
    let patch: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let ops = patch.to_string();
    assert!(ops.contains("\"carol\"") && ops.contains("\"4h\""), "{ops}");
    assert!(
        !ops.contains("admins"),
        "the claimed group is replaced: {ops}"
    );

    // Metrics after one session ran.
    create(&env, &session("m", "alice", &["staff"], "ubuntu-cpu", None))
        .await
        .unwrap();
    wait_phase(&env, "m", SessionPhase::Running).await;
    let (code, body) = http(addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(code, 200);
    let text = String::from_utf8(body).unwrap();
    for needle in [
        "vdi_operator_reconcile_duration_seconds_bucket",
        "vdi_operator_session_phase_transitions_total{from=\"Provisioning\",to=\"Running\"} 1",
        "vdi_operator_session_startup_seconds_count 1",
        "vdi_plugin_calls_total{plugin=\"quota\",hook=\"admission\"}",
        "vdi_plugin_call_duration_seconds_bucket",
    ] {
        assert!(text.contains(needle), "no {needle} in\n{text}");
    }
    assert!(text.ends_with("# EOF\n"));
    let (code, _) = http(addr, "GET", "/readyz", &[], b"").await;
    assert_eq!(code, 200);

    // Uploads need the token and a real component; they land in the store by digest (the
    // platform stored the default plugins already, so this one is new).
    let module = std::fs::read(common::guests().join("vdi_hostile.wasm")).unwrap();
    let (code, _) = http(addr, "PUT", "/modules", &[], &module).await;
    assert_eq!(code, 401);
    let auth = [("Authorization", "Bearer s3cret")];
    let (code, body) = http(addr, "PUT", "/modules", &auth, b"not wasm").await;
    assert_eq!(code, 422, "{}", String::from_utf8_lossy(&body));
    let (code, body) = http(addr, "PUT", "/modules", &auth, &module).await;
    assert_eq!(code, 201);
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["sha256"], Digest::of(&module).to_string());
    env.platform.stop().await;
}

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
