//! Typed errors of loading and calling plugins.

use std::time::Duration;

use crate::types::PluginError;

/// Why a plugin could not be loaded. Nothing is half-loaded: on error the caller keeps whatever
/// it had before.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The module's sha256 is not the pinned one.
    #[error("digest mismatch: expected sha256:{expected}, module is sha256:{actual}")]
    DigestMismatch {
        /// The pinned digest.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// A digest string is not `sha256:<64 hex digits>`.
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex digits>")]
    InvalidDigest(String),
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    /// The component exports none of the hook worlds.
    #[error("component implements no vdi:plugin world (exports: {exports})")]
    UnknownWorld {
        /// The component's exports, comma-separated.
        exports: String,
    },
    /// The component imports something the host does not provide.
    #[error("component imports `{import}`, which the host does not provide")]
    Link {
        /// The missing import.
        import: String,
    },
    /// The component's exports do not match its world's signatures.
    #[error("component exports do not match the {world} world: {reason}")]
    Exports {
        /// The world it claims.
        world: &'static str,
        /// What does not match.
        reason: String,
    },
    /// `configure` refused the settings.
    #[error("invalid plugin settings: field `{field}`: {reason}")]
    Settings {
        /// The offending field.
        field: String,
        /// Why.
        reason: String,
    },
    /// `configure` itself failed (trapped, timed out, ...).
    #[error("configure failed: {0}")]
    Configure(#[source] Box<CallError>),
    /// Reading or writing the compile cache failed.
    #[error("compile cache at {path}: {source}")]
    Cache {
        /// The cache path.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Why a single decision failed. The host and every other plugin are unaffected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The call ran past its time limit and was interrupted.
    #[error("timed out after {limit:?}")]
    Timeout {
        /// The limit.
        limit: Duration,
    },
    /// The call tried to grow memory past its limit.
    #[error("memory limit of {limit} bytes exceeded (asked for {requested} bytes)")]
    MemoryLimit {
        /// The limit in bytes.
        limit: usize,
        /// Total linear memory the guest asked for.
        requested: usize,
    },
    /// The guest exhausted its call stack.
    #[error("stack overflow")]
    StackOverflow,
    /// The guest trapped (panic, unreachable, ...).
    #[error("trap: {message}")]
    Trap {
        /// The trap and the last lines the guest wrote to stderr (a panic message).
        message: String,
    },
    /// The guest returned something the host refuses.
    #[error("bad output: {reason}")]
    BadOutput {
        /// What is wrong with it.
        reason: String,
    },
    /// An admission plugin tried to change who the session belongs to.
    #[error("plugin tried to change the user's identity from {from:?} to {to:?}")]
    IdentityChanged {
        /// The user before.
        from: String,
        /// The user the plugin asked for.
        to: String,
    },
    /// The plugin returned its own error instead of a decision.
    #[error("plugin error: {}", describe_plugin_error(.0))]
    Plugin(PluginError),
    /// The plugin implements another hook than the one called.
    #[error("plugin implements the {actual} hook, not {called}")]
    WrongHook {
        /// The hook called.
        called: &'static str,
        /// The hook the plugin implements.
        actual: &'static str,
    },
    /// The instance could not be created (for example the pool is exhausted).
    #[error("instantiation failed: {0}")]
    Instantiate(String),
}

impl CallError {
    /// A short label for metrics (`timeout`, `memory_limit`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::StackOverflow => "stack_overflow",
            Self::Trap { .. } => "trap",
            Self::BadOutput { .. } => "bad_output",
            Self::IdentityChanged { .. } => "identity_changed",
            Self::Plugin(_) => "plugin_error",
            Self::WrongHook { .. } => "wrong_hook",
            Self::Instantiate(_) => "instantiate",
        }
    }
}

fn describe_plugin_error(e: &PluginError) -> String {
    match e {
        PluginError::Invalid(f) => format!("invalid field `{}`: {}", f.field, f.reason),
        PluginError::Internal(m) => m.clone(),
    }
}
