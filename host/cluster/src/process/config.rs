//! What the process node is told: its name, where it keeps its files, and the runtime table that
//! maps container images to local commands.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Default name of the process node's `Node`.
pub const DEFAULT_NODE_NAME: &str = "local";
/// Repository of the platform's desktop image.
pub const DESKTOP_IMAGE: &str = "ghcr.io/vdi-platform/ubuntu-desktop";
/// Repository of the platform's streamer image.
pub const STREAMER_IMAGE: &str = "ghcr.io/vdi-platform/vdi-streamer";
/// First X display number handed to pods (`:100`, `:101`, ...).
pub const DEFAULT_DISPLAY_BASE: u32 = 100;
/// How many X display numbers are tried from the base.
pub const DISPLAY_RANGE: u32 = 1000;
/// How often the node's Ready condition is refreshed.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// The longest termination grace the agent waits for, whatever the pod asks.
pub const MAX_GRACE: Duration = Duration::from_secs(30);
/// Pods the node admits (`pods` capacity).
pub const DEFAULT_MAX_PODS: u32 = 110;

/// The local process node: a node agent that runs the pods bound to it as process groups of
/// this machine (JupyterHub's LocalProcessSpawner beside KubeSpawner). Start it with
/// [`ProcessNode::start`](crate::ProcessNode::start).
#[derive(Debug, Clone)]
pub struct ProcessNode {
    /// Name of the `Node` it registers (and that pods name in `spec.nodeName`).
    pub name: String,
    /// Where it keeps pod directories, logs, pid files and persistent volumes
    /// (`<data_dir>/pods/<uid>`, `<data_dir>/volumes/<namespace>/<claim>`).
    pub data_dir: PathBuf,
    /// The `vdi-streamer` binary that [`RuntimeCommand::Streamer`] runs.
    pub streamer_binary: PathBuf,
    /// Image repository → local command.
    pub runtime: RuntimeTable,
    /// Time-slices per GPU (`nvidia.com/gpu` = GPUs × slices, `nvidia.com/gpu.replicas`).
    pub slices_per_gpu: u32,
    /// First X display number handed to pods.
    pub display_base: u32,
    /// `pods` capacity.
    pub max_pods: u32,
    /// How often the Ready condition's heartbeat is written.
    pub heartbeat: Duration,
}

impl ProcessNode {
    /// A node named [`DEFAULT_NODE_NAME`] keeping its files in `data_dir`, with the default
    /// runtime table and 8 slices per GPU.
    pub fn new(data_dir: impl Into<PathBuf>, streamer_binary: impl Into<PathBuf>) -> Self {
        Self {
            name: DEFAULT_NODE_NAME.into(),
            data_dir: data_dir.into(),
            streamer_binary: streamer_binary.into(),
            runtime: RuntimeTable::default(),
            slices_per_gpu: 8,
            display_base: DEFAULT_DISPLAY_BASE,
            max_pods: DEFAULT_MAX_PODS,
            heartbeat: DEFAULT_HEARTBEAT,
        }
    }
}

/// What a runtime-table entry runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeCommand {
    /// The desktop launcher script kept in this crate (`process/desktop.sh`): an X server
    /// (Xvfb, or Xvnc with `VDI_X_SERVER=xvnc`), openbox and xterm; it exits with the X
    /// server's status.
    Desktop,
    /// The node's [`ProcessNode::streamer_binary`].
    Streamer,
    /// A program and its leading arguments (the container's `command` and `args` follow).
    Exec(Vec<String>),
}

/// One image repository's local command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeEntry {
    /// What runs; the container's `command` then `args` are appended to it.
    pub command: RuntimeCommand,
    /// The env var that receives `127.0.0.1:<port>`, the loopback port mapped to the
    /// container's first declared port (the streamer's `VDI_LISTEN`).
    pub listen_env: Option<String>,
    /// The image's home directory: `HOME` is the host directory of the volume mounted there
    /// (else the container's working directory).
    pub home: Option<String>,
    /// Extra environment, under the container's own.
    pub env: BTreeMap<String, String>,
}

