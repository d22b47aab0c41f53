//! Scheduler plugin `gpu-binpack`: places sessions on GPU time-slices.
//!
//! Bin-packing (the default) fills the fullest GPU that still fits, up to the configured density
//! (time-slices per GPU), so whole GPUs stay free for large sessions; `spread` picks the emptiest
//! instead. A GPU fits when it has the slices, the GPU memory and, if the session needs one, a
//! free hardware-encoder session; the node must have the CPU and memory. Ties break on node name
//! and GPU index, so decisions are deterministic.

use serde::{Deserialize, Serialize};
use vdi_plugin_sdk::{
    FieldError, Gpu, Node, Placement, PlacementDecision, PluginError, PluginSettings, Resources,
    Scheduler, SessionRequest,
};

/// Default sessions per GPU (time-slice density).
pub const DEFAULT_SLICES_PER_GPU: u32 = 8;

/// The plugin's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Settings {
    /// Most slices handed out per GPU, even when the GPU advertises more.
    pub slices_per_gpu: u32,
    /// Prefer the emptiest GPU (and node) instead of the fullest.
    pub spread: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            slices_per_gpu: DEFAULT_SLICES_PER_GPU,
            spread: false,
        }
    }
}

impl PluginSettings for Settings {
    fn validate(&self) -> Result<(), FieldError> {
        if self.slices_per_gpu == 0 {
            return Err(FieldError::new("slicesPerGpu", "must be greater than 0"));
        }
        Ok(())
    }
}

/// Why candidates were turned down, counted for the unschedulable reasons.
#[derive(Default)]
struct Misfits {
    cpu: u32,
    memory: u32,
    no_gpu: u32,
    slices: u32,
    gpu_memory: u32,
    encoder: u32,
}

impl Misfits {
    fn reasons(&self, nodes: usize) -> Vec<String> {
        let mut out = Vec::new();
        if nodes == 0 {
            out.push("no candidate nodes".to_owned());
        }
        let mut add = |n: u32, what: &str| {
            if n > 0 {
                out.push(format!("{n} {what}"));
            }
        };
        add(self.cpu, "node(s) lack CPU");
        add(self.memory, "node(s) lack memory");
        add(self.no_gpu, "node(s) have no GPU");
        add(self.slices, "GPU(s) have no free time-slice");
        add(self.gpu_memory, "GPU(s) lack GPU memory");
        add(self.encoder, "GPU(s) have no free video-encoder session");
        out
    }
}

/// A fitting (score, node, GPU); the lowest score wins.
type Candidate<'a> = (u64, &'a Node, Option<&'a Gpu>);

/// Keeps the better of `best` and `cand`; ties go to the first in node-name, GPU-index order.
fn pick<'a>(best: &mut Option<Candidate<'a>>, cand: Candidate<'a>) {
    let key = |c: &Candidate<'a>| (c.0, c.1.name.as_str(), c.2.map(|g| g.index));
    if best.as_ref().is_none_or(|b| key(&cand) < key(b)) {
        *best = Some(cand);
    }
}

/// The bin-packing scheduler.
pub struct GpuBinpack;

impl GpuBinpack {
    /// Slices still free on `gpu` under the density cap.
    fn free_slices(settings: &Settings, gpu: &Gpu) -> u32 {
        gpu.slices_total
            .min(settings.slices_per_gpu)
            .saturating_sub(gpu.slices_used)
    }

    fn gpu_fits(settings: &Settings, r: &Resources, gpu: &Gpu, misfits: &mut Misfits) -> bool {
        if Self::free_slices(settings, gpu) < r.gpu_slices {
            misfits.slices += 1;
        } else if gpu.memory_mib.saturating_sub(gpu.memory_used_mib) < r.gpu_memory_mib {
            misfits.gpu_memory += 1;
        } else if r.video_encoder && gpu.encoder_sessions_used >= gpu.encoder_sessions_total {
            misfits.encoder += 1;
        } else {
            return true;
        }
        false
    }

