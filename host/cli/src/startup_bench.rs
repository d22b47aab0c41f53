//! `vdi bench-startup`: time to desktop on this machine. Sessions of the `local-desktop` template
//! are created one at a time on the platform (control plane over HTTPS, in-process admission,
//! operator, plugins, the local process node); each is timed from the `VDISession` create to the
//! first frame decoded by headless Chromium opening its URL through the session proxy, and split
//! by stage (the operator's `status.timings`, the session's Running phase, the streamer's first
//! frame sent). The baseline, measured in the same run: the same desktop launcher and streamer
//! started by hand, without the platform. With `--warm-pool` the same number of sessions is
//! timed again with a warm pool of one (each launch claims the pool's running desktop; the next
//! waits for the pool to refill).

mod browser;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::api::{Patch, PatchParams};
use serde_json::json;
use vdi_cluster::{ProcessNode, SimulatedNodes};
use vdi_crd::{CLAIMED_BY_ANNOTATION, POOL_NAMESPACE, SessionPhase, VDISession, VDITemplate};
use vdi_operator::OperatorConfig;
use vdi_operator::connect::{ConnectKeys, stream_target};
use vdi_platform::{Platform, PlatformOptions};

use crate::bench::{millis, percentile};
use browser::{Browser, wall_ms};

/// Arguments of `vdi bench-startup`.
#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Sessions started, one at a time.
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// Baseline runs (desktop and streamer started by hand).
    #[arg(long, default_value_t = 5)]
    baseline: usize,
    /// Directory of the built default plugins.
    #[arg(
        long,
        env = "VDI_PLUGINS_DIR",
        default_value = "plugins/target/wasm32-wasip2/release"
    )]
    plugins_dir: PathBuf,
    /// The `vdi-streamer` binary (default: beside this `vdi`).
    #[arg(long, env = "VDI_STREAMER_BIN")]
    streamer_bin: Option<PathBuf>,
    /// Directory of `first-frame.mjs` and its `node_modules` (playwright-core).
    #[arg(long, default_value = "streamer/tests/browser")]
    browser_dir: PathBuf,
    /// Then set local-desktop's `warmPool` to 1 and time as many sessions again, each claiming
    /// the pool's desktop (claim -> first decoded frame); both are reported.
    #[arg(long)]
    warm_pool: bool,
}

pub(crate) fn run(args: &BenchArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(bench(args))
}

/// One session's stages, in milliseconds of wall clock.
#[derive(Debug, Default, Clone)]
struct Stages {
    admitted: Duration,
    placed: Duration,
    applied: Duration,
    ready: Duration,
    frame_sent: Option<Duration>,
    decoded: Duration,
    total: Duration,
    /// It claimed a warm pool's desktop.
    claimed: bool,
}

fn span(from: i64, to: i64) -> Duration {
    Duration::from_millis(u64::try_from(to - from).unwrap_or(0))
}

/// An RFC 3339 time of `status.timings` in wall-clock milliseconds.
fn timing(session: &VDISession, field: &str) -> Option<i64> {
    let status = serde_json::to_value(session.status.as_ref()?).ok()?;
    let at: jiff::Timestamp = status["timings"][field].as_str()?.parse().ok()?;
    Some(at.as_millisecond())
}

