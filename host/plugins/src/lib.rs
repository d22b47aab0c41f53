//! The VDI platform's plugin runtime: runs the WebAssembly components that decide admission,
//! scheduling and template rendering.
//!
//! It owns one wasmtime [`Runtime`] per process (pooling allocator, epoch interruption, an
//! on-disk compile cache keyed by module digest and engine), loads components whose sha256 is
//! pinned, and calls each plugin in a fresh instance with a hard time and memory limit and a
//! WASI that grants nothing. It checks what plugins return (identity kept, placements that fit,
//! rendered objects of allowed kinds in the session's namespace) and runs the ordered admission
//! chain with per-plugin failure policy.
//!
//! It knows nothing of Kubernetes clients or HTTP: callers pass plain values and run calls on
//! the runtime's [`PluginPool`] (plain threads, never a tokio worker). Each call's time limit
//! holds even while the guest waits in a WASI host call (clock subscriptions end by the deadline
//! or trap), and guest output is capped and rate-limited.

mod bindings;
mod chain;
mod deadline;
mod digest;
mod error;
#[cfg(test)]
mod fixtures;
mod guestlog;
mod metrics;
mod placement;
mod plugin;
mod pool;
mod render;
mod runtime;
mod stdio;
mod targets;
pub mod vectors;

pub use chain::{
    AdmissionChain, ChainEntry, ChainOutcome, ChainVerdict, Decision, DecisionOutcome,
    FailurePolicy,
};
pub use digest::Digest;
pub use error::{CallError, LoadError};
pub use metrics::Metrics;
pub use plugin::{
    DEFAULT_MAX_REASON_BYTES, DEFAULT_MEMORY_BYTES, DEFAULT_TIMEOUT, Hook, Limits, Plugin,
};
pub use pool::{PluginPool, PoolError, WATCHDOG_GRACE};
pub use render::{RenderError, RenderPolicy};
pub use runtime::{CacheOutcome, Inspection, LoadStats, Runtime, RuntimeConfig};
pub use targets::{Language, ratio_line, ratio_target};

/// The values plugins exchange with the host, as generated from `wit/types.wit`.
pub mod types {
    pub use crate::bindings::types::{
        ActiveSession, AdmissionContext, FieldError, Gpu, Node, Operation, Placement,
        PlacementDecision, PluginError, Resources, SessionRequest, SessionSpec, TemplateInfo,
        UserInfo, Verdict,
    };
}
