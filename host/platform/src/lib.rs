//! One machine's platform: the embedded control plane (`vdi-cluster`) with simulated GPU nodes,
//! the CRDs, default templates and plugins, the in-process admission hook that puts the
//! operator's plugin chain in front of `VDISession` writes, and the operator, talking to each
//! other over real HTTPS. `vdi up` runs this; so do the tests of the assembled platform. The
//! GraphQL API, the dashboard's assets and the session proxy join it here, on one HTTPS port.
//!
//! It owns the wiring only. It must not decide anything itself: admission, placement and
//! rendering stay in `vdi-operator` and the plugins, storage and node agents in `vdi-cluster`.
//! It parses no command line and prints nothing (that is `vdi-cli`'s), and it is not how the
//! platform runs on a real cluster, where the operator runs alone (`vdi operator`) behind the
//! admission webhooks.

pub mod front;
mod hook;
mod identity;
mod install;
pub mod proxy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::json;
use vdi_cluster::{Cluster, ClusterConfig, ProcessNode, ProcessNodeHandle, SimulatedNodes};
use vdi_operator::{Fetcher, ModuleStore, Operator, OperatorConfig, Registry};
use vdi_plugin_host::{Runtime, RuntimeConfig};

use crate::hook::SessionAdmission;
use crate::identity::AccountToken;
pub use crate::identity::{
    API_ACCOUNT, API_RBAC, OPERATOR_ACCOUNT, OPERATOR_RBAC, OPERATOR_TOKEN_SECONDS, USER_RBAC,
    add_user, apply_rbac, mint_token,
};
use crate::install::apply;
pub use crate::install::{
    DEFAULT_PLUGINS, DEFAULT_TEMPLATES, DefaultPlugin, QUOTA_SETTINGS, TRAEFIK_CRD, install_crds,
    install_plugins, install_templates,
};
pub use vdi_cluster::authn::OidcConfig;

/// Namespace of the operator's Lease (and of the uploaded modules).
pub const SYSTEM_NAMESPACE: &str = "vdi-system";

/// How to assemble the platform.
#[derive(Debug, Clone)]
pub struct PlatformOptions {
    /// Data directory (cluster database, PKI).
    pub data_dir: PathBuf,
    /// Control plane address.
    pub listen: SocketAddr,
    /// Simulated nodes (count 0 for none).
    pub nodes: SimulatedNodes,
    /// The local process node, which runs the pods bound to it as processes of this machine
    /// (real desktops); `None` for none.
    pub process_node: Option<ProcessNode>,
    /// Directory of the built default plugins; `None` installs no plugins or templates.
    pub plugins_dir: Option<PathBuf>,
    /// Compile cache of the plugin runtime.
    pub cache_dir: Option<PathBuf>,
    /// The operator's settings; `None` starts no operator.
    pub operator: Option<OperatorConfig>,
    /// OIDC issuers whose ID tokens the control plane accepts (users sign in there).
    pub oidc: Vec<OidcConfig>,
    /// Run the plugin chain in front of `VDISession` writes (as the webhook does on a real
    /// cluster); without it only the operator judges, after the object is stored.
    pub admission_hook: bool,
}

/// The running platform.
pub struct Platform {
    /// The control plane.
    pub cluster: Cluster,
    /// A client of it (admin token).
    pub client: Client,
    /// A client as the operator's service account (what the operator and the plugin registry
    /// use, so `deploy/`'s RBAC decides what they may do).
    pub operator_client: Client,
    /// The operator's token, renewed while the platform runs (held for its renewal task).
    _operator_token: AccountToken,
    /// The API's token, once [`Platform::api_state`] made one.
    _api_token: Option<AccountToken>,
    /// The data directory (tokens live there).
    cluster_data_dir: PathBuf,
    /// The plugins in force (shared by the operator and the in-process admission).
    pub registry: Arc<Registry>,
    /// The operator, while running.
    pub operator: Option<Operator>,
    nodes: Option<tokio::task::JoinHandle<()>>,
    process_node: Option<ProcessNodeHandle>,
    proxy: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
}

