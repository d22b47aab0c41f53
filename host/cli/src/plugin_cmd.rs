//! `vdi plugin inspect` and `vdi plugin test`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use vdi_plugin_host::{Limits, Runtime, RuntimeConfig, vectors};

/// Reads a component file.
pub(crate) fn read_wasm(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("read {}", path.display()))
}

/// Where compiled components are cached: `$VDI_CACHE_DIR`, else `~/.cache/vdi/plugins`.
pub(crate) fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("VDI_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vdi/plugins")))
}

/// A runtime caching compiled components under the user's cache directory.
pub(crate) fn runtime() -> Result<Runtime> {
    Runtime::new(RuntimeConfig {
        cache_dir: cache_dir(),
        ..RuntimeConfig::default()
    })
    .context("start the plugin runtime")
}

pub(crate) fn inspect(wasm: &Path, json: bool) -> Result<ExitCode> {
    let bytes = read_wasm(wasm)?;
    let info = runtime()?
        .inspect(&bytes)
        .with_context(|| format!("inspect {}", wasm.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("file:    {}", wasm.display());
    println!(
        "world:   {}",
        info.world
            .map_or("none (not a vdi:plugin component)".to_owned(), |w| format!(
                "vdi:plugin/{w}@0.1.0"
            ))
    );
    println!("digest:  {}", info.digest);
    println!(
        "size:    {} bytes ({:.1} KiB)",
        info.size,
        info.size as f64 / 1024.0
    );
    println!("imports:");
    for i in &info.imports {
        println!("  {i}");
    }
    println!("exports: {}", info.exports.join(", "));
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `vdi plugin test`.
#[derive(clap::Args)]
pub(crate) struct TestArgs {
    /// The component (.wasm).
    wasm: PathBuf,
    /// Directory of vectors (`*.json`).
    #[arg(long)]
    vectors: PathBuf,
    /// Time limit per decision, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Memory limit per instance, in MiB.
    #[arg(long, default_value_t = 256)]
    memory_mib: usize,
}

pub(crate) fn test(args: &TestArgs) -> Result<ExitCode> {
    let bytes = read_wasm(&args.wasm)?;
    let limits = Limits {
        timeout: std::time::Duration::from_millis(args.timeout_ms),
        memory_bytes: args.memory_mib << 20,
        ..Limits::default()
    };
    let name = args
        .wasm
        .file_stem()
        .map_or("plugin".into(), |s| s.to_string_lossy().into_owned());
    let (plugin, _) = runtime()?
        .load(&name, &bytes, None, limits, "")
        .with_context(|| format!("load {}", args.wasm.display()))?;
    let all = vectors::load_dir(&args.vectors).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        !all.is_empty(),
        "no *.json vectors in {}",
        args.vectors.display()
    );
    let mut failed = 0;
    for (path, vector) in &all {
        let r = vectors::run(&plugin, path, vector);
        let file = path
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        if r.passed() {
            println!("PASS {file}  {}", r.description);
        } else {
            failed += 1;
            println!("FAIL {file}  {}", r.description);
            for line in &r.diff {
                println!("     - {line}");
            }
            println!("     actual: {}", r.actual);
        }
    }
    println!("{} passed, {failed} failed", all.len() - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
