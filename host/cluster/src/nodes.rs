//! Node agents: simulated GPU nodes (KWOK-style) that register `Node` objects and "run" the pods
//! bound to them, and a binder (shared with the process node, [`crate::process`]) for pods that name their node (`nodeName`, a hostname node
//! selector or required node affinity) with a resource-fit check.
//!
//! They work on the store in-process and react to its watch events, as a kubelet and a minimal
//! scheduler would through the API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::error::{ApiError, Result};
use crate::resources::ResourceType;
use crate::store::{EventType, Part, Store};
use vdi_crd::quantity;

/// Label marking nodes these agents simulate.
pub const SIMULATED_LABEL: &str = "vdi.dev/simulated";

/// What the simulated nodes look like and how their pods behave.
#[derive(Debug, Clone)]
pub struct SimulatedNodes {
    /// Node name prefix; nodes are `<prefix>-000`, `<prefix>-001`, ...
    pub prefix: String,
    /// How many nodes.
    pub count: usize,
    /// GPUs per node.
    pub gpus_per_node: u32,
    /// Time-slices per GPU (`nvidia.com/gpu.replicas`).
    pub slices_per_gpu: u32,
    /// GPU product label.
    pub gpu_product: String,
    /// GPU memory in MiB.
    pub gpu_memory_mib: u64,
    /// Allocatable CPU in millicores.
    pub cpu_millis: u64,
    /// Allocatable memory in MiB.
    pub memory_mib: u64,
    /// Time from binding to Running.
    pub start_delay: Duration,
    /// Share of pods (0.0..=1.0) that fail, and the reason (`ImagePullBackOff`, `OOMKilled`, ...).
    pub failure: Option<(f64, String)>,
}

impl Default for SimulatedNodes {
    fn default() -> Self {
        Self {
            prefix: "sim-gpu".into(),
            count: 4,
            gpus_per_node: 1,
            slices_per_gpu: 8,
            gpu_product: "NVIDIA-H100-80GB-HBM3".into(),
            gpu_memory_mib: 81_559,
            cpu_millis: 64_000,
            memory_mib: 256 * 1024,
            start_delay: Duration::from_millis(0),
            failure: None,
        }
    }
}

fn types(store: &Store) -> Result<(ResourceType, ResourceType)> {
    let find = |p: &str| {
        store
            .registry
            .find("", "v1", p)
            .ok_or_else(|| ApiError::Internal(format!("no {p} type")))
    };
    Ok((find("nodes")?, find("pods")?))
}

impl SimulatedNodes {
    /// The names of the nodes.
    pub fn names(&self) -> Vec<String> {
        (0..self.count)
            .map(|i| format!("{}-{i:03}", self.prefix))
            .collect()
    }

