//! Plugins on the running platform: a module hot-swapped while sessions stream in, a trapping
//! plugin under `Fail` and `Ignore`, and a module whose digest does not match.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use vdi_crd::{PluginPhase, SessionPhase, VDIPlugin};
use vdi_plugin_host::Digest;

use common::{
    WAIT, apply_plugin, assert_refused, create, nodes, put_module, session, start, wait_phase,
    wait_plugins_ready,
};

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
    let bytes = vdi_testkit::wasm("vdi_quota");
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
