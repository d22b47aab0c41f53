//! `vdi plugin bench`: decisions per second and per-decision latency with a fresh instance per
//! decision, cold-start costs, and the same logic linked natively as a baseline in the same run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use vdi_gpu_binpack::GpuBinpack;
use vdi_plugin_host::{
    CacheOutcome, Hook, Language, Limits, Plugin, RenderPolicy, Runtime, RuntimeConfig, ratio_line,
    ratio_target,
};
use vdi_plugin_sdk::{Admission, Scheduler};
use vdi_quota::Quota;

use crate::plugin_cmd::read_wasm;
use crate::samples;

/// Arguments of `vdi plugin bench`.
#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// The component (.wasm).
    wasm: PathBuf,
    /// Decisions to measure (after a warm-up of 1/10 of them).
    #[arg(long, default_value_t = 20_000)]
    iterations: usize,
    /// Threads deciding concurrently (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Candidate nodes for a scheduler.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// GPUs per candidate node.
    #[arg(long, default_value_t = 1)]
    gpus_per_node: u32,
    /// Sessions a scheduler places per call (one instance, one inventory transfer).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Plugin settings (JSON).
    #[arg(long, default_value = "")]
    settings: String,
    /// Time limit per decision, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Memory limit per instance, in MiB.
    #[arg(long, default_value_t = 256)]
    memory_mib: usize,
    /// Skip the native baseline.
    #[arg(long)]
    no_baseline: bool,
}

/// Latency figures of one measured run.
struct Figures {
    /// Calls per second.
    per_second: f64,
    /// Decisions each call makes (a scheduler's batch).
    per_call: usize,
    p50: Duration,
    p99: Duration,
}