    /// Places one request with parsed settings.
    pub fn decide(
        settings: &Settings,
        request: &SessionRequest,
        nodes: &[Node],
    ) -> PlacementDecision {
        let r = &request.spec.resources;
        let mut misfits = Misfits::default();
        let mut best: Option<Candidate<'_>> = None;
        for node in nodes {
            if node.cpu_millis_free < r.cpu_millis {
                misfits.cpu += 1;
                continue;
            }
            if node.memory_mib_free < r.memory_mib {
                misfits.memory += 1;
                continue;
            }
            if r.gpu_slices == 0 {
                let free = u64::from(node.cpu_millis_free);
                let score = if settings.spread {
                    u64::MAX - free
                } else {
                    free
                };
                pick(&mut best, (score, node, None));
                continue;
            }
            if node.gpus.is_empty() {
                misfits.no_gpu += 1;
                continue;
            }
            for gpu in &node.gpus {
                if Self::gpu_fits(settings, r, gpu, &mut misfits) {
                    let free = u64::from(Self::free_slices(settings, gpu));
                    let score = if settings.spread {
                        u64::MAX - free
                    } else {
                        free
                    };
                    pick(&mut best, (score, node, Some(gpu)));
                }
            }
        }
        match best {
            None => PlacementDecision::Unschedulable(misfits.reasons(nodes.len())),
            Some((_, node, gpu)) => PlacementDecision::Placed(Placement {
                node: node.name.clone(),
                gpu: gpu.map(|g| g.index),
                reason: match gpu {
                    Some(g) => format!(
                        "{} GPU {} ({}): {} of {} slices used, {}",
                        node.name,
                        g.index,
                        g.product,
                        g.slices_used,
                        g.slices_total.min(settings.slices_per_gpu),
                        if settings.spread {
                            "spread"
                        } else {
                            "bin-packed"
                        }
                    ),
                    None => format!(
                        "{}: CPU-only session, {}m CPU free",
                        node.name, node.cpu_millis_free
                    ),
                },
            }),
        }
    }
}

impl GpuBinpack {
    /// Places `requests` in order, recording each placement in `nodes` so later requests of the
    /// batch see it.
    pub fn decide_batch(
        settings: &Settings,
        requests: &[SessionRequest],
        nodes: &mut [Node],
    ) -> Vec<PlacementDecision> {
        requests
            .iter()
            .map(|request| {
                let decision = Self::decide(settings, request, nodes);
                if let PlacementDecision::Placed(p) = &decision {
                    commit(nodes, p, &request.spec.resources);
                }
                decision
            })
            .collect()
    }
}

/// Records a placement in the inventory.
fn commit(nodes: &mut [Node], p: &Placement, r: &Resources) {
    let Some(node) = nodes.iter_mut().find(|n| n.name == p.node) else {
        return;
    };
    node.cpu_millis_free = node.cpu_millis_free.saturating_sub(r.cpu_millis);
    node.memory_mib_free = node.memory_mib_free.saturating_sub(r.memory_mib);
    if let Some(gpu) = p
        .gpu
        .and_then(|i| node.gpus.iter_mut().find(|g| g.index == i))
    {
        gpu.slices_used += r.gpu_slices;
        gpu.memory_used_mib += r.gpu_memory_mib;
        gpu.encoder_sessions_used += u32::from(r.video_encoder);
    }
}

impl Scheduler for GpuBinpack {
    fn configure(settings: &str) -> Result<String, FieldError> {
        Settings::normalise(settings)
    }

    fn place(
        settings: &str,
        requests: Vec<SessionRequest>,
        mut nodes: Vec<Node>,
    ) -> Result<Vec<PlacementDecision>, PluginError> {
        let settings = Settings::parse(settings)?;
        Ok(Self::decide_batch(&settings, &requests, &mut nodes))
    }
}

vdi_plugin_sdk::export_scheduler!(GpuBinpack);
