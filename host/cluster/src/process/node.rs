//! Registering the process node as a `Node` with this machine's capacity, and its heartbeat.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::ProcessNode;
use crate::error::{ApiError, Result};
use crate::store::{Part, Store};

/// One GPU as `nvidia-smi` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gpu {
    /// Product name (`NVIDIA H200`).
    pub name: String,
    /// Memory in MiB.
    pub memory_mib: u64,
}

/// Parses `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits`; a line
/// that does not parse is an error naming it.
pub(crate) fn parse_nvidia_smi(out: &str) -> std::result::Result<Vec<Gpu>, String> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (name, memory) = line
                .rsplit_once(',')
                .ok_or_else(|| format!("nvidia-smi line {line:?}: expected `name, memory`"))?;
            let memory_mib = memory.trim().parse::<u64>().map_err(|_| {
                format!("nvidia-smi line {line:?}: memory.total {memory:?} is not a number of MiB")
            })?;
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("nvidia-smi line {line:?}: empty name"));
            }
            Ok(Gpu {
                name: name.to_owned(),
                memory_mib,
            })
        })
        .collect()
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub(crate) fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let kib: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => kib.checked_mul(1024),
        Some(_) => None,
    }
}

/// The GPU product label as GPU feature discovery writes it (spaces become dashes).
pub(crate) fn product_label(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join("-")
}

/// The node's labels and resources (pure).
pub(crate) fn node_object(
    config: &ProcessNode,
    cpus: u64,
    memory_bytes: u64,
    gpus: &[Gpu],
) -> (Value, Value) {
    let mut labels = json!({
        "kubernetes.io/hostname": config.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch(),
        vdi_crd::RUNTIME_LABEL: "process",
    });
    let mut resources = json!({
        "cpu": cpus.to_string(),
        "memory": format!("{}Ki", memory_bytes / 1024),
        "pods": config.max_pods.to_string(),
    });
    if let Some(first) = gpus.first() {
        labels["nvidia.com/gpu.product"] = json!(product_label(&first.name));
        labels["nvidia.com/gpu.memory"] = json!(first.memory_mib.to_string());
        labels["nvidia.com/gpu.count"] = json!(gpus.len().to_string());
        labels["nvidia.com/gpu.replicas"] = json!(config.slices_per_gpu.to_string());
        let slices = (gpus.len() as u64).saturating_mul(u64::from(config.slices_per_gpu));
        resources["nvidia.com/gpu"] = json!(slices.to_string());
    }
    (labels, resources)
}

/// Kubernetes' name of this machine's architecture.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The GPUs `nvidia-smi` lists (none when it is missing or fails; logged either way).
async fn detect_gpus() -> Vec<Gpu> {
    let run = tokio::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,memory.total",
            "--format=csv,noheader,nounits",
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(10), run).await {
        Ok(Ok(out)) if out.status.success() => {
            match parse_nvidia_smi(&String::from_utf8_lossy(&out.stdout)) {
                Ok(gpus) if !gpus.is_empty() => {
                    tracing::info!(count = gpus.len(), product = %gpus[0].name, "process node: GPUs found by nvidia-smi");
                    gpus
                }
                Ok(_) => {
                    tracing::info!("process node: nvidia-smi lists no GPU; no GPU resources");
                    Vec::new()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "process node: nvidia-smi output not understood; no GPU resources");
                    Vec::new()
                }
            }
        }
        Ok(Ok(out)) => {
            tracing::info!(status = %out.status, "process node: nvidia-smi failed; no GPU resources");
            Vec::new()
        }
        Ok(Err(e)) => {
            tracing::info!(error = %e, "process node: no nvidia-smi; no GPU resources");
            Vec::new()
        }
        Err(_) => {
            tracing::warn!("process node: nvidia-smi timed out; no GPU resources");
            Vec::new()
        }
    }
}

fn nodes_type(store: &Store) -> Result<crate::resources::ResourceType> {
    store
        .registry
        .find("", "v1", "nodes")
        .ok_or_else(|| ApiError::Internal("no nodes type".into()))
}

