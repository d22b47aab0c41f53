//! `vdi up`: the whole platform on this machine: the embedded control plane with simulated GPU
//! nodes and a local process node that runs real desktops, the CRDs, default templates and
//! plugins, the operator and the session proxy, until Ctrl-C. Then `kubectl apply -f
//! examples/session.yaml` gives a desktop on this machine and `vdi connect` the URL to open.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use vdi_cluster::{ProcessNode, SimulatedNodes};
use vdi_operator::OperatorConfig;
use vdi_platform::front::{DashboardConfig, Front};
use vdi_platform::{DEFAULT_PLUGINS, Platform, PlatformOptions};

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
    /// Address of the operator's metrics, health and webhook endpoints.
    #[arg(long, default_value = "127.0.0.1:9443")]
    operator_listen: SocketAddr,
    /// URL of a running session (`{namespace}` and `{name}` are replaced); default: the session
    /// proxy's, `https://localhost:<proxy port>/sessions/{namespace}/{name}/`.
    #[arg(long)]
    url_template: Option<String>,
    /// Where the session proxy serves `/sessions/{namespace}/{name}/` over HTTPS (the URL
    /// template's port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    proxy_listen: SocketAddr,
    /// Also start the development OpenID Provider (tools/dev-idp: alice, bob, carol and admin)
    /// and trust it, and give alice and bob their namespaces. Dev only.
    #[arg(long)]
    dev_idp: bool,
    /// Where the development OpenID Provider listens.
    #[arg(long, default_value = "127.0.0.1:5556")]
    dev_idp_listen: SocketAddr,
    /// The development OpenID Provider's directory (with its node_modules).
    #[arg(long, default_value = "tools/dev-idp")]
    dev_idp_dir: PathBuf,
    /// The dashboard's OAuth client: the API accepts the ID tokens its users sign in with.
    #[arg(long, default_value = "vdi-dashboard")]
    dashboard_client_id: String,
    /// The dashboard's built assets (`npm run build` in dashboard/), served at `/` beside the API
    /// and the sessions.
    #[arg(long, default_value = "dashboard/dist")]
    dashboard_dir: PathBuf,
    /// Run no local process node (then sessions only land on the simulated nodes, which run
    /// nothing).
    #[arg(long)]
    no_local_node: bool,
    /// The `vdi-streamer` binary the local node runs for the streamer image (default: beside
    /// this `vdi`).
    #[arg(long, env = "VDI_STREAMER_BIN")]
    streamer_bin: Option<PathBuf>,
    /// The control plane's settings (data directory, port, kubeconfig, simulated nodes).
    #[command(flatten)]
    cluster: crate::cluster_cmd::ClusterArgs,
}

