//! `vdi cluster`: the embedded control plane as a process of its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use vdi_cluster::{Cluster, ClusterConfig, SimulatedNodes};

/// Arguments of `vdi cluster`.
#[derive(clap::Args)]
pub(crate) struct ClusterArgs {
    /// Directory of the cluster's database.
    #[arg(long, env = "VDI_DATA_DIR", default_value = ".vdi/cluster")]
    pub(crate) data_dir: PathBuf,
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub(crate) listen: SocketAddr,
    /// Where to write the kubeconfig (written after the server listens).
    #[arg(long, default_value = ".vdi/kubeconfig")]
    pub(crate) kubeconfig: PathBuf,
    /// Simulated GPU nodes to register (KWOK-style; 0 for none).
    #[arg(long, default_value_t = 4)]
    pub(crate) sim_nodes: usize,
    /// GPUs per simulated node.
    #[arg(long, default_value_t = 1)]
    pub(crate) sim_gpus: u32,
    /// Time-slices per simulated GPU.
    #[arg(long, default_value_t = 8)]
    pub(crate) sim_slices: u32,
    /// The OpenID Provider whose users may sign in.
    #[command(flatten)]
    pub(crate) oidc: crate::oidc_flags::OidcFlags,
}

pub(crate) fn run(args: &ClusterArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    rt.block_on(async {
        let config = ClusterConfig {
            listen: args.listen,
            oidc: args.oidc.config()?.into_iter().collect(),
            ..ClusterConfig::local(&args.data_dir)
        };
        let cluster = Cluster::start(config)
            .await
            .context("start the control plane")?;
        if args.sim_nodes > 0 {
            let sim = SimulatedNodes {
                count: args.sim_nodes,
                gpus_per_node: args.sim_gpus,
                slices_per_gpu: args.sim_slices,
                ..SimulatedNodes::default()
            };
            let names = sim.names();
            sim.start(cluster.store().clone())
                .context("start the simulated nodes")?;
            println!("simulated GPU nodes: {}", names.join(", "));
        }
        write_kubeconfig(&args.kubeconfig, &cluster.kubeconfig())?;
        println!("control plane listening on {}", cluster.url());
        println!(
            "kubeconfig: {}  (export KUBECONFIG={})",
            args.kubeconfig.display(),
            args.kubeconfig.display()
        );
        tokio::signal::ctrl_c().await.context("wait for Ctrl-C")?;
        cluster.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Writes `contents` to `path` atomically (a reader never sees half a kubeconfig), mode 0600.
pub(crate) fn write_kubeconfig(path: &std::path::Path, contents: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    // It holds the admin token: readable by its owner only.
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
