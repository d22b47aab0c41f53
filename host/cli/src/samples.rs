//! Sample inputs for `vdi up` and `vdi plugin bench`: a session request, a user's other
//! sessions, a GPU inventory and a template.

use serde::Serialize;
use serde::de::DeserializeOwned;
use vdi_plugin_host::types::{
    ActiveSession, AdmissionContext, Gpu, Node, Operation, Placement, Resources, SessionRequest,
    SessionSpec, TemplateInfo, UserInfo,
};

/// GPU product the sample nodes carry.
pub(crate) const SAMPLE_GPU: &str = "NVIDIA-H100-80GB-HBM3";

pub(crate) fn resources(gpu_slices: u32) -> Resources {
    Resources {
        gpu_slices,
        gpu_memory_mib: u64::from(gpu_slices) * 4096,
        cpu_millis: 2000,
        memory_mib: 4096,
        video_encoder: gpu_slices > 0,
    }
}

/// A request by `user` (in `groups`) for `template` with one GPU slice and an 8-hour timeout.
pub(crate) fn request(name: &str, user: &str, groups: &[&str], template: &str) -> SessionRequest {
    SessionRequest {
        name: name.into(),
        namespace: "vdi-sessions".into(),
        spec: SessionSpec {
            user: UserInfo {
                name: user.into(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            },
            template: template.into(),
            resources: resources(1),
            timeout_seconds: 8 * 3600,
            labels: vec![("team".into(), "design".into())],
        },
    }
}

/// A create by a user who already has one CPU-only session.
pub(crate) fn context() -> AdmissionContext {
    AdmissionContext {
        operation: Operation::Create,
        active_sessions: vec![ActiveSession {
            name: "notes".into(),
            template: "ubuntu-desktop".into(),
            resources: resources(0),
        }],
    }
}

/// `count` nodes with `gpus` GPUs of 8 slices each, filled in a varied but fixed pattern.
pub(crate) fn nodes(count: usize, gpus: u32) -> Vec<Node> {
    (0..count)
        .map(|i| Node {
            name: format!("gpu-node-{i:04}"),
            labels: vec![("nvidia.com/gpu.product".into(), SAMPLE_GPU.into())],
            cpu_millis_free: 64_000,
            memory_mib_free: 512 * 1024,
            gpus: (0..gpus)
                .map(|g| {
                    let used = ((i as u32).wrapping_mul(7) + g * 3) % 9;
                    Gpu {
                        index: g,
                        product: SAMPLE_GPU.into(),
                        memory_mib: 81_920,
                        memory_used_mib: u64::from(used) * 4096,
                        slices_total: 8,
                        slices_used: used.min(8),
                        encoder_sessions_total: 8,
                        encoder_sessions_used: used.min(8),
                    }
                })
                .collect(),
        })
        .collect()
}

pub(crate) fn template() -> TemplateInfo {
    TemplateInfo {
        name: "ubuntu-desktop".into(),
        display_name: "Ubuntu 24.04 desktop".into(),
        image: "ghcr.io/vdi-platform/ubuntu-desktop:24.04".into(),
        settings: r#"{"homeSize": "20Gi"}"#.into(),
    }
}

pub(crate) fn placement() -> Placement {
    Placement {
        node: "gpu-node-0001".into(),
        gpu: Some(0),
        reason: "sample".into(),
    }
}

/// Converts a host value into the plugin SDK's plain mirror type (same serde shape), for the
/// natively linked baselines.
pub(crate) fn to_sdk<T: Serialize, U: DeserializeOwned>(v: &T) -> anyhow::Result<U> {
    Ok(serde_json::from_value(serde_json::to_value(v)?)?)
}
