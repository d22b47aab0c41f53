//! Shared by the runtime's integration tests: the guest components (built from source by
//! `vdi-testkit`), a runtime on the shared compile cache, and fixtures for requests.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test file uses a different part"
)]

use vdi_plugin_host::types::{
    AdmissionContext, Operation, Resources, SessionRequest, SessionSpec, UserInfo,
};
use vdi_plugin_host::{Limits, Plugin, Runtime, RuntimeConfig};
use vdi_testkit::compile_cache;
pub use vdi_testkit::{foreign_quota, plugins_dir, wasm};

/// A runtime whose compile cache is shared by all test processes, so each guest is compiled
/// once per engine configuration.
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(compile_cache()),
        ..RuntimeConfig::default()
    })
    .expect("create runtime")
}

/// Loads guest `crate_name` with `settings` and default limits.
pub fn load(rt: &Runtime, crate_name: &str, settings: &str) -> Plugin {
    load_with(rt, crate_name, settings, Limits::default())
}

/// Loads guest `crate_name` with `settings` and `limits`.
pub fn load_with(rt: &Runtime, crate_name: &str, settings: &str, limits: Limits) -> Plugin {
    rt.load(crate_name, &wasm(crate_name), None, limits, settings)
        .unwrap_or_else(|e| panic!("load {crate_name}: {e}"))
        .0
}

/// A request by `alice` (group `staff`) for the `ubuntu` template with 1 GPU slice.
pub fn request() -> SessionRequest {
    SessionRequest {
        name: "desk-1".into(),
        namespace: "team-a".into(),
        spec: SessionSpec {
            user: UserInfo {
                name: "alice".into(),
                groups: vec!["staff".into()],
            },
            template: "ubuntu".into(),
            resources: Resources {
                gpu_slices: 1,
                gpu_memory_mib: 4096,
                cpu_millis: 2000,
                memory_mib: 4096,
                video_encoder: true,
            },
            timeout_seconds: 3600,
            labels: vec![],
        },
    }
}

/// A create with no other active sessions.
pub fn create() -> AdmissionContext {
    AdmissionContext {
        operation: Operation::Create,
        active_sessions: vec![],
    }
}
