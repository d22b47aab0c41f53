//! The host's re-check of a scheduler's placements: a plugin cannot over-commit, not even by
//! spreading the over-commit across the placements of one batch.

use crate::error::CallError;
use crate::types::{Node, Placement, PlacementDecision, Resources, SessionRequest};

fn bad<T>(reason: String) -> Result<T, CallError> {
    Err(CallError::BadOutput { reason })
}

/// What the batch's earlier placements took from one node (and GPU).
struct Taken<'a> {
    node: &'a str,
    gpu: Option<u32>,
    resources: Resources,
}

/// Checks the decisions of a batch, in order, against `nodes` plus the earlier placements.
pub(crate) fn check_batch(
    requests: &[SessionRequest],
    nodes: &[Node],
    decisions: &[PlacementDecision],
) -> Result<(), CallError> {
    if decisions.len() != requests.len() {
        return bad(format!(
            "{} decisions for {} requests",
            decisions.len(),
            requests.len()
        ));
    }
    let mut taken: Vec<Taken<'_>> = Vec::new();
    for (i, (request, decision)) in requests.iter().zip(decisions).enumerate() {
        if let PlacementDecision::Placed(p) = decision {
            check(request, nodes, p, &taken).map_err(|e| match e {
                CallError::BadOutput { reason } => CallError::BadOutput {
                    reason: format!("decision {i}: {reason}"),
                },
                other => other,
            })?;
            taken.push(Taken {
                node: &p.node,
                gpu: p.gpu,
                resources: request.spec.resources,
            });
        }
    }
    Ok(())
}

/// Checks that `p` names a candidate node (and GPU) with room for the request, after `taken`.
fn check(
    request: &SessionRequest,
    nodes: &[Node],
    p: &Placement,
    taken: &[Taken<'_>],
) -> Result<(), CallError> {
    let r = &request.spec.resources;
    let Some(node) = nodes.iter().find(|n| n.name == p.node) else {
        return bad(format!(
            "placement names node {:?}, which is not a candidate",
            p.node
        ));
    };
    let on_node = taken.iter().filter(|t| t.node == node.name);
    let (cpu, mem) = on_node.fold((0u64, 0u64), |(c, m), t| {
        (
            c + u64::from(t.resources.cpu_millis),
            m + t.resources.memory_mib,
        )
    });
    if u64::from(node.cpu_millis_free) < cpu + u64::from(r.cpu_millis)
        || node.memory_mib_free < mem + r.memory_mib
    {
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
            let (mut s_used, mut m_used, mut e_used) = (
                u64::from(gpu.slices_used),
                gpu.memory_used_mib,
                u64::from(gpu.encoder_sessions_used),
            );
            for t in taken
                .iter()
                .filter(|t| t.node == node.name && t.gpu == Some(i))
            {
                s_used += u64::from(t.resources.gpu_slices);
                m_used += t.resources.gpu_memory_mib;
                e_used += u64::from(t.resources.video_encoder);
            }
            if u64::from(gpu.slices_total) < s_used + u64::from(slices) {
                return bad(format!(
                    "GPU {i} on {:?} has {s_used} of {} slices used; the session needs {slices}",
                    node.name, gpu.slices_total
                ));
            }
            if gpu.memory_mib < m_used + r.gpu_memory_mib {
                return bad(format!(
                    "GPU {i} on {:?} lacks {} MiB of GPU memory",
                    node.name, r.gpu_memory_mib
                ));
            }
            if r.video_encoder && e_used >= u64::from(gpu.encoder_sessions_total) {
                return bad(format!(
                    "GPU {i} on {:?} has no free video-encoder session",
                    node.name
                ));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Gpu;

    fn request(gpu_slices: u32, video_encoder: bool) -> SessionRequest {
        crate::fixtures::request("s", "ns", gpu_slices, video_encoder)
    }

    fn node(slices_used: u32, encoder_sessions_used: u32) -> Node {
        Node {
            name: "n".into(),
            labels: vec![],
            cpu_millis_free: 4000,
            memory_mib_free: 8192,
            gpus: vec![Gpu {
                index: 0,
                product: "p".into(),
                memory_mib: 16_384,
                memory_used_mib: 0,
                slices_total: 8,
                slices_used,
                encoder_sessions_total: 2,
                encoder_sessions_used,
            }],
        }
    }

    fn at(node: &str, gpu: Option<u32>) -> Placement {
        Placement {
            node: node.into(),
            gpu,
            reason: String::new(),
        }
    }

    fn check(request: &SessionRequest, nodes: &[Node], p: &Placement) -> Result<(), CallError> {
        super::check(request, nodes, p, &[])
    }

    fn refused(r: Result<(), CallError>, needle: &str) {
        match r {
            Err(CallError::BadOutput { reason }) => assert!(reason.contains(needle), "{reason}"),
            other => panic!("expected BadOutput containing {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_placement_that_fits() {
        assert_eq!(
            check(&request(1, true), &[node(7, 1)], &at("n", Some(0))),
            Ok(())
        );
        assert_eq!(
            check(&request(0, false), &[node(8, 2)], &at("n", None)),
            Ok(())
        );
    }

    #[test]
    fn refuses_over_commit_and_made_up_targets() {
        refused(
            check(&request(1, false), &[node(8, 0)], &at("n", Some(0))),
            "8 of 8 slices used",
        );
        refused(
            check(&request(1, true), &[node(1, 2)], &at("n", Some(0))),
            "no free video-encoder session",
        );
        refused(
            check(&request(1, false), &[node(0, 0)], &at("elsewhere", Some(0))),
            "not a candidate",
        );
        refused(
            check(&request(1, false), &[node(0, 0)], &at("n", Some(3))),
            "has no GPU 3",
        );
        refused(
            check(&request(1, false), &[node(0, 0)], &at("n", None)),
            "gives no GPU",
        );
        refused(
            check(&request(0, false), &[node(0, 0)], &at("n", Some(0))),
            "asks for no GPU slice",
        );
        let mut big = request(1, false);
        big.spec.resources.cpu_millis = 5000;
        refused(
            check(&big, &[node(0, 0)], &at("n", Some(0))),
            "lacks the CPU or memory",
        );
    }

    #[test]
    fn counts_earlier_placements_of_the_batch() {
        let requests = [request(1, true), request(1, true), request(1, true)];
        let placed = PlacementDecision::Placed(at("n", Some(0)));
        // 6 slices and 0 of 2 encoder sessions used: two more fit, the third has no encoder.
        let nodes = [node(6, 0)];
        refused(
            check_batch(
                &requests,
                &nodes,
                &[placed.clone(), placed.clone(), placed.clone()],
            ),
            "decision 2: GPU 0",
        );
        let two = [
            placed.clone(),
            placed.clone(),
            PlacementDecision::Unschedulable(vec!["full".into()]),
        ];
        assert_eq!(check_batch(&requests, &nodes, &two), Ok(()));
        refused(
            check_batch(&requests, &nodes, &[placed]),
            "1 decisions for 3 requests",
        );
    }
}
