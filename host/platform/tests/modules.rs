//! Module uploads over real HTTP into the cluster-wide store, as two operator replicas share it:
//! the 18 MiB Python plugin goes in and a second replica (its own registry, nothing on disk in
//! common) loads it; bodies over the limit are refused before anything is stored; followers load
//! plugins but only the leader writes their status.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use vdi_crd::{PluginPhase, VDIPlugin};
use vdi_operator::modules::MAX_MODULE_BYTES;
use vdi_operator::modules::store::{DIGEST_LABEL, PART_LABEL, prefix};
use vdi_operator::{Fetcher, LeaseSettings, ModuleStore, Operator, OperatorConfig, Registry};
use vdi_platform::SYSTEM_NAMESPACE;
use vdi_plugin_host::{Digest, Runtime, RuntimeConfig};
use vdi_testkit::{compile_cache, foreign_quota};

use common::webhook::split_response;
use common::{Env, nodes, operator_config, start_with};

/// Loading the Python plugin compiles 18 MiB of WebAssembly when the cache is cold.
const WAIT: Duration = Duration::from_secs(180);
const TOKEN: &str = "s3cret";

/// The platform with its default plugins and no nodes; its operator (when `serve`) answers
/// uploads.
async fn start(serve: bool) -> Env {
    let operator = serve.then(|| OperatorConfig {
        http_listen: Some("127.0.0.1:0".parse().unwrap()),
        upload_token: Some(TOKEN.into()),
        ..operator_config()
    });
    start_with(nodes(0, 0), operator, false).await
}

fn addr(env: &Env) -> SocketAddr {
    env.platform
        .operator
        .as_ref()
        .and_then(Operator::http_addr)
        .unwrap()
}

/// The module ConfigMaps in the operator's namespace (all, or one module's).
async fn module_objects(env: &Env, digest: Option<&Digest>) -> usize {
    let selector = match digest {
        Some(d) => format!("{DIGEST_LABEL}={}", prefix(d)),
        None => PART_LABEL.to_owned(),
    };
    Api::<ConfigMap>::namespaced(env.client(), SYSTEM_NAMESPACE)
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
        .len()
}

/// Another replica's registry: its own runtime and module store over `client`.
fn replica_registry(client: &Client) -> Arc<Registry> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(compile_cache()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let store = ModuleStore::new(client.clone(), SYSTEM_NAMESPACE);
    let fetcher = Fetcher::new(store, client.clone(), None).unwrap();
    Arc::new(Registry::new(Arc::new(runtime), fetcher))
}

/// How `put` sends the body.
#[derive(Clone, Copy)]
enum Framing {
    Length,
    Chunked,
}

/// `PUT /modules{query}` with `body`; returns the status code and the JSON answer. Writes and
/// reads at once, so an answer sent before the body is read (413) still arrives.
async fn put(
    addr: SocketAddr,
    query: &str,
    token: Option<&str>,
    body: Vec<u8>,
    framing: Framing,
) -> (u16, serde_json::Value) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let mut head = format!("PUT /modules{query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    match framing {
        Framing::Length => head.push_str(&format!("Content-Length: {}\r\n", body.len())),
        Framing::Chunked => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    // The task hands the writer back rather than dropping it: a half-closed connection makes
    // the server drop its answer.
    let send = tokio::spawn(async move {
        let sent = write(&mut writer, &head, &body, framing).await;
        (writer, sent)
    });
    let mut response = Vec::new();
    let mut buf = vec![0; 64 << 10];
    // The server may close (even reset) the connection once it has answered.
    while let Ok(n @ 1..) = reader.read(&mut buf).await {
        response.extend_from_slice(&buf[..n]);
    }
    send.abort();
    let _ = send.await;
    let (head, code, body) = split_response(&response);
    let answer = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {head}\n{}", String::from_utf8_lossy(body)));
    (code, answer)
}

async fn write(
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    head: &str,
    body: &[u8],
    framing: Framing,
) -> std::io::Result<()> {
    writer.write_all(head.as_bytes()).await?;
    match framing {
        Framing::Length => writer.write_all(body).await?,
        Framing::Chunked => {
            for piece in body.chunks(1 << 20) {
                writer
                    .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .await?;
                writer.write_all(piece).await?;
                writer.write_all(b"\r\n").await?;
            }
            writer.write_all(b"0\r\n\r\n").await?;
        }
    }
    writer.flush().await
}

