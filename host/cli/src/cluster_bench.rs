//! `vdi bench-cluster`: throughput and latency of the embedded control plane through the real
//! `kube::Client` over HTTPS, each beside the same operation on the store in-process (no HTTP,
//! TLS or JSON on the wire), measured in the same run, and the ratios against issue 16's
//! targets; then what RBAC authorization costs ([`authz`]).

mod authz;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use vdi_cluster::{Cluster, ClusterConfig, LabelSelector, Part, ResourceType, Store};

/// Arguments of `vdi bench-cluster`.
#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Objects to create (and update, and list).
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Concurrent requests for creates and updates.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Concurrent watchers for the fan-out measurement.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// ConfigMaps per round of the authorization comparison (RBAC against AlwaysAllow).
    #[arg(long, default_value_t = 3000)]
    authz_objects: usize,
    /// Rounds per cluster of the authorization comparison (alternating; medians compared).
    #[arg(long, default_value_t = 3)]
    authz_rounds: usize,
}

/// Issue 16's target for HTTPS throughput against in-process throughput (creates, updates,
/// lists).
const RATIO_TARGET: f64 = 0.7;
/// Issue 16's target for the p99 of the time until every watcher sees an event, in ms.
const WATCH_P99_TARGET_MS: f64 = 50.0;

fn verdict(met: bool) -> &'static str {
    if met { "✔" } else { "✘" }
}

/// One line of the summary: `creates  HTTPS/in-process 0.52  target ≥ 0.70  ✘`.
fn ratio_line(what: &str, ratio: f64) -> String {
    format!(
        "{what:<8} HTTPS/in-process {ratio:.2}  target ≥ {RATIO_TARGET:.2}  {}",
        verdict(ratio >= RATIO_TARGET)
    )
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn body(name: &str, i: usize) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"bench": "yes"}}, "data": {"i": i.to_string(), "payload": "x".repeat(200)}})
}

/// Runs `op(i)` for i in 0..n with `concurrency` in flight; returns operations per second.
async fn rate<F, Fut>(n: usize, concurrency: usize, op: F) -> Result<f64>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(op)
        .buffer_unordered(concurrency)
        .try_for_each(|()| async { Ok(()) })
        .await?;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// The in-process objects: like [`body`], labelled apart from the ones made over HTTPS.
fn direct_body(name: &str, i: usize) -> serde_json::Value {
    let mut b = body(name, i);
    b["metadata"]["labels"]["bench"] = json!("direct");
    b
}

// The same operations on the store directly, on one thread, each run right after its HTTPS
// counterpart so both see the same machine (other work on it comes and goes).

