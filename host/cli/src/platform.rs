//! The whole platform on one machine: the embedded control plane, simulated GPU nodes, the
//! CRDs, default templates and plugins, the in-process admission hook, and the operator,
//! talking to each other over real HTTPS. `vdi up` runs this; so do the operator's tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::json;
use vdi_cluster::{Cluster, ClusterConfig, SimulatedNodes};
use vdi_crd::{FIELD_MANAGER, VDIPlugin, VDITemplate};
use vdi_operator::{Fetcher, ModuleStore, Operator, OperatorConfig, Registry};
use vdi_plugin_host::{Digest, Runtime, RuntimeConfig};

use crate::hook::SessionAdmission;

/// The Traefik IngressRoute CRD (k3s ships it; the embedded control plane needs it registered).
pub const TRAEFIK_CRD: &str =
    include_str!("../../../deploy/embedded/traefik-ingressroute-crd.yaml");
/// The default templates.
pub const DEFAULT_TEMPLATES: &str = include_str!("../../../deploy/defaults/templates.yaml");
/// Settings of the default quota policy: staff may start the Ubuntu desktops, admins anything.
pub const QUOTA_SETTINGS: &str = r#"{"maxSessionsPerUser": 3, "maxGpuSlicesPerUser": 4, "maxTimeoutSeconds": 14400, "templatesByGroup": {"staff": ["ubuntu-desktop", "ubuntu-cpu"], "admins": ["*"]}}"#;
/// Namespace of the operator's Lease.
pub const SYSTEM_NAMESPACE: &str = "vdi-system";

/// A default plugin: the `VDIPlugin` name, its module file, hook and settings.
#[derive(Debug, Clone)]
pub struct DefaultPlugin {
    /// `VDIPlugin` name.
    pub name: &'static str,
    /// Module file in the plugins directory.
    pub file: &'static str,
    /// Hook.
    pub hook: &'static str,
    /// Settings (JSON).
    pub settings: &'static str,
}

/// The plugins `vdi up` installs.
pub const DEFAULT_PLUGINS: &[DefaultPlugin] = &[
    DefaultPlugin {
        name: "quota",
        file: "vdi_quota.wasm",
        hook: "admission",
        settings: QUOTA_SETTINGS,
    },
    DefaultPlugin {
        name: "gpu-binpack",
        file: "vdi_gpu_binpack.wasm",
        hook: "scheduler",
        settings: "{}",
    },
    DefaultPlugin {
        name: "desktop",
        file: "vdi_desktop.wasm",
        hook: "template",
        settings: "{}",
    },
];

/// How to assemble the platform.
#[derive(Debug, Clone)]
pub struct PlatformOptions {
    /// Data directory (cluster database, PKI).
    pub data_dir: PathBuf,
    /// Control plane address.
    pub listen: SocketAddr,
    /// Simulated nodes (count 0 for none).
    pub nodes: SimulatedNodes,
    /// Directory of the built default plugins; `None` installs no plugins or templates.
    pub plugins_dir: Option<PathBuf>,
    /// Compile cache of the plugin runtime.
    pub cache_dir: Option<PathBuf>,
    /// The operator's settings; `None` starts no operator.
    pub operator: Option<OperatorConfig>,
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
    /// The plugins in force (shared by the operator and the in-process admission).
    pub registry: Arc<Registry>,
    /// The operator, while running.
    pub operator: Option<Operator>,
    nodes: Option<tokio::task::JoinHandle<()>>,
}

/// A client of `cluster` from its kubeconfig.
pub async fn client_for(cluster: &Cluster) -> Result<Client> {
    let kc = Kubeconfig::from_yaml(&cluster.kubeconfig()).context("parse the kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .context("read the kubeconfig")?;
    Client::try_from(config).context("build the client")
}

/// Server-side applies `obj` (JSON) through `api` under the operator's field manager.
async fn apply<K>(api: &Api<K>, obj: &serde_json::Value) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = obj["metadata"]["name"]
        .as_str()
        .context("object without a name")?;
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .with_context(|| format!("apply {name}"))?;
    Ok(())
}