/// Waits until `registry` serves an admission plugin with `digest`.
async fn wait_serving(registry: &Registry, digest: &Digest, who: &str) -> Duration {
    let started = Instant::now();
    while !registry
        .current()
        .admission
        .iter()
        .any(|a| a.plugin.digest() == *digest)
    {
        assert!(started.elapsed() < WAIT, "{who} never served {digest}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// Makes "another replica" hold the operator's Lease for an hour; returns the Lease API.
async fn hold_lease(env: &Env) -> Api<Lease> {
    let leases: Api<Lease> = Api::namespaced(env.client(), SYSTEM_NAMESPACE);
    let now = MicroTime(jiff::Timestamp::now());
    let held = Lease {
        metadata: ObjectMeta {
            name: Some("vdi-operator".into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("another-replica".into()),
            lease_duration_seconds: Some(3600),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..LeaseSpec::default()
        }),
    };
    leases.create(&PostParams::default(), &held).await.unwrap();
    leases
}

/// An operator replica with leader election over `registry`; it follows while the Lease is held.
async fn start_follower(env: &Env, registry: Arc<Registry>) -> Operator {
    Operator::start(
        env.client(),
        registry,
        OperatorConfig {
            lease: Some(LeaseSettings {
                namespace: SYSTEM_NAMESPACE.into(),
                name: "vdi-operator".into(),
                identity: "replica-f".into(),
                duration: Duration::from_secs(2),
            }),
            ..operator_config()
        },
    )
    .await
    .unwrap()
}

async fn plugin_status(env: &Env, name: &str) -> Option<vdi_crd::VDIPluginStatus> {
    Api::<VDIPlugin>::all(env.client())
        .get(name)
        .await
        .unwrap()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_python_plugin_uploads_over_http_and_another_replica_loads_it() {
    let env = start(true).await;
    let addr = addr(&env);
    let module = foreign_quota("quota-py");
    let digest = Digest::of(&module);
    assert!(module.len() > 2 << 20, "over axum's default body limit");

    let (code, _) = put(addr, "", None, module.clone(), Framing::Length).await;
    assert_eq!(code, 401);
    let wrong = Digest::of(b"something else");
    let (code, answer) = put(
        addr,
        &format!("?sha256={wrong}"),
        Some(TOKEN),
        module.clone(),
        Framing::Length,
    )
    .await;
    assert_eq!(code, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("digest mismatch")
    );
    assert_eq!(module_objects(&env, Some(&digest)).await, 0);

    let started = Instant::now();
    let (code, answer) = put(
        addr,
        &format!("?sha256={digest}"),
        Some(TOKEN),
        module.clone(),
        Framing::Length,
    )
    .await;
    let took = started.elapsed();
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["sha256"], digest.to_string());
    assert_eq!(answer["world"], "admission");
    let chunks = module
        .len()
        .div_ceil(vdi_operator::modules::store::CHUNK_BYTES);
    assert_eq!(module_objects(&env, Some(&digest)).await, chunks + 1);
    eprintln!(
        "uploaded {:.1} MiB in {took:.2?} ({chunks} chunks and a manifest)",
        module.len() as f64 / f64::from(1 << 20)
    );
    let (code, _) = put(addr, "", Some(TOKEN), module.clone(), Framing::Chunked).await;
    assert_eq!(code, 200, "uploading again stores nothing new");

    // A second replica (a follower, so that one replica writes status): its own registry and
    // runtime, reading only the cluster.
    hold_lease(&env).await;
    let registry = replica_registry(&env.client());
    let replica = start_follower(&env, registry.clone()).await;
    Api::<VDIPlugin>::all(env.client())
        .patch(
            "quota-py",
            &PatchParams::apply("test"),
            &Patch::Apply(json!({
                "apiVersion": "vdi.dev/v1alpha1", "kind": "VDIPlugin",
                "metadata": {"name": "quota-py"},
                "spec": {"hook": "admission", "source": {"upload": {}},
                         "sha256": digest.to_string(), "order": 50,
                         "match": {"templates": ["no-such-template"]}},
            })),
        )
        .await
        .unwrap();
    let loaded = wait_serving(&registry, &digest, "the second replica").await;
    wait_serving(&env.platform.registry, &digest, "the first replica").await;
    eprintln!("the second replica loaded it in {loaded:.2?}");
    let started = Instant::now();
    loop {
        let st = plugin_status(&env, "quota-py").await.unwrap_or_default();
        if st.phase == Some(PluginPhase::Ready) {
            assert_eq!(st.digest, Some(digest.to_string()));
            break;
        }
        assert!(started.elapsed() < WAIT, "quota-py never Ready: {st:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    replica.shutdown().await;
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_over_the_limit_is_refused_with_413_and_nothing_is_stored() {
    let env = start(true).await;
    let addr = addr(&env);
    let before = module_objects(&env, None).await;
    let big = vec![0u8; MAX_MODULE_BYTES + 1];
    for framing in [Framing::Length, Framing::Chunked] {
        let (code, answer) = put(addr, "", Some(TOKEN), big.clone(), framing).await;
        assert_eq!(code, 413, "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("at most 67108864"),
            "{answer}"
        );
    }
    // Refused by the token before the size is even looked at.
    let (code, _) = put(addr, "", Some("wrong"), big, Framing::Length).await;
    assert_eq!(code, 401);
    assert_eq!(module_objects(&env, None).await, before);
    let (code, _) = put(addr, "?sha256=nope", Some(TOKEN), vec![1], Framing::Length).await;
    assert_eq!(code, 400);
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_loads_plugins_but_only_the_leader_writes_their_status() {
    let env = start(false).await;
    let names = ["quota", "gpu-binpack", "desktop"];
    let leases = hold_lease(&env).await;
    let registry = replica_registry(&env.client());
    let follower = start_follower(&env, registry.clone()).await;
    tokio::time::timeout(WAIT, registry.wait_synced())
        .await
        .unwrap();
    let set = registry.current();
    assert_eq!(
        (
            set.admission.len(),
            set.schedulers.len(),
            set.templates.len()
        ),
        (1, 1, 1),
        "the follower serves every plugin"
    );
    // Longer than the plugin controller takes to write a status when it leads.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!follower.is_leading());
    for n in names {
        assert_eq!(plugin_status(&env, n).await, None, "{n}: a follower wrote");
    }

    // The other replica goes; the follower leads and writes what it skipped.
    leases
        .delete("vdi-operator", &DeleteParams::default())
        .await
        .unwrap();
    let started = Instant::now();
    for n in names {
        loop {
            let st = plugin_status(&env, n).await.unwrap_or_default();
            if st.phase == Some(PluginPhase::Ready) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{n} never Ready: {st:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(follower.is_leading());
    follower.shutdown().await;
    env.platform.stop().await;
}
