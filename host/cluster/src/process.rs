//! The local process node: a node agent that runs the pods bound to it as process groups of
//! this machine, beside the simulated nodes ([`crate::SimulatedNodes`]). JupyterHub's
//! LocalProcessSpawner next to KubeSpawner: the same control flow, the session runs as local
//! processes. See `docs/process-node.md`.
//!
//! It registers a real `Node` (capacity from this machine), binds pods that ask for it by
//! selector (the binder of [`crate::nodes`]), maps each container's image to a local command
//! through the [`RuntimeTable`], reports real container states, keeps logs for
//! `pods/<name>/log`, and ends every process when a pod is deleted or the agent stops.

mod config;
mod container;
mod logs;
mod node;
mod plan;
mod probe;
mod status;
mod supervisor;
mod sys;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustix::process::Signal;
use serde_json::Value;
use tokio::task::JoinHandle;

pub use plan::DESKTOP_SCRIPT;

pub use config::{
    DEFAULT_NODE_NAME, DESKTOP_IMAGE, ProcessNode, RuntimeCommand, RuntimeEntry, RuntimeTable,
    STREAMER_IMAGE, repository,
};

use crate::error::{ApiError, Result};
use crate::resources::ResourceType;
use crate::store::{EventType, Store};
use supervisor::PodHandle;

