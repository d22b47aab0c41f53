//! `me.quota`: what the quota plugin's settings allow the caller, and what they use (pure).

use std::collections::BTreeMap;

use async_graphql::SimpleObject;
use serde::Deserialize;
use vdi_crd::VDISession;

use crate::error::{ApiError, Result};

/// The quota plugin's defaults (plugins/quota), for settings it leaves out.
const DEFAULT_MAX_SESSIONS: u32 = 3;
const DEFAULT_MAX_GPU_SLICES: u32 = 4;
const DEFAULT_MAX_TIMEOUT_SECONDS: u64 = 8 * 3600;
const DEFAULT_TIMEOUT_SECONDS: u64 = 3600;

/// The part of the quota plugin's settings the API reports (unknown fields ignored: the
/// plugin, not the API, validates them).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Settings {
    max_sessions_per_user: Option<u32>,
    max_gpu_slices_per_user: Option<u32>,
    max_timeout_seconds: Option<u64>,
    default_timeout_seconds: Option<u64>,
    templates_by_group: Option<BTreeMap<String, Vec<String>>>,
}

/// Limits and usage.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct QuotaView {
    /// Whether a quota plugin is installed; without it the limits are null.
    pub enforced: bool,
    /// Most active sessions.
    pub max_sessions: Option<u32>,
    /// Most GPU slices across sessions.
    pub max_gpu_slices: Option<u32>,
    /// Longest lifetime in seconds (longer ones are clamped).
    pub max_timeout_seconds: Option<u64>,
    /// Lifetime given when none is asked for, in seconds.
    pub default_timeout_seconds: Option<u64>,
    /// Templates the caller's groups may start; null: any.
    pub allowed_templates: Option<Vec<String>>,
    /// Active sessions now.
    pub active_sessions: u32,
    /// GPU slices held (or asked for) by active sessions now.
    pub gpu_slices_in_use: u32,
}

/// The view for a caller in `groups` owning `sessions`, given the quota plugin's `settings`
/// (`installed`: whether the plugin exists at all).
pub fn quota_view(
    installed: bool,
    settings: Option<&serde_json::Value>,
    groups: &[String],
    sessions: &[VDISession],
) -> Result<QuotaView> {
    let active: Vec<&VDISession> = sessions
        .iter()
        .filter(|s| {
            !s.status
                .as_ref()
                .map(|st| st.phase())
                .unwrap_or_default()
                .is_final()
        })
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .collect();
    let active_sessions = u32::try_from(active.len()).unwrap_or(u32::MAX);
    let gpu_slices_in_use = active
        .iter()
        .map(|s| {
            s.status
                .as_ref()
                .and_then(|st| st.admitted.as_ref())
                .map(|a| a.resources.gpu_slices)
                .or_else(|| s.spec.resources.as_ref().and_then(|r| r.gpu_slices))
                .unwrap_or(0)
        })
        .fold(0u32, u32::saturating_add);
    if !installed {
        return Ok(QuotaView {
            enforced: false,
            max_sessions: None,
            max_gpu_slices: None,
            max_timeout_seconds: None,
            default_timeout_seconds: None,
            allowed_templates: None,
            active_sessions,
            gpu_slices_in_use,
        });
    }
    let s: Settings = match settings {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| ApiError::internal(format!("the quota plugin's settings: {e}")))?,
        None => Settings::default(),
    };
    let allowed_templates = s.templates_by_group.as_ref().and_then(|by_group| {
        let mut out: Vec<String> = Vec::new();
        for group in groups.iter().map(String::as_str).chain(["*"]) {
            for t in by_group.get(group).into_iter().flatten() {
                if t == "*" {
                    return None;
                }
                if !out.contains(t) {
                    out.push(t.clone());
                }
            }
        }
        out.sort();
        Some(out)
    });
    Ok(QuotaView {
        enforced: true,
        max_sessions: Some(s.max_sessions_per_user.unwrap_or(DEFAULT_MAX_SESSIONS)),
        max_gpu_slices: Some(s.max_gpu_slices_per_user.unwrap_or(DEFAULT_MAX_GPU_SLICES)),
        max_timeout_seconds: Some(s.max_timeout_seconds.unwrap_or(DEFAULT_MAX_TIMEOUT_SECONDS)),
        default_timeout_seconds: Some(s.default_timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS)),
        allowed_templates,
        active_sessions,
        gpu_slices_in_use,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn session(phase: &str, slices: u32) -> VDISession {
        serde_json::from_value(json!({
            "apiVersion": "vdi.dev/v1alpha1", "kind": "VDISession",
            "metadata": {"name": "s", "namespace": "u-a"},
            "spec": {"user": {"name": "oidc:a"}, "template": "t", "resources": {"gpuSlices": slices}},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    #[test]
    fn limits_come_from_the_settings_and_usage_from_active_sessions() {
        let settings = json!({"maxSessionsPerUser": 2, "templatesByGroup": {
            "oidc:staff": ["b", "a"], "*": ["c"], "oidc:vdi-admins": ["*"]}});
        let sessions = [
            session("Running", 1),
            session("Pending", 2),
            session("Failed", 4),
        ];
        let v = quota_view(true, Some(&settings), &["oidc:staff".into()], &sessions).unwrap();
        assert_eq!(v.max_sessions, Some(2));
        assert_eq!(v.max_gpu_slices, Some(DEFAULT_MAX_GPU_SLICES));
        assert_eq!(
            v.allowed_templates,
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!((v.active_sessions, v.gpu_slices_in_use), (2, 3));
        let admin = quota_view(true, Some(&settings), &["oidc:vdi-admins".into()], &[]).unwrap();
        assert_eq!(admin.allowed_templates, None, "a * template allows any");
        let nobody = quota_view(true, Some(&settings), &["oidc:contractors".into()], &[]).unwrap();
        assert_eq!(nobody.allowed_templates, Some(vec!["c".into()]));
    }

    #[test]
    fn without_the_plugin_nothing_is_enforced() {
        let v = quota_view(false, None, &[], &[session("Running", 1)]).unwrap();
        assert!(!v.enforced);
        assert_eq!(v.max_sessions, None);
        assert_eq!(v.active_sessions, 1);
    }

    #[test]
    fn malformed_settings_are_an_internal_error() {
        let e = quota_view(true, Some(&json!({"maxSessionsPerUser": "x"})), &[], &[]).unwrap_err();
        assert_eq!(e.code(), "INTERNAL_SERVER_ERROR");
    }
}
