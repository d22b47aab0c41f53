//! `vdi bench-operator`: many sessions created at once on many simulated GPU nodes, through the
//! whole platform (control plane over HTTPS, in-process admission, operator, plugins). Reports
//! time until all run, create→Running latency, density and over-commit, reconcile throughput,
//! and, as the baseline measured in the same run, the same decisions made by the plugins alone
//! (no API, no controller).

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;
use vdi_cluster::SimulatedNodes;
use vdi_crd::{SessionPhase, VDISession};
use vdi_operator::OperatorConfig;
use vdi_platform::{Platform, PlatformOptions};
use vdi_plugin_host::RenderPolicy;
use vdi_plugin_host::types::{PlacementDecision, TemplateInfo};

use crate::bench::{millis as ms, percentile};

mod writes;

/// Arguments of `vdi bench-operator`.
#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Sessions created at once.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Simulated nodes (one GPU each).
    #[arg(long, default_value_t = 125)]
    nodes: usize,
    /// Time-slices per GPU.
    #[arg(long, default_value_t = 8)]
    slices: u32,
    /// Concurrent creates in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Most session reconciles the operator runs at once (0: no limit).
    #[arg(long, default_value_t = 64)]
    operator_concurrency: u16,
    /// Sessions created one at a time first (CPU-only, so GPU density is unaffected), for the
    /// create -> Running latency of one session on an idle platform.
    #[arg(long, default_value_t = 20)]
    probes: usize,
    /// Directory of the built default plugins.
    #[arg(
        long,
        env = "VDI_PLUGINS_DIR",
        default_value = "plugins/target/wasm32-wasip2/release"
    )]
    plugins_dir: std::path::PathBuf,
}

pub(crate) fn run(args: &BenchArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(bench(args))
}

