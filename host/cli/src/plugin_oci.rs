//! `vdi plugin push` and `vdi plugin pull`: modules through an OCI registry, as Wasm artifacts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use vdi_operator::modules::MAX_MODULE_BYTES;
use vdi_operator::modules::oci::{OciReference, OciRegistries, RegistryAuth, auth_for};
use vdi_plugin_host::Digest;

/// A WebAssembly component starts with the magic and the component layer's version.
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// How to reach the registry.
#[derive(clap::Args)]
pub(crate) struct RegistryArgs {
    /// A Docker config (`~/.docker/config.json`, or a `kubernetes.io/dockerconfigjson`
    /// Secret's `.dockerconfigjson`) with credentials for the registry; anonymous without.
    #[arg(long, env = "VDI_REGISTRY_CONFIG")]
    registry_config: Option<PathBuf>,
    /// Extra CA certificates (PEM) trusted for HTTPS registries.
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

impl RegistryArgs {
    fn open(&self, reference: &OciReference) -> Result<(OciRegistries, RegistryAuth)> {
        let ca = match &self.ca_file {
            Some(p) => Some(std::fs::read(p).with_context(|| format!("read {}", p.display()))?),
            None => None,
        };
        let registries = OciRegistries::new(ca.as_deref())?;
        let auth = match &self.registry_config {
            Some(p) => {
                let config = std::fs::read(p).with_context(|| format!("read {}", p.display()))?;
                auth_for(&config, reference.registry())
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("{}", p.display()))?
            }
            None => RegistryAuth::Anonymous,
        };
        Ok((registries, auth))
    }
}

/// Arguments of `vdi plugin push`.
#[derive(clap::Args)]
pub(crate) struct PushArgs {
    /// The component (.wasm).
    wasm: PathBuf,
    /// Where to push it: `oci://host[:port]/repository:tag` (plain HTTP only for this machine).
    reference: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Arguments of `vdi plugin pull`.
#[derive(clap::Args)]
pub(crate) struct PullArgs {
    /// What to pull: `oci://host[:port]/repository:tag` or `…@sha256:<manifest digest>`.
    reference: String,
    /// Where to write the module.
    #[arg(short, long)]
    output: PathBuf,
    /// Refuse the module unless its sha256 is this (`sha256:<hex>`, as `spec.sha256`).
    #[arg(long)]
    sha256: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

fn parse(reference: &str) -> Result<OciReference> {
    reference.parse().map_err(anyhow::Error::msg)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

/// Refuses files that are not WebAssembly components before anything is sent.
fn check_component(path: &Path, bytes: &[u8]) -> Result<()> {
    if bytes.starts_with(&COMPONENT_HEADER) {
        return Ok(());
    }
    if bytes.starts_with(&COMPONENT_HEADER[..4]) {
        anyhow::bail!(
            "{} is a core WebAssembly module, not a component (build for wasm32-wasip2)",
            path.display()
        );
    }
    anyhow::bail!("{} is not a WebAssembly component", path.display())
}

pub(crate) fn push(args: &PushArgs) -> Result<ExitCode> {
    let reference = parse(&args.reference)?;
    let bytes = crate::plugin_cmd::read_wasm(&args.wasm)?;
    check_component(&args.wasm, &bytes)?;
    anyhow::ensure!(
        bytes.len() <= MAX_MODULE_BYTES,
        "{} is {} bytes; the operator loads modules up to {MAX_MODULE_BYTES}",
        args.wasm.display(),
        bytes.len()
    );
    let (registries, auth) = args.registry.open(&reference)?;
    let started = std::time::Instant::now();
    let pushed = runtime()?.block_on(registries.push(&reference, &bytes, &auth))?;
    println!("pushed: {}", pushed.reference);
    println!("sha256: {}", pushed.module_digest);
    eprintln!(
        "{} bytes in {:.0} ms; pin it in a VDIPlugin with spec.source.oci.reference and spec.sha256",
        bytes.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn pull(args: &PullArgs) -> Result<ExitCode> {
    let reference = parse(&args.reference)?;
    let expected = match &args.sha256 {
        Some(s) => Some(
            s.parse::<Digest>()
                .map_err(|_| anyhow::anyhow!("--sha256 {s:?} is not sha256:<64 hex digits>"))?,
        ),
        None => None,
    };
    let (registries, auth) = args.registry.open(&reference)?;
    let pulled = runtime()?.block_on(registries.pull(&reference, &auth, MAX_MODULE_BYTES))?;
    let digest = Digest::of(&pulled.bytes);
    if let Some(expected) = expected {
        anyhow::ensure!(
            digest == expected,
            "digest mismatch: --sha256 pins {expected}, {reference} holds {digest}"
        );
    }
    std::fs::write(&args.output, &pulled.bytes)
        .with_context(|| format!("write {}", args.output.display()))?;
    println!("pulled: {}", reference.with_digest(&pulled.manifest_digest));
    println!("sha256: {digest}");
    eprintln!(
        "{} bytes ({}) in {:.0} ms to {}",
        pulled.bytes.len(),
        pulled.media_type,
        pulled.elapsed.as_secs_f64() * 1e3,
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
