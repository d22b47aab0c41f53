//! `vdi plugin new` (a plugin project from a template embedded in this binary, one starter per
//! hook in each language: `rust`, `js`, `python`) and `vdi plugin build` (`build`).

mod build;
mod js;
mod python;
mod rust;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, ensure};

pub(crate) use build::build;

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

/// Scheduler vectors every language's starter passes.
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

/// Template vectors every language's starter passes.
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

/// One language's starters: what the README says of it and its files per hook.
pub(super) struct Starter {
    /// The language's name in the README.
    language: &'static str,
    /// How the project builds (the README's paragraph).
    toolchain: &'static str,
    /// The README's table rows for the sources (`{{role}}`: policy or renderer).
    sources: &'static str,
    /// The sources of one hook's starter (paths relative to the project).
    files: fn(Hook) -> Vec<(&'static str, &'static str)>,
}

impl Lang {
    fn starter(self) -> &'static Starter {
        match self {
            Lang::Rust => &rust::STARTER,
            Lang::Js => &js::STARTER,
            Lang::Python => &python::STARTER,
        }
    }
}

/// The project files of one hook in one language (paths relative to the project).
fn template(hook: Hook, lang: Lang) -> Vec<(&'static str, &'static str)> {
    let mut files = (lang.starter().files)(hook);
    files.extend(match hook {
        Hook::Admission => ADMISSION_VECTORS,
        Hook::Scheduler => SCHEDULER_VECTORS,
        Hook::Template => TEMPLATE_VECTORS,
    });
    files.extend(WIT);
    files
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
    let files = template(args.hook, args.lang);
    let sdk = std::path::absolute(&args.sdk_path)?;
    let sdk = sdk.to_str().context("the SDK path must be UTF-8")?;
    let starter = args.lang.starter();
    let hook = format!("{:?}", args.hook).to_lowercase();
    let role = match args.hook {
        Hook::Template => "renderer",
        Hook::Admission | Hook::Scheduler => "policy",
    };
    let sources = starter.sources.replace("{{role}}", role);
    let language = starter.language;
    let toolchain = starter.toolchain;
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

#[cfg(test)]
mod tests {
    use clap::ValueEnum as _;

    use super::*;

    #[test]
    fn every_hook_has_a_starter_in_every_language_with_its_hook_s_vectors() {
        for &hook in Hook::value_variants() {
            for &lang in Lang::value_variants() {
                let files = template(hook, lang);
                let name = format!("{hook:?}").to_lowercase();
                let vectors: Vec<_> = files
                    .iter()
                    .filter(|(p, _)| p.starts_with("vectors/"))
                    .collect();
                assert_eq!(vectors.len(), 3, "{lang:?} {name}");
                for (path, text) in vectors {
                    let v: serde_json::Value = serde_json::from_str(text).expect("vector JSON");
                    assert_eq!(v["hook"], name.as_str(), "{lang:?} {name}: {path}");
                }
                let source = match lang {
                    Lang::Rust => "src/lib.rs",
                    Lang::Js => "app.js",
                    Lang::Python => "app.py",
                };
                let (_, text) = files
                    .iter()
                    .find(|(p, _)| *p == source)
                    .unwrap_or_else(|| panic!("{lang:?} {name}: no {source}"));
                let export = match hook {
                    Hook::Admission => "review",
                    Hook::Scheduler => "place",
                    Hook::Template => "render",
                };
                assert!(
                    text.contains(&format!("{export}(")),
                    "{lang:?} {name}: {source} exports no {export}"
                );
                assert!(files.iter().any(|(p, _)| *p == "wit/worlds.wit"));
            }
        }
    }

    #[test]
    fn build_reads_the_hook_new_wrote() {
        let work = tempfile::tempdir().expect("tempdir");
        for (hook, word) in [(Hook::Scheduler, "scheduler"), (Hook::Template, "template")] {
            for lang in [Lang::Js, Lang::Python] {
                let dir = work.path().join(format!("{word}-{lang:?}").to_lowercase());
                new(&NewArgs {
                    hook,
                    lang,
                    dir: dir.clone(),
                    sdk_path: PathBuf::from(DEFAULT_SDK),
                })
                .expect("vdi plugin new");
                assert_eq!(build::project_hook(&dir), word, "{}", dir.display());
                let readme = std::fs::read_to_string(dir.join("README.md")).expect("README");
                assert!(!readme.contains("{{"), "unfilled placeholder in\n{readme}");
            }
        }
    }
}