/// A client of `cluster` from its kubeconfig.
pub async fn client_for(cluster: &Cluster) -> Result<Client> {
    let kc = Kubeconfig::from_yaml(&cluster.kubeconfig()).context("parse the kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .context("read the kubeconfig")?;
    Client::try_from(config).context("build the client")
}

impl Platform {
    /// Starts everything `options` asks for.
    pub async fn start(options: PlatformOptions) -> Result<Self> {
        let cluster = Cluster::start(ClusterConfig {
            listen: options.listen,
            oidc: options.oidc.clone(),
            ..ClusterConfig::local(&options.data_dir)
        })
        .await
        .context("start the control plane")?;
        let nodes = if options.nodes.count > 0 {
            Some(
                options
                    .nodes
                    .clone()
                    .start(cluster.store().clone())
                    .context("start the simulated nodes")?,
            )
        } else {
            None
        };
        let process_node = match options.process_node {
            Some(node) => Some(
                node.start(cluster.store().clone())
                    .await
                    .context("start the process node")?,
            ),
            None => None,
        };
        let client = client_for(&cluster).await?;
        install_crds(&client, true).await?;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        for ns in [SYSTEM_NAMESPACE, vdi_crd::POOL_NAMESPACE, "default"] {
            apply(
                &namespaces,
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )
            .await?;
        }
        apply_rbac(&client, OPERATOR_RBAC)
            .await
            .context("apply deploy/operator/rbac.yaml")?;
        apply_rbac(&client, USER_RBAC)
            .await
            .context("apply deploy/rbac/users.yaml")?;
        apply_rbac(&client, API_RBAC)
            .await
            .context("apply deploy/rbac/api.yaml")?;
        let operator_token = AccountToken::start(
            client.clone(),
            SYSTEM_NAMESPACE,
            OPERATOR_ACCOUNT,
            &options.data_dir.join("operator.token"),
        )
        .await?;
        let operator_client = operator_token.client(&cluster.kubeconfig()).await?;
        let runtime = Arc::new(
            Runtime::new(RuntimeConfig {
                cache_dir: options.cache_dir.clone(),
                ..RuntimeConfig::default()
            })
            .context("start the plugin runtime")?,
        );
        let store = ModuleStore::new(operator_client.clone(), SYSTEM_NAMESPACE);
        let fetcher = Fetcher::new(store, operator_client.clone(), None)?;
        let registry = Arc::new(Registry::new(runtime, fetcher));
        if options.admission_hook {
            let settings = options
                .operator
                .as_ref()
                .map(|o| o.admission.clone())
                .unwrap_or_default();
            let hook = SessionAdmission::new(registry.clone(), cluster.store().clone(), settings);
            cluster.store().add_admission_hook(Arc::new(hook));
        }
        if let Some(dir) = &options.plugins_dir {
            install_templates(&client).await?;
            let uploads = ModuleStore::new(client.clone(), SYSTEM_NAMESPACE);
            install_plugins(&client, &uploads, dir).await?;
        }
        let mut platform = Self {
            cluster,
            client,
            operator_client,
            _operator_token: operator_token,
            _api_token: None,
            cluster_data_dir: options.data_dir.clone(),
            registry,
            operator: None,
            nodes,
            process_node,
            proxy: None,
        };
        if let Some(config) = options.operator {
            platform.start_operator(config).await?;
        }
        Ok(platform)
    }

    /// Starts (or restarts) the operator, and waits for the plugins to load (at most a minute).
    pub async fn start_operator(&mut self, config: OperatorConfig) -> Result<()> {
        if let Some(old) = self.operator.take() {
            old.abort();
        }
        let op =
            Operator::start(self.operator_client.clone(), self.registry.clone(), config).await?;
        self.operator = Some(op);
        tokio::time::timeout(Duration::from_secs(60), self.registry.wait_synced())
            .await
            .context("the plugins did not load within a minute")?;
        Ok(())
    }

    /// Stops the operator as a crash would.
    pub fn kill_operator(&mut self) {
        if let Some(op) = self.operator.take() {
            op.abort();
        }
    }

    /// Starts the session proxy ([`proxy`]) alone over HTTPS with the control plane's
    /// certificate on `listen` (`127.0.0.1:8443` gives the operator's default `status.url`);
    /// returns its address.
    pub fn start_proxy(&mut self, listen: SocketAddr) -> Result<SocketAddr> {
        self.start_front(listen, front::Front::default())
    }

    /// Starts the platform's one HTTPS origin ([`front`]) on `listen`: the session proxy and what
    /// `front` adds (the GraphQL API, the dashboard); returns its address.
    pub fn start_front(&mut self, listen: SocketAddr, front: front::Front) -> Result<SocketAddr> {
        if let Some((_, old)) = self.proxy.take() {
            old.abort();
        }
        let app = front::router(self.cluster.store().clone(), front);
        let (addr, task) = front::serve(app, listen, self.cluster.tls_config())
            .with_context(|| format!("serve HTTPS on {listen}"))?;
        self.proxy = Some((addr, task));
        Ok(addr)
    }

    /// The GraphQL API's state for this platform: it acts as the `vdi-system/vdi-api` service
    /// account (`deploy/rbac/api.yaml`), with a token the platform renews, and impersonates the
    /// users whose OIDC tokens `config` accepts.
    pub async fn api_state(&mut self, config: vdi_api::ApiConfig) -> Result<vdi_api::ApiState> {
        let token = AccountToken::start(
            self.client.clone(),
            SYSTEM_NAMESPACE,
            API_ACCOUNT,
            &self.cluster_data_dir.join("api.token"),
        )
        .await?;
        let service = token.config(&self.cluster.kubeconfig()).await?;
        self._api_token = Some(token);
        let state = vdi_api::ApiState::new(config, service, vdi_api::KeySource::Cluster)
            .context("configure the API")?;
        if !state.prefetch().await {
            tracing::warn!(
                "the API could not reach its OpenID Provider yet; it retries per request"
            );
        }
        Ok(state)
    }

    /// The session proxy's address, while it runs.
    pub fn proxy_addr(&self) -> Option<SocketAddr> {
        self.proxy.as_ref().map(|(addr, _)| *addr)
    }

    /// The process node's name, when it runs.
    pub fn process_node(&self) -> Option<&str> {
        self.process_node.as_ref().map(ProcessNodeHandle::node_name)
    }

    /// A kubeconfig for this platform.
    pub fn kubeconfig(&self) -> String {
        self.cluster.kubeconfig()
    }

    /// Stops everything.
    pub async fn stop(mut self) {
        if let Some(op) = self.operator.take() {
            op.shutdown().await;
        }
        if let Some(n) = self.nodes.take() {
            n.abort();
        }
        // Before the control plane goes: the node writes its pods' last states through it.
        if let Some(n) = self.process_node.take() {
            n.stop().await;
        }
        if let Some((_, p)) = self.proxy.take() {
            p.abort();
        }
        self.cluster.stop().await;
    }
}
