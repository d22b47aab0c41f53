//! Shared by the platform's tests: the platform started on a fresh embedded control plane over
//! real HTTPS with the guest plugins built from source, session fixtures, and waits.

#![allow(dead_code, reason = "each test file uses a different part")]

pub mod webhook;

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use vdi_cluster::SimulatedNodes;
use vdi_crd::{PluginPhase, SessionPhase, VDIPlugin, VDISession};
use vdi_operator::OperatorConfig;
use vdi_platform::{Platform, PlatformOptions};
use vdi_plugin_host::Digest;
use vdi_testkit::{compile_cache, guests};

/// How long a test waits for the platform to get somewhere.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running platform and the directory holding its data.
pub struct Env {
    /// The platform.
    pub platform: Platform,
    _dir: tempfile::TempDir,
}

impl Env {
    /// A client with the admin token.
    pub fn client(&self) -> Client {
        self.platform.client.clone()
    }

    /// The sessions of `default`.
    pub fn sessions(&self) -> Api<VDISession> {
        Api::namespaced(self.client(), "default")
    }
}

/// The operator as tests run it: the orphan sweep hourly, so it never races a test.
pub fn operator_config() -> OperatorConfig {
    OperatorConfig {
        sweep_every: Duration::from_secs(3600),
        ..OperatorConfig::default()
    }
}

/// `count` simulated nodes whose GPUs have `slices` time-slices each.
pub fn nodes(count: usize, slices: u32) -> SimulatedNodes {
    SimulatedNodes {
        count,
        slices_per_gpu: slices,
        ..SimulatedNodes::default()
    }
}

/// The platform with the default plugins on `nodes`, its operator (when `operator` is given)
/// and the in-process admission hook (when `hook`); waits until the plugins are loaded.
pub async fn start_with(
    nodes: SimulatedNodes,
    operator: Option<OperatorConfig>,
    hook: bool,
) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(PlatformOptions {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        nodes,
        plugins_dir: Some(guests().clone()),
        cache_dir: Some(compile_cache()),
        operator,
        admission_hook: hook,
        process_node: None,
        oidc: Vec::new(),
    })
    .await
    .expect("start the platform");
    Env {
        platform,
        _dir: dir,
    }
}

/// The platform on `nodes` with the operator and the in-process admission hook.
pub async fn start(nodes: SimulatedNodes) -> Env {
    start_with(nodes, Some(operator_config()), true).await
}

/// A `VDISession` in `default` for `user` in `groups`.
pub fn session(
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

/// Creates `s` as the admin.
pub async fn create(env: &Env, s: &VDISession) -> Result<VDISession, kube::Error> {
    env.sessions().create(&PostParams::default(), s).await
}

/// Polls until `pred` holds for the session (or it is gone, for `None`).
pub async fn wait_session(
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

/// The session's phase, once it has a status.
pub fn phase(s: Option<&VDISession>) -> Option<SessionPhase> {
    s.and_then(|s| s.status.as_ref()).map(|st| st.phase())
}

/// Waits until the session is in phase `want`.
pub async fn wait_phase(env: &Env, name: &str, want: SessionPhase) -> VDISession {
    wait_session(env, name, want.as_str(), |s| phase(s) == Some(want))
        .await
        .unwrap()
}

/// Waits until the session is gone.
pub async fn wait_gone(env: &Env, name: &str) {
    wait_session(env, name, "gone", |s| s.is_none()).await;
}

/// How many Pods, Services and claims carry the session UID's label.
pub async fn session_objects(env: &Env, uid: &str) -> usize {
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

/// Waits until every plugin in `names` is Ready at its current generation.
pub async fn wait_plugins_ready(env: &Env, names: &[&str]) {
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
pub async fn apply_plugin(env: &Env, name: &str, obj: serde_json::Value) {
    Api::<VDIPlugin>::all(env.client())
        .patch(name, &PatchParams::apply("test"), &Patch::Apply(obj))
        .await
        .unwrap();
    wait_plugins_ready(env, &[name]).await;
}

/// Creating `s` is refused with 403 and a message containing `needle`.
pub async fn assert_refused(env: &Env, s: &VDISession, needle: &str) {
    match create(env, s).await {
        Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains(needle) => {}
        other => panic!("expected a 403 naming {needle:?}, got {other:?}"),
    }
}

/// Puts guest `crate_name`'s module in the platform's module store; returns its digest.
pub async fn put_module(env: &Env, crate_name: &str) -> Digest {
    let bytes = vdi_testkit::wasm(crate_name);
    env.platform
        .registry
        .fetcher()
        .store()
        .put(&bytes)
        .await
        .unwrap()
        .digest
}
