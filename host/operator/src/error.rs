//! The operator's one error type. Fetching a module keeps its own [`FetchError`] (its callers,
//! the upload endpoint among them, tell its cases apart); everywhere else it is wrapped here.

use std::net::SocketAddr;

use vdi_plugin_host::PoolError;

use crate::connect::ConnectError;
use crate::modules::FetchError;

/// What went wrong in the operator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A plugin module could not be fetched or stored.
    #[error("module: {0}")]
    Fetch(#[from] FetchError),
    /// The plugin pool gave no answer (saturated, past its deadline, panicked, shut down).
    #[error("{0}")]
    Pool(#[from] PoolError),
    /// A connect key could not be made or read, or a token not minted.
    #[error("{0}")]
    Connect(#[from] ConnectError),
    /// The configuration is not usable (said why).
    #[error("configuration: {0}")]
    Config(String),
    /// The HTTP endpoints could not listen.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why not.
        source: std::io::Error,
    },
    /// Something else went wrong (said how).
    #[error("{0}")]
    Other(String),
}

/// A result whose error is the operator's.
pub type Result<T, E = Error> = std::result::Result<T, E>;
