//! `vdi plugin new` (a plugin project from a template embedded in this binary) and
//! `vdi plugin build` (whichever of the supported languages a project is written in).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail, ensure};
use vdi_plugin_host::Digest;

/// The plugin hooks (WIT worlds) a project can implement.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub(crate) enum Hook {
    /// May this user have this session?
    Admission,
    /// Which node and GPU slice gets each session?
    Scheduler,
    /// Which Kubernetes objects realise a session?
    Template,
}

/// The languages a project can be written in.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub(crate) enum Lang {
    /// Rust with the vdi-plugin-sdk crate (cargo, wasm32-wasip2).
    Rust,
    /// JavaScript with componentize-qjs (QuickJS).
    Js,
    /// Python with componentize-py.
    Python,
}

/// Arguments of `vdi plugin new`.
#[derive(clap::Args)]
pub(crate) struct NewArgs {
    /// The hook the plugin implements.
    #[arg(value_enum)]
    hook: Hook,
    /// The language of the project.
    #[arg(long, value_enum, default_value = "rust")]
    lang: Lang,
    /// The directory to create; its last component names the plugin.
    dir: PathBuf,
    /// The vdi-plugin-sdk crate a Rust project depends on (a path).
    #[arg(long, default_value = DEFAULT_SDK)]
    sdk_path: PathBuf,
}

/// Arguments of `vdi plugin build`.
#[derive(clap::Args)]
pub(crate) struct BuildArgs {
    /// The project directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
}

/// The SDK in the repository this binary was built from.
const DEFAULT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/sdk");
/// The repository this binary was built from (for tools `scripts/setup.sh` installs there).
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

const WIT: [(&str, &str); 2] = [
    ("wit/worlds.wit", include_str!("../../../wit/worlds.wit")),
    ("wit/types.wit", include_str!("../../../wit/types.wit")),
];
const README: &str = include_str!("../templates/README.md");

/// Admission vectors every language's starter passes.
const ADMISSION_VECTORS: [(&str, &str); 3] = [
    (
        "vectors/01-allow-within-limit.json",
        include_str!("../templates/vectors/admission/01-allow-within-limit.json"),
    ),
    (
        "vectors/02-deny-over-limit.json",
        include_str!("../templates/vectors/admission/02-deny-over-limit.json"),
    ),
    (
        "vectors/03-cpu-only.json",
        include_str!("../templates/vectors/admission/03-cpu-only.json"),
    ),
];

/// Scheduler vectors the Rust starter passes.
const SCHEDULER_VECTORS: [(&str, &str); 3] = [
    (
        "vectors/01-cpu-only-first-fit.json",
        include_str!("../templates/vectors/scheduler/01-cpu-only-first-fit.json"),
    ),
    (
        "vectors/02-gpu-first-fit.json",
        include_str!("../templates/vectors/scheduler/02-gpu-first-fit.json"),
    ),
    (
        "vectors/03-no-room.json",
        include_str!("../templates/vectors/scheduler/03-no-room.json"),
    ),
];

/// Template vectors the Rust starter passes.
const TEMPLATE_VECTORS: [(&str, &str); 3] = [
    (
        "vectors/01-cpu-only.json",
        include_str!("../templates/vectors/template/01-cpu-only.json"),
    ),
    (
        "vectors/02-gpu-slices.json",
        include_str!("../templates/vectors/template/02-gpu-slices.json"),
    ),
    (
        "vectors/03-root-refused.json",
        include_str!("../templates/vectors/template/03-root-refused.json"),
    ),
];