async fn bench(args: &BenchArgs) -> Result<ExitCode> {
    let streamer = match &args.streamer_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("vdi-streamer"),
    };
    if !streamer.is_file() {
        bail!(
            "{} is missing (cargo build -p vdi-streamer, or --streamer-bin)",
            streamer.display()
        );
    }
    let mut browser = Browser::start(&args.browser_dir).await?;

    println!(
        "baseline: desktop launcher + vdi-streamer started by hand, spawn -> first decoded frame ({} runs)",
        args.baseline
    );
    let mut base = browser::baseline(args.baseline, &streamer, &mut browser).await?;
    base.sort_unstable();

    let dir = tempfile::tempdir().context("a temporary directory")?;
    let mut platform = Platform::start(PlatformOptions {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse()?,
        nodes: SimulatedNodes {
            count: 0,
            ..SimulatedNodes::default()
        },
        process_node: Some(ProcessNode::new(dir.path().join("process-node"), &streamer)),
        plugins_dir: Some(args.plugins_dir.clone()),
        cache_dir: crate::plugin_cmd::cache_dir(),
        operator: None,
        admission_hook: true,
        oidc: Vec::new(),
    })
    .await?;
    let proxy = platform.start_proxy("127.0.0.1:0".parse()?)?;
    let mut config = OperatorConfig::default();
    config.session.url_template = format!(
        "https://localhost:{}/sessions/{{namespace}}/{{name}}/",
        proxy.port()
    );
    platform.start_operator(config).await?;
    let keys = ConnectKeys::load_or_create(&platform.client).await?;
    let sessions: Api<VDISession> = Api::namespaced(platform.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(platform.client.clone(), "default");

    println!(
        "platform: {} local-desktop sessions, one at a time, VDISession create -> first decoded frame",
        args.sessions
    );
    let mut samples = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        let name = format!("startup-{i}");
        let stages = one_session(&sessions, &keys, &mut browser, &name).await;
        sessions
            .delete(&name, &DeleteParams::default())
            .await
            .with_context(|| format!("delete {name}"))?;
        // The next session starts on an idle node: this one's processes are gone.
        let deadline = wall_ms() + 60_000;
        while !pods.list(&ListParams::default()).await?.items.is_empty() {
            if wall_ms() > deadline {
                bail!("the pod of {name} was not cleaned up within a minute");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stages = stages?;
        println!("  {name}: {}", millis(stages.total));
        samples.push(stages);
    }
    let warm = if args.warm_pool {
        Some(warm_run(&platform, &sessions, &keys, &mut browser, args.sessions).await?)
    } else {
        None
    };
    browser.close().await;
    platform.stop().await;
    report("cold start", &samples, &base);
    if let Some(warm) = warm {
        report("warm pool of 1 (each launch claims it)", &warm, &base);
    }
    Ok(ExitCode::SUCCESS)
}

/// Sets local-desktop's `warmPool` to 1 and times `count` sessions that claim the pool's
/// desktop, each after the pool has refilled.
async fn warm_run(
    platform: &Platform,
    sessions: &Api<VDISession>,
    keys: &ConnectKeys,
    browser: &mut Browser,
    count: usize,
) -> Result<Vec<Stages>> {
    Api::<VDITemplate>::all(platform.client.clone())
        .patch(
            "local-desktop",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"warmPool": 1}})),
        )
        .await
        .context("set local-desktop's warmPool to 1")?;
    let pool: Api<VDISession> = Api::namespaced(platform.client.clone(), POOL_NAMESPACE);
    println!("warm pool: {count} local-desktop sessions, each claiming the pool's desktop");
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        wait_for_pool(&pool).await?;
        let name = format!("warm-{i}");
        let stages = one_session(sessions, keys, browser, &name).await;
        sessions
            .delete(&name, &DeleteParams::default())
            .await
            .with_context(|| format!("delete {name}"))?;
        let stages = stages?;
        if stages.claimed {
            println!("  {name}: {}", millis(stages.total));
        } else {
            println!(
                "  {name}: {} (started cold: nothing to claim)",
                millis(stages.total)
            );
        }
        samples.push(stages);
    }
    Ok(samples)
}