    /// Registers the nodes (idempotent) and starts the agent that binds and runs pods.
    pub fn start(self, store: Arc<Store>) -> Result<JoinHandle<()>> {
        let (node_t, _) = types(&store)?;
        let gpus = u64::from(self.gpus_per_node) * u64::from(self.slices_per_gpu);
        for name in self.names() {
            let node = json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "type": "kwok",
                    SIMULATED_LABEL: "true",
                    "nvidia.com/gpu.product": self.gpu_product,
                    "nvidia.com/gpu.memory": self.gpu_memory_mib.to_string(),
                    "nvidia.com/gpu.count": self.gpus_per_node.to_string(),
                    "nvidia.com/gpu.replicas": self.slices_per_gpu.to_string(),
                }},
                "spec": {},
            });
            if store.get(&node_t, "", &name).is_err() {
                store.create(&node_t, "", node)?;
            }
            let mut current = store.get(&node_t, "", &name)?;
            if !well_formed("nodes", &current) {
                continue;
            }
            let resources = json!({
                "cpu": format!("{}m", self.cpu_millis),
                "memory": format!("{}Mi", self.memory_mib),
                "pods": "250",
                "nvidia.com/gpu": gpus.to_string(),
            });
            let status = json!({
                "capacity": resources,
                "allocatable": resources,
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "simulated node is ready", "lastHeartbeatTime": crate::store::now(), "lastTransitionTime": crate::store::now()}],
                "nodeInfo": {"kubeletVersion": "v1.37.0-vdi-sim", "operatingSystem": "linux", "architecture": "amd64", "containerRuntimeVersion": "simulated://1.0"},
            });
            if let Some(o) = current.as_object_mut() {
                o.insert("status".into(), status);
            }
            store.update(&node_t, "", &name, current, Part::Status)?;
        }
        Ok(tokio::spawn(async move {
            if let Err(e) = self.run(store).await {
                tracing::error!(error = %e, "node agent stopped");
            }
        }))
    }

    async fn run(self, store: Arc<Store>) -> Result<()> {
        let (_, pod_t) = types(&store)?;
        let agent = Arc::new(self);
        let start = store.watch(&pod_t, None, None)?;
        for e in start.backlog {
            agent.clone().handle(&store, &pod_t, &e.object);
        }
        let mut rx = start.receiver;
        // Each node starts its pods on its own, as kubelets do: a pod's writes do not wait for
        // the pods before it (one loop writing each status in turn fell seconds behind a burst).
        let starting = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_STARTS));
        loop {
            match rx.recv().await {
                Ok(e) if e.key == "pods" && e.kind == EventType::Deleted => {
                    retry_pending(&store, &pod_t)
                }
                Ok(e) if e.key == "pods" => {
                    if matches!(
                        e.object["status"]["phase"].as_str(),
                        Some("Failed" | "Succeeded")
                    ) {
                        retry_pending(&store, &pod_t);
                    }
                    if !agent.wants(&e.object) {
                        continue;
                    }
                    let Ok(permit) = starting.clone().acquire_owned().await else {
                        return Ok(());
                    };
                    let (agent, store, pod_t) = (agent.clone(), store.clone(), pod_t.clone());
                    // The store's writes block while their commit is under way.
                    tokio::task::spawn_blocking(move || {
                        agent.handle(&store, &pod_t, &e.object);
                        drop(permit);
                    });
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "node agent lagged; re-reading pods");
                    let (pods, _, _) = store.list(&pod_t, None, None, None, &|_| true);
                    for p in pods {
                        agent.clone().handle(&store, &pod_t, &p);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
    }

    /// Whether `pod` (as an event carried it) may need this agent: a live pod still Pending.
    fn wants(&self, pod: &Value) -> bool {
        pod["metadata"]["deletionTimestamp"].is_null()
            && pod["status"]["phase"]
                .as_str()
                .is_none_or(|p| p == "Pending")
            && !pod["status"]["reason"].is_string()
    }

    fn handle(self: Arc<Self>, store: &Arc<Store>, pod_t: &ResourceType, pod: &Value) {
        if !well_formed("pods", pod) || !self.wants(pod) {
            return;
        }
        let ns = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let has_condition = |t: &str, status: &str| {
            pod["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == t && c["status"] == status))
        };
        match pod["spec"]["nodeName"].as_str() {
            Some(node) if self.names().iter().any(|n| n == node) => {
                if has_condition("Initialized", "True") {
                    return; // already starting (or failed to start)
                }
                if let Err(e) = self.start_pod(store, pod_t, &ns, &name) {
                    tracing::warn!(pod = %name, error = %e, "cannot start simulated pod");
                }
            }
            Some(_) => {}
            None => bind_unscheduled(store, pod_t, pod),
        }
    }

    /// Marks the pod as starting, then Running (or failed) after the start delay.
    fn start_pod(
        self: Arc<Self>,
        store: &Arc<Store>,
        pod_t: &ResourceType,
        ns: &str,
        name: &str,
    ) -> Result<()> {
        let mut pod = store.get(pod_t, ns, name)?;
        let started = pod["status"]["phase"]
            .as_str()
            .is_some_and(|p| p != "Pending")
            || pod["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Initialized"));
        if !well_formed("pods", &pod) || started {
            return Ok(()); // an event about an earlier version: started already
        }
        if self.start_delay.is_zero() {
            // Nothing to wait for: one status write, as a kubelet whose containers start at
            // once reports them (no "starting" version first).
            let status = self.final_status(name, &pod);
            if let Some(o) = pod.as_object_mut() {
                o.insert("status".into(), status);
            }
            store.update(pod_t, ns, name, pod, Part::Status)?;
            return Ok(());
        }
        let uid = pod["metadata"]["uid"].clone();
        let now = crate::store::now();
        pod["status"]["conditions"] = json!([
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        ]);
        store.update(pod_t, ns, name, pod, Part::Status)?;
        let (store, pod_t, ns, name) =
            (store.clone(), pod_t.clone(), ns.to_owned(), name.to_owned());
        tokio::spawn(async move {
            if !self.start_delay.is_zero() {
                tokio::time::sleep(self.start_delay).await;
            }
            let Ok(mut pod) = store.get(&pod_t, &ns, &name) else {
                return;
            };
            if pod["metadata"]["uid"] != uid || pod["metadata"]["deletionTimestamp"].is_string() {
                return;
            }
            let status = self.final_status(&name, &pod);
            if let Some(o) = pod.as_object_mut() {
                o.insert("status".into(), status);
            }
            if let Err(e) = store.update(&pod_t, &ns, &name, pod, Part::Status) {
                tracing::debug!(pod = %name, error = %e, "pod status not written");
            }
        });
        Ok(())
    }

    fn final_status(&self, name: &str, pod: &Value) -> Value {
        let now = crate::store::now();
        let containers: Vec<String> = pod["spec"]["containers"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        // A stable share of pods, chosen by name.
        let fails = self.failure.as_ref().filter(|(share, _)| {
            let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            (h % 10_000) as f64 / 10_000.0 < *share
        });
        let scheduled =
            json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": now});
        match fails {
            Some((_, reason))
                if reason == "OOMKilled" || reason == "Error" || reason == "CrashLoopBackOff" =>
            {
                json!({
                    "phase": "Failed",
                    "conditions": [scheduled, {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                        {"type": "Ready", "status": "False", "reason": "PodFailed", "lastTransitionTime": now}],
                    "containerStatuses": containers.iter().map(|c| json!({"name": c, "ready": false, "restartCount": 0, "image": "", "imageID": "",
                        "state": {"terminated": {"exitCode": 137, "reason": reason, "finishedAt": now}}})).collect::<Vec<_>>(),
                })
            }
            Some((_, reason)) => json!({
                "phase": "Pending",
                "conditions": [scheduled, {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                    {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": now}],
                "containerStatuses": containers.iter().map(|c| json!({"name": c, "ready": false, "restartCount": 0, "image": "", "imageID": "",
                    "state": {"waiting": {"reason": reason, "message": format!("simulated {reason}")}}})).collect::<Vec<_>>(),
            }),
            None => json!({
                "phase": "Running",
                "startTime": now,
                "podIP": "10.244.0.1",
                "conditions": [scheduled, {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                    {"type": "Ready", "status": "True", "lastTransitionTime": now}],
                "containerStatuses": containers.iter().map(|c| json!({"name": c, "ready": true, "started": true, "restartCount": 0, "image": "", "imageID": "",
                    "state": {"running": {"startedAt": now}}})).collect::<Vec<_>>(),
            }),
        }
    }
}

/// Pods a simulated node agent starts at once.
const CONCURRENT_STARTS: usize = 32;

/// Binds a pod without `nodeName` that names its node, unless it already waits as
/// unschedulable (it waits for capacity to free up: see [`retry_pending`]). Every node agent
/// (simulated or process) calls it; when several race, the first write wins.
pub(crate) fn bind_unscheduled(store: &Store, pod_t: &ResourceType, pod: &Value) {
    let unschedulable = pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "PodScheduled" && c["status"] == "False")
    });
    if unschedulable || pod["metadata"]["deletionTimestamp"].is_string() {
        return;
    }
    let (ns, name) = (
        pod["metadata"]["namespace"].as_str().unwrap_or_default(),
        pod["metadata"]["name"].as_str().unwrap_or_default(),
    );
    match bind(store, pod_t, ns, name) {
        // Another agent bound (or changed) it first.
        Ok(()) | Err(ApiError::Conflict { .. }) => {}
        Err(e) => tracing::warn!(pod = %name, error = %e, "cannot bind pod"),
    }
}

/// Whether the agents may work on a stored object: a malformed one (from before the API checked
/// what it stores) would break their writes, so it is skipped and reported instead.
pub(crate) fn well_formed(resource: &str, obj: &Value) -> bool {
    match crate::input::check_object(obj) {
        Ok(()) => true,
        Err(m) => {
            let key = format!(
                "{resource}/{}/{}",
                obj["metadata"]["namespace"].as_str().unwrap_or_default(),
                obj["metadata"]["name"].as_str().unwrap_or_default()
            );
            tracing::warn!(object = %key, reason = %m, "node agent skips a malformed stored object");
            false
        }
    }
}

/// The node a pod names without `nodeName`: a `kubernetes.io/hostname` node selector or
/// required node affinity on that label; otherwise the node selector's labels.
fn wanted_node(pod: &Value, nodes: &[Value]) -> Vec<String> {
    let spec = &pod["spec"];
    let selector = spec["nodeSelector"].as_object();
    let affinity: Vec<String> = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["matchExpressions"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["key"] == "kubernetes.io/hostname" && e["operator"] == "In")
        .flat_map(|e| e["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    nodes
        .iter()
        .filter(|n| {
            let labels = &n["metadata"]["labels"];
            let by_selector =
                selector.is_some_and(|s| s.iter().all(|(k, v)| labels.get(k) == Some(v)));
            let by_affinity = affinity
                .iter()
                .any(|h| n["metadata"]["name"].as_str() == Some(h));
            by_selector || by_affinity
        })
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// Requests of a pod: (millicores, bytes, GPUs).
fn requests(pod: &Value) -> (u64, u64, u64) {
    let mut total = (0, 0, 0);
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let r = &c["resources"];
        let get = |k: &str| {
            r["requests"][k]
                .as_str()
                .or_else(|| r["limits"][k].as_str())
        };
        total = add(
            total,
            (
                get("cpu").and_then(quantity::millicores).unwrap_or(0),
                get("memory").and_then(quantity::bytes).unwrap_or(0),
                get("nvidia.com/gpu").and_then(quantity::count).unwrap_or(0),
            ),
        );
    }
    total
}

/// Sums of requests; a pod's quantities are what its author wrote, so they saturate rather
/// than overflow.
fn add(a: (u64, u64, u64), b: (u64, u64, u64)) -> (u64, u64, u64) {
    (
        a.0.saturating_add(b.0),
        a.1.saturating_add(b.1),
        a.2.saturating_add(b.2),
    )
}

/// Tries again to bind the pods that did not fit, after capacity was freed.
pub(crate) fn retry_pending(store: &Store, pod_t: &ResourceType) {
    let (waiting, _, _) = store.list(pod_t, None, None, None, &|p| {
        p["spec"]["nodeName"].is_null() && p["metadata"]["deletionTimestamp"].is_null()
    });
    for p in waiting {
        let (ns, name) = (
            p["metadata"]["namespace"].as_str().unwrap_or_default(),
            p["metadata"]["name"].as_str().unwrap_or_default(),
        );
        if let Err(e) = bind(store, pod_t, ns, name) {
            tracing::debug!(pod = %name, error = %e, "retry of binding failed");
        }
    }
}

/// Binds a pod that names its node (by selector or affinity) if the node has room; otherwise
/// leaves it Pending with the standard `PodScheduled=False` condition.
fn bind(store: &Store, pod_t: &ResourceType, ns: &str, name: &str) -> Result<()> {
    let node_t = store
        .registry
        .find("", "v1", "nodes")
        .ok_or_else(|| ApiError::Internal("no nodes type".into()))?;
    let pod = store.get(pod_t, ns, name)?;
    // Another agent may have bound it since this one saw the event.
    if !well_formed("pods", &pod) || pod["spec"]["nodeName"].is_string() {
        return Ok(());
    }
    let (nodes, _, _) = store.list(&node_t, None, None, None, &|_| true);
    let candidates = wanted_node(&pod, &nodes);
    if candidates.is_empty() {
        return Ok(()); // not ours to place: it names no node
    }
    let (all_pods, _, _) = store.list(pod_t, None, None, None, &|p| {
        p["spec"]["nodeName"].is_string()
    });
    let mut used: HashMap<&str, (u64, u64, u64)> = HashMap::new();
    for p in all_pods
        .iter()
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
    {
        let r = requests(p);
        let e = used
            .entry(p["spec"]["nodeName"].as_str().unwrap_or_default())
            .or_default();
        *e = add(*e, r);
    }
    let want = requests(&pod);
    let mut misfit = Vec::new();
    for node_name in &candidates {
        let Some(node) = nodes
            .iter()
            .find(|n| n["metadata"]["name"].as_str() == Some(node_name.as_str()))
        else {
            continue;
        };
        let alloc = &node["status"]["allocatable"];
        let cap = (
            alloc["cpu"]
                .as_str()
                .and_then(quantity::millicores)
                .unwrap_or(0),
            alloc["memory"]
                .as_str()
                .and_then(quantity::bytes)
                .unwrap_or(0),
            alloc["nvidia.com/gpu"]
                .as_str()
                .and_then(quantity::count)
                .unwrap_or(0),
        );
        let u = add(
            used.get(node_name.as_str()).copied().unwrap_or_default(),
            want,
        );
        if u.0 > cap.0 {
            misfit.push("Insufficient cpu");
        } else if u.1 > cap.1 {
            misfit.push("Insufficient memory");
        } else if u.2 > cap.2 {
            misfit.push("Insufficient nvidia.com/gpu");
        } else {
            let mut bound = pod.clone();
            bound["spec"]["nodeName"] = json!(node_name);
            store.update(pod_t, ns, name, bound, Part::Main)?;
            return Ok(());
        }
    }
    misfit.sort_unstable();
    misfit.dedup();
    let message = format!(
        "0/{} nodes are available: {}.",
        nodes.len(),
        misfit.join(", ")
    );
    let unchanged = pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["reason"] == "Unschedulable" && c["message"] == message.as_str())
    });
    if unchanged {
        return Ok(());
    }
    let mut pending = pod;
    pending["status"]["phase"] = json!("Pending");
    pending["status"]["conditions"] = json!([{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": message,
        "lastTransitionTime": crate::store::now(),
    }]);
    store.update(pod_t, ns, name, pending, Part::Status)?;
    Ok(())
}
