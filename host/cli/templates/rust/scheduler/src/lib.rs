//! Scheduler `{{name}}`: places each session on the first node (in the given order) with
//! enough free CPU and memory and, when it asks for GPU slices, the first GPU with enough free
//! slices and memory, counting the placements made earlier in the same batch.
//!
//! Build with `vdi plugin build`, check with `vdi plugin test out/{{name}}.wasm --vectors vectors`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use vdi_plugin_sdk::{
    FieldError, Node, Placement, PlacementDecision, PluginError, PluginSettings, Scheduler,
    SessionRequest,
};

/// The plugin's settings (`VDIPlugin.spec.settings`); none yet.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct Settings {}

impl PluginSettings for Settings {}

/// What the batch's earlier placements took from one node.
#[derive(Default)]
struct Taken {
    cpu_millis: u32,
    memory_mib: u64,
    /// Per GPU index: slices and memory.
    gpus: HashMap<u32, (u32, u64)>,
}

/// The policy.
struct Policy;

impl Policy {
    fn place_one(
        request: &SessionRequest,
        nodes: &[Node],
        taken: &mut HashMap<String, Taken>,
    ) -> PlacementDecision {
        let r = &request.spec.resources;
        let mut reasons = Vec::new();
        for node in nodes {
            let t = taken.entry(node.name.clone()).or_default();
            if node.cpu_millis_free.saturating_sub(t.cpu_millis) < r.cpu_millis
                || node.memory_mib_free.saturating_sub(t.memory_mib) < r.memory_mib
            {
                reasons.push(format!("{}: not enough CPU or memory", node.name));
                continue;
            }
            let gpu = if r.gpu_slices == 0 {
                None
            } else {
                let fits = node.gpus.iter().find(|g| {
                    let (slices, memory) = t.gpus.get(&g.index).copied().unwrap_or_default();
                    g.slices_total.saturating_sub(g.slices_used + slices) >= r.gpu_slices
                        && g.memory_mib.saturating_sub(g.memory_used_mib + memory)
                            >= r.gpu_memory_mib
                });
                match fits {
                    Some(g) => Some(g.index),
                    None => {
                        reasons.push(format!("{}: no GPU with enough free slices", node.name));
                        continue;
                    }
                }
            };
            t.cpu_millis += r.cpu_millis;
            t.memory_mib += r.memory_mib;
            if let Some(index) = gpu {
                let g = t.gpus.entry(index).or_default();
                g.0 += r.gpu_slices;
                g.1 += r.gpu_memory_mib;
            }
            return PlacementDecision::Placed(Placement {
                node: node.name.clone(),
                gpu,
                reason: "first fit".to_owned(),
            });
        }
        PlacementDecision::Unschedulable(reasons)
    }
}

impl Scheduler for Policy {
    fn configure(settings: &str) -> Result<String, FieldError> {
        Settings::normalise(settings)
    }

    fn place(
        settings: &str,
        requests: Vec<SessionRequest>,
        nodes: Vec<Node>,
    ) -> Result<Vec<PlacementDecision>, PluginError> {
        Settings::parse(settings)?;
        let mut taken = HashMap::new();
        Ok(requests
            .iter()
            .map(|r| Self::place_one(r, &nodes, &mut taken))
            .collect())
    }
}

vdi_plugin_sdk::export_scheduler!(Policy);