pub(crate) fn run(args: &UpArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    rt.block_on(async {
        let c = &args.cluster;
        let mut config = OperatorConfig {
            http_listen: Some(args.operator_listen),
            ..OperatorConfig::default()
        };
        let cache_dir = crate::plugin_cmd::cache_dir();
        let mut oidc: Vec<_> = c.oidc.config()?.into_iter().collect();
        let idp = if args.dev_idp {
            let idp = crate::dev_idp::DevIdp::start(
                &args.dev_idp_dir,
                args.dev_idp_listen,
                &c.data_dir.join("dev-idp"),
            )?;
            let mut config = vdi_cluster::authn::OidcConfig::new(idp.issuer.clone(), "vdi-cli");
            config.ca_pem = Some(std::fs::read_to_string(&idp.ca_file)?);
            oidc.push(config);
            Some(idp)
        } else {
            None
        };
        let process_node = if args.no_local_node {
            None
        } else {
            let streamer = match &args.streamer_bin {
                Some(path) => path.clone(),
                None => std::env::current_exe()
                    .context("find this executable")?
                    .with_file_name("vdi-streamer"),
            };
            if !streamer.is_file() {
                eprintln!(
                    "warning: {} is missing: desktops on the local node will fail to start \
                     (cargo build -p vdi-streamer, or --streamer-bin)",
                    streamer.display()
                );
            }
            Some(ProcessNode::new(c.data_dir.join("process-node"), streamer))
        };
        // Users sign in with the last issuer given (the dev IdP when it runs).
        let user_issuer = oidc.last().cloned();
        let mut platform = Platform::start(PlatformOptions {
            data_dir: c.data_dir.clone(),
            listen: c.listen,
            nodes: SimulatedNodes {
                count: c.sim_nodes,
                gpus_per_node: c.sim_gpus,
                slices_per_gpu: c.sim_slices,
                ..SimulatedNodes::default()
            },
            plugins_dir: Some(args.plugins_dir.clone()),
            cache_dir,
            // Started below, once the proxy's port (in the sessions' URL) is known.
            operator: None,
            admission_hook: true,
            process_node,
            oidc,
        })
        .await?;
        let assets = args
            .dashboard_dir
            .join("index.html")
            .is_file()
            .then(|| args.dashboard_dir.clone());
        let front = match user_issuer {
            Some(mut issuer) => {
                issuer.client_id = args.dashboard_client_id.clone();
                let dashboard = DashboardConfig::new(&issuer.issuer_url, &issuer.client_id);
                let api = platform.api_state(vdi_api::ApiConfig::new(issuer)).await?;
                Front {
                    api: Some(api),
                    dashboard: Some(dashboard),
                    assets,
                }
            }
            None => Front {
                assets,
                ..Front::default()
            },
        };
        let serves_api = front.api.is_some();
        let serves_dashboard = front.assets.is_some();
        let proxy = platform.start_front(args.proxy_listen, front)?;
        config.session.url_template = args.url_template.clone().unwrap_or_else(|| {
            format!(
                "https://localhost:{}/sessions/{{namespace}}/{{name}}/",
                proxy.port()
            )
        });
        platform.start_operator(config).await?;
        let mut users = Vec::new();
        if idp.is_some() {
            for user in ["oidc:alice", "oidc:bob"] {
                users.push((user, vdi_platform::add_user(&platform.client, user).await?));
            }
        }
        // Written last: whoever waits for it finds everything above in place.
        crate::cluster_cmd::write_kubeconfig(&c.kubeconfig, &platform.kubeconfig())?;
        let set = platform.registry.current();
        println!("control plane   {}", platform.cluster.url());
        println!(
            "nodes           {} simulated, {} GPU(s) x {} slices each",
            c.sim_nodes, c.sim_gpus, c.sim_slices
        );
        if let Some(node) = platform.process_node() {
            println!(
                "                {node}: this machine, runs desktops as processes (template local-desktop)"
            );
        }
        for p in DEFAULT_PLUGINS {
            let digest = set
                .admission
                .iter()
                .map(|a| &a.plugin)
                .chain(set.schedulers.iter())
                .chain(set.templates.values())
                .find(|x| x.name() == p.name)
                .map_or_else(
                    || "NOT LOADED (kubectl get vdp)".to_owned(),
                    |x| x.digest().to_string(),
                );
            println!("plugin          {:<12} {:<10} {digest}", p.name, p.hook);
        }
        if serves_dashboard {
            println!("dashboard       https://localhost:{}/", proxy.port());
        } else {
            println!(
                "dashboard       not built ({} has no index.html: npm run build in dashboard/)",
                args.dashboard_dir.display()
            );
        }
        if serves_api {
            println!("graphql         https://localhost:{}/graphql", proxy.port());
        }
        println!(
            "sessions        https://localhost:{}/sessions/{{namespace}}/{{name}}/ (session proxy)",
            proxy.port()
        );
        if let Some(addr) = platform.operator.as_ref().and_then(|o| o.http_addr()) {
            println!("operator        http://{addr}/metrics");
        }
        if let Some(idp) = &idp {
            for (user, ns) in &users {
                println!("user            {user:<12} namespace {ns}");
            }
            println!(
                "sign in         vdi login --issuer {} --ca-file {} --kubeconfig {} --cluster vdi",
                idp.issuer,
                idp.ca_file.display(),
                c.kubeconfig.display()
            );
            println!("                (alice/alice-password, admin/admin-password: tools/dev-idp/README.md)");
        }
        println!();
        println!("export KUBECONFIG={}", c.kubeconfig.display());
        println!("kubectl apply -f examples/session.yaml && kubectl wait --for=jsonpath='{{.status.phase}}'=Running vds/alice-desktop");
        if platform.process_node().is_some() {
            println!("vdi connect alice-desktop    # prints the URL to open in a browser: the live desktop");
        }
        println!(
            "(Ctrl-C stops everything; state stays in {})",
            c.data_dir.display()
        );
        stop_signal().await?;
        platform.stop().await;
        drop(idp);
        Ok(ExitCode::SUCCESS)
    })
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM (a service manager's or a test's stop).
async fn stop_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listen for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("wait for Ctrl-C"),
        _ = term.recv() => Ok(()),
    }
}