/// Applies the platform's CRDs (and, for the embedded control plane, Traefik's IngressRoute).
pub async fn install_crds(client: &Client, traefik: bool) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut crds: Vec<serde_json::Value> = vdi_crd::crds()
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    if traefik {
        crds.push(serde_saphyr::from_str(TRAEFIK_CRD).context("parse the Traefik CRD")?);
    }
    for crd in &crds {
        apply(&api, crd).await?;
    }
    Ok(())
}

/// Applies the default templates.
pub async fn install_templates(client: &Client) -> Result<()> {
    let api: Api<VDITemplate> = Api::all(client.clone());
    for doc in DEFAULT_TEMPLATES.split("\n---\n") {
        let t: serde_json::Value =
            serde_saphyr::from_str(doc).context("parse a default template")?;
        apply(&api, &t).await?;
    }
    Ok(())
}

/// Puts the default plugins' modules in the upload store and applies their `VDIPlugin`s.
pub async fn install_plugins(
    client: &Client,
    store: &ModuleStore,
    dir: &Path,
) -> Result<Vec<(String, Digest)>> {
    let api: Api<VDIPlugin> = Api::all(client.clone());
    let mut out = Vec::new();
    for (order, p) in DEFAULT_PLUGINS.iter().enumerate() {
        let path = dir.join(p.file);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "read {} (build the default plugins first: make plugins)",
                path.display()
            )
        })?;
        let digest = store.put(&bytes).await?.digest;
        let settings: serde_json::Value = serde_json::from_str(p.settings)?;
        let obj = json!({
            "apiVersion": "vdi.dev/v1alpha1",
            "kind": "VDIPlugin",
            "metadata": {"name": p.name},
            "spec": {
                "hook": p.hook,
                "source": {"upload": {}},
                "sha256": digest.to_string(),
                "settings": settings,
                "order": order * 10,
                "failurePolicy": "Fail",
            },
        });
        apply(&api, &obj).await?;
        out.push((p.name.to_owned(), digest));
    }
    Ok(out)
}

impl Platform {
    /// Starts everything `options` asks for.
    pub async fn start(options: PlatformOptions) -> Result<Self> {
        let cluster = Cluster::start(ClusterConfig {
            listen: options.listen,
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
        let client = client_for(&cluster).await?;
        install_crds(&client, true).await?;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        for ns in [SYSTEM_NAMESPACE, "default"] {
            apply(
                &namespaces,
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )
            .await?;
        }
        let runtime = Arc::new(
            Runtime::new(RuntimeConfig {
                cache_dir: options.cache_dir.clone(),
                ..RuntimeConfig::default()
            })
            .context("start the plugin runtime")?,
        );
        let store = ModuleStore::new(client.clone(), SYSTEM_NAMESPACE);
        let fetcher = Fetcher::new(store.clone(), client.clone(), None)?;
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
            install_plugins(&client, &store, dir).await?;
        }
        let mut platform = Self {
            cluster,
            client,
            registry,
            operator: None,
            nodes,
        };
        if let Some(config) = options.operator {
            platform.start_operator(config).await?;
            tokio::time::timeout(Duration::from_secs(60), platform.registry.wait_synced())
                .await
                .context("the plugins did not load within a minute")?;
        }
        Ok(platform)
    }

    /// Starts (or restarts) the operator.
    pub async fn start_operator(&mut self, config: OperatorConfig) -> Result<()> {
        if let Some(old) = self.operator.take() {
            old.abort();
        }
        let op = Operator::start(self.client.clone(), self.registry.clone(), config).await?;
        self.operator = Some(op);
        Ok(())
    }

    /// Stops the operator as a crash would.
    pub fn kill_operator(&mut self) {
        if let Some(op) = self.operator.take() {
            op.abort();
        }
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
        self.cluster.stop().await;
    }
}
