//! The embedded Kubernetes-API-compatible control plane.
//!
//! It serves the Kubernetes REST protocol over HTTP on a local port (discovery, built-in kinds,
//! CustomResourceDefinitions and their resources, get/list/watch/create/update/patch/delete with
//! resourceVersions, finalizers and owner-reference garbage collection) from an SQLite store, so
//! `kube::Client` and `kubectl` work against it unmodified. It is the one-machine and test
//! cluster; production runs on a real Kubernetes. It knows nothing of the VDI platform: the
//! platform plugs in through [`AdmissionHook`].

mod admission;
mod api;
mod apply;
pub mod authn;
pub mod authz;
mod error;
mod events;
mod input;
mod metrics;
mod node_logs;
mod nodes;
mod openapi;
mod pki;
mod process;
mod protobuf;
pub mod rbac;
mod resources;
mod schema;
mod selectors;
mod server;
mod store;
mod strategic;
mod table;

pub use admission::{AdmissionHook, Operation, Requester};
pub use api::{AppState, app};
pub use error::{ApiError, Result};
pub use input::{MAX_BODY_BYTES, MAX_NESTING_DEPTH, MAX_STORED_DEPTH};
pub use nodes::{SIMULATED_LABEL, SimulatedNodes};
pub use process::{
    DEFAULT_NODE_NAME, DESKTOP_IMAGE, DESKTOP_SCRIPT, ProcessNode, ProcessNodeHandle,
    RuntimeCommand, RuntimeEntry, RuntimeTable, STREAMER_IMAGE, repository,
};
pub use resources::{Registry, ResourceType};
pub use selectors::{FieldSelector, LabelSelector};
pub use server::{Cluster, ClusterConfig};
pub use store::{DryRun, EventType, Part, Propagation, Store, WatchEvent};
