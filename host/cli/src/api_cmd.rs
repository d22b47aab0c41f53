//! `vdi api`: the GraphQL API alone against any cluster, acting through the service account it
//! runs as (in-cluster, or the KUBECONFIG user) and impersonating each signed-in user.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use vdi_api::{ApiConfig, ApiState, IceServer, KeySource};
use vdi_platform::front::{self, DashboardConfig, Front};

use crate::oidc_flags::OidcFlags;

/// Arguments of `vdi api`.
#[derive(clap::Args)]
pub(crate) struct ApiArgs {
    /// Address to serve `/graphql` and `/graphql/ws` on.
    #[arg(long, env = "VDI_API_LISTEN", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// TLS certificate (PEM). Without one the API serves plain HTTP, on a loopback address
    /// only (behind a TLS-terminating proxy on the same host).
    #[arg(long, env = "VDI_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS key (PEM).
    #[arg(long, env = "VDI_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The issuer whose ID tokens sign users in (the cluster's own OIDC settings).
    #[command(flatten)]
    oidc: OidcFlags,
    /// The dashboard's origin, the only one CORS lets in (none: same origin only).
    #[arg(long, env = "VDI_DASHBOARD_ORIGIN")]
    dashboard_origin: Option<String>,
    /// Refuse schema introspection (GraphiQL then cannot explore the schema).
    #[arg(long)]
    no_introspection: bool,
    /// STUN/TURN URLs handed to viewers by `connectSession` (repeatable).
    #[arg(long = "ice-server", env = "VDI_ICE_SERVERS", value_delimiter = ',')]
    ice_servers: Vec<String>,
    /// The operator's namespace (its upload store).
    #[arg(long, env = "POD_NAMESPACE", default_value = "vdi-system")]
    module_namespace: String,
    /// The dashboard's built assets, served at `/` beside the API (with `/config.json` naming
    /// the issuer and the dashboard's client); none: the API alone.
    #[arg(long, env = "VDI_DASHBOARD_DIR")]
    dashboard_dir: Option<PathBuf>,
    /// The dashboard's OAuth client, named in `/config.json`.
    #[arg(long, env = "VDI_DASHBOARD_CLIENT_ID", default_value = "vdi-dashboard")]
    dashboard_client_id: String,
}

/// The API's configuration from the arguments.
fn config(args: &ApiArgs) -> Result<ApiConfig> {
    let Some(oidc) = args.oidc.config()? else {
        bail!("--oidc-issuer-url is required: the API signs users in with its ID tokens");
    };
    let mut config = ApiConfig::new(oidc);
    config.dashboard_origin.clone_from(&args.dashboard_origin);
    config.introspection = !args.no_introspection;
    config.module_namespace.clone_from(&args.module_namespace);
    if !args.ice_servers.is_empty() {
        config.ice_servers = vec![IceServer {
            urls: args.ice_servers.clone(),
            username: None,
            credential: None,
        }];
    }
    if args.tls_cert.is_none() && !args.listen.ip().is_loopback() {
        bail!(
            "--listen {}: without --tls-cert the API serves plain HTTP, on a loopback address only",
            args.listen
        );
    }
    Ok(config)
}

pub(crate) fn run(args: &ApiArgs) -> Result<ExitCode> {
    let config = config(args)?;
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    rt.block_on(async {
        let kube = kube::Config::infer()
            .await
            .context("find the cluster (in-cluster or KUBECONFIG)")?;
        let state = ApiState::new(config, kube, KeySource::Cluster)?;
        if !state.prefetch().await {
            tracing::warn!("the OIDC issuer did not answer yet; sign-ins retry it");
        }
        let dashboard = match &args.dashboard_dir {
            Some(dir) if !dir.join("index.html").is_file() => {
                bail!("--dashboard-dir {}: no index.html there", dir.display())
            }
            Some(_) => Some(DashboardConfig::new(
                &state.config().oidc.issuer_url,
                &args.dashboard_client_id,
            )),
            None => None,
        };
        let app = front::routes(Front {
            api: Some(state),
            dashboard,
            assets: args.dashboard_dir.clone(),
        })
        .into_make_service();
        let handle = axum_server::Handle::new();
        let stop = handle.clone();
        tokio::spawn(async move {
            crate::operator_cmd::shutdown_signal().await;
            stop.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
        });
        eprintln!("GraphQL API on {}{}", args.listen, vdi_api::GRAPHQL_PATH);
        match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .context("read --tls-cert and --tls-key")?;
                axum_server::bind_rustls(args.listen, tls)
                    .handle(handle)
                    .serve(app)
                    .await
            }
            _ => {
                axum_server::bind(args.listen)
                    .handle(handle)
                    .serve(app)
                    .await
            }
        }
        .with_context(|| format!("serve on {}", args.listen))?;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ApiArgs,
    }

    fn parse(argv: &[&str]) -> Result<ApiConfig> {
        let wrap = Wrap::try_parse_from(std::iter::once("vdi-api").chain(argv.iter().copied()))?;
        config(&wrap.args)
    }

    #[test]
    fn flags_become_the_api_configuration() {
        let c = parse(&[
            "--oidc-issuer-url",
            "https://idp.example",
            "--listen",
            "127.0.0.1:9000",
            "--dashboard-origin",
            "https://vdi.example",
            "--no-introspection",
            "--ice-server",
            "stun:stun.example:3478",
        ])
        .unwrap();
        assert_eq!(c.oidc.issuer_url, "https://idp.example");
        assert_eq!(c.dashboard_origin.as_deref(), Some("https://vdi.example"));
        assert!(!c.introspection);
        assert_eq!(c.ice_servers[0].urls, ["stun:stun.example:3478"]);
    }

    #[test]
    fn an_issuer_is_required_and_plain_http_stays_on_loopback() {
        let e = parse(&["--listen", "127.0.0.1:9000"]).unwrap_err();
        assert!(e.to_string().contains("--oidc-issuer-url"), "{e}");
        let e = parse(&["--oidc-issuer-url", "https://idp.example"]).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
    }
}
