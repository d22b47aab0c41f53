//! `vdi plugin build`: whichever of the supported languages a project is written in.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail, ensure};
use vdi_plugin_host::Digest;

use super::{BuildArgs, REPO, plugin_name};

/// The hook a JS or Python project implements: the name in its package.json build script or
/// its README's first line, else admission.
pub(super) fn project_hook(dir: &Path) -> String {
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap_or_default();
    ["scheduler", "template", "admission"]
        .into_iter()
        .find(|h| readme.contains(&format!("`vdi:plugin` {h} plugin")))
        .unwrap_or("admission")
        .to_owned()
}

/// The first of `candidates` that exists, else `fallback` (looked up on PATH).
fn tool(env: &str, candidates: &[PathBuf], fallback: &str) -> PathBuf {
    std::env::var_os(env)
        .map(PathBuf::from)
        .into_iter()
        .chain(candidates.iter().cloned())
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(fallback))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("run {:?}", cmd.get_program()))?;
    ensure!(status.success(), "{cmd:?} failed ({status})");
    Ok(())
}

/// The `name` of the `[package]` in a Cargo.toml.
fn package_name(manifest: &str) -> Option<String> {
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[package]")
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "name").then(|| v.trim().trim_matches('"').to_owned())
        })
}

pub(crate) fn build(args: &BuildArgs) -> Result<ExitCode> {
    let dir = &args.dir;
    let name = plugin_name(&std::path::absolute(dir)?)
        .or_else(|_| plugin_name(&std::env::current_dir()?))?;
    let out = dir.join("out").join(format!("{name}.wasm"));
    std::fs::create_dir_all(dir.join("out"))?;
    if dir.join("Cargo.toml").exists() {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))?;
        let package = package_name(&manifest).context("no [package] name in Cargo.toml")?;
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| dir.join("target"), PathBuf::from);
        run(
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--release", "--target", "wasm32-wasip2"])
                .current_dir(dir)
                .env("CARGO_TARGET_DIR", &target)
                .env_remove("RUSTFLAGS"),
        )?;
        let built = target
            .join("wasm32-wasip2/release")
            .join(format!("{}.wasm", package.replace('-', "_")));
        std::fs::copy(&built, &out)
            .with_context(|| format!("copy {} to {}", built.display(), out.display()))?;
    } else if dir.join("package.json").exists() {
        let qjs = tool(
            "VDI_COMPONENTIZE_QJS",
            &[
                dir.join("node_modules/.bin/componentize-qjs"),
                Path::new(REPO).join("plugins/quota-js/node_modules/.bin/componentize-qjs"),
            ],
            "componentize-qjs",
        );
        let js = ["app.js", "index.js"]
            .into_iter()
            .find(|f| dir.join(f).exists())
            .context("no app.js in the project")?;
        run(Command::new(qjs)
            .args([
                "--wit",
                "wit",
                "--js",
                js,
                "-n",
                &project_hook(dir),
                "--sync",
                "-o",
            ])
            .arg(format!("out/{name}.wasm"))
            .current_dir(dir))?;
    } else if dir.join("app.py").exists() || dir.join("pyproject.toml").exists() {
        let py = tool(
            "VDI_COMPONENTIZE_PY",
            &[Path::new(REPO).join(".tools/venv/bin/componentize-py")],
            "componentize-py",
        );
        run(Command::new(py)
            .args([
                "-d",
                "wit",
                "-w",
                &project_hook(dir),
                "componentize",
                "app",
                "-o",
            ])
            .arg(format!("out/{name}.wasm"))
            .current_dir(dir))?;
    } else {
        bail!(
            "{}: no Cargo.toml, package.json or app.py: not a plugin project",
            dir.display()
        );
    }
    let bytes = std::fs::read(&out).with_context(|| format!("read {}", out.display()))?;
    println!("built: {}", out.display());
    println!("sha256: {}", Digest::of(&bytes));
    Ok(ExitCode::SUCCESS)
}
