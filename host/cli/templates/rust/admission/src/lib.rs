//! Admission policy `{{name}}`: refuses sessions that ask for more GPU slices than allowed.
//!
//! Build with `vdi plugin build`, check with `vdi plugin test out/{{name}}.wasm --vectors vectors`.

use serde::{Deserialize, Serialize};
use vdi_plugin_sdk::{
    Admission, AdmissionContext, FieldError, PluginError, PluginSettings, SessionRequest, Verdict,
};

/// Most GPU slices one session may ask for when the settings say nothing.
const DEFAULT_MAX_GPU_SLICES: u32 = 2;

/// The plugin's settings (`VDIPlugin.spec.settings`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct Settings {
    /// Most GPU slices one session may ask for.
    max_gpu_slices: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_gpu_slices: DEFAULT_MAX_GPU_SLICES,
        }
    }
}

impl PluginSettings for Settings {}

/// The policy.
struct Policy;

impl Admission for Policy {
    fn configure(settings: &str) -> Result<String, FieldError> {
        Settings::normalise(settings)
    }

    fn review(
        settings: &str,
        request: SessionRequest,
        _context: AdmissionContext,
    ) -> Result<Verdict, PluginError> {
        let settings = Settings::parse(settings)?;
        let asks = request.spec.resources.gpu_slices;
        if asks > settings.max_gpu_slices {
            return Ok(Verdict::Deny(format!(
                "session \"{}\" asks for {asks} GPU slices (limit {})",
                request.name, settings.max_gpu_slices
            )));
        }
        Ok(Verdict::Allow)
    }
}

vdi_plugin_sdk::export_admission!(Policy);