/// What the agent's tasks share.
pub(crate) struct Agent {
    config: ProcessNode,
    store: Arc<Store>,
    pod_t: ResourceType,
    /// Pods being run, by uid.
    pods: Mutex<HashMap<String, PodHandle>>,
    /// X display numbers handed out.
    displays: Mutex<HashSet<u32>>,
    /// A delegated cgroup v2 for memory limits, when there is one.
    cgroup: Option<PathBuf>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Agent {
    fn pods_dir(&self) -> PathBuf {
        self.config.data_dir.join("pods")
    }

    /// Reacts to a pod's current state.
    fn handle(self: &Arc<Self>, pod: &Value) {
        if !crate::nodes::well_formed("pods", pod) {
            return;
        }
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        match pod["spec"]["nodeName"].as_str() {
            Some(node) if node == self.config.name => {
                if pod["metadata"]["deletionTimestamp"].is_string() {
                    self.stop_pod(uid);
                    return;
                }
                let finished = matches!(
                    pod["status"]["phase"].as_str(),
                    Some("Succeeded" | "Failed")
                );
                let mut pods = lock(&self.pods);
                if finished || pods.contains_key(uid) {
                    return;
                }
                if let Some(h) = supervisor::start(self, pod) {
                    pods.insert(uid.to_owned(), h);
                }
            }
            Some(_) => {}
            None => crate::nodes::bind_unscheduled(&self.store, &self.pod_t, pod),
        }
    }

    /// Tells a pod's tasks to end its processes and clean up.
    fn stop_pod(&self, uid: &str) -> Option<JoinHandle<()>> {
        let h = lock(&self.pods).remove(uid)?;
        let _ = h.stop.send(true);
        Some(h.task)
    }

    async fn run(self: Arc<Self>) -> Result<()> {
        let start = self.store.watch(&self.pod_t, None, None)?;
        for e in start.backlog {
            self.handle(&e.object);
        }
        let mut rx = start.receiver;
        loop {
            match rx.recv().await {
                Ok(e) if e.key == "pods" && e.kind == EventType::Deleted => {
                    if let Some(uid) = e.object["metadata"]["uid"].as_str() {
                        self.stop_pod(uid);
                    }
                    crate::nodes::retry_pending(&self.store, &self.pod_t);
                }
                Ok(e) if e.key == "pods" => {
                    if matches!(
                        e.object["status"]["phase"].as_str(),
                        Some("Failed" | "Succeeded")
                    ) {
                        crate::nodes::retry_pending(&self.store, &self.pod_t);
                    }
                    self.handle(&e.object);
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "process node lagged; re-reading pods");
                    let (pods, _, _) = self.store.list(&self.pod_t, None, None, None, &|_| true);
                    let live: HashSet<String> = pods
                        .iter()
                        .filter_map(|p| p["metadata"]["uid"].as_str().map(str::to_owned))
                        .collect();
                    let gone: Vec<String> = lock(&self.pods)
                        .keys()
                        .filter(|u| !live.contains(*u))
                        .cloned()
                        .collect();
                    for uid in gone {
                        self.stop_pod(&uid);
                    }
                    for p in pods {
                        self.handle(&p);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
    }

    /// SIGKILLs every process group at once and removes the pods' files (no waiting).
    fn kill_all_now(&self) {
        for (_, h) in lock(&self.pods).drain() {
            let _ = h.stop.send(true);
            h.task.abort();
            for pgid in lock(&h.groups).values() {
                sys::signal_group(*pgid, Signal::KILL);
            }
            supervisor::cleanup(self, &h.dir, h.display);
        }
    }
}

/// A started process node. [`stop`](Self::stop) ends every pod's processes gracefully;
/// dropping it SIGKILLs them.
pub struct ProcessNodeHandle {
    agent: Arc<Agent>,
    tasks: Vec<JoinHandle<()>>,
}

impl ProcessNode {
    /// Cleans up what a previous run left in the data directory, registers the `Node` and
    /// starts running the pods bound to it.
    pub async fn start(self, store: Arc<Store>) -> Result<ProcessNodeHandle> {
        let pod_t = store
            .registry
            .find("", "v1", "pods")
            .ok_or_else(|| ApiError::Internal("no pods type".into()))?;
        let pods_dir = self.data_dir.join("pods");
        sys::clean_leftovers(&pods_dir);
        std::fs::create_dir_all(&pods_dir)
            .map_err(|e| ApiError::Internal(format!("create {}: {e}", pods_dir.display())))?;
        node::register(&self, &store).await?;
        let cgroup = sys::delegated_cgroup();
        match &cgroup {
            Some(dir) => {
                tracing::info!(cgroup = %dir.display(), "process node: memory limits through cgroup v2")
            }
            None => tracing::info!(
                "process node: no delegated cgroup v2; memory limits through RLIMIT_DATA"
            ),
        }
        store.log_sources.register(
            &self.name,
            Arc::new(logs::Reader {
                pods_dir: pods_dir.clone(),
            }),
        );
        let agent = Arc::new(Agent {
            config: self,
            store,
            pod_t,
            pods: Mutex::new(HashMap::new()),
            displays: Mutex::new(HashSet::new()),
            cgroup,
        });
        let watcher = tokio::spawn({
            let agent = agent.clone();
            async move {
                if let Err(e) = agent.run().await {
                    tracing::error!(error = %e, "process node stopped");
                }
            }
        });
        let heartbeat = tokio::spawn({
            let agent = agent.clone();
            async move {
                let mut tick = tokio::time::interval(agent.config.heartbeat);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Err(e) = node::heartbeat(&agent.config.name, &agent.store) {
                        tracing::warn!(error = %e, "process node heartbeat not written");
                    }
                }
            }
        });
        Ok(ProcessNodeHandle {
            agent,
            tasks: vec![watcher, heartbeat],
        })
    }
}

impl ProcessNodeHandle {
    /// The name of the node's `Node`.
    pub fn node_name(&self) -> &str {
        &self.agent.config.name
    }

    /// Stops watching, then ends every pod: SIGTERM, the pod's grace period (at most 30 s),
    /// SIGKILL, and removes their directories and X displays.
    pub async fn stop(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let uids: Vec<String> = lock(&self.agent.pods).keys().cloned().collect();
        let waits: Vec<_> = uids.iter().filter_map(|u| self.agent.stop_pod(u)).collect();
        for w in waits {
            let _ = w.await;
        }
        self.agent
            .store
            .log_sources
            .unregister(&self.agent.config.name);
    }
}

impl Drop for ProcessNodeHandle {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.agent.kill_all_now();
        self.agent
            .store
            .log_sources
            .unregister(&self.agent.config.name);
    }
}
