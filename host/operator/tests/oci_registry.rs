//! Modules through a real Distribution registry on loopback (Debian's `docker-registry`, its
//! own config: no auth, 127.0.0.1, temporary storage): push and pull by tag and by digest keep
//! bytes and digest; a missing tag, a wrong pinned digest, a foreign layer type, a module over the
//! limit and a registry that goes away (before or in the middle of a pull) are clear errors that
//! cache nothing, and the next try after the registry is back succeeds; Kubewarden's layer type
//! is accepted; pull secrets are read from `kubernetes.io/dockerconfigjson` Secrets.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use vdi_crd::{OciSource, PluginSource};
use vdi_operator::modules::oci::{
    KUBEWARDEN_LAYER_MEDIA_TYPE, OciError, OciReference, OciRegistries, WASM_LAYER_MEDIA_TYPE,
};
use vdi_operator::modules::{FetchError, MAX_MODULE_BYTES};
use vdi_operator::{Fetcher, ModuleStore};
use vdi_plugin_host::Digest;
use vdi_testkit::DistributionRegistry;

/// Bytes standing for a module (the fetcher does not look inside); big enough to be cut.
fn module(seed: u8, len: usize) -> Vec<u8> {
    let mut x = u32::from(seed) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn reference(s: &str) -> OciReference {
    s.parse().unwrap()
}

/// A client that is never called (anonymous pulls need no API server).
fn unused_client() -> kube::Client {
    let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

fn fetcher(client: kube::Client) -> Fetcher {
    Fetcher::new(ModuleStore::new(client.clone(), "vdi-system"), client, None).unwrap()
}

fn oci(reference: &str, pull_secret: Option<&str>) -> PluginSource {
    PluginSource {
        oci: Some(OciSource {
            reference: reference.to_owned(),
            pull_secret: pull_secret.map(str::to_owned),
        }),
        ..PluginSource::default()
    }
}

/// Pushes `bytes` as one layer of `media_type` with `oci-client` itself (as another tool would).
async fn push_foreign(registry: &DistributionRegistry, path: &str, bytes: &[u8], media_type: &str) {
    let client = oci_client::Client::try_from(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    })
    .unwrap();
    let image: oci_client::Reference = format!("{}/{path}", registry.host()).parse().unwrap();
    let layer = ImageLayer::new(bytes.to_vec(), media_type.to_owned(), None);
    let config = Config::new(
        b"{}".to_vec(),
        "application/vnd.wasm.config.v1+json".to_owned(),
        None,
    );
    client
        .push(&image, &[layer], config, &RegistryAuth::Anonymous, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn push_and_pull_round_trip_by_tag_and_by_digest() {
    let registry = DistributionRegistry::start();
    let registries = OciRegistries::new(None).unwrap();
    let bytes = module(1, 2 << 20);
    let by_tag = reference(&registry.reference("team/quota:1.0"));

    let started = Instant::now();
    let pushed = registries
        .push(&by_tag, &bytes, &RegistryAuth::Anonymous)
        .await
        .unwrap();
    let push_ms = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(pushed.module_digest, Digest::of(&bytes));
    assert_eq!(
        pushed.reference.to_string(),
        registry.reference(&format!("team/quota@{}", pushed.manifest_digest))
    );

    for r in [&by_tag, &pushed.reference] {
        let pulled = registries
            .pull(r, &RegistryAuth::Anonymous, MAX_MODULE_BYTES)
            .await
            .unwrap();
        assert_eq!(pulled.bytes, bytes, "{r}");
        assert_eq!(pulled.manifest_digest, pushed.manifest_digest, "{r}");
        assert_eq!(pulled.media_type, WASM_LAYER_MEDIA_TYPE);
        println!(
            "2 MiB module: push {push_ms:.0} ms, pull {r} {:.0} ms",
            pulled.elapsed.as_secs_f64() * 1e3
        );
    }

    // Pushing to a digest makes no sense: the digest is the manifest's.
    let e = registries
        .push(&pushed.reference, &bytes, &RegistryAuth::Anonymous)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("push to a tag"), "{e}");
}

#[tokio::test]
async fn missing_tags_foreign_layers_and_oversized_modules_are_refused() {
    let registry = DistributionRegistry::start();
    let registries = OciRegistries::new(None).unwrap();
    let anon = RegistryAuth::Anonymous;

    let missing = reference(&registry.reference("team/quota:nope"));
    let e = registries.pull(&missing, &anon, MAX_MODULE_BYTES).await;
    assert!(matches!(e, Err(OciError::NotFound { .. })), "{e:?}");
    let text = e.unwrap_err().to_string();
    println!("missing tag: {text}");
    assert!(
        text.contains("team/quota:nope") && text.contains("not found"),
        "{text}"
    );

    // Kubewarden's policies use their own layer type: accepted.
    let bytes = module(2, 4096);
    push_foreign(
        &registry,
        "kw/policy:1",
        &bytes,
        KUBEWARDEN_LAYER_MEDIA_TYPE,
    )
    .await;
    let kw = registries
        .pull(
            &reference(&registry.reference("kw/policy:1")),
            &anon,
            MAX_MODULE_BYTES,
        )
        .await
        .unwrap();
    assert_eq!(kw.bytes, bytes);
    assert_eq!(kw.media_type, KUBEWARDEN_LAYER_MEDIA_TYPE);

    // Anything else is not a module, whatever its bytes.
    push_foreign(
        &registry,
        "blob/thing:1",
        &bytes,
        "application/octet-stream",
    )
    .await;
    let e = registries
        .pull(
            &reference(&registry.reference("blob/thing:1")),
            &anon,
            MAX_MODULE_BYTES,
        )
        .await
        .unwrap_err();
    println!("octet-stream: {e}");
    assert!(matches!(e, OciError::NotAModule { .. }), "{e:?}");
    assert!(e.to_string().contains("application/octet-stream"), "{e}");

    // The size limit holds before a byte of the layer is read.
    let e = registries
        .pull(&reference(&registry.reference("kw/policy:1")), &anon, 1000)
        .await
        .unwrap_err();
    assert!(matches!(e, OciError::TooLarge { .. }), "{e:?}");
    assert!(e.to_string().contains("1000-byte limit"), "{e}");
}

#[tokio::test]
async fn the_fetcher_verifies_the_pinned_digest_and_keeps_what_it_pulled() {
    let mut registry = DistributionRegistry::start();
    let registries = OciRegistries::new(None).unwrap();
    let bytes = module(3, 300_000);
    let r = registry.reference("team/quota:1.0");
    registries
        .push(&reference(&r), &bytes, &RegistryAuth::Anonymous)
        .await
        .unwrap();
    let fetcher = fetcher(unused_client());
    let repository = format!("{}/team/quota", registry.host());

    let wrong = Digest::of(b"something else");
    let e = fetcher.fetch(&oci(&r, None), &wrong).await.unwrap_err();
    println!("wrong digest: {e}");
    assert!(matches!(e, FetchError::DigestMismatch { .. }), "{e}");
    assert!(
        e.to_string().contains(&Digest::of(&bytes).to_string()),
        "{e}"
    );
    assert!(!fetcher.oci_cached(&repository, &wrong));
    assert!(!fetcher.oci_cached(&repository, &Digest::of(&bytes)));

    let right = Digest::of(&bytes);
    assert_eq!(fetcher.fetch(&oci(&r, None), &right).await.unwrap(), bytes);
    assert!(fetcher.oci_cached(&repository, &right));
    // Kept: a reload needs no registry.
    registry.stop();
    assert_eq!(fetcher.fetch(&oci(&r, None), &right).await.unwrap(), bytes);
    // Another fetcher (another replica) has nothing kept: the registry must answer.
    let e = fetcher_pull_error(&r, &right).await;
    assert!(
        e.contains("OCI pull") && e.contains(&registry.host()),
        "{e}"
    );

    let bad = fetcher
        .fetch(&oci("oci://127.0.0.1:5000/Team:1", None), &right)
        .await
        .unwrap_err();
    assert!(
        bad.to_string().contains("spec.source.oci.reference"),
        "{bad}"
    );
}

async fn fetcher_pull_error(reference: &str, digest: &Digest) -> String {
    fetcher(unused_client())
        .fetch(&oci(reference, None), digest)
        .await
        .unwrap_err()
        .to_string()
}

/// A TCP proxy in front of the registry that cuts every connection once `budget` bytes have
/// come back from it, and then refuses connections (the registry went away) until `restore`.
struct CuttingProxy {
    addr: SocketAddr,
    budget: Arc<AtomicUsize>,
    gone: Arc<AtomicBool>,
}

impl CuttingProxy {
    async fn start(upstream: SocketAddr, budget: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let budget = Arc::new(AtomicUsize::new(budget));
        let gone = Arc::new(AtomicBool::new(false));
        let (b, g) = (budget.clone(), gone.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if g.load(Ordering::SeqCst) {
                    continue; // dropped: the peer sees the connection closed
                }
                let (b, g) = (b.clone(), g.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        let _ = relay(client, server, b, g).await;
                    }
                });
            }
        });
        Self { addr, budget, gone }
    }

    fn restore(&self) {
        self.budget.store(usize::MAX, Ordering::SeqCst);
        self.gone.store(false, Ordering::SeqCst);
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    budget: Arc<AtomicUsize>,
    gone: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = tokio::spawn(async move { tokio::io::copy(&mut cr, &mut sw).await });
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = sr.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let left = budget.load(Ordering::SeqCst);
        if n >= left {
            cw.write_all(&buf[..left]).await?;
            budget.store(0, Ordering::SeqCst);
            gone.store(true, Ordering::SeqCst);
            break;
        }
        budget.fetch_sub(n, Ordering::SeqCst);
        cw.write_all(&buf[..n]).await?;
    }
    up.abort();
    Ok(())
}