impl Figures {
    fn line(&self, label: &str, n: usize, threads: usize) -> String {
        if self.per_call == 1 {
            format!(
                "{label:<10}{n} decisions on {threads} thread(s): {:>10.0} decisions/s, p50 {}, p99 {}",
                self.per_second,
                micros(self.p50),
                micros(self.p99)
            )
        } else {
            format!(
                "{label:<10}{n} calls of {} on {threads} thread(s): {:>10.0} decisions/s, per call p50 {}, p99 {}",
                self.per_call,
                self.per_second * self.per_call as f64,
                micros(self.p50),
                micros(self.p99)
            )
        }
    }
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

pub(crate) fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The `q` quantile (0.0..=1.0) of `sorted` durations; zero when empty.
pub(crate) fn percentile(sorted: &[Duration], q: f64) -> Duration {
    match sorted.len() {
        0 => Duration::ZERO,
        n => sorted[((n as f64 * q) as usize).min(n - 1)],
    }
}

/// Runs `decide` `n` times over `threads` threads, timing each call.
fn measure(
    n: usize,
    threads: usize,
    label: &str,
    decide: &(dyn Fn() -> Result<()> + Sync),
) -> Result<Figures> {
    for _ in 0..(n / 10).max(1) {
        decide()?;
    }
    let bar = ProgressBar::new(n as u64).with_message(label.to_owned());
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let per_thread = n.div_ceil(threads);
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let bar = &bar;
                s.spawn(move || -> Result<Vec<Duration>> {
                    let mut out = Vec::with_capacity(per_thread);
                    for i in 0..per_thread {
                        let t = Instant::now();
                        decide()?;
                        out.push(t.elapsed());
                        if i % 256 == 255 {
                            bar.inc(256);
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(n);
        for h in handles {
            all.extend(
                h.join()
                    .map_err(|_| anyhow::anyhow!("bench thread panicked"))??,
            );
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    let wall = started.elapsed();
    bar.finish_and_clear();
    latencies.sort_unstable();
    let pick = |q: f64| percentile(&latencies, q);
    Ok(Figures {
        per_second: latencies.len() as f64 / wall.as_secs_f64(),
        per_call: 1,
        p50: pick(0.50),
        p99: pick(0.99),
    })
}

/// Compile time (no cache) and load time from the on-disk cache, in fresh engines.
fn cold_start(
    bytes: &[u8],
    limits: Limits,
    settings: &str,
) -> Result<(Duration, Duration, Duration)> {
    let dir = tempfile::tempdir()?;
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_owned()),
        ..RuntimeConfig::default()
    };
    let (_, first) = Runtime::new(config.clone())?.load("bench", bytes, None, limits, settings)?;
    let (_, second) = Runtime::new(config)?.load("bench", bytes, None, limits, settings)?;
    anyhow::ensure!(
        first.outcome == CacheOutcome::Compiled && second.outcome == CacheOutcome::Cached,
        "cache did not behave"
    );
    Ok((first.compile, second.compile, second.link))
}

pub(crate) fn run(args: &BenchArgs) -> Result<ExitCode> {
    let bytes = read_wasm(&args.wasm)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let limits = Limits {
        timeout: Duration::from_millis(args.timeout_ms),
        memory_bytes: args.memory_mib << 20,
        ..Limits::default()
    };
    let (compile, cached, link) =
        cold_start(&bytes, limits, &args.settings).context("cold start")?;
    let rt = Runtime::new(RuntimeConfig::default())?;
    let name = args
        .wasm
        .file_stem()
        .map_or("plugin".into(), |s| s.to_string_lossy().into_owned());
    let (plugin, _) = rt.load(&name, &bytes, None, limits, &args.settings)?;
    let language = Language::detect(&bytes);
    println!(
        "plugin    {} ({}, {}, {}, {:.1} KiB)",
        args.wasm.display(),
        plugin.hook().name(),
        language.name(),
        plugin.digest(),
        bytes.len() as f64 / 1024.0
    );
    println!(
        "cold      compile {}, load from cache {}, link + configure {}",
        millis(compile),
        millis(cached),
        millis(link)
    );
    let n = args.iterations;
    let (wasm, native) = match plugin.hook() {
        Hook::Admission => bench_admission(&plugin, n, threads, args.no_baseline)?,
        Hook::Scheduler => {
            println!(
                "input     {} candidate nodes x {} GPU(s), {} session(s) per call",
                args.nodes, args.gpus_per_node, args.batch
            );
            let shape = Shape {
                nodes: args.nodes,
                gpus: args.gpus_per_node,
                batch: args.batch.max(1),
            };
            bench_scheduler(&plugin, n, threads, shape, args.no_baseline)?
        }
        Hook::Template => (bench_template(&plugin, n, threads)?, None),
    };
    println!("{}", wasm.line("wasm", n, threads));
    // The sandbox alone: a fresh instance built and dropped as for a decision, never called.
    let floor = measure(n, threads, "floor", &|| {
        plugin.instantiate_only()?;
        Ok(())
    })?;
    println!(
        "floor     fresh instance, no call: p50 {}, p99 {} ({:.0}% of a decision's p50)",
        micros(floor.p50),
        micros(floor.p99),
        100.0 * floor.p50.as_secs_f64() / wasm.p50.as_secs_f64().max(1e-9)
    );
    if let Some(native) = native {
        println!("{}", native.line("native", n, threads));
        let ratio = wasm.p50.as_secs_f64() / native.p50.as_secs_f64().max(1e-9);
        let target = ratio_target(plugin.hook(), language);
        println!(
            "ratio     {}  (throughput {:.1}x slower; floor alone {:.2}x)",
            ratio_line(ratio, target),
            native.per_second / wasm.per_second,
            floor.p50.as_secs_f64() / native.p50.as_secs_f64().max(1e-9)
        );
        if matches!(plugin.hook(), Hook::Scheduler) {
            println!(
                "placements/s wasm {:.0}, native {:.0}",
                wasm.per_second * wasm.per_call as f64,
                native.per_second * native.per_call as f64
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

type Pair = (Figures, Option<Figures>);

fn bench_admission(plugin: &Plugin, n: usize, threads: usize, no_baseline: bool) -> Result<Pair> {
    let request = samples::request("bench", "alice", &["staff"], "ubuntu-desktop");
    let context = samples::context();
    let wasm = measure(n, threads, "wasm", &|| {
        plugin.review(&request, &context)?;
        Ok(())
    })?;
    if no_baseline {
        return Ok((wasm, None));
    }
    println!("baseline  the Rust quota policy linked natively (same settings handling)");
    let settings =
        <Quota as Admission>::configure(plugin.settings()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (req, ctx): (
        vdi_plugin_sdk::SessionRequest,
        vdi_plugin_sdk::AdmissionContext,
    ) = (samples::to_sdk(&request)?, samples::to_sdk(&context)?);
    let native = measure(n, threads, "native", &|| {
        std::hint::black_box(
            Quota::review(&settings, req.clone(), ctx.clone())
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        );
        Ok(())
    })?;
    Ok((wasm, Some(native)))
}

/// A scheduler benchmark's input size.
struct Shape {
    nodes: usize,
    gpus: u32,
    batch: usize,
}

fn bench_scheduler(
    plugin: &Plugin,
    n: usize,
    threads: usize,
    shape: Shape,
    no_baseline: bool,
) -> Result<Pair> {
    let requests: Vec<_> = (0..shape.batch)
        .map(|i| samples::request(&format!("bench-{i}"), "alice", &["staff"], "ubuntu-desktop"))
        .collect();
    let inventory = samples::nodes(shape.nodes, shape.gpus);
    let mut wasm = measure(n, threads, "wasm", &|| {
        plugin.place_batch(&requests, &inventory)?;
        Ok(())
    })?;
    wasm.per_call = shape.batch;
    if no_baseline {
        return Ok((wasm, None));
    }
    println!(
        "baseline  the Rust gpu-binpack logic linked natively (same settings handling, same input copy)"
    );
    let settings = <GpuBinpack as Scheduler>::configure(plugin.settings())
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let reqs: Vec<vdi_plugin_sdk::SessionRequest> = samples::to_sdk(&requests)?;
    let inv: Vec<vdi_plugin_sdk::Node> = samples::to_sdk(&inventory)?;
    // The component receives its own copy of the input on every call; so does the baseline.
    let mut native = measure(n, threads, "native", &|| {
        std::hint::black_box(
            GpuBinpack::place(&settings, reqs.clone(), inv.clone())
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        );
        Ok(())
    })?;
    native.per_call = shape.batch;
    Ok((wasm, Some(native)))
}

fn bench_template(plugin: &Plugin, n: usize, threads: usize) -> Result<Figures> {
    let request = samples::request("bench", "alice", &["staff"], "ubuntu-desktop");
    let template = samples::template();
    let placement = samples::placement();
    let policy = RenderPolicy::default();
    measure(n, threads, "wasm", &|| {
        plugin.render(&request, &template, &placement, &policy)?;
        Ok(())
    })
}
