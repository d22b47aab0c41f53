//! Plain Rust mirror of the `vdi:plugin/types` WIT interface.
//!
//! Field and case names follow the Rust bindings that `wasmtime::component::bindgen!` and
//! `wit_bindgen::generate!` produce, and serde uses its default representation, so the JSON test
//! vectors in `plugins/testdata/` read the same on the host and here. Documentation of each
//! field lives in `wit/types.wit`.

use serde::{Deserialize, Serialize};

/// Kubernetes-style labels as (key, value) pairs.
pub type Labels = Vec<(String, String)>;

/// The requesting user.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

/// Resources a session asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub struct Resources {
    pub gpu_slices: u32,
    pub gpu_memory_mib: u64,
    pub cpu_millis: u32,
    pub memory_mib: u64,
    pub video_encoder: bool,
}

/// The user-controlled part of a session.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub struct SessionSpec {
    pub user: UserInfo,
    pub template: String,
    pub resources: Resources,
    pub timeout_seconds: u64,
    pub labels: Labels,
}

/// A session under decision.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub struct SessionRequest {
    pub name: String,
    pub namespace: String,
    pub spec: SessionSpec,
}

/// Another active session of the same user.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub struct ActiveSession {
    pub name: String,
    pub template: String,
    pub resources: Resources,
}

/// Why admission runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub enum Operation {
    #[default]
    Create,
    Update,
}

/// What an admission policy may look at besides the request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub struct AdmissionContext {
    pub operation: Operation,
    pub active_sessions: Vec<ActiveSession>,
}

/// An admission decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub enum Verdict {
    Allow,
    Deny(String),
    Mutate(SessionSpec),
}

/// One GPU of a node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub struct Gpu {
    pub index: u32,
    pub product: String,
    pub memory_mib: u64,
    pub memory_used_mib: u64,
    pub slices_total: u32,
    pub slices_used: u32,
    pub encoder_sessions_total: u32,
    pub encoder_sessions_used: u32,
}

/// A candidate node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub struct Node {
    pub name: String,
    pub labels: Labels,
    pub cpu_millis_free: u32,
    pub memory_mib_free: u64,
    pub gpus: Vec<Gpu>,
}

/// Where a session goes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub struct Placement {
    pub node: String,
    pub gpu: Option<u32>,
    pub reason: String,
}

/// A scheduling decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub enum PlacementDecision {
    Placed(Placement),
    Unschedulable(Vec<String>),
}

/// The template a session starts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub struct TemplateInfo {
    pub name: String,
    pub display_name: String,
    pub image: String,
    pub settings: String,
}

/// A field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    /// An error for `field` with `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// An error a plugin returns instead of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub enum PluginError {
    Invalid(FieldError),
    Internal(String),
}

impl From<FieldError> for PluginError {
    fn from(e: FieldError) -> Self {
        Self::Invalid(e)
    }
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs, reason = "documented in wit/types.wit")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}