impl RuntimeEntry {
    /// An entry that runs `argv` with no listen variable and no home.
    pub fn exec<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        Self {
            command: RuntimeCommand::Exec(argv.into_iter().map(Into::into).collect()),
            listen_env: None,
            home: None,
            env: BTreeMap::new(),
        }
    }

    /// Names the env var that receives the mapped listen address.
    pub fn with_listen_env(mut self, var: impl Into<String>) -> Self {
        self.listen_env = Some(var.into());
        self
    }

    /// Sets the image's home directory (`HOME` follows the volume mounted there).
    pub fn with_home(mut self, path: impl Into<String>) -> Self {
        self.home = Some(path.into());
        self
    }

    /// Adds a variable under the container's own environment.
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }
}

/// Image repository (tag and digest ignored) → local command. `Default` maps the platform's
/// desktop and streamer images; callers add or replace entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeTable {
    /// Entries by repository, e.g. `ghcr.io/vdi-platform/ubuntu-desktop`.
    pub entries: BTreeMap<String, RuntimeEntry>,
}

impl Default for RuntimeTable {
    fn default() -> Self {
        let mut entries = BTreeMap::new();
        entries.insert(
            DESKTOP_IMAGE.to_owned(),
            RuntimeEntry {
                command: RuntimeCommand::Desktop,
                listen_env: None,
                home: Some("/home/user".into()),
                env: BTreeMap::new(),
            },
        );
        entries.insert(
            STREAMER_IMAGE.to_owned(),
            RuntimeEntry {
                command: RuntimeCommand::Streamer,
                listen_env: Some("VDI_LISTEN".into()),
                home: None,
                env: BTreeMap::new(),
            },
        );
        Self { entries }
    }
}

impl RuntimeTable {
    /// Adds (or replaces) the entry of an image repository.
    pub fn with(mut self, repository: impl Into<String>, entry: RuntimeEntry) -> Self {
        self.entries.insert(repository.into(), entry);
        self
    }

    /// The entry of an image reference (`repo[:tag][@digest]`).
    pub fn lookup(&self, image: &str) -> Option<&RuntimeEntry> {
        self.entries.get(repository(image))
    }
}

/// The repository of an image reference: without `@digest` and without a `:tag` after the
/// last `/` (a registry port such as `localhost:5000/x` stays).
pub fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].find(':') {
        Some(colon) => &image[..last_slash + colon],
        None => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_drops_tag_and_digest_but_keeps_registry_port() {
        assert_eq!(
            repository("ghcr.io/vdi-platform/ubuntu-desktop:24.04"),
            DESKTOP_IMAGE
        );
        assert_eq!(
            repository("localhost:5000/x:1@sha256:ab"),
            "localhost:5000/x"
        );
        assert_eq!(repository("localhost:5000/x"), "localhost:5000/x");
        assert_eq!(repository("busybox"), "busybox");
    }

    #[test]
    fn default_table_maps_desktop_and_streamer() {
        let t = RuntimeTable::default();
        assert_eq!(
            t.lookup("ghcr.io/vdi-platform/vdi-streamer:0.1")
                .and_then(|e| e.listen_env.as_deref()),
            Some("VDI_LISTEN")
        );
        assert_eq!(
            t.lookup("ghcr.io/vdi-platform/ubuntu-desktop:24.04")
                .map(|e| &e.command),
            Some(&RuntimeCommand::Desktop)
        );
        assert!(t.lookup("docker.io/library/nginx").is_none());
    }

    #[test]
    fn entries_build_up() {
        let e = RuntimeEntry::exec(["/bin/sh", "-c"])
            .with_listen_env("LISTEN")
            .with_home("/home/u")
            .with_env("A", "1");
        assert_eq!(
            e.command,
            RuntimeCommand::Exec(vec!["/bin/sh".into(), "-c".into()])
        );
        assert_eq!(
            (e.listen_env.as_deref(), e.home.as_deref()),
            (Some("LISTEN"), Some("/home/u"))
        );
        assert_eq!(e.env.get("A").map(String::as_str), Some("1"));
        let t = RuntimeTable::default().with("x/y", e.clone());
        assert_eq!(t.lookup("x/y:2"), Some(&e));
    }
}