fn direct_creates(store: &Store, cm: &ResourceType, n: usize) -> Result<f64> {
    let started = Instant::now();
    for i in 0..n {
        store.create(cm, "default", direct_body(&format!("direct-{i}"), i))?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

fn direct_updates(store: &Store, cm: &ResourceType, n: usize) -> Result<f64> {
    let started = Instant::now();
    for i in 0..n {
        let mut o = store.get(cm, "default", &format!("direct-{i}"))?;
        o["data"]["i"] = json!((i + 1).to_string());
        store.update(cm, "default", &format!("direct-{i}"), o, Part::Main)?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// The median of 5 lists by label, as over HTTPS.
fn direct_list(store: &Store, cm: &ResourceType, n: usize) -> Result<Duration> {
    let selector = LabelSelector::parse("bench=direct")?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let (items, _, _) = store.list(cm, Some("default"), None, None, &|o| selector.matches(o));
        anyhow::ensure!(items.len() == n, "listed {} of {n}", items.len());
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times[2])
}

pub(crate) fn run(args: &BenchArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("async runtime")?;
    rt.block_on(bench(args))
}

async fn bench(args: &BenchArgs) -> Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let rss_before = rss_mib();
    let cluster = Cluster::start(ClusterConfig::local(dir.path())).await?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&cluster.kubeconfig())?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let client = Client::try_from(config)?;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let n = args.objects;
    println!(
        "objects   {n} ConfigMaps of ~300 bytes, {} requests in flight, HTTPS + bearer token",
        args.concurrency
    );

    let cm_type = cluster
        .store()
        .registry
        .find("", "v1", "configmaps")
        .context("configmaps type")?;
    let store = cluster.store();

    let creates = rate(n, args.concurrency, |i| {
        let cms = cms.clone();
        async move {
            let cm: ConfigMap = serde_json::from_value(body(&format!("bench-{i}"), i))?;
            cms.create(&PostParams::default(), &cm).await?;
            Ok(())
        }
    })
    .await?;
    let rss_loaded = rss_mib();
    let direct_creates = direct_creates(store, &cm_type, n)?;
    let updates = rate(n, args.concurrency, |i| {
        let cms = cms.clone();
        async move {
            let patch = Patch::Merge(json!({"data": {"i": (i + 1).to_string()}}));
            cms.patch(&format!("bench-{i}"), &PatchParams::default(), &patch)
                .await?;
            Ok(())
        }
    })
    .await?;
    let direct_updates = direct_updates(store, &cm_type, n)?;
    let mut list_times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let listed = cms.list(&ListParams::default().labels("bench=yes")).await?;
        anyhow::ensure!(
            listed.items.len() == n,
            "listed {} of {n}",
            listed.items.len()
        );
        list_times.push(started.elapsed());
    }
    list_times.sort();
    let direct_list = direct_list(store, &cm_type, n)?;
    // Where the HTTPS list's time goes: the client's decoding of the same body alone.
    let request = kube::core::Request::new("/api/v1/namespaces/default/configmaps")
        .list(&ListParams::default().labels("bench=yes"))?;
    let text = client.request_text(request).await?;
    let started = Instant::now();
    let decoded: kube::core::ObjectList<ConfigMap> = serde_json::from_str(&text)?;
    let decode_time = started.elapsed();
    anyhow::ensure!(
        decoded.items.len() == n,
        "decoded {} of {n}",
        decoded.items.len()
    );

    println!(
        "creates   {creates:>9.0}/s over HTTP   {direct_creates:>9.0}/s in-process   ratio {:.1}x",
        direct_creates / creates
    );
    println!(
        "updates   {updates:>9.0}/s over HTTP   {direct_updates:>9.0}/s in-process   ratio {:.1}x (HTTP: merge patches)",
        direct_updates / updates
    );
    println!(
        "list      {n} objects: median {:.1} ms over HTTP (decoded), {:.1} ms in-process   ratio {:.1}x",
        list_times[2].as_secs_f64() * 1e3,
        direct_list.as_secs_f64() * 1e3,
        list_times[2].as_secs_f64() / direct_list.as_secs_f64().max(1e-9)
    );
    println!(
        "list      of which the client's decoding of the body ({:.1} MB) alone: {:.1} ms",
        text.len() as f64 / 1e6,
        decode_time.as_secs_f64() * 1e3
    );
    println!(
        "memory    RSS {:.0} MiB before, {:.0} MiB with {n} objects (server and client in one process)",
        rss_before, rss_loaded
    );

    // Watch fan-out: every watcher waits from the current version; one write; when does each see it?
    let from = cms
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .context("list rv")?;
    let ready = Arc::new(tokio::sync::Barrier::new(args.watchers + 1));
    let mut watchers = Vec::with_capacity(args.watchers);
    for _ in 0..args.watchers {
        let (cms, from, ready) = (cms.clone(), from.clone(), ready.clone());
        watchers.push(tokio::spawn(async move {
            let mut stream = cms
                .watch(&WatchParams::default().timeout(60), &from)
                .await?
                .boxed();
            ready.wait().await;
            while let Some(event) = stream.try_next().await? {
                if let WatchEvent::Added(c) = event
                    && c.name_any() == "fan-out"
                {
                    return Ok::<_, anyhow::Error>(Instant::now());
                }
            }
            anyhow::bail!("watch ended before the event")
        }));
    }
    ready.wait().await;
    // Give the last watch requests time to reach the server before the write.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let written = Instant::now();
    let cm: ConfigMap = serde_json::from_value(body("fan-out", 0))?;
    cms.create(&PostParams::default(), &cm).await?;
    let mut latencies = Vec::with_capacity(args.watchers);
    for w in watchers {
        latencies.push(w.await??.duration_since(written));
    }
    latencies.sort();
    let pick = |q: f64| crate::bench::percentile(&latencies, q);
    let watch_p99_ms = pick(0.99).as_secs_f64() * 1e3;
    println!(
        "watch     {} watchers: event seen after p50 {:.1} ms, p99 {watch_p99_ms:.1} ms, last {:.1} ms",
        args.watchers,
        pick(0.5).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    cluster.stop().await;
    println!("issue 16 targets (store and server):");
    println!("{}", ratio_line("creates", creates / direct_creates));
    println!("{}", ratio_line("updates", updates / direct_updates));
    println!(
        "{}",
        ratio_line(
            "list",
            direct_list.as_secs_f64() / list_times[2].as_secs_f64().max(1e-9)
        )
    );
    println!(
        "watch    {} watchers p99 {watch_p99_ms:.1} ms  target < {WATCH_P99_TARGET_MS:.0} ms  {}",
        args.watchers,
        verdict(watch_p99_ms < WATCH_P99_TARGET_MS)
    );
    drop(dir);

    authz::compare(args.authz_objects, args.authz_rounds, args.concurrency).await?;
    Ok(ExitCode::SUCCESS)
}
