//! WIT bindings for the three hook worlds and their mapping to the plain types.
//!
//! The `types` and `host` interfaces are generated once (in `admission`) and shared by the other
//! worlds, so one set of conversions serves all three.

use crate::types as t;

#[allow(missing_docs, unsafe_code, reason = "generated bindings")]
pub mod admission {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "admission",
        pub_export_macro: true,
        export_macro_name: "__export_admission_world",
    });
}

#[allow(missing_docs, unsafe_code, reason = "generated bindings")]
pub mod scheduler {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "scheduler",
        pub_export_macro: true,
        export_macro_name: "__export_scheduler_world",
        with: {
            "vdi:plugin/types@0.1.0": crate::wasm::admission::vdi::plugin::types,
            "vdi:plugin/host@0.1.0": crate::wasm::admission::vdi::plugin::host,
        },
    });
}

#[allow(missing_docs, unsafe_code, reason = "generated bindings")]
pub mod template {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "template",
        pub_export_macro: true,
        export_macro_name: "__export_template_world",
        with: {
            "vdi:plugin/types@0.1.0": crate::wasm::admission::vdi::plugin::types,
            "vdi:plugin/host@0.1.0": crate::wasm::admission::vdi::plugin::host,
        },
    });
}

use admission::vdi::plugin::host;
use admission::vdi::plugin::types as w;

pub(crate) fn log(level: t::LogLevel, message: &str) {
    let level = match level {
        t::LogLevel::Trace => host::LogLevel::Trace,
        t::LogLevel::Debug => host::LogLevel::Debug,
        t::LogLevel::Info => host::LogLevel::Info,
        t::LogLevel::Warn => host::LogLevel::Warn,
        t::LogLevel::Error => host::LogLevel::Error,
    };
    host::log(level, message);
}

/// Field-wise conversion between binding types and plain types, both ways.
trait Conv<T> {
    fn conv(self) -> T;
}

macro_rules! identity {
    ($($t:ty),*) => { $(impl Conv<$t> for $t { fn conv(self) -> $t { self } })* };
}
identity!(u32, u64, bool, String, (String, String));

impl<A: Conv<B>, B> Conv<Vec<B>> for Vec<A> {
    fn conv(self) -> Vec<B> {
        self.into_iter().map(Conv::conv).collect()
    }
}

impl<A: Conv<B>, B> Conv<Option<B>> for Option<A> {
    fn conv(self) -> Option<B> {
        self.map(Conv::conv)
    }
}

/// Records convert field by field in both directions.
macro_rules! record {
    ($($name:ident { $($field:ident),* $(,)? })*) => {$(
        impl Conv<t::$name> for w::$name {
            fn conv(self) -> t::$name { t::$name { $($field: self.$field.conv()),* } }
        }
        impl Conv<w::$name> for t::$name {
            fn conv(self) -> w::$name { w::$name { $($field: self.$field.conv()),* } }
        }
        impl From<w::$name> for t::$name {
            fn from(v: w::$name) -> Self { v.conv() }
        }
        impl From<t::$name> for w::$name {
            fn from(v: t::$name) -> Self { v.conv() }
        }
    )*};
}

record! {
    UserInfo { name, groups }
    Resources { gpu_slices, gpu_memory_mib, cpu_millis, memory_mib, video_encoder }
    SessionSpec { user, template, resources, timeout_seconds, labels }
    SessionRequest { name, namespace, spec }
    ActiveSession { name, template, resources }
    AdmissionContext { operation, active_sessions }
    Gpu {
        index, product, memory_mib, memory_used_mib, slices_total, slices_used,
        encoder_sessions_total, encoder_sessions_used,
    }
    Node { name, labels, cpu_millis_free, memory_mib_free, gpus }
    Placement { node, gpu, reason }
    TemplateInfo { name, display_name, image, settings }
    FieldError { field, reason }
}

impl Conv<t::Operation> for w::Operation {
    fn conv(self) -> t::Operation {
        match self {
            w::Operation::Create => t::Operation::Create,
            w::Operation::Update => t::Operation::Update,
        }
    }
}

impl Conv<w::Operation> for t::Operation {
    fn conv(self) -> w::Operation {
        match self {
            t::Operation::Create => w::Operation::Create,
            t::Operation::Update => w::Operation::Update,
        }
    }
}

impl From<t::Verdict> for w::Verdict {
    fn from(v: t::Verdict) -> Self {
        match v {
            t::Verdict::Allow => w::Verdict::Allow,
            t::Verdict::Deny(reason) => w::Verdict::Deny(reason),
            t::Verdict::Mutate(spec) => w::Verdict::Mutate(spec.conv()),
        }
    }
}

impl From<t::PlacementDecision> for w::PlacementDecision {
    fn from(v: t::PlacementDecision) -> Self {
        match v {
            t::PlacementDecision::Placed(p) => w::PlacementDecision::Placed(p.conv()),
            t::PlacementDecision::Unschedulable(r) => w::PlacementDecision::Unschedulable(r),
        }
    }
}

impl From<t::PluginError> for w::PluginError {
    fn from(e: t::PluginError) -> Self {
        match e {
            t::PluginError::Invalid(f) => w::PluginError::Invalid(f.conv()),
            t::PluginError::Internal(m) => w::PluginError::Internal(m),
        }
    }
}