/// Waits (at most two minutes) until the pool holds a Running, unclaimed session and nothing
/// else: the one a claimed session took is gone.
async fn wait_for_pool(pool: &Api<VDISession>) -> Result<()> {
    let deadline = wall_ms() + 120_000;
    loop {
        let items = pool.list(&ListParams::default()).await?.items;
        let ready = items.len() == 1
            && items.iter().all(|s| {
                !s.metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(CLAIMED_BY_ANNOTATION))
                    && s.status.as_ref().map(|st| st.phase()) == Some(SessionPhase::Running)
            });
        if ready {
            return Ok(());
        }
        if wall_ms() > deadline {
            bail!("the warm pool did not hold one running desktop within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates, connects to and times one session.
async fn one_session(
    sessions: &Api<VDISession>,
    keys: &ConnectKeys,
    browser: &mut Browser,
    name: &str,
) -> Result<Stages> {
    let session: VDISession = serde_json::from_value(json!({
        "apiVersion": "vdi.dev/v1alpha1",
        "kind": "VDISession",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"user": {"name": "alice", "groups": ["staff"]}, "template": "local-desktop",
                 "timeout": "1h"},
    }))?;
    let created = wall_ms();
    sessions.create(&PostParams::default(), &session).await?;
    let (session, running) = loop {
        let s = sessions.get(name).await?;
        match s.status.as_ref().and_then(|st| st.phase) {
            Some(SessionPhase::Running) => break (s, wall_ms()),
            Some(SessionPhase::Failed) => bail!("{name} failed: {:?}", s.status),
            _ => {}
        }
        if wall_ms() - created > 60_000 {
            bail!("{name} was not Running within a minute: {:?}", s.status);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let status = session.status.clone().unwrap_or_default();
    let url = status
        .url
        .clone()
        .context("a Running session without a URL")?;
    let expires: jiff::Timestamp = status
        .expires_at
        .as_deref()
        .context("a Running session without an expiry")?
        .parse()?;
    // A claimed session streams as the pool session serving it.
    let target = stream_target(&session)?;
    let now = u64::try_from(wall_ms() / 1000).unwrap_or(0);
    let stream_exp = u64::try_from(expires.as_second()).unwrap_or(0);
    let token = keys.mint(
        &target.namespace,
        &target.name,
        &target.uid,
        "alice",
        stream_exp,
        now,
    )?;
    let decoded = browser.first_frame(&format!("{url}#token={token}")).await?;
    // The operator asks the streamer for its first frame every 2 s.
    let mut sent = None;
    for _ in 0..40 {
        let s = sessions.get(name).await?;
        if let Some(at) = timing(&s, "firstFrame") {
            sent = Some((at, s));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let latest = match &sent {
        Some((_, s)) => s,
        None => &session,
    };
    let at = |field: &str| timing(latest, field).unwrap_or(created);
    let (admitted, placed, applied) = (at("admitted"), at("placed"), at("objectsApplied"));
    Ok(Stages {
        admitted: span(created, admitted),
        placed: span(admitted, placed),
        applied: span(placed, applied),
        ready: span(applied, running),
        frame_sent: sent.as_ref().map(|(t, _)| span(running, *t)),
        decoded: span(sent.as_ref().map_or(running, |(t, _)| *t), decoded),
        total: span(created, decoded),
        claimed: status.served_by.is_some(),
    })
}

/// Picks one stage of a session (`None` when it was not observed).
type Pick<'a> = &'a dyn Fn(&Stages) -> Option<Duration>;

fn report(title: &str, samples: &[Stages], base: &[Duration]) {
    let column = |pick: Pick<'_>| {
        let mut v: Vec<Duration> = samples.iter().filter_map(pick).collect();
        v.sort_unstable();
        (percentile(&v, 0.5), percentile(&v, 0.99))
    };
    println!();
    println!("{title}");
    println!("{:<52} {:>10} {:>10}", "stage", "p50", "p99");
    let rows: [(&str, Pick<'_>); 7] = [
        ("create -> admitted (admission plugins)", &|s| {
            Some(s.admitted)
        }),
        ("admitted -> placed (scheduler plugin)", &|s| Some(s.placed)),
        ("placed -> objects applied (template plugin)", &|s| {
            Some(s.applied)
        }),
        ("applied -> Running (processes up, /healthz ready)", &|s| {
            Some(s.ready)
        }),
        ("Running -> first frame sent (connect, WebRTC)", &|s| {
            s.frame_sent
        }),
        ("first frame sent -> decoded in the browser", &|s| {
            Some(s.decoded)
        }),
        ("total: create -> first decoded frame", &|s| Some(s.total)),
    ];
    for (label, pick) in rows {
        let (p50, p99) = column(pick);
        println!("{label:<52} {:>10} {:>10}", millis(p50), millis(p99));
    }
    let (total, _) = column(&|s| Some(s.total));
    let base_p50 = percentile(base, 0.5);
    println!(
        "{:<52} {:>10} {:>10}",
        "baseline: by hand, spawn -> first decoded frame",
        millis(base_p50),
        millis(percentile(base, 0.99))
    );
    if !base_p50.is_zero() {
        println!(
            "ratio platform / baseline (p50): {:.2}",
            total.as_secs_f64() / base_p50.as_secs_f64()
        );
    }
    println!(
        "target p50 < 3 s on this machine: {}",
        if total < Duration::from_secs(3) {
            "met"
        } else {
            "NOT met"
        }
    );
}
