//! The upload store against the embedded control plane over real HTTPS: modules are chunked into
//! ConfigMaps any replica can read back, re-uploads change nothing, and damaged or half-written
//! modules are refused (and repaired by uploading again).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, ResourceExt};
use vdi_cluster::{Cluster, ClusterConfig};
use vdi_crd::PluginSource;
use vdi_operator::modules::FetchError;
use vdi_operator::modules::store::{CHUNK_BYTES, DIGEST_LABEL, chunk_name, manifest_name, prefix};
use vdi_operator::{Fetcher, ModuleStore};
use vdi_plugin_host::Digest;

const NAMESPACE: &str = "vdi-system";

struct Env {
    cluster: Cluster,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cluster = Cluster::start(ClusterConfig::local(dir.path()))
            .await
            .unwrap();
        let env = Self { cluster, _dir: dir };
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE},
        }))
        .unwrap();
        Api::<Namespace>::all(env.client().await)
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        env
    }

    /// A new client each time: a store built on it shares nothing with another but the server,
    /// as two operator replicas do.
    async fn client(&self) -> Client {
        let kc = Kubeconfig::from_yaml(&self.cluster.kubeconfig()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap();
        Client::try_from(config).unwrap()
    }

    async fn store(&self) -> ModuleStore {
        ModuleStore::new(self.client().await, NAMESPACE)
    }

    async fn maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client().await, NAMESPACE)
    }
}

/// `len` bytes that differ from any other call's (no two tests share a digest).
fn module(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) | 0x9e37_0000;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

async fn module_objects(env: &Env, digest: &Digest) -> Vec<ConfigMap> {
    let lp = ListParams::default().labels(&format!("{DIGEST_LABEL}={}", prefix(digest)));
    env.maps().await.list(&lp).await.unwrap().items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_is_chunked_into_configmaps_that_another_replica_reads_back() {
    let env = Env::start().await;
    let bytes = module(3 * CHUNK_BYTES + 1000, 1);
    let stored = env.store().await.put(&bytes).await.unwrap();
    assert!(stored.new);
    assert_eq!(stored.digest, Digest::of(&bytes));

    let objects = module_objects(&env, &stored.digest).await;
    let mut names: Vec<String> = objects.iter().map(ResourceExt::name_any).collect();
    names.sort();
    let mut want: Vec<String> = (0..4).map(|i| chunk_name(&stored.digest, i)).collect();
    want.push(manifest_name(&stored.digest));
    want.sort();
    assert_eq!(names, want, "four chunks and a manifest");
    for o in &objects {
        let encoded = serde_json::to_vec(o).unwrap().len();
        assert!(encoded < 1_100_000, "{} is {encoded} bytes", o.name_any());
    }
    let manifest = objects
        .iter()
        .find(|o| o.name_any() == manifest_name(&stored.digest))
        .and_then(|o| o.data.clone())
        .unwrap();
    assert_eq!(manifest["sha256"], stored.digest.to_string());
    assert_eq!(manifest["size"], bytes.len().to_string());
    assert_eq!(manifest["chunks"], "4");

    // Another replica: its own client, nothing in common but the API server.
    let other = env.store().await;
    assert_eq!(other.get(&stored.digest).await.unwrap(), bytes);
    let fetcher = Fetcher::new(other, env.client().await, None).unwrap();
    let upload = PluginSource {
        upload: Some(Default::default()),
        ..PluginSource::default()
    };
    assert_eq!(fetcher.fetch(&upload, &stored.digest).await.unwrap(), bytes);

    // Uploading again changes nothing.
    let versions = |objects: &[ConfigMap]| -> BTreeMap<String, String> {
        objects
            .iter()
            .map(|o| (o.name_any(), o.resource_version().unwrap_or_default()))
            .collect()
    };
    let before = versions(&objects);
    let again = env.store().await.put(&bytes).await.unwrap();
    assert_eq!(again.digest, stored.digest);
    assert!(!again.new);
    assert_eq!(
        versions(&module_objects(&env, &stored.digest).await),
        before
    );
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_or_missing_chunk_is_refused_and_uploading_again_repairs_it() {
    let env = Env::start().await;
    let bytes = module(2 * CHUNK_BYTES + 10, 2);
    let store = env.store().await;
    let digest = store.put(&bytes).await.unwrap().digest;
    let maps = env.maps().await;

    // Same length, one bit flipped: only the digest can tell.
    let name = chunk_name(&digest, 1);
    let mut chunk = maps.get(&name).await.unwrap().binary_data.unwrap()["chunk"]
        .0
        .clone();
    chunk[100] ^= 1;
    let patch = serde_json::json!({"binaryData": {"chunk": ByteString(chunk)}});
    maps.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    match env.store().await.get(&digest).await {
        Err(e @ FetchError::DigestMismatch { .. }) => {
            assert!(e.to_string().contains("digest mismatch"), "{e}");
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }

    maps.delete(&chunk_name(&digest, 2), &DeleteParams::default())
        .await
        .unwrap();
    match env.store().await.get(&digest).await {
        Err(e @ FetchError::Damaged { .. }) => {
            assert!(e.to_string().contains("chunk 2 of 3) is missing"), "{e}");
        }
        other => panic!("expected a damaged module, got {other:?}"),
    }

    let repaired = store.put(&bytes).await.unwrap();
    assert!(repaired.new, "a damaged module is written again");
    assert_eq!(env.store().await.get(&digest).await.unwrap(), bytes);
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_without_their_manifest_are_not_a_module() {
    let env = Env::start().await;
    let bytes = module(CHUNK_BYTES + 1, 3);
    let store = env.store().await;
    let digest = store.put(&bytes).await.unwrap().digest;
    // As if the writer died after the chunks: the manifest is written last.
    env.maps()
        .await
        .delete(&manifest_name(&digest), &DeleteParams::default())
        .await
        .unwrap();
    assert!(matches!(
        store.get(&digest).await,
        Err(FetchError::NotUploaded(_))
    ));
    assert!(store.put(&bytes).await.unwrap().new);
    assert_eq!(store.get(&digest).await.unwrap(), bytes);
    assert!(matches!(store.put(&[]).await, Err(FetchError::Invalid(_))));
    env.cluster.stop().await;
}
