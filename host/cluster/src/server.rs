//! Starting and stopping the API server on a local port, and the kubeconfig that reaches it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use base64::Engine as _;
use tokio::task::JoinHandle;

use crate::api::{AppState, app};
use crate::authn::{
    AdminToken, Authenticator, OidcAuthenticator, OidcConfig, ServiceAccountTokens,
};
use crate::authz::AuthorizationMode;
use crate::error::{ApiError, Result};
use crate::pki::Pki;
use crate::store::Store;

/// Where and how the server runs.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Directory of the SQLite database.
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The admin token (`system:masters`); when `None`, the one in `<data_dir>/admin.token`
    /// (created with mode 0600 and a fresh random token the first time).
    pub token: Option<String>,
    /// OpenID Connect issuers whose ID tokens authenticate users (none: only the admin and
    /// service-account tokens do).
    pub oidc: Vec<OidcConfig>,
    /// How requests are authorized: RBAC unless a benchmark asks for its baseline.
    pub authorization: AuthorizationMode,
}

impl ClusterConfig {
    /// Listens on a free 127.0.0.1 port, storing (and keeping its admin token) in `data_dir`.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            oidc: Vec::new(),
            authorization: AuthorizationMode::Rbac,
        }
    }
}

/// A running embedded control plane.
pub struct Cluster {
    addr: SocketAddr,
    token: String,
    store: Arc<Store>,
    panics: Arc<AtomicU64>,
    ca_pem: String,
    tls: Arc<rustls::ServerConfig>,
    handle: Handle<SocketAddr>,
    task: Option<JoinHandle<()>>,
    /// The ClusterRole aggregation controller.
    aggregation: Option<JoinHandle<()>>,
}

impl Cluster {
    /// Opens the store and starts serving HTTPS with the data directory's certificates.
    pub async fn start(config: ClusterConfig) -> Result<Self> {
        let store = Arc::new(Store::open(&config.data_dir)?);
        let pki = Pki::load_or_create(&config.data_dir.join("pki"))?;
        let admin = match config.token {
            Some(token) => AdminToken::from_value(token)?,
            None => AdminToken::load_or_create(&config.data_dir.join("admin.token"))?,
        };
        let token = admin.value().to_owned();
        let mut authn = Authenticator::new()
            .with_admin_token(admin)
            .with_service_accounts(ServiceAccountTokens::load_or_create(
                &config.data_dir.join("pki").join("service-account.key"),
            )?);
        // Two issuers with one prefix could mint each other's users and groups.
        for (i, a) in config.oidc.iter().enumerate() {
            for b in config.oidc.iter().skip(i + 1) {
                let shared = |x: &str, y: &str| x == y && x != crate::authn::NO_PREFIX;
                if shared(&a.username_prefix, &b.username_prefix)
                    || shared(&a.groups_prefix, &b.groups_prefix)
                {
                    return Err(ApiError::Internal(format!(
                        "the OIDC issuers {} and {} share a username or groups prefix: give each its own",
                        a.issuer_url, b.issuer_url
                    )));
                }
            }
        }
        for oidc in config.oidc {
            authn = authn.with_oidc(OidcAuthenticator::new(oidc)?);
        }
        let listener = std::net::TcpListener::bind(config.listen)
            .map_err(|e| ApiError::Internal(format!("bind {}: {e}", config.listen)))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let panics = Arc::new(AtomicU64::new(0));
        crate::authz::seed_bootstrap_policy(&store)?;
        let aggregation = crate::authz::aggregation::spawn(&store);
        let rbac = Arc::new(crate::authz::RbacCache::new(config.authorization));
        store.add_admission_hook(Arc::new(crate::authz::EscalationCheck::new(
            &store,
            rbac.clone(),
        )));
        let authn = Arc::new(authn);
        // The first OIDC user should not wait for the issuer's discovery and keys.
        tokio::spawn({
            let authn = authn.clone();
            async move {
                authn.prefetch_oidc().await;
            }
        });
        let router = app(AppState {
            store: store.clone(),
            rbac,
            authn,
            panics: panics.clone(),
        });
        let tls_config = pki.server_config()?;
        let tls = RustlsConfig::from_config(tls_config.clone());
        let handle = Handle::new();
        // TCP_NODELAY, as kube-apiserver (Go) sets on every connection: a watch event written
        // while the client still delays its ACK of the previous write (a bookmark) would
        // otherwise wait for that ACK (Nagle), up to the client's delayed-ACK timeout.
        let server = axum_server::from_tcp_rustls(listener, tls)
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()))
            .handle(handle.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = server.serve(router.into_make_service()).await {
                tracing::error!(error = %e, "API server stopped");
            }
        });
        tracing::info!(%addr, "embedded control plane listening");
        Ok(Self {
            addr,
            token,
            store,
            panics,
            ca_pem: pki.ca_pem,
            tls: tls_config,
            handle,
            task: Some(task),
            aggregation,
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA certificate (PEM) that signed the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The TLS configuration the control plane serves with (its serving certificate, for
    /// 127.0.0.1 and localhost), for other HTTPS endpoints of the same machine.
    pub fn tls_config(&self) -> Arc<rustls::ServerConfig> {
        self.tls.clone()
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token clients must send.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The store, for in-process use (admission hooks, node agents).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// How many requests panicked in their handler (each answered with a 500 `Status`); zero
    /// unless the server has a bug.
    pub fn handler_panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// A kubeconfig (YAML) for `kubectl` and `kube::Client`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: vdi\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\ncontexts:\n- name: vdi\n  context:\n    cluster: vdi\n    user: admin\n    namespace: default\ncurrent-context: vdi\nusers:\n- name: admin\n  user:\n    token: {token}\n",
            url = self.url(),
            ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem),
            token = self.token
        )
    }

    /// Stops serving (open watches end) and waits for the server task.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        self.handle.shutdown();
        if let Some(aggregation) = self.aggregation.take() {
            aggregation.abort();
        }
        if let Some(task) = self.task.take() {
            // Open watches keep connections alive; do not wait for their timeouts.
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for task in [self.task.take(), self.aggregation.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}
