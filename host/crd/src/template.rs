//! `VDITemplate`: a kind of desktop users can start.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::session::SessionResources;

/// A desktop users can start: its image, default resources, and which template plugin renders
/// its objects with which settings. Secrets are named, never copied in.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "vdi.dev",
    version = "v1alpha1",
    kind = "VDITemplate",
    shortname = "vdt",
    category = "vdi",
    printcolumn = r#"{"name":"Display Name","type":"string","jsonPath":".spec.displayName"}"#,
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".spec.image"}"#,
    printcolumn = r#"{"name":"Renderer","type":"string","jsonPath":".spec.renderer"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct VDITemplateSpec {
    /// Name shown to users.
    #[schemars(length(min = 1, max = 128))]
    pub display_name: String,
    /// A sentence about what the desktop offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Desktop container image.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Resources a session gets for fields it leaves out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<SessionResources>,
    /// The template `VDIPlugin` that renders sessions of this template; the template plugin
    /// with the lowest `order` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renderer: Option<String>,
    /// Settings passed to the renderer for this template (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::plugin::any_object")]
    pub settings: Option<serde_json::Value>,
    /// Secrets (in the session's namespace) that pull the image: names only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalRef>,
    /// Other Secrets (in the session's namespace) the renderer may reference, e.g. the TURN
    /// server's shared secret: names only. The render check refuses any Secret not listed here
    /// or in `imagePullSecrets`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<LocalRef>,
    /// Labels a node must carry for sessions of this template (all of them): the scheduler
    /// plugin only sees matching nodes. E.g. `vdi.dev/runtime: process` for the local node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// How long a running session may go without input before it is ended, e.g. `30m`; a
    /// warning (condition `Idle`, event `IdleWarning`) comes first. Never when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(s|m|h|d))+$"))]
    pub idle_timeout: Option<String>,
    /// Sessions of this template kept started and unclaimed in the pool namespace (`vdi-pool`),
    /// so that a launch claims a running desktop instead of starting one. 0 (the default): none.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(max = 10))]
    pub warm_pool: u32,
}

/// The most sessions a template may keep warm.
pub const MAX_WARM_POOL: u32 = 10;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A reference to an object by name in the same namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalRef {
    /// Its name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}
