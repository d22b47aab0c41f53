//! The host's re-check of a scheduler's placement: a plugin cannot over-commit.

use crate::error::CallError;
use crate::types::{Node, Placement, SessionRequest};

/// Checks that `p` names a candidate node (and GPU) with room for the request.
pub(crate) fn check(
    request: &SessionRequest,
    nodes: &[Node],
    p: &Placement,
) -> Result<(), CallError> {
    let bad = |reason: String| Err(CallError::BadOutput { reason });
    let r = &request.spec.resources;
    let Some(node) = nodes.iter().find(|n| n.name == p.node) else {
        return bad(format!(
            "placement names node {:?}, which is not a candidate",
            p.node
        ));
    };
    if node.cpu_millis_free < r.cpu_millis || node.memory_mib_free < r.memory_mib {
        return bad(format!(
            "node {:?} lacks the CPU or memory the session requests",
            node.name
        ));
    }
    match (r.gpu_slices, p.gpu) {
        (0, None) => Ok(()),
        (0, Some(i)) => bad(format!(
            "placement gives GPU {i} to a session that asks for no GPU slice"
        )),
        (_, None) => bad("placement gives no GPU to a session that asks for GPU slices".into()),
        (slices, Some(i)) => {
            let Some(gpu) = node.gpus.iter().find(|g| g.index == i) else {
                return bad(format!("node {:?} has no GPU {i}", node.name));
            };
            if gpu.slices_total.saturating_sub(gpu.slices_used) < slices {
                return bad(format!(
                    "GPU {i} on {:?} has {} of {} slices used; the session needs {slices}",
                    node.name, gpu.slices_used, gpu.slices_total
                ));
            }
            if gpu.memory_mib.saturating_sub(gpu.memory_used_mib) < r.gpu_memory_mib {
                return bad(format!(
                    "GPU {i} on {:?} lacks {} MiB of GPU memory",
                    node.name, r.gpu_memory_mib
                ));
            }
            if r.video_encoder && gpu.encoder_sessions_used >= gpu.encoder_sessions_total {
                return bad(format!(
                    "GPU {i} on {:?} has no free video-encoder session",
                    node.name
                ));
            }
            Ok(())
        }
    }
}
