//! Plugin SDK for the VDI platform's hooks (WIT package `vdi:plugin@0.1.0`).
//!
//! A plugin is a type implementing [`Admission`], [`Scheduler`] or [`Template`] over the plain
//! Rust types in [`types`], exported with [`export_admission!`], [`export_scheduler!`] or
//! [`export_template!`]. The logic then compiles both to a wasm32-wasip2 component and natively
//! (so the host can benchmark it against its own component). This crate owns the mapping between
//! the WIT bindings and the plain types; it holds no policy.

#[cfg(target_arch = "wasm32")]
pub mod arena;
mod settings;
pub mod types;
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wasm;

pub use settings::PluginSettings;
pub use types::*;

/// Every guest built with this SDK allocates from a bump arena: instances live for one decision.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

/// An admission policy: may this user have this session, with which settings?
pub trait Admission {
    /// Validates settings (a JSON object) and returns them normalised.
    fn configure(settings: &str) -> Result<String, FieldError>;
    /// Reviews one request with the settings `configure` returned.
    fn review(
        settings: &str,
        request: SessionRequest,
        context: AdmissionContext,
    ) -> Result<Verdict, PluginError>;
}

/// A scheduler: which node and GPU time-slice gets each session?
pub trait Scheduler {
    /// Validates settings (a JSON object) and returns them normalised.
    fn configure(settings: &str) -> Result<String, FieldError>;
    /// Places `requests` in order on `nodes`, counting earlier placements of the batch; one
    /// decision per request.
    fn place(
        settings: &str,
        requests: Vec<SessionRequest>,
        nodes: Vec<Node>,
    ) -> Result<Vec<PlacementDecision>, PluginError>;
}

/// A template renderer: which Kubernetes objects realise the session?
pub trait Template {
    /// Validates settings (a JSON object) and returns them normalised.
    fn configure(settings: &str) -> Result<String, FieldError>;
    /// Renders the session's objects, one JSON document each.
    fn render(
        settings: &str,
        request: SessionRequest,
        template: TemplateInfo,
        placement: Placement,
    ) -> Result<Vec<String>, PluginError>;
}

/// Writes a line to the host's log (a no-op when linked natively).
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    wasm::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (level, message);
}

/// Exports a type implementing [`Admission`] as the component's `admission` world.
#[macro_export]
macro_rules! export_admission {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::wasm::admission as w;
            struct Export;
            impl w::Guest for Export {
                fn configure(settings: String) -> Result<String, w::FieldError> {
                    <$policy as $crate::Admission>::configure(&settings).map_err(Into::into)
                }
                fn review(
                    settings: String,
                    request: w::SessionRequest,
                    context: w::AdmissionContext,
                ) -> Result<w::Verdict, w::PluginError> {
                    <$policy as $crate::Admission>::review(
                        &settings,
                        request.into(),
                        context.into(),
                    )
                    .map(Into::into)
                    .map_err(Into::into)
                }
            }
            $crate::wasm::admission::__export_admission_world!(Export with_types_in $crate::wasm::admission);
        };
    };
}

/// Exports a type implementing [`Scheduler`] as the component's `scheduler` world.
#[macro_export]
macro_rules! export_scheduler {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::wasm::scheduler as w;
            struct Export;
            impl w::Guest for Export {
                fn configure(settings: String) -> Result<String, w::FieldError> {
                    <$policy as $crate::Scheduler>::configure(&settings).map_err(Into::into)
                }
                fn place(
                    settings: String,
                    requests: Vec<w::SessionRequest>,
                    nodes: Vec<w::Node>,
                ) -> Result<Vec<w::PlacementDecision>, w::PluginError> {
                    <$policy as $crate::Scheduler>::place(
                        &settings,
                        requests.into_iter().map(Into::into).collect(),
                        nodes.into_iter().map(Into::into).collect(),
                    )
                    .map(|ds| ds.into_iter().map(Into::into).collect())
                    .map_err(Into::into)
                }
            }
            $crate::wasm::scheduler::__export_scheduler_world!(Export with_types_in $crate::wasm::scheduler);
        };
    };
}

/// Exports a type implementing [`Template`] as the component's `template` world.
#[macro_export]
macro_rules! export_template {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::wasm::template as w;
            struct Export;
            impl w::Guest for Export {
                fn configure(settings: String) -> Result<String, w::FieldError> {
                    <$policy as $crate::Template>::configure(&settings).map_err(Into::into)
                }
                fn render(
                    settings: String,
                    request: w::SessionRequest,
                    template: w::TemplateInfo,
                    placement: w::Placement,
                ) -> Result<Vec<String>, w::PluginError> {
                    <$policy as $crate::Template>::render(
                        &settings,
                        request.into(),
                        template.into(),
                        placement.into(),
                    )
                    .map_err(Into::into)
                }
            }
            $crate::wasm::template::__export_template_world!(Export with_types_in $crate::wasm::template);
        };
    };
}
