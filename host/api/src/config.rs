//! What the API is configured with: the OIDC issuer it trusts, its limits, the dashboard's
//! origin and the ICE servers handed to viewers.

use serde::{Deserialize, Serialize};
use vdi_cluster::authn::OidcConfig;

/// Deepest query accepted.
pub const DEFAULT_MAX_DEPTH: usize = 10;
/// Most complex query accepted (async-graphql's count: one per field, lists by their size).
pub const DEFAULT_MAX_COMPLEXITY: usize = 1000;
/// Largest page a list returns.
pub const DEFAULT_MAX_PAGE_SIZE: usize = 100;
/// Page size when `first` is not given.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// Largest request body (bytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Mutations a user may make in a burst.
pub const DEFAULT_MUTATION_BURST: u32 = 20;
/// Mutations a user may make per minute, sustained.
pub const DEFAULT_MUTATIONS_PER_MINUTE: u32 = 60;
/// Largest module `uploadModule` takes (the operator's upload store's limit).
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = vdi_operator::modules::MAX_MODULE_BYTES;
/// Where uploaded modules are stored (the operator's namespace).
pub const DEFAULT_MODULE_NAMESPACE: &str = "vdi-system";
/// Users whose impersonating clients are kept (beyond it the cache starts over).
pub const DEFAULT_CLIENT_CACHE: usize = 1024;

/// An ICE server a viewer's browser is told to use (as in `RTCIceServer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, async_graphql::SimpleObject)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IceServer {
    /// `stun:` or `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN user name, if any.
    #[serde(default)]
    pub username: Option<String>,
    /// TURN credential, if any.
    #[serde(default)]
    pub credential: Option<String>,
}

/// The API's configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiConfig {
    /// The OIDC issuer whose ID tokens sign users in (the control plane's settings).
    pub oidc: OidcConfig,
    /// The dashboard's origin (`https://vdi.example.com`): the only origin CORS lets in. None:
    /// no cross-origin requests (the dashboard is served from the API's own origin).
    #[serde(default)]
    pub dashboard_origin: Option<String>,
    /// Whether the schema may be introspected (GraphiQL needs it).
    #[serde(default = "yes")]
    pub introspection: bool,
    /// Deepest query accepted.
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    /// Most complex query accepted.
    #[serde(default = "default_max_complexity")]
    pub max_complexity: usize,
    /// Largest page a list returns; a larger `first` is refused.
    #[serde(default = "default_max_page_size")]
    pub max_page_size: usize,
    /// Largest request body in bytes; larger ones are refused with 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Mutations one user may make in a burst.
    #[serde(default = "default_mutation_burst")]
    pub mutation_burst: u32,
    /// Mutations one user may make per minute once the burst is spent.
    #[serde(default = "default_mutations_per_minute")]
    pub mutations_per_minute: u32,
    /// Largest module `uploadModule` takes (a multipart request may be this large; other
    /// requests stay under `maxBodyBytes`).
    #[serde(default = "default_max_upload_bytes")]
    pub max_upload_bytes: usize,
    /// The operator's namespace, where its upload store keeps modules.
    #[serde(default = "default_module_namespace")]
    pub module_namespace: String,
    /// ICE servers returned by `connectSession`.
    #[serde(default)]
    pub ice_servers: Vec<IceServer>,
}

fn yes() -> bool {
    true
}
fn default_max_depth() -> usize {
    DEFAULT_MAX_DEPTH
}
fn default_max_complexity() -> usize {
    DEFAULT_MAX_COMPLEXITY
}
fn default_max_page_size() -> usize {
    DEFAULT_MAX_PAGE_SIZE
}
fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}
fn default_max_upload_bytes() -> usize {
    DEFAULT_MAX_UPLOAD_BYTES
}
fn default_module_namespace() -> String {
    DEFAULT_MODULE_NAMESPACE.to_owned()
}
fn default_mutation_burst() -> u32 {
    DEFAULT_MUTATION_BURST
}
fn default_mutations_per_minute() -> u32 {
    DEFAULT_MUTATIONS_PER_MINUTE
}

impl ApiConfig {
    /// Every default, trusting `oidc`.
    pub fn new(oidc: OidcConfig) -> Self {
        Self {
            oidc,
            dashboard_origin: None,
            introspection: true,
            max_depth: DEFAULT_MAX_DEPTH,
            max_complexity: DEFAULT_MAX_COMPLEXITY,
            max_page_size: DEFAULT_MAX_PAGE_SIZE,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            mutation_burst: DEFAULT_MUTATION_BURST,
            mutations_per_minute: DEFAULT_MUTATIONS_PER_MINUTE,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            module_namespace: DEFAULT_MODULE_NAMESPACE.to_owned(),
            ice_servers: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_fills_defaults_and_refuses_unknown_fields() {
        let c: ApiConfig = serde_json::from_value(serde_json::json!({
            "oidc": {"issuerUrl": "https://idp", "clientId": "vdi"},
            "maxDepth": 5,
        }))
        .unwrap();
        assert_eq!(c.max_depth, 5);
        assert_eq!(c.max_page_size, DEFAULT_MAX_PAGE_SIZE);
        assert!(c.introspection);
        let e = serde_json::from_value::<ApiConfig>(serde_json::json!({
            "oidc": {"issuerUrl": "https://idp", "clientId": "vdi"},
            "maxDeep": 5,
        }))
        .unwrap_err();
        assert!(e.to_string().contains("maxDeep"), "{e}");
    }
}
