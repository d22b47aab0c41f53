//! The GPU inventory the scheduler plugin sees: Nodes (allocatable, GPU feature discovery
//! labels) minus what placed sessions hold.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Node as KubeNode;
use vdi_crd::{EffectiveResources, quantity};
use vdi_plugin_host::types::{Gpu, Node};

/// GPU feature discovery label: GPUs per node.
pub const GPU_COUNT_LABEL: &str = "nvidia.com/gpu.count";
/// GPU feature discovery label: time-slices per GPU.
pub const GPU_REPLICAS_LABEL: &str = "nvidia.com/gpu.replicas";
/// GPU feature discovery label: GPU memory in MiB.
pub const GPU_MEMORY_LABEL: &str = "nvidia.com/gpu.memory";
/// GPU feature discovery label: product name.
pub const GPU_PRODUCT_LABEL: &str = "nvidia.com/gpu.product";
/// Concurrent hardware encoder sessions per GPU (default: one per slice).
pub const GPU_ENCODER_SESSIONS_LABEL: &str = "vdi.dev/gpu.encoder-sessions";
/// The extended resource the NVIDIA device plugin advertises.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// What one placed session holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    /// Node.
    pub node: String,
    /// GPU index, for GPU sessions.
    pub gpu: Option<u32>,
    /// Resources.
    pub resources: EffectiveResources,
}

/// Most GPUs one node is taken to have, whatever its labels say (a label is not proof).
pub const MAX_GPUS_PER_NODE: u32 = 64;

fn ready(node: &KubeNode) -> bool {
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    ready && !unschedulable
}

