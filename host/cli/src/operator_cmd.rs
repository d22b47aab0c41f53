//! `vdi operator` (the operator against any cluster, from the in-cluster service account or a
//! kubeconfig) and `vdi crds` (the CRD YAML).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use vdi_operator::{Fetcher, LeaseSettings, ModuleStore, Operator, OperatorConfig, Registry};
use vdi_plugin_host::{Runtime, RuntimeConfig};

/// Arguments of `vdi operator`.
#[derive(clap::Args)]
pub(crate) struct OperatorArgs {
    /// Address of the metrics, health, webhook and upload endpoints.
    #[arg(long, env = "VDI_OPERATOR_LISTEN", default_value = "0.0.0.0:9443")]
    listen: SocketAddr,
    /// TLS certificate (PEM) for the endpoints; webhooks need TLS.
    #[arg(long, env = "VDI_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS key (PEM).
    #[arg(long, env = "VDI_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Directory of the compiled-module cache (uploads live in ConfigMaps of the operator's
    /// namespace, so every replica sees them).
    #[arg(long, env = "VDI_MODULE_DIR", default_value = "/var/lib/vdi/modules")]
    module_dir: PathBuf,
    /// Bearer token allowing module uploads (`PUT /modules`); uploads are off without one.
    #[arg(long, env = "VDI_UPLOAD_TOKEN")]
    upload_token: Option<String>,
    /// Extra CA certificates (PEM) trusted for `https://` and OCI module sources.
    #[arg(long, env = "VDI_MODULE_CA")]
    module_ca: Option<PathBuf>,
    /// Keep uploaded modules in this OCI repository (`oci://host[:port]/repository`, one tag
    /// `sha256-<hex>` per module) instead of ConfigMaps of the operator's namespace.
    #[arg(long, env = "VDI_MODULE_REGISTRY")]
    module_registry: Option<String>,
    /// A Docker config with the module registry's credentials (anonymous without).
    #[arg(long, env = "VDI_MODULE_REGISTRY_CONFIG", requires = "module_registry")]
    module_registry_config: Option<PathBuf>,
    /// URL of a running session (`{namespace}` and `{name}` are replaced).
    #[arg(
        long,
        env = "VDI_URL_TEMPLATE",
        default_value = "https://vdi.example.com/sessions/{namespace}/{name}/"
    )]
    url_template: String,
    /// The operator's namespace: its leader-election Lease and its module store.
    #[arg(long, env = "POD_NAMESPACE", default_value = "vdi-system")]
    lease_namespace: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Run without leader election (a single replica).
    #[arg(long)]
    no_leader_election: bool,
}

/// The upload store in the OCI repository `reference`.
fn module_registry(
    args: &OperatorArgs,
    client: &kube::Client,
    reference: &str,
    ca: Option<&[u8]>,
) -> Result<ModuleStore> {
    use vdi_operator::modules::oci::{OciReference, OciRegistries, RegistryAuth, auth_for};
    let repository: OciReference = reference
        .parse()
        .map_err(anyhow::Error::msg)
        .context("--module-registry")?;
    let auth = match &args.module_registry_config {
        Some(p) => {
            let config = std::fs::read(p).with_context(|| format!("read {}", p.display()))?;
            auth_for(&config, repository.registry())
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("{}", p.display()))?
        }
        None => RegistryAuth::Anonymous,
    };
    Ok(ModuleStore::in_registry(
        client.clone(),
        args.lease_namespace.clone(),
        repository,
        OciRegistries::new(ca)?,
        auth,
    )?)
}

pub(crate) fn crds() -> Result<ExitCode> {
    print!("{}", vdi_crd::crds_yaml()?);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run(args: &OperatorArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    rt.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("connect to the cluster (in-cluster or KUBECONFIG)")?;
        let runtime = Arc::new(
            Runtime::new(RuntimeConfig {
                cache_dir: Some(args.module_dir.join("compiled")),
                ..RuntimeConfig::default()
            })
            .context("start the plugin runtime")?,
        );
        let ca = match &args.module_ca {
            Some(p) => Some(std::fs::read(p).with_context(|| format!("read {}", p.display()))?),
            None => None,
        };
        let store = match &args.module_registry {
            None => ModuleStore::new(client.clone(), args.lease_namespace.clone()),
            Some(r) => module_registry(args, &client, r, ca.as_deref())?,
        };
        let fetcher = Fetcher::new(store, client.clone(), ca.as_deref())?;
        let registry = Arc::new(Registry::new(runtime, fetcher));
        let identity = args
            .identity
            .clone()
            .unwrap_or_else(|| format!("vdi-operator-{}", uuid_like()));
        let mut config = OperatorConfig {
            http_listen: Some(args.listen),
            tls: args.tls_cert.clone().zip(args.tls_key.clone()),
            upload_token: args.upload_token.clone(),
            lease: (!args.no_leader_election).then(|| LeaseSettings {
                namespace: args.lease_namespace.clone(),
                name: "vdi-operator".into(),
                identity,
                duration: Duration::from_secs(15),
            }),
            ..OperatorConfig::default()
        };
        config.session.url_template = args.url_template.clone();
        let operator = Operator::start(client, registry, config).await?;
        tracing::info!(listen = %args.listen, "operator started");
        shutdown_signal().await;
        tracing::info!("shutting down");
        operator.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn uuid_like() -> String {
    format!("{:x}", std::process::id())
}

pub(crate) async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
