//! Every implementation of a default plugin passes the shared vectors in `plugins/testdata/`:
//! the Rust plugins, and the quota policy again in JavaScript, Python and C.

mod common;

use common::{foreign_quota, plugins_dir, runtime, wasm};
use vdi_plugin_host::{Limits, vectors};

/// Python's interpreter start-up and JSON parsing take milliseconds; give it room.
const FOREIGN_LIMITS: Limits = Limits {
    timeout: std::time::Duration::from_secs(2),
    memory_bytes: 256 << 20,
    max_reason_bytes: vdi_plugin_host::DEFAULT_MAX_REASON_BYTES,
};

fn passes_all(name: &str, bytes: &[u8], dir: &str, limits: Limits) {
    let rt = runtime();
    let (plugin, _) = rt
        .load(name, bytes, None, limits, "")
        .unwrap_or_else(|e| panic!("load {name}: {e}"));
    let dir = plugins_dir().join("testdata").join(dir);
    let all = vectors::load_dir(&dir).expect("read vectors");
    assert!(all.len() >= 5, "too few vectors in {}", dir.display());
    let failures: Vec<String> = all
        .iter()
        .map(|(path, v)| vectors::run(&plugin, path, v))
        .filter(|r| !r.passed())
        .map(|r| {
            format!(
                "{}: {}\n  {}\n  actual: {}",
                r.path.display(),
                r.description,
                r.diff.join("\n  "),
                r.actual
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{name} failed {} of {} vectors:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn rust_quota_passes_its_vectors() {
    passes_all("quota", &wasm("vdi_quota"), "quota", Limits::default());
}

#[test]
fn javascript_quota_passes_the_same_vectors() {
    passes_all(
        "quota-js",
        &foreign_quota("quota-js"),
        "quota",
        FOREIGN_LIMITS,
    );
}

#[test]
fn python_quota_passes_the_same_vectors() {
    passes_all(
        "quota-py",
        &foreign_quota("quota-py"),
        "quota",
        FOREIGN_LIMITS,
    );
}

#[test]
fn c_quota_passes_the_same_vectors() {
    // Compiled C (clang + wasi-libc): as fast as Rust, so the default limits.
    passes_all(
        "quota-c",
        &foreign_quota("quota-c"),
        "quota",
        Limits::default(),
    );
}

#[test]
fn gpu_binpack_passes_its_vectors() {
    passes_all(
        "gpu-binpack",
        &wasm("vdi_gpu_binpack"),
        "gpu-binpack",
        Limits::default(),
    );
}

#[test]
fn desktop_passes_its_vectors() {
    passes_all(
        "desktop",
        &wasm("vdi_desktop"),
        "desktop",
        Limits::default(),
    );
}
