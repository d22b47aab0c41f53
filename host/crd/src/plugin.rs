//! `VDIPlugin`: a WebAssembly component that decides at one hook.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A plugin: which hook, where its module comes from (pinned by sha256), its settings, its
/// order in the chain, what its failure means, and its limits. Changes hot-reload.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "vdi.dev",
    version = "v1alpha1",
    kind = "VDIPlugin",
    status = "VDIPluginStatus",
    shortname = "vdp",
    category = "vdi",
    printcolumn = r#"{"name":"Hook","type":"string","jsonPath":".spec.hook"}"#,
    printcolumn = r#"{"name":"Order","type":"integer","jsonPath":".spec.order"}"#,
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".spec.failurePolicy"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Digest","type":"string","jsonPath":".status.digest","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct VDIPluginSpec {
    /// The hook the module implements (the host checks the module's world matches).
    pub hook: HookKind,
    /// Where the module comes from.
    pub source: PluginSource,
    /// The module's sha256, `sha256:` and 64 hex digits; a module with another digest never loads.
    #[schemars(pattern(r"^sha256:[0-9a-f]{64}$"))]
    pub sha256: String,
    /// Settings passed to the plugin's `configure` (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub settings: Option<serde_json::Value>,
    /// Position in the admission chain (lower first); for scheduler and template plugins, the
    /// lowest order is the default.
    #[serde(default)]
    pub order: i32,
    /// What a failing call means.
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// Wall-time limit per call in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub timeout_ms: Option<u32>,
    /// Memory limit per instance in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4096))]
    pub memory_mib: Option<u32>,
    /// Which sessions an admission plugin judges; all when unset.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<PluginMatch>,
}

/// The hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum HookKind {
    /// May this user have this session?
    Admission,
    /// Which node and GPU?
    Scheduler,
    /// Which objects?
    Template,
}

impl HookKind {
    /// Its name as stored (`spec.hook`, `status.decisions[].hook`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admission => "admission",
            Self::Scheduler => "scheduler",
            Self::Template => "template",
        }
    }
}

/// Where a module comes from. Exactly one field is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginSource {
    /// The operator's content-addressed upload store, looked up by `spec.sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadSource>,
    /// An `https://` URL (the digest pins the content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A key of a ConfigMap's `binaryData`, for small modules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapSource>,
    /// A Wasm artifact in an OCI registry (`vdi plugin push`); the digest pins the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciSource>,
}

/// The upload store (no fields: the digest addresses the module).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UploadSource {}

/// A module in a ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigMapSource {
    /// Namespace of the ConfigMap.
    #[schemars(length(min = 1))]
    pub namespace: String,
    /// Its name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The `binaryData` key holding the module.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// A module in an OCI registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OciSource {
    /// `oci://host[:port]/repository:tag` or `…@sha256:<manifest digest>`. Registries other
    /// than this machine are reached over HTTPS only.
    #[schemars(pattern(r"^oci://[^/]+/.+$"))]
    pub reference: String,
    /// A `kubernetes.io/dockerconfigjson` Secret in the operator's namespace holding the
    /// registry's credentials; anonymous pulls without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub pull_secret: Option<String>,
}

/// Which sessions an admission plugin judges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PluginMatch {
    /// Templates it judges; any when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<String>,
    /// Namespaces it judges; any when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
}

impl PluginMatch {
    /// Whether a session of `template` in `namespace` is judged.
    pub fn matches(&self, template: &str, namespace: &str) -> bool {
        (self.templates.is_empty() || self.templates.iter().any(|t| t == template))
            && (self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace))
    }
}

/// What a plugin's failure means, as for Kubernetes admission webhooks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FailurePolicy {
    /// Fail closed: the session is refused.
    #[default]
    Fail,
    /// Skip the plugin.
    Ignore,
}

/// Whether the plugin serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PluginPhase {
    /// Loaded and serving (the spec's generation `observedGeneration`).
    Ready,
    /// The current spec could not be loaded; an earlier version may still serve (see `message`).
    Error,
}

/// What the operator made of the plugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VDIPluginStatus {
    /// Ready or Error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PluginPhase>,
    /// Why it is in error, or what serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Digest of the module serving now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// When the serving module was loaded (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_at: Option<String>,
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Schema of a free-form JSON object (settings).
pub(crate) fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

impl PluginSource {
    /// Checks exactly one source is set.
    pub fn validate(&self) -> Result<(), String> {
        let set = [
            self.upload.is_some(),
            self.url.is_some(),
            self.config_map.is_some(),
            self.oci.is_some(),
        ];
        match set.iter().filter(|s| **s).count() {
            1 => {}
            0 => return Err("spec.source: set one of upload, url, configMap or oci".into()),
            _ => return Err("spec.source: set only one of upload, url, configMap or oci".into()),
        }
        if let Some(url) = &self.url
            && !url.starts_with("https://")
        {
            return Err(format!("spec.source.url: {url:?} must be an https:// URL"));
        }
        if let Some(oci) = &self.oci
            && !oci.reference.starts_with("oci://")
        {
            return Err(format!(
                "spec.source.oci.reference: {:?} must be an oci:// reference",
                oci.reference
            ));
        }
        Ok(())
    }
}
