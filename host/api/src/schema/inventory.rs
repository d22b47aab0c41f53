//! `nodes`: the GPU inventory per node, as the scheduler sees it (the operator's
//! `inventory`), with the sessions holding each GPU.

use async_graphql::{ID, SimpleObject};
use k8s_openapi::api::core::v1::Node as KubeNode;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt as _};
use vdi_crd::VDISession;
use vdi_operator::inventory::{Holding, inventory};

use crate::error::{ApiError, Result};
use crate::ids;

/// One node.
#[derive(SimpleObject, Debug, Clone)]
pub struct NodeInventory {
    /// Its name.
    pub name: String,
    /// Free CPU in millicores.
    pub cpu_millis_free: u32,
    /// Free memory in MiB.
    pub memory_mib_free: u64,
    /// Its GPUs.
    pub gpus: Vec<GpuInventory>,
}

/// One GPU.
#[derive(SimpleObject, Debug, Clone)]
pub struct GpuInventory {
    /// Index on the node.
    pub index: u32,
    /// Product name.
    pub product: String,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Memory held by sessions, MiB.
    pub memory_used_mib: u64,
    /// Time-slices.
    pub slices_total: u32,
    /// Time-slices held.
    pub slices_used: u32,
    /// Hardware encoder sessions.
    pub encoder_sessions_total: u32,
    /// Encoder sessions held.
    pub encoder_sessions_used: u32,
    /// The sessions on this GPU.
    pub sessions: Vec<ID>,
}

/// What a placed session holds, if it holds anything.
fn holding(s: &VDISession) -> Option<Holding> {
    let st = s.status.as_ref()?;
    if !st.phase().holds_capacity() {
        return None;
    }
    Some(Holding {
        node: st.node.clone()?,
        gpu: st.gpu,
        resources: st.admitted.as_ref()?.resources,
    })
}

/// The inventory as `client` may read it (nodes and every session: admins).
pub async fn node_inventory(client: &Client) -> Result<Vec<NodeInventory>> {
    let nodes: Vec<KubeNode> = Api::<KubeNode>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(ApiError::from)?
        .items;
    let sessions: Vec<VDISession> = Api::<VDISession>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(ApiError::from)?
        .items;
    let held: Vec<(ID, Holding)> = sessions
        .iter()
        .filter_map(|s| {
            let id = ID(ids::session_id(
                &s.namespace().unwrap_or_default(),
                &s.name_any(),
            ));
            holding(s).map(|h| (id, h))
        })
        .collect();
    let nodes = inventory(&nodes, held.iter().map(|(_, h)| h));
    Ok(nodes
        .into_iter()
        .map(|n| NodeInventory {
            gpus: n
                .gpus
                .into_iter()
                .map(|g| GpuInventory {
                    sessions: held
                        .iter()
                        .filter(|(_, h)| h.node == n.name && h.gpu == Some(g.index))
                        .map(|(id, _)| id.clone())
                        .collect(),
                    index: g.index,
                    product: g.product,
                    memory_mib: g.memory_mib,
                    memory_used_mib: g.memory_used_mib,
                    slices_total: g.slices_total,
                    slices_used: g.slices_used,
                    encoder_sessions_total: g.encoder_sessions_total,
                    encoder_sessions_used: g.encoder_sessions_used,
                })
                .collect(),
            name: n.name,
            cpu_millis_free: n.cpu_millis_free,
            memory_mib_free: n.memory_mib_free,
        })
        .collect())
}
