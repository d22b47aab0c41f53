//! What the platform puts into a fresh control plane: the CRDs (and Traefik's IngressRoute for
//! the embedded one), the default templates, and the default plugins with their modules.

use std::path::Path;

use anyhow::{Context as _, Result};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use vdi_crd::{FIELD_MANAGER, VDIPlugin, VDITemplate};
use vdi_operator::ModuleStore;
use vdi_plugin_host::Digest;

/// The Traefik IngressRoute CRD (k3s ships it; the embedded control plane needs it registered).
pub const TRAEFIK_CRD: &str =
    include_str!("../../../deploy/embedded/traefik-ingressroute-crd.yaml");
/// The default templates.
pub const DEFAULT_TEMPLATES: &str = include_str!("../../../deploy/defaults/templates.yaml");
/// Settings of the desktop template plugin on the embedded platform: no Traefik IngressRoute
/// (the platform's front proxy routes `/sessions/<ns>/<name>/` to the session's Service itself)
/// and no NetworkPolicy (the embedded control plane has no CNI to enforce one). A real cluster
/// installs the plugin with its defaults, which render both.
pub const EMBEDDED_DESKTOP_SETTINGS: &str = r#"{"ingressRoute": false, "networkPolicy": false}"#;
/// Settings of the default quota policy: staff may start the Ubuntu desktops, admins anything.
/// (Users signed in with OIDC carry their IdP's groups with the `oidc:` prefix.)
pub const QUOTA_SETTINGS: &str = r#"{"maxSessionsPerUser": 3, "maxGpuSlicesPerUser": 4, "maxTimeoutSeconds": 14400, "templatesByGroup": {"staff": ["ubuntu-desktop", "ubuntu-cpu", "local-desktop"], "oidc:staff": ["ubuntu-desktop", "ubuntu-cpu", "local-desktop"], "admins": ["*"], "oidc:vdi-admins": ["*"], "system:vdi-pool": ["*"]}}"#;

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
        settings: EMBEDDED_DESKTOP_SETTINGS,
    },
];

/// Server-side applies `obj` (JSON) through `api` under the operator's field manager.
pub(crate) async fn apply<K>(api: &Api<K>, obj: &serde_json::Value) -> Result<()>
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
