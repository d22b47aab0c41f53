//! What every host test suite needs from the repository: its root, the guest plugins in
//! `plugins/` built from source for wasm32-wasip2 (once per test process; cargo makes repeat
//! builds a no-op), with the compile cache the suites share, and the development OpenID Provider
//! (`tools/dev-idp`) with a scripted browser for its login ([`DevIdp`]), a real OCI
//! Distribution registry on loopback ([`DistributionRegistry`]), and the `vdi-streamer` binary
//! the local process node runs ([`streamer_binary`]).
//!
//! A dev-dependency only, of any host crate (it depends on none of them, so it makes no cycle).
//! It must not hold fixtures of one crate's types: those stay in that crate's `tests/common`.

pub mod idp;
pub mod registry;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

pub use idp::{DevIdp, Tokens};
pub use registry::DistributionRegistry;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `plugins/` at the repository root.
pub fn plugins_dir() -> PathBuf {
    repo_root().join("plugins")
}

/// Builds every guest in `plugins/` for wasm32-wasip2 (release, into `$VDI_PLUGINS_TARGET_DIR`
/// or `plugins/target`) and returns the directory holding the `.wasm` files.
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

/// Builds the `vdi-streamer` binary (a no-op when the workspace build made it) and returns its
/// path: what the local process node runs for the streamer image. It lands beside the test
/// binaries' `deps/` directory, in the profile directory every workspace binary shares.
pub fn streamer_binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--quiet",
                "-p",
                "vdi-streamer",
                "--bin",
                "vdi-streamer",
            ])
            .current_dir(repo_root())
            .status()
            .expect("run cargo to build vdi-streamer");
        assert!(status.success(), "building vdi-streamer failed");
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("the test binary lives in <target>/<profile>/deps");
        let bin = profile_dir.join("vdi-streamer");
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// The bytes of guest `crate_name` (e.g. `vdi_quota`), built by [`guests`].
pub fn wasm(crate_name: &str) -> Vec<u8> {
    let path = guests().join(format!("{crate_name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The plugin runtime's compile cache shared by all test processes, so each guest is compiled
/// once per engine configuration.
pub fn compile_cache() -> PathBuf {
    guests().join("../../test-compile-cache")
}

/// Builds the JavaScript or Python quota plugin (`quota-js`, `quota-py`) with its build script
/// (which skips an up-to-date build) and returns its bytes. The tools come from
/// `scripts/setup.sh`.
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