#[tokio::test]
async fn a_registry_that_goes_away_mid_pull_or_before_is_an_error_and_a_later_try_succeeds() {
    let mut registry = DistributionRegistry::start();
    let registries = OciRegistries::new(None).unwrap();
    let bytes = module(4, 3 << 20);
    let digest = Digest::of(&bytes);
    registries
        .push(
            &reference(&registry.reference("team/big:1")),
            &bytes,
            &RegistryAuth::Anonymous,
        )
        .await
        .unwrap();

    // Mid-pull: the manifest arrives, the layer stops after about 1 MiB.
    let proxy = CuttingProxy::start(registry.addr(), 1 << 20).await;
    let through = format!("oci://{}/team/big:1", proxy.addr);
    let fetcher = fetcher(unused_client());
    let repository = format!("{}/team/big", proxy.addr);
    let e = fetcher
        .fetch(&oci(&through, None), &digest)
        .await
        .unwrap_err();
    println!("mid-pull: {e}");
    assert!(
        matches!(e, FetchError::Oci(OciError::Registry { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains(&through), "{e}");
    assert!(!fetcher.oci_cached(&repository, &digest), "nothing kept");

    // Before the pull: the registry is not there at all.
    registry.stop();
    proxy.restore();
    let direct = registry.reference("team/big:1");
    let e = fetcher
        .fetch(&oci(&direct, None), &digest)
        .await
        .unwrap_err();
    println!("registry down: {e}");
    assert!(
        matches!(e, FetchError::Oci(OciError::Registry { .. })),
        "{e:?}"
    );
    assert!(e.to_string().to_lowercase().contains("connect"), "{e}");

    // Back: the next try (the operator retries failed plugins) succeeds, through both.
    registry.resume();
    assert_eq!(
        fetcher.fetch(&oci(&direct, None), &digest).await.unwrap(),
        bytes
    );
    assert_eq!(
        fetcher.fetch(&oci(&through, None), &digest).await.unwrap(),
        bytes
    );
    assert!(fetcher.oci_cached(&repository, &digest));
}

#[tokio::test]
async fn pull_secrets_come_from_dockerconfigjson_secrets_of_the_operator_namespace() {
    let registry = DistributionRegistry::start();
    let registries = OciRegistries::new(None).unwrap();
    let bytes = module(5, 1000);
    let r = registry.reference("private/quota:1");
    registries
        .push(&reference(&r), &bytes, &RegistryAuth::Anonymous)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let cluster = vdi_cluster::Cluster::start(vdi_cluster::ClusterConfig::local(dir.path()))
        .await
        .unwrap();
    let kc = Kubeconfig::from_yaml(&cluster.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "vdi-system"},
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "vdi-system");
    let secret = |name: &str, kind: &str, key: &str, value: &str| Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        type_: Some(kind.to_owned()),
        data: Some(BTreeMap::from([(
            key.to_owned(),
            ByteString(value.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    };
    let docker_config = serde_json::json!({"auths": {registry.host(): {
        "username": "robot", "password": "token",
    }}})
    .to_string();
    for s in [
        secret(
            "regcred",
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            &docker_config,
        ),
        secret("opaque", "Opaque", ".dockerconfigjson", &docker_config),
        secret(
            "broken",
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            "{",
        ),
    ] {
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    let fetcher = fetcher(client);
    let digest = Digest::of(&bytes);

    // The registry takes no credentials; the Secret's are sent and the module comes back.
    assert_eq!(
        fetcher
            .fetch(&oci(&r, Some("regcred")), &digest)
            .await
            .unwrap(),
        bytes
    );
    for (name, why) in [
        ("absent", "vdi-system/absent does not exist"),
        (
            "opaque",
            "is of type Opaque, not kubernetes.io/dockerconfigjson",
        ),
        ("broken", "not a Docker config"),
    ] {
        let other = registry.reference(&format!("other/{name}:1"));
        let e = fetcher
            .fetch(&oci(&other, Some(name)), &digest)
            .await
            .unwrap_err();
        assert!(matches!(e, FetchError::PullSecret(_)), "{e:?}");
        assert!(e.to_string().contains(why), "{name}: {e}");
    }
}

#[tokio::test]
async fn an_upload_store_in_a_registry_is_shared_by_every_replica() {
    let registry = DistributionRegistry::start();
    let repository = reference(&registry.reference("vdi/modules"));
    let replica = || {
        let store = ModuleStore::in_registry(
            unused_client(),
            "vdi-system",
            repository.clone(),
            OciRegistries::new(None).unwrap(),
            RegistryAuth::Anonymous,
        )
        .unwrap();
        Fetcher::new(store, unused_client(), None).unwrap()
    };
    let (first, second) = (replica(), replica());
    let bytes = module(6, 1 << 20);
    let digest = Digest::of(&bytes);
    let upload = PluginSource {
        upload: Some(vdi_crd::UploadSource {}),
        ..PluginSource::default()
    };

    let e = second.fetch(&upload, &digest).await.unwrap_err();
    assert!(matches!(e, FetchError::NotUploaded(_)), "{e:?}");
    let stored = first.store().put(&bytes).await.unwrap();
    assert!(stored.new);
    assert!(!first.store().put(&bytes).await.unwrap().new, "stored once");
    assert_eq!(second.fetch(&upload, &digest).await.unwrap(), bytes);
    assert_eq!(
        first
            .store()
            .registry_reference(&digest)
            .unwrap()
            .to_string(),
        registry.reference(&format!("vdi/modules:sha256-{}", digest.hex()))
    );
}