/// Creates or refreshes the `Node` with this machine's capacity.
pub(crate) async fn register(config: &ProcessNode, store: &Arc<Store>) -> Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| parse_meminfo(&m))
        .unwrap_or(0);
    let gpus = detect_gpus().await;
    let (labels, resources) = node_object(config, cpus, memory, &gpus);
    let node_t = nodes_type(store)?;
    let name = &config.name;
    let mut node = match store.get(&node_t, "", name) {
        Ok(n) => n,
        Err(_) => store.create(
            &node_t,
            "",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}, "spec": {}}),
        )?,
    };
    if node["metadata"]["labels"] != labels {
        node["metadata"]["labels"] = labels;
        node = store.update(&node_t, "", name, node, Part::Main)?;
    }
    let now = crate::store::now();
    node["status"] = json!({
        "capacity": resources,
        "allocatable": resources,
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "process node agent is posting ready status",
            "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "nodeInfo": {"kubeletVersion": concat!("v1.37.0-vdi-process-", env!("CARGO_PKG_VERSION")),
            "operatingSystem": "linux", "architecture": arch(),
            "containerRuntimeVersion": concat!("process://", env!("CARGO_PKG_VERSION"))},
    });
    store.update(&node_t, "", name, node, Part::Status)?;
    Ok(())
}

/// Refreshes the Ready condition's heartbeat.
pub(crate) fn heartbeat(name: &str, store: &Store) -> Result<()> {
    let node_t = nodes_type(store)?;
    let mut node = store.get(&node_t, "", name)?;
    let Some(conditions) = node["status"]["conditions"].as_array_mut() else {
        return Err(ApiError::Internal(format!("node {name} has no conditions")));
    };
    for c in conditions.iter_mut().filter(|c| c["type"] == "Ready") {
        c["lastHeartbeatTime"] = json!(crate::store::now());
    }
    store.update(&node_t, "", name, node, Part::Status)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_lines_parse_and_bad_ones_are_named() {
        let gpus = parse_nvidia_smi("NVIDIA H200, 143771\nNVIDIA H200, 143771\n").expect("parse");
        assert_eq!(gpus.len(), 2);
        assert_eq!(
            gpus[0],
            Gpu {
                name: "NVIDIA H200".into(),
                memory_mib: 143_771
            }
        );
        assert!(parse_nvidia_smi("").expect("empty").is_empty());
        let err = parse_nvidia_smi("NVIDIA H200, [N/A]").expect_err("n/a");
        assert!(err.contains("memory.total"), "{err}");
        assert!(parse_nvidia_smi("just a name").is_err());
    }

    #[test]
    fn meminfo_total_is_in_bytes() {
        assert_eq!(
            parse_meminfo("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24_576_000 * 1024)
        );
        assert_eq!(parse_meminfo("MemFree: 1 kB"), None);
    }

    #[test]
    fn gpu_labels_only_with_gpus() {
        let config = ProcessNode::new("/tmp/x", "/bin/true");
        let (labels, res) = node_object(&config, 2, 1 << 30, &[]);
        assert_eq!(labels[vdi_crd::RUNTIME_LABEL], "process");
        assert!(labels.get("nvidia.com/gpu.product").is_none());
        assert!(res.get("nvidia.com/gpu").is_none());
        assert_eq!(res["memory"], "1048576Ki");
        let gpu = Gpu {
            name: "NVIDIA H200".into(),
            memory_mib: 143_771,
        };
        let gpus = [gpu.clone(), gpu];
        let (labels, res) = node_object(&config, 2, 1 << 30, &gpus);
        assert_eq!(labels["nvidia.com/gpu.product"], "NVIDIA-H200");
        assert_eq!(labels["nvidia.com/gpu.count"], "2");
        assert_eq!(labels["nvidia.com/gpu.replicas"], "8");
        assert_eq!(res["nvidia.com/gpu"], "16");
    }
}
