//! The plugin's settings (`VDIPlugin.spec.settings`) and a template's overrides
//! (`VDITemplate.spec.settings`), validated field by field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vdi_plugin_sdk::{FieldError, PluginSettings};

use crate::{
    DEFAULT_HOME_SIZE, DEFAULT_PATH_PREFIX, DEFAULT_RUN_AS_USER, DEFAULT_STORAGE_CLASS,
    DEFAULT_STREAMER_IMAGE, DEFAULT_STREAMER_PORT,
};

/// The plugin's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Settings {
    /// Image of the streamer sidecar.
    pub streamer_image: String,
    /// Size of the home volume (a Kubernetes quantity).
    pub home_size: String,
    /// Storage class of the home volume.
    pub storage_class: String,
    /// URL path prefix; a session is served at `<prefix>/<namespace>/<name>/`.
    pub path_prefix: String,
    /// Host name the IngressRoute matches; any host when absent.
    pub ingress_host: Option<String>,
    /// Traefik entry points.
    pub entry_points: Vec<String>,
    /// Namespace of the ingress controller allowed to reach the streamer.
    pub ingress_namespace: String,
    /// Pod labels of the ingress controller.
    pub ingress_pod_labels: BTreeMap<String, String>,
    /// Namespace of the TURN server allowed to relay media to the session.
    pub turn_namespace: String,
    /// Pod labels of the TURN server.
    pub turn_pod_labels: BTreeMap<String, String>,
    /// Port the streamer listens on.
    pub streamer_port: u16,
    /// uid (and gid) the containers run as; never 0.
    pub run_as_user: u32,
    /// TURN server the streamer offers viewers (`turn:host:port` or `turns:...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_url: Option<String>,
    /// Whether to render the Traefik IngressRoute. Off where something else routes sessions:
    /// the embedded platform's front proxy resolves the session's Service itself.
    pub ingress_route: bool,
    /// Whether to render the NetworkPolicy. Off only where nothing enforces policies (the
    /// embedded platform: no CNI); on every real cluster it keeps other pods out.
    pub network_policy: bool,
    /// Secret (in the session's namespace) with the TURN server's shared secret; the
    /// template must list it in `spec.secrets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_secret_name: Option<String>,
    /// Its entry holding the shared secret (default `secret`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_secret_key: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            streamer_image: DEFAULT_STREAMER_IMAGE.to_owned(),
            home_size: DEFAULT_HOME_SIZE.to_owned(),
            storage_class: DEFAULT_STORAGE_CLASS.to_owned(),
            path_prefix: DEFAULT_PATH_PREFIX.to_owned(),
            ingress_host: None,
            entry_points: vec!["websecure".to_owned()],
            ingress_namespace: "kube-system".to_owned(),
            ingress_pod_labels: BTreeMap::from([(
                "app.kubernetes.io/name".to_owned(),
                "traefik".to_owned(),
            )]),
            turn_namespace: "vdi-system".to_owned(),
            turn_pod_labels: BTreeMap::from([(
                "app.kubernetes.io/name".to_owned(),
                "coturn".to_owned(),
            )]),
            streamer_port: DEFAULT_STREAMER_PORT,
            run_as_user: DEFAULT_RUN_AS_USER,
            turn_url: None,
            ingress_route: true,
            network_policy: true,
            turn_secret_name: None,
            turn_secret_key: None,
        }
    }
}

/// Per-template overrides (`VDITemplate.spec.settings`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub(crate) struct TemplateSettings {
    /// Home volume size for this template.
    pub(crate) home_size: Option<String>,
    /// Extra environment for the desktop container.
    pub(crate) env: BTreeMap<String, String>,
}

impl PluginSettings for Settings {
    fn validate(&self) -> Result<(), FieldError> {
        if self.run_as_user == 0 {
            return Err(FieldError::new(
                "runAsUser",
                "sessions never run as root (uid 0)",
            ));
        }
        if !self.path_prefix.starts_with('/') || self.path_prefix.ends_with('/') {
            return Err(FieldError::new(
                "pathPrefix",
                "must start with '/' and not end with '/'",
            ));
        }
        if self.streamer_port == 0 {
            return Err(FieldError::new("streamerPort", "must be greater than 0"));
        }
        if self.entry_points.is_empty() {
            return Err(FieldError::new(
                "entryPoints",
                "must name at least one entry point",
            ));
        }
        check_quantity("homeSize", &self.home_size)?;
        if let Some(url) = &self.turn_url
            && !(url.starts_with("turn:") || url.starts_with("turns:"))
        {
            return Err(FieldError::new(
                "turnUrl",
                format!("{url:?} is not a TURN URL like turn:turn.example.com:3478"),
            ));
        }
        if self.turn_secret_name.is_some() && self.turn_url.is_none() {
            return Err(FieldError::new(
                "turnSecretName",
                "needs turnUrl (the server the secret is for)",
            ));
        }
        if self.turn_secret_key.is_some() && self.turn_secret_name.is_none() {
            return Err(FieldError::new(
                "turnSecretKey",
                "needs turnSecretName (the secret it is an entry of)",
            ));
        }
        for (field, value) in [
            ("turnSecretName", &self.turn_secret_name),
            ("turnSecretKey", &self.turn_secret_key),
        ] {
            if value.as_deref().is_some_and(str::is_empty) {
                return Err(FieldError::new(field, "must not be empty"));
            }
        }
        Ok(())
    }
}

/// Accepts plain Kubernetes quantities such as `10Gi` or `500M`.
pub(crate) fn check_quantity(field: &str, q: &str) -> Result<(), FieldError> {
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &q[digits.len()..];
    let known = ["", "Ki", "Mi", "Gi", "Ti", "k", "M", "G", "T"];
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || !known.contains(&suffix)
    {
        return Err(FieldError::new(
            field,
            format!("{q:?} is not a storage quantity like 10Gi"),
        ));
    }
    Ok(())
}
