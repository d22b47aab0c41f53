//! docs/plugins.md as a test: the ```sh walkthrough blocks run, as written and in order, against
//! `vdi up` and a loopback Distribution registry (new → edit → build → test → bench → push →
//! kubectl apply → Ready), so the page and the commands cannot drift. Every hook's JavaScript and
//! Python starters (tool chains from `scripts/setup.sh`) and the Rust scheduler and template
//! starters are created, built and pass their vectors.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{ClusterProcess, kubectl_path, repo_root};
use vdi_testkit::DistributionRegistry;

const VDI: &str = env!("CARGO_BIN_EXE_vdi");

/// The bodies of the ```sh walkthrough blocks of a Markdown page, in order.
fn walkthrough_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim() == "```sh walkthrough" => current = Some(String::new()),
            Some(body) if line.trim() == "```" => {
                blocks.push(std::mem::take(body));
                current = None;
            }
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "an unclosed walkthrough block");
    blocks
}

/// `PATH` with `vdi` and `kubectl` first.
fn path_with_tools() -> String {
    let vdi = Path::new(VDI).parent().expect("vdi's directory").to_owned();
    let kubectl = kubectl_path()
        .parent()
        .expect("kubectl's directory")
        .to_owned();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(
        [vdi, kubectl]
            .into_iter()
            .chain(std::env::split_paths(&rest)),
    )
    .expect("join PATH")
    .into_string()
    .expect("utf-8 PATH")
}

/// Where scaffolded Rust projects build: under `$VDI_PLUGINS_TARGET_DIR` (kept between runs)
/// when set.
fn scaffold_target(fallback: &Path) -> std::path::PathBuf {
    std::env::var_os("VDI_PLUGINS_TARGET_DIR").map_or_else(
        || fallback.join("target"),
        |d| Path::new(&d).join("scaffolds"),
    )
}

/// Runs `script` with bash (`set -euo pipefail`) in `dir`; returns stdout, panics on failure.
fn bash(script: &str, dir: &Path, env: &[(&str, &str)]) -> String {
    let out = Command::new("bash")
        .args(["-c", &format!("set -euo pipefail\n{script}")])
        .current_dir(dir)
        .env("PATH", path_with_tools())
        .envs(env.iter().copied())
        .output()
        .expect("run bash");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "failed:\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    stdout
}

#[test]
fn the_plugin_walkthrough_in_the_docs_runs_as_written() {
    let doc =
        std::fs::read_to_string(repo_root().join("docs/plugins.md")).expect("docs/plugins.md");
    let blocks = walkthrough_blocks(&doc);
    let all = blocks.concat();
    for step in [
        "vdi plugin new admission --lang rust my-policy",
        "vdi plugin build my-policy",
        "vdi plugin test my-policy/out/my-policy.wasm --vectors my-policy/vectors",
        "vdi plugin bench my-policy/out/my-policy.wasm",
        "vdi plugin push my-policy/out/my-policy.wasm oci://$REGISTRY/",
        "kubectl apply -f -",
        "source:\n    oci:",
        "sha256: $SHA",
        "kubectl get vdp my-policy",
    ] {
        assert!(all.contains(step), "the walkthrough lacks {step:?}");
    }

    let registry = DistributionRegistry::start();
    let data = tempfile::tempdir().unwrap();
    let cluster = ClusterProcess::up(data.path());
    let work = tempfile::tempdir().unwrap();
    let target = scaffold_target(work.path());
    let cache = work.path().join("cache");
    let env = [
        ("REGISTRY", registry.host()),
        ("KUBECONFIG", cluster.kubeconfig.display().to_string()),
        ("CARGO_TARGET_DIR", target.display().to_string()),
        ("VDI_CACHE_DIR", cache.display().to_string()),
        ("HOME", work.path().display().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // One shell, as a reader would type it: later blocks use variables of earlier ones.
    let script: String = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| format!("echo \"@@ block {i} $(date +%s.%N)\"\n{b}"))
        .collect();
    let started = Instant::now();
    let output = bash(&script, work.path(), &env);
    eprintln!("{output}");
    eprintln!("walkthrough: {:.1} s", started.elapsed().as_secs_f64());
    assert!(output.contains("3 passed, 0 failed"), "{output}");
    assert!(output.contains("pushed: oci://"), "{output}");
    let get = output.lines().last().unwrap_or_default();
    assert!(
        get.starts_with("my-policy") && get.contains("admission") && get.contains("Ready"),
        "{output}"
    );
}

#[test]
fn javascript_and_python_starters_of_every_hook_build_and_pass_their_vectors() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    for hook in ["admission", "scheduler", "template"] {
        for lang in ["js", "python"] {
            let name = format!("{hook}-{lang}");
            let out = bash(
                &format!(
                    "vdi plugin new {hook} --lang {lang} {name}\n\
                     vdi plugin build {name}\n\
                     vdi plugin test {name}/out/{name}.wasm --vectors {name}/vectors\n"
                ),
                work.path(),
                &[("VDI_CACHE_DIR", cache.to_str().expect("utf-8 path"))],
            );
            assert!(out.contains("3 passed, 0 failed"), "{name}:\n{out}");
            assert!(out.contains("sha256: sha256:"), "{name}:\n{out}");
        }
    }
}

#[test]
fn the_rust_scheduler_starter_builds_and_passes_its_vectors() {
    let work = tempfile::tempdir().unwrap();
    let target = scaffold_target(work.path());
    let cache = work.path().join("cache");
    let out = bash(
        "vdi plugin new scheduler --lang rust first-fit\n\
         vdi plugin build first-fit\n\
         vdi plugin test first-fit/out/first-fit.wasm --vectors first-fit/vectors\n",
        work.path(),
        &[
            ("CARGO_TARGET_DIR", target.to_str().expect("utf-8 path")),
            ("VDI_CACHE_DIR", cache.to_str().expect("utf-8 path")),
        ],
    );
    assert!(out.contains("3 passed, 0 failed"), "{out}");
}

#[test]
fn the_rust_template_starter_builds_and_passes_its_vectors() {
    let work = tempfile::tempdir().unwrap();
    let target = scaffold_target(work.path());
    let cache = work.path().join("cache");
    let out = bash(
        "vdi plugin new template --lang rust pod-and-service\n\
         vdi plugin build pod-and-service\n\
         vdi plugin test pod-and-service/out/pod-and-service.wasm --vectors pod-and-service/vectors\n",
        work.path(),
        &[
            ("CARGO_TARGET_DIR", target.to_str().expect("utf-8 path")),
            ("VDI_CACHE_DIR", cache.to_str().expect("utf-8 path")),
        ],
    );
    assert!(out.contains("3 passed, 0 failed"), "{out}");
}