async fn bench(args: &BenchArgs) -> Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let platform = Platform::start(PlatformOptions {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse()?,
        nodes: SimulatedNodes {
            count: args.nodes,
            gpus_per_node: 1,
            slices_per_gpu: args.slices,
            ..SimulatedNodes::default()
        },
        plugins_dir: Some(args.plugins_dir.clone()),
        cache_dir: crate::plugin_cmd::cache_dir(),
        operator: Some(OperatorConfig {
            sweep_every: Duration::from_secs(3600),
            concurrency: args.operator_concurrency,
            ..OperatorConfig::default()
        }),
        admission_hook: true,
        process_node: None,
        oidc: Vec::new(),
    })
    .await?;
    let baseline = plugins_alone(&platform, args)?;
    let api: Api<VDISession> = Api::namespaced(platform.client.clone(), "default");

    // Watch for Running before creating anything.
    let running_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watch = {
        let running_at = running_at.clone();
        let stream = watcher(api.clone(), watcher::Config::default()).applied_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Ok(Some(s)) = stream.try_next().await {
                let phase = s.status.as_ref().map(|st| st.phase());
                if phase == Some(SessionPhase::Running) {
                    running_at
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .entry(s.name_any())
                        .or_insert_with(Instant::now);
                }
            }
        })
    };
    // One at a time on an idle platform: the pipeline's own latency, without queueing.
    let mut idle = Vec::new();
    for i in 0..args.probes {
        let name = format!("probe-{i:03}");
        let s: VDISession = serde_json::from_value(json!({
            "apiVersion": "vdi.dev/v1alpha1", "kind": "VDISession",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"user": {"name": format!("probe-{i}"), "groups": ["staff"]},
                     "template": "ubuntu-cpu"},
        }))?;
        let at = Instant::now();
        api.create(&PostParams::default(), &s).await?;
        loop {
            let done = running_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&name)
                .map(|r| r.duration_since(at));
            if let Some(d) = done {
                idle.push(d);
                break;
            }
            if at.elapsed() > Duration::from_secs(30) {
                bail!("probe {name} not Running after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    idle.sort();
    let reconciles_before = platform
        .operator
        .as_ref()
        .map_or(0, |o| o.metrics().reconciles());
    println!(
        "creating {} sessions at once ({} in flight) on {} nodes x 1 GPU x {} slices",
        args.sessions, args.concurrency, args.nodes, args.slices
    );
    let counter = writes::WriteCounter::start(platform.cluster.store())?;
    let started = Instant::now();
    let created: Vec<(String, Instant)> = futures::stream::iter(0..args.sessions)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = format!("bench-{i:05}");
                let s: VDISession = serde_json::from_value(json!({
                    "apiVersion": "vdi.dev/v1alpha1", "kind": "VDISession",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {"user": {"name": format!("user-{i}"), "groups": ["staff"]},
                             "template": "ubuntu-desktop"},
                }))?;
                let at = Instant::now();
                api.create(&PostParams::default(), &s).await?;
                anyhow::Ok((name, at))
            }
        })
        .buffer_unordered(args.concurrency)
        .try_collect()
        .await?;
    let created_in = started.elapsed();
    // Generous: a run that fails its targets still finishes and reports.
    let deadline = Instant::now() + Duration::from_secs(120.max(args.sessions as u64 / 40));
    loop {
        let n = running_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        if n >= args.sessions {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {n} of {} sessions Running after {}",
                args.sessions,
                ms(started.elapsed())
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all_running = started.elapsed();
    watch.abort();
    let writes = counter.stop(args.sessions)?;
    let reconciles = platform
        .operator
        .as_ref()
        .map_or(0, |o| o.metrics().reconciles())
        - reconciles_before;
    let running_at = running_at
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut latencies: Vec<Duration> = created
        .iter()
        .filter_map(|(name, at)| running_at.get(name).map(|r| r.duration_since(*at)))
        .collect();
    latencies.sort();

    // Density and over-commit from the sessions' own status.
    let sessions = api.list(&Default::default()).await?.items;
    let mut per_gpu: BTreeMap<(String, u32), u32> = BTreeMap::new();
    for s in &sessions {
        let st = s.status.clone().unwrap_or_default();
        let slices = st.admitted.map_or(0, |a| a.resources.gpu_slices);
        if let (Some(node), Some(gpu)) = (st.node, st.gpu) {
            *per_gpu.entry((node, gpu)).or_default() += slices;
        }
    }
    let over = per_gpu.values().filter(|v| **v > args.slices).count();
    let full = per_gpu.values().filter(|v| **v == args.slices).count();

    println!();
    println!(
        "all {} Running after       {}",
        args.sessions,
        ms(all_running)
    );
    println!(
        "creates accepted in         {} ({:.0}/s)",
        ms(created_in),
        args.sessions as f64 / created_in.as_secs_f64()
    );
    println!(
        "create -> Running           p50 {}  p99 {}  max {}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0))
    );
    println!(
        "one at a time, idle         p50 {}  p99 {}  ({} sessions)",
        ms(percentile(&idle, 0.5)),
        ms(percentile(&idle, 0.99)),
        idle.len()
    );
    println!(
        "density                     {} GPUs used, {} with exactly {} sessions, {} over-committed",
        per_gpu.len(),
        full,
        args.slices,
        over
    );
    println!(
        "reconciles                  {reconciles} ({:.0}/s, {:.1} per session)",
        reconciles as f64 / all_running.as_secs_f64(),
        reconciles as f64 / args.sessions as f64
    );
    let breakdown: Vec<String> = writes
        .per_session
        .iter()
        .map(|(k, w)| format!("{k} {w:.2}"))
        .collect();
    let once: Vec<String> = writes
        .shared
        .iter()
        .chain(&writes.background)
        .map(|(k, w)| format!("{k} {w}"))
        .collect();
    println!(
        "API writes per session      {:.2} ({}); besides, in all: {}",
        writes.per_session_total(),
        breakdown.join(", "),
        if once.is_empty() {
            "none".to_owned()
        } else {
            once.join(", ")
        }
    );
    println!(
        "baseline: plugins alone     {} for the same admissions, batched placements and renders",
        ms(baseline)
    );
    let ratio = all_running.as_secs_f64() / baseline.as_secs_f64();
    println!("ratio                       whole platform / plugins alone = {ratio:.1}x");
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    let spread = p99.as_secs_f64() / p50.as_secs_f64().max(1e-9);
    println!();
    println!("targets (issue 16)");
    let per_session = writes.per_session_total();
    target(
        "API writes per session, create -> Running",
        format!("{per_session:.2}"),
        "<= 6",
        per_session <= 6.0 + 1e-9,
    );
    target(
        "whole platform / plugins alone",
        format!("{ratio:.1}x"),
        "<= 10x",
        ratio <= 10.0,
    );
    target(
        "burst p99 / p50",
        format!("{spread:.2}"),
        "<= 2",
        spread <= 2.0,
    );
    target(
        &format!("all {} Running", args.sessions),
        ms(all_running),
        "< 3 s",
        all_running < Duration::from_secs(3),
    );
    platform.stop().await;
    if over > 0 {
        bail!("{over} GPUs were over-committed");
    }
    Ok(ExitCode::SUCCESS)
}

/// One target line: what, the figure, the target, and whether it is met.
fn target(what: &str, figure: String, target: &str, met: bool) {
    let mark = if met { "✔" } else { "✘" };
    println!("  {what:<44} {figure:>10}  target {target:<7} {mark}");
}

/// The same decisions with the loaded plugins and no API: admission per session, placement in
/// batches of 64 against a fresh inventory, one render per session.
fn plugins_alone(platform: &Platform, args: &BenchArgs) -> Result<Duration> {
    let set = platform.registry.current();
    let scheduler = set.scheduler().context("no scheduler loaded")?.clone();
    let renderer = set.renderer(None).map_err(anyhow::Error::msg)?.clone();
    let template = TemplateInfo {
        name: "ubuntu-desktop".into(),
        display_name: "Ubuntu".into(),
        image: "ghcr.io/vdi-platform/ubuntu-desktop:24.04".into(),
        settings: String::new(),
    };
    let requests: Vec<_> = (0..args.sessions)
        .map(|i| {
            let mut r = crate::samples::request(
                &format!("bench-{i:05}"),
                &format!("user-{i}"),
                &["staff"],
                "ubuntu-desktop",
            );
            r.namespace = "default".into();
            r
        })
        .collect();
    let mut nodes = crate::samples::nodes(args.nodes, 1);
    for n in &mut nodes {
        for g in &mut n.gpus {
            g.slices_used = 0;
            g.slices_total = args.slices;
            g.memory_used_mib = 0;
            g.encoder_sessions_used = 0;
            g.encoder_sessions_total = args.slices;
        }
    }
    let context = vdi_plugin_host::types::AdmissionContext {
        operation: vdi_plugin_host::types::Operation::Create,
        active_sessions: Vec::new(),
    };
    let started = Instant::now();
    for r in &requests {
        set.chain_for("ubuntu-desktop", "default")
            .review(r, &context);
    }
    for batch in requests.chunks(64) {
        let decisions = scheduler.place_batch(batch, &nodes)?;
        for (r, d) in batch.iter().zip(decisions) {
            if let PlacementDecision::Placed(p) = d {
                for n in nodes.iter_mut().filter(|n| n.name == p.node) {
                    for g in n.gpus.iter_mut().filter(|g| Some(g.index) == p.gpu) {
                        g.slices_used += r.spec.resources.gpu_slices;
                        g.memory_used_mib += r.spec.resources.gpu_memory_mib;
                        g.encoder_sessions_used += 1;
                    }
                }
                renderer.render(r, &template, &p, &RenderPolicy::default())?;
            }
        }
    }
    Ok(started.elapsed())
}
