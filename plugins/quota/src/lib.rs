//! Admission plugin `quota`: per-user limits on sessions and GPU slices, the templates each group
//! may start, and a clamp of the session timeout (as a mutation).
//!
//! Pure logic over the SDK's plain types: it compiles to a component and links natively.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vdi_plugin_sdk::{
    Admission, AdmissionContext, FieldError, Operation, PluginError, PluginSettings,
    SessionRequest, Verdict,
};

/// Default number of active sessions per user.
pub const DEFAULT_MAX_SESSIONS_PER_USER: u32 = 3;
/// Default number of GPU slices one user may hold across sessions.
pub const DEFAULT_MAX_GPU_SLICES_PER_USER: u32 = 4;
/// Default longest session lifetime (8 hours).
pub const DEFAULT_MAX_TIMEOUT_SECONDS: u64 = 8 * 3600;
/// Default lifetime of a session that asks for none (1 hour).
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 3600;

/// The plugin's settings (`VDIPlugin.spec.settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Settings {
    /// Most active sessions one user may have.
    pub max_sessions_per_user: u32,
    /// Most GPU slices one user may hold across all sessions.
    pub max_gpu_slices_per_user: u32,
    /// Longest timeout a session may ask for; longer ones are clamped.
    pub max_timeout_seconds: u64,
    /// Timeout given to sessions that ask for none (0).
    pub default_timeout_seconds: u64,
    /// Templates each group may start; `*` as a group means everyone, as a template any template.
    /// Absent: every template is allowed to everyone.
    pub templates_by_group: Option<BTreeMap<String, Vec<String>>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
            max_gpu_slices_per_user: DEFAULT_MAX_GPU_SLICES_PER_USER,
            max_timeout_seconds: DEFAULT_MAX_TIMEOUT_SECONDS,
            default_timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            templates_by_group: None,
        }
    }
}

impl PluginSettings for Settings {
    fn validate(&self) -> Result<(), FieldError> {
        if self.max_timeout_seconds == 0 {
            return Err(FieldError::new(
                "maxTimeoutSeconds",
                "must be greater than 0",
            ));
        }
        if self.default_timeout_seconds == 0 {
            return Err(FieldError::new(
                "defaultTimeoutSeconds",
                "must be greater than 0",
            ));
        }
        if self.default_timeout_seconds > self.max_timeout_seconds {
            return Err(FieldError::new(
                "defaultTimeoutSeconds",
                format!(
                    "{} exceeds maxTimeoutSeconds {}",
                    self.default_timeout_seconds, self.max_timeout_seconds
                ),
            ));
        }
        Ok(())
    }
}

/// The quota policy.
pub struct Quota;

impl Quota {
    /// Decides one request with parsed settings.
    pub fn decide(
        settings: &Settings,
        request: &SessionRequest,
        context: &AdmissionContext,
    ) -> Verdict {
        let spec = &request.spec;
        let user = &spec.user;
        if let Some(by_group) = &settings.templates_by_group {
            let allowed = |group: &str| {
                by_group
                    .get(group)
                    .is_some_and(|ts| ts.iter().any(|t| t == "*" || *t == spec.template))
            };
            if !allowed("*") && !user.groups.iter().any(|g| allowed(g)) {
                return Verdict::Deny(format!(
                    "template \"{}\" is not allowed for user \"{}\" (groups: {})",
                    spec.template,
                    user.name,
                    if user.groups.is_empty() {
                        "none".to_owned()
                    } else {
                        user.groups.join(", ")
                    }
                ));
            }
        }
        // On update the session is already among the active ones: count the others.
        let others = context
            .active_sessions
            .iter()
            .filter(|s| s.name != request.name);
        let (count, slices) = others.fold((0u32, 0u32), |(n, g), s| {
            (
                n.saturating_add(1),
                g.saturating_add(s.resources.gpu_slices),
            )
        });
        if context.operation == Operation::Create && count >= settings.max_sessions_per_user {
            return Verdict::Deny(format!(
                "user \"{}\" already has {count} active sessions (limit {})",
                user.name, settings.max_sessions_per_user
            ));
        }
        let wanted = slices.saturating_add(spec.resources.gpu_slices);
        if spec.resources.gpu_slices > 0 && wanted > settings.max_gpu_slices_per_user {
            return Verdict::Deny(format!(
                "user \"{}\" would hold {wanted} GPU slices (holds {slices}, asks {}; limit {})",
                user.name, spec.resources.gpu_slices, settings.max_gpu_slices_per_user
            ));
        }
        let timeout = match spec.timeout_seconds {
            0 => settings.default_timeout_seconds,
            t => t.min(settings.max_timeout_seconds),
        };
        if timeout == spec.timeout_seconds {
            Verdict::Allow
        } else {
            let mut spec = spec.clone();
            spec.timeout_seconds = timeout;
            Verdict::Mutate(spec)
        }
    }
}

impl Admission for Quota {
    fn configure(settings: &str) -> Result<String, FieldError> {
        Settings::normalise(settings)
    }

    fn review(
        settings: &str,
        request: SessionRequest,
        context: AdmissionContext,
    ) -> Result<Verdict, PluginError> {
        let settings = Settings::parse(settings)?;
        Ok(Self::decide(&settings, &request, &context))
    }
}

vdi_plugin_sdk::export_admission!(Quota);
