//! Shared by the runtime's integration tests: builds the guest components from source (once per
//! test process; cargo makes repeat builds a no-op) and fixtures for requests.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use vdi_plugin_host::types::{
    AdmissionContext, Operation, Resources, SessionRequest, SessionSpec, UserInfo,
};
use vdi_plugin_host::{Limits, Plugin, Runtime, RuntimeConfig};

/// `plugins/` at the repository root.
pub fn plugins_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plugins")
}

/// Builds every guest in `plugins/` for wasm32-wasip2 (release) and returns the output dir.
pub fn guests() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = plugins_dir();
        let target = std::env::var_os("VDI_PLUGINS_TARGET_DIR")
            .map_or_else(|| dir.join("target"), PathBuf::from);
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .status()
            .expect("run cargo to build the guest plugins");
        assert!(status.success(), "building the guest plugins failed");
        target.join("wasm32-wasip2/release")
    })
}

/// The bytes of guest `crate_name` (e.g. `vdi_quota`).
pub fn wasm(crate_name: &str) -> Vec<u8> {
    let path = guests().join(format!("{crate_name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A runtime whose compile cache is shared by all test processes, so each guest is compiled
/// once per engine configuration.
pub fn runtime() -> Runtime {
    let cache_dir = Some(guests().join("../../test-compile-cache"));
    Runtime::new(RuntimeConfig {
        cache_dir,
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

/// Builds the JavaScript or Python quota plugin (`quota-js`, `quota-py`) with its build script
/// and returns its bytes. The tools come from `scripts/setup.sh`.
pub fn foreign_quota(dir: &str) -> Vec<u8> {
    let script = plugins_dir().join(dir).join("build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .expect("run build script");
    assert!(
        out.status.success(),
        "{} failed (run scripts/setup.sh to install the JS and Python tool chains):\n{}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let path = plugins_dir().join(dir).join("out/quota.wasm");
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
