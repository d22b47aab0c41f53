//! `checkPluginSettings`: what a plugin's own `configure` says about settings before anyone saves
//! them in a `VDIPlugin`. The module comes from the operator's upload store (by digest); the API
//! loads it in its own plugin runtime — the same sandbox and limits as the operator's — which
//! compiles it and runs `configure` on one of the runtime's threads, never the server's.

use std::sync::Arc;

use async_graphql::{Json, SimpleObject};
use serde_json::Value;
use vdi_operator::ModuleStore;
use vdi_operator::modules::FetchError;
use vdi_plugin_host::{Digest, Limits, LoadError, Runtime};

use crate::error::{ApiError, Result};
use crate::state::Inner;

/// What `configure` said.
#[derive(SimpleObject, Debug, PartialEq)]
pub struct SettingsCheck {
    /// Whether the plugin accepts the settings.
    pub valid: bool,
    /// The hook the module implements (`admission`, `scheduler` or `template`), once it loads.
    pub hook: Option<String>,
    /// The settings as the plugin normalised them: what the platform will pass it.
    pub normalized: Option<Json<Value>>,
    /// The setting it refused (its own name for it).
    pub field: Option<String>,
    /// Why it refused, or why the module could not be loaded.
    pub message: Option<String>,
}

impl SettingsCheck {
    fn refused(field: Option<String>, message: String) -> Self {
        Self {
            valid: false,
            hook: None,
            normalized: None,
            field,
            message: Some(message),
        }
    }
}

/// The answer for a load's outcome (pure, so every branch is tested without a module).
fn outcome(loaded: std::result::Result<(String, String), LoadError>) -> SettingsCheck {
    match loaded {
        Ok((hook, normalized)) => SettingsCheck {
            valid: true,
            hook: Some(hook),
            normalized: Some(Json(
                serde_json::from_str(&normalized).unwrap_or(Value::String(normalized)),
            )),
            field: None,
            message: None,
        },
        Err(LoadError::Settings { field, reason }) => SettingsCheck::refused(Some(field), reason),
        Err(other) => SettingsCheck::refused(None, other.to_string()),
    }
}

/// Checks `settings` with the uploaded module `sha256`.
pub(crate) async fn check(state: &Inner, sha256: &str, settings: &Value) -> Result<SettingsCheck> {
    let digest: Digest = sha256
        .parse()
        .map_err(|e: LoadError| ApiError::bad_input("sha256", e.to_string()))?;
    let store = ModuleStore::new(state.service.clone(), &state.config.module_namespace);
    let bytes = store.get(&digest).await.map_err(|e| match e {
        FetchError::NotUploaded(_) | FetchError::Damaged { .. } => {
            ApiError::bad_input("sha256", e.to_string())
        }
        FetchError::Store(k) => ApiError::from(k),
        other => ApiError::internal(other),
    })?;
    let runtime: Arc<Runtime> = state.plugin_runtime()?;
    let settings = settings.to_string();
    let loaded = tokio::task::spawn_blocking(move || {
        runtime
            .load(
                "settings-check",
                &bytes,
                Some(&digest),
                Limits::default(),
                &settings,
            )
            .map(|(plugin, _)| {
                (
                    plugin.hook().name().to_owned(),
                    plugin.settings().to_owned(),
                )
            })
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(outcome(loaded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_settings_come_back_normalised_and_refusals_name_the_field() {
        let ok = outcome(Ok(("admission".into(), r#"{"max":3}"#.into())));
        assert!(ok.valid);
        assert_eq!(ok.hook.as_deref(), Some("admission"));
        assert_eq!(ok.normalized, Some(Json(serde_json::json!({"max": 3}))));
        let refused = outcome(Err(LoadError::Settings {
            field: "maxSessionsPerUser".into(),
            reason: "must be at least 1".into(),
        }));
        assert!(!refused.valid);
        assert_eq!(refused.field.as_deref(), Some("maxSessionsPerUser"));
        assert_eq!(refused.message.as_deref(), Some("must be at least 1"));
        let broken = outcome(Err(LoadError::Compile("bad magic".into())));
        assert!(!broken.valid && broken.field.is_none());
        assert!(broken.message.unwrap_or_default().contains("bad magic"));
    }
}