/// The project files of one hook in one language (paths relative to the project).
fn template(hook: Hook, lang: Lang) -> Result<Vec<(&'static str, &'static str)>> {
    let mut files = match (lang, hook) {
        (Lang::Rust, Hook::Admission) => vec![
            (
                "Cargo.toml",
                include_str!("../templates/rust/admission/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../templates/rust/admission/src/lib.rs"),
            ),
        ],
        (Lang::Rust, Hook::Scheduler) => vec![
            (
                "Cargo.toml",
                include_str!("../templates/rust/scheduler/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../templates/rust/scheduler/src/lib.rs"),
            ),
        ],
        (Lang::Rust, Hook::Template) => vec![
            (
                "Cargo.toml",
                include_str!("../templates/rust/template/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../templates/rust/template/src/lib.rs"),
            ),
        ],
        (Lang::Js, Hook::Admission) => vec![
            (
                "package.json",
                include_str!("../templates/js/admission/package.json"),
            ),
            ("app.js", include_str!("../templates/js/admission/app.js")),
        ],
        (Lang::Python, Hook::Admission) => {
            vec![(
                "app.py",
                include_str!("../templates/python/admission/app.py"),
            )]
        }
        (lang, hook) => bail!("no {lang:?} template for the {hook:?} hook yet"),
    };
    files.extend(match hook {
        Hook::Admission => ADMISSION_VECTORS,
        Hook::Scheduler => SCHEDULER_VECTORS,
        Hook::Template => TEMPLATE_VECTORS,
    });
    files.extend(WIT);
    Ok(files)
}

fn fill(text: &str, vars: &[(&str, &str)]) -> String {
    vars.iter().fold(text.to_owned(), |t, (k, v)| {
        t.replace(&format!("{{{{{k}}}}}"), v)
    })
}

/// A plugin name: lowercase letters, digits and dashes, starting with a letter.
fn plugin_name(dir: &Path) -> Result<String> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("the directory must end in a name")?;
    ensure!(
        name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "plugin name {name:?}: use lowercase letters, digits and dashes, starting with a letter"
    );
    Ok(name.to_owned())
}

pub(crate) fn new(args: &NewArgs) -> Result<ExitCode> {
    let name = plugin_name(&args.dir)?;
    ensure!(
        !args.dir.exists() || std::fs::read_dir(&args.dir)?.next().is_none(),
        "{} exists and is not empty",
        args.dir.display()
    );
    let files = template(args.hook, args.lang)?;
    let sdk = std::path::absolute(&args.sdk_path)?;
    let sdk = sdk.to_str().context("the SDK path must be UTF-8")?;
    let (language, toolchain, sources) = match args.lang {
        Lang::Rust => (
            "Rust",
            "Needs Rust with `rustup target add wasm32-wasip2`; `vdi plugin build` runs \
             `cargo build --release --target wasm32-wasip2` and copies the component to `out/`.",
            "| `Cargo.toml` | the crate; `vdi-plugin-sdk` by path (`vdi plugin new --sdk-path`) |\n\
             | `src/lib.rs` | the policy |\n",
        ),
        Lang::Js => (
            "JavaScript",
            "Needs Node.js and `npm install` here (componentize-qjs); `vdi plugin build` runs \
             `componentize-qjs --wit wit --js app.js -n <hook> --sync -o out/<name>.wasm`.",
            "| `package.json` | componentize-qjs, pinned |\n| `app.js` | the policy |\n",
        ),
        Lang::Python => (
            "Python",
            "Needs `pip install componentize-py==0.25.1` (or `$VDI_COMPONENTIZE_PY`); \
             `vdi plugin build` runs `componentize-py -d wit -w <hook> componentize app -o out/<name>.wasm`.",
            "| `app.py` | the policy |\n",
        ),
    };
    let hook = format!("{:?}", args.hook).to_lowercase();
    let sources = match args.hook {
        Hook::Template => sources.replace("the policy", "the renderer"),
        _ => sources.to_owned(),
    };
    let vars = [
        ("name", name.as_str()),
        ("sdk_path", sdk),
        ("hook", hook.as_str()),
        ("language", language),
        ("toolchain", toolchain),
        ("files", sources.as_str()),
    ];
    let readme = fill(README, &vars);
    for (path, text) in files
        .iter()
        .map(|(p, t)| (*p, fill(t, &vars)))
        .chain([("README.md", readme)])
    {
        let path = args.dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    }
    println!(
        "created {} ({language} {hook} plugin {name})",
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The hook a JS or Python project implements: the name in its package.json build script or
/// its README's first line, else admission.
fn project_hook(dir: &Path) -> String {
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
