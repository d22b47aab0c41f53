//! A plugin whose module lives in a real OCI registry (Debian's `docker-registry` on loopback):
//! a wrong `spec.sha256` never loads and says why, a registry that is down is an error the
//! operator retries by itself, and once it is back the plugin becomes Ready and decides.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use vdi_crd::{PluginPhase, SessionPhase, VDIPlugin, VDIPluginStatus};
use vdi_operator::modules::oci::{OciRegistries, RegistryAuth};
use vdi_operator::registry::RETRY_FAILED_AFTER;
use vdi_platform::SYSTEM_NAMESPACE;
use vdi_plugin_host::Digest;
use vdi_testkit::DistributionRegistry;

use common::{WAIT, assert_refused, create, nodes, session, start, wait_phase};

/// Polls the plugin's status until `pred` holds for its current generation.
async fn wait_status(
    plugins: &Api<VDIPlugin>,
    name: &str,
    within: Duration,
    pred: impl Fn(&VDIPluginStatus) -> bool,
) -> VDIPluginStatus {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let p = plugins.get(name).await.unwrap();
        let st = p.status.clone().unwrap_or_default();
        if st.observed_generation == p.metadata.generation && pred(&st) {
            return st;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "plugin {name}: unexpected status {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plugin_from_an_oci_registry_loads_when_its_digest_matches_and_decides() {
    let mut registry = DistributionRegistry::start();
    let env = start(nodes(1, 8)).await;
    let bytes = vdi_testkit::wasm("vdi_quota");
    let reference = registry.reference("team/quota:1.0");
    let pushed = OciRegistries::new(None)
        .unwrap()
        .push(
            &reference.parse().unwrap(),
            &bytes,
            &RegistryAuth::Anonymous,
        )
        .await
        .unwrap();
    assert_eq!(pushed.module_digest, Digest::of(&bytes));

    // The registry takes no credentials; the operator still reads them from the Secret (its
    // RBAC lets it get Secrets of its namespace).
    let docker_config = json!({"auths": {registry.host(): {"username": "robot", "password": "x"}}});
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("regcred".into()),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_owned(),
            ByteString(docker_config.to_string().into_bytes()),
        )])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(env.client(), SYSTEM_NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    let plugins: Api<VDIPlugin> = Api::all(env.client());
    let apply = |digest: Digest, reference: String| {
        let plugins = plugins.clone();
        async move {
            let obj = json!({
                "apiVersion": "vdi.dev/v1alpha1", "kind": "VDIPlugin", "metadata": {"name": "strict"},
                "spec": {"hook": "admission", "sha256": digest.to_string(), "order": 1,
                         "source": {"oci": {"reference": reference, "pullSecret": "regcred"}},
                         "settings": {"maxSessionsPerUser": 1}},
            });
            plugins
                .patch("strict", &PatchParams::apply("test"), &Patch::Apply(obj))
                .await
                .unwrap();
        }
    };

    // A wrong pin: the module is pulled, refused, and never serves.
    apply(Digest::of(b"something else"), reference.clone()).await;
    let st = wait_status(&plugins, "strict", WAIT, |s| {
        s.phase == Some(PluginPhase::Error)
    })
    .await;
    let message = st.message.unwrap_or_default();
    assert!(message.contains("digest mismatch"), "{message}");
    assert_eq!(st.digest, None, "nothing serves");
    assert!(
        env.platform
            .registry
            .current()
            .admission
            .iter()
            .all(|a| a.plugin.name() != "strict"),
        "the module must not be in the chain"
    );

    // The right pin while the registry is down (by its immutable reference): an error naming
    // the registry, retried by the operator once the registry is back.
    registry.stop();
    apply(pushed.module_digest, pushed.reference.to_string()).await;
    let st = wait_status(&plugins, "strict", WAIT, |s| {
        s.phase == Some(PluginPhase::Error)
    })
    .await;
    let message = st.message.unwrap_or_default();
    assert!(
        message.contains("OCI pull") && message.contains(&registry.host()),
        "{message}"
    );
    registry.resume();
    let st = wait_status(&plugins, "strict", RETRY_FAILED_AFTER * 2 + WAIT, |s| {
        s.phase == Some(PluginPhase::Ready)
    })
    .await;
    assert_eq!(st.digest, Some(pushed.module_digest.to_string()));

    // It decides: one session each.
    create(
        &env,
        &session("first", "alice", &["staff"], "ubuntu-cpu", None),
    )
    .await
    .unwrap();
    wait_phase(&env, "first", SessionPhase::Running).await;
    assert_refused(
        &env,
        &session("second", "alice", &["staff"], "ubuntu-cpu", None),
        "limit 1",
    )
    .await;
    env.platform.stop().await;
}