/// The schedulable nodes with their free capacity, sorted by name.
pub fn inventory<'a>(
    nodes: impl IntoIterator<Item = &'a KubeNode>,
    holdings: impl IntoIterator<Item = &'a Holding>,
) -> Vec<Node> {
    let mut used_node: HashMap<&str, (u64, u64)> = HashMap::new();
    let mut used_gpu: HashMap<(&str, u32), (u32, u64, u32)> = HashMap::new();
    for h in holdings {
        let n = used_node.entry(h.node.as_str()).or_default();
        n.0 += u64::from(h.resources.cpu_millis);
        n.1 += h.resources.memory_mib;
        if let Some(g) = h.gpu {
            let u = used_gpu.entry((h.node.as_str(), g)).or_default();
            u.0 += h.resources.gpu_slices;
            u.1 += h.resources.gpu_memory_mib;
            u.2 += u32::from(h.resources.video_encoder);
        }
    }
    let mut out: Vec<Node> = nodes
        .into_iter()
        .filter(|n| ready(n))
        .filter_map(|n| {
            let name = n.metadata.name.clone()?;
            let labels: BTreeMap<String, String> = n.metadata.labels.clone().unwrap_or_default();
            let alloc = n.status.as_ref()?.allocatable.clone().unwrap_or_default();
            // Nodes are written by whoever runs the kubelet: a malformed or absurd value counts
            // as nothing rather than as a huge number.
            let get = |k: &str, parse: fn(&str) -> Option<u64>| {
                alloc.get(k).and_then(|q| parse(&q.0)).unwrap_or(0)
            };
            let cpu = get("cpu", quantity::millicores);
            let memory = get("memory", quantity::bytes) >> 20;
            let slices_total = u32::try_from(get(GPU_RESOURCE, quantity::count)).unwrap_or(0);
            let label_num = |k: &str| labels.get(k).and_then(|v| v.parse::<u32>().ok());
            let gpu_count = label_num(GPU_COUNT_LABEL)
                .unwrap_or(u32::from(slices_total > 0))
                .min(MAX_GPUS_PER_NODE);
            let per_gpu = label_num(GPU_REPLICAS_LABEL)
                .unwrap_or_else(|| slices_total.checked_div(gpu_count).unwrap_or(0));
            let memory_mib = labels
                .get(GPU_MEMORY_LABEL)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let encoders = label_num(GPU_ENCODER_SESSIONS_LABEL).unwrap_or(per_gpu);
            let product = labels.get(GPU_PRODUCT_LABEL).cloned().unwrap_or_default();
            let (cpu_used, mem_used) = used_node.get(name.as_str()).copied().unwrap_or_default();
            let gpus = (0..gpu_count)
                .map(|index| {
                    let (s, m, e) = used_gpu
                        .get(&(name.as_str(), index))
                        .copied()
                        .unwrap_or_default();
                    Gpu {
                        index,
                        product: product.clone(),
                        memory_mib,
                        memory_used_mib: m,
                        slices_total: per_gpu,
                        slices_used: s,
                        encoder_sessions_total: encoders,
                        encoder_sessions_used: e,
                    }
                })
                .collect();
            Some(Node {
                labels: labels.into_iter().collect(),
                cpu_millis_free: u32::try_from(cpu.saturating_sub(cpu_used)).unwrap_or(u32::MAX),
                memory_mib_free: memory.saturating_sub(mem_used),
                gpus,
                name,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;

    fn node(name: &str, ready: &str) -> KubeNode {
        let mut n = KubeNode::default();
        n.metadata.name = Some(name.into());
        n.metadata.labels = Some(BTreeMap::from([
            (GPU_COUNT_LABEL.into(), "2".into()),
            (GPU_REPLICAS_LABEL.into(), "8".into()),
            (GPU_MEMORY_LABEL.into(), "81559".into()),
            (GPU_PRODUCT_LABEL.into(), "NVIDIA-H100".into()),
        ]));
        n.status = Some(NodeStatus {
            allocatable: Some(BTreeMap::from([
                ("cpu".into(), Quantity("64".into())),
                ("memory".into(), Quantity("256Gi".into())),
                (GPU_RESOURCE.into(), Quantity("16".into())),
            ])),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: ready.into(),
                ..NodeCondition::default()
            }]),
            ..NodeStatus::default()
        });
        n
    }

    #[test]
    fn subtracts_holdings_per_node_and_gpu() {
        let nodes = [node("b", "True"), node("a", "True"), node("down", "False")];
        let r = EffectiveResources {
            gpu_slices: 2,
            gpu_memory_mib: 8192,
            cpu_millis: 2000,
            memory_mib: 4096,
            video_encoder: true,
        };
        let holdings = [
            Holding {
                node: "a".into(),
                gpu: Some(1),
                resources: r,
            },
            Holding {
                node: "a".into(),
                gpu: Some(1),
                resources: r,
            },
        ];
        let inv = inventory(&nodes, &holdings);
        assert_eq!(
            inv.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"],
            "sorted, not-ready node left out"
        );
        let a = &inv[0];
        assert_eq!(a.cpu_millis_free, 60_000);
        assert_eq!(a.memory_mib_free, 256 * 1024 - 8192);
        assert_eq!(a.gpus.len(), 2);
        assert_eq!((a.gpus[0].slices_used, a.gpus[1].slices_used), (0, 4));
        assert_eq!(a.gpus[1].memory_used_mib, 16_384);
        assert_eq!(a.gpus[1].encoder_sessions_used, 2);
        assert_eq!(a.gpus[1].slices_total, 8);
        assert_eq!(inv[1].gpus[1].slices_used, 0);
    }

    #[test]
    fn a_node_without_gpus_is_listed_for_cpu_only_sessions() {
        let mut n = node("local", "True");
        n.metadata.labels = Some(BTreeMap::from([(
            "vdi.dev/runtime".into(),
            "process".into(),
        )]));
        if let Some(alloc) = n.status.as_mut().and_then(|s| s.allocatable.as_mut()) {
            alloc.remove(GPU_RESOURCE);
        }
        let inv = inventory([&n], &[]);
        let local = inv.first().expect("the node is listed");
        assert!(local.gpus.is_empty(), "{:?}", local.gpus);
        assert_eq!(local.cpu_millis_free, 64_000);
    }

    #[test]
    fn absurd_or_malformed_node_values_count_as_little_or_nothing() {
        let mut n = node("big", "True");
        let labels = n.metadata.labels.get_or_insert_default();
        labels.insert(GPU_COUNT_LABEL.into(), "4294967295".into());
        labels.insert(GPU_MEMORY_LABEL.into(), "lots".into());
        let alloc = n
            .status
            .as_mut()
            .and_then(|s| s.allocatable.as_mut())
            .expect("allocatable");
        alloc.insert("cpu".into(), Quantity("-5".into()));
        alloc.insert("memory".into(), Quantity("1e999".into()));
        let inv = inventory([&n], &[]);
        let big = inv.first().expect("the node is listed");
        assert_eq!(big.gpus.len(), MAX_GPUS_PER_NODE as usize);
        assert_eq!(big.gpus.first().map(|g| g.memory_mib), Some(0));
        assert_eq!((big.cpu_millis_free, big.memory_mib_free), (0, 0));
    }
}
