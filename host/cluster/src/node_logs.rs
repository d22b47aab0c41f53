//! Where `GET pods/<name>/log` finds container logs: node agents that keep them register here
//! by node name, and the kubelet endpoint ([`crate::api`]) asks the pod's node. The endpoint
//! knows nothing of how an agent stores its logs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use futures::stream::BoxStream;
use serde_json::Value;

use crate::error::Result;

/// A log request (`PodLogOptions`), checked.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct LogRequest {
    /// Stream new lines until the container ends or the client goes away.
    pub follow: bool,
    /// The previous (terminated) instance of the container.
    pub previous: bool,
    /// Prefix each line with its RFC 3339 (nanosecond) time.
    pub timestamps: bool,
    /// Only the last N lines.
    pub tail_lines: Option<u64>,
    /// Only lines at or after this time.
    pub since: Option<jiff::Timestamp>,
    /// At most this many bytes.
    pub limit_bytes: Option<u64>,
}

/// The body of a log response.
pub(crate) type LogStream = BoxStream<'static, std::io::Result<Bytes>>;

/// A node agent that keeps its containers' logs.
pub(crate) trait NodeLogs: Send + Sync {
    /// The log of `container` of `pod` (a pod bound to this agent's node); errors are the
    /// kubelet's (e.g. no previous instance).
    fn read(&self, pod: &Value, container: &str, request: &LogRequest) -> Result<LogStream>;
}

/// The registered agents, by node name.
#[derive(Default)]
pub(crate) struct LogSources(Mutex<HashMap<String, Arc<dyn NodeLogs>>>);

impl LogSources {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn NodeLogs>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers (or replaces) the agent of `node`.
    pub(crate) fn register(&self, node: &str, source: Arc<dyn NodeLogs>) {
        self.lock().insert(node.to_owned(), source);
    }

    /// Removes the agent of `node`.
    pub(crate) fn unregister(&self, node: &str) {
        self.lock().remove(node);
    }

    /// The agent of `node`, if one keeps logs.
    pub(crate) fn get(&self, node: &str) -> Option<Arc<dyn NodeLogs>> {
        self.lock().get(node).cloned()
    }
}
