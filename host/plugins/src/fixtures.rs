//! Builders for unit tests.

use crate::types::{Resources, SessionRequest, SessionSpec, UserInfo};

/// A request named `name` in `namespace` by user `u` for template `t`.
pub(crate) fn request(
    name: &str,
    namespace: &str,
    gpu_slices: u32,
    video_encoder: bool,
) -> SessionRequest {
    SessionRequest {
        name: name.into(),
        namespace: namespace.into(),
        spec: SessionSpec {
            user: UserInfo {
                name: "u".into(),
                groups: vec![],
            },
            template: "t".into(),
            resources: Resources {
                gpu_slices,
                gpu_memory_mib: 1024 * u64::from(gpu_slices),
                cpu_millis: 1000,
                memory_mib: 1024,
                video_encoder,
            },
            timeout_seconds: 60,
            labels: vec![],
        },
    }
}
