//! `vdi up`: runs the platform on this machine. Today it loads the default plugins, walks sample
//! sessions through admission, scheduling and rendering, then serves the embedded control plane
//! with simulated GPU nodes until Ctrl-C; the operator joins it later.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use vdi_plugin_host::types::PlacementDecision;
use vdi_plugin_host::{
    AdmissionChain, ChainEntry, ChainVerdict, FailurePolicy, Limits, Plugin, RenderPolicy,
};

use crate::plugin_cmd::{read_wasm, runtime};
use crate::samples;

/// Settings of the sample quota policy: staff may start the Ubuntu desktop, admins anything.
const QUOTA_SETTINGS: &str = r#"{"maxTimeoutSeconds": 14400, "templatesByGroup": {"staff": ["ubuntu-desktop"], "admins": ["*"]}}"#;

/// Arguments of `vdi up`.
#[derive(clap::Args)]
pub(crate) struct UpArgs {
    /// Directory holding vdi_quota.wasm, vdi_gpu_binpack.wasm and vdi_desktop.wasm.
    #[arg(
        long,
        env = "VDI_PLUGINS_DIR",
        default_value = "plugins/target/wasm32-wasip2/release"
    )]
    plugins_dir: PathBuf,
    /// Simulated GPU nodes in the sample inventory.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Print the rendered objects as JSON.
    #[arg(long)]
    objects: bool,
    /// Only show the plugin decisions; do not start the control plane.
    #[arg(long)]
    no_cluster: bool,
    /// The control plane's settings (data directory, port, kubeconfig, simulated nodes).
    #[command(flatten)]
    cluster: crate::cluster_cmd::ClusterArgs,
}

fn load(args: &UpArgs, file: &str, settings: &str) -> Result<Plugin> {
    let path = args.plugins_dir.join(file);
    let bytes = read_wasm(&path).context("build the default plugins first (make plugins)")?;
    let (plugin, stats) = runtime()?.load(
        file.trim_end_matches(".wasm"),
        &bytes,
        None,
        Limits::default(),
        settings,
    )?;
    println!(
        "loaded    {:<12} {:<10} {}  ({:?}, {:.1} ms)",
        plugin.name(),
        plugin.hook().name(),
        plugin.digest(),
        stats.outcome,
        stats.compile.as_secs_f64() * 1e3
    );
    Ok(plugin)
}

pub(crate) fn run(args: &UpArgs) -> Result<ExitCode> {
    let quota = load(args, "vdi_quota.wasm", QUOTA_SETTINGS)?;
    let scheduler = load(args, "vdi_gpu_binpack.wasm", "")?;
    let renderer = load(args, "vdi_desktop.wasm", "")?;
    let chain = AdmissionChain::new(vec![ChainEntry {
        plugin: quota,
        failure_policy: FailurePolicy::Fail,
    }]);
    let nodes = samples::nodes(args.nodes, 1);
    let template = samples::template();
    let context = samples::context();

    let sessions = [
        samples::request("alice-desktop", "alice", &["staff"], "ubuntu-desktop"),
        samples::request("bob-blender", "bob", &["staff"], "blender"),
    ];
    for request in &sessions {
        println!();
        println!(
            "session   {}/{}: user {} wants {} with {} GPU slice(s) for {} s",
            request.namespace,
            request.name,
            request.spec.user.name,
            request.spec.template,
            request.spec.resources.gpu_slices,
            request.spec.timeout_seconds
        );
        let started = Instant::now();
        let outcome = chain.review(request, &context);
        let spec = match outcome.verdict {
            ChainVerdict::Allowed { spec, mutated } => {
                let note = if mutated {
                    format!(
                        "mutated: timeout {} s -> {} s",
                        request.spec.timeout_seconds, spec.timeout_seconds
                    )
                } else {
                    "unchanged".to_owned()
                };
                println!(
                    "admission allowed ({note}) in {:.0} µs",
                    started.elapsed().as_secs_f64() * 1e6
                );
                spec
            }
            ChainVerdict::Denied { plugin, reason } => {
                println!("admission denied by {plugin}: {reason}");
                continue;
            }
            ChainVerdict::Failed { plugin, error } => {
                println!("admission failed in {plugin}: {error}");
                continue;
            }
        };
        let admitted = vdi_plugin_host::types::SessionRequest {
            spec,
            ..request.clone()
        };
        let started = Instant::now();
        let placement = match scheduler.place(&admitted, &nodes)? {
            PlacementDecision::Placed(p) => p,
            PlacementDecision::Unschedulable(reasons) => {
                println!("scheduler unschedulable: {}", reasons.join("; "));
                continue;
            }
        };
        println!(
            "scheduler placed on {} GPU {} over {} nodes in {:.0} µs: {}",
            placement.node,
            placement.gpu.map_or("none".to_owned(), |g| g.to_string()),
            nodes.len(),
            started.elapsed().as_secs_f64() * 1e6,
            placement.reason
        );
        let started = Instant::now();
        let objects =
            renderer.render(&admitted, &template, &placement, &RenderPolicy::default())?;
        println!(
            "template  rendered {} objects in {:.0} µs:",
            objects.len(),
            started.elapsed().as_secs_f64() * 1e6
        );
        for o in &objects {
            println!(
                "            {:<22} {}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["namespace"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            );
        }
        if args.objects {
            println!("{}", serde_json::to_string_pretty(&objects)?);
        }
    }
    if args.no_cluster {
        return Ok(ExitCode::SUCCESS);
    }
    println!();
    crate::cluster_cmd::run(&args.cluster)
}
