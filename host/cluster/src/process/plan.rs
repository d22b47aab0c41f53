//! Pod spec → launch plan: what the supervisor creates and runs for a pod. Pure: the store is
//! reached through a lookup closure, ports and the display are allocated by the caller.

mod env;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::config::{MAX_GRACE, ProcessNode, RuntimeCommand};

pub(crate) use env::Lookup;

/// The desktop launcher script (`desktop.sh`): what the process node writes into each desktop pod's directory and runs for the desktop image.
pub const DESKTOP_SCRIPT: &str = include_str!("desktop.sh");
/// Where X servers keep their sockets; the `x11` emptyDir mounted there maps to it.
pub(crate) const X11_DIR: &str = "/tmp/.X11-unix";

/// Why a container cannot start (its `waiting` state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Waiting {
    /// `ErrImagePull`, `CreateContainerConfigError`, ...
    pub reason: &'static str,
    /// What is wrong, naming the field or object.
    pub message: String,
}

impl Waiting {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self {
            reason: "CreateContainerConfigError",
            message: message.into(),
        }
    }
}

/// A probe's action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProbeAction {
    /// `GET http://127.0.0.1:<port><path>`, success on 200–399.
    Http { port: u16, path: String },
    /// A TCP connection to `127.0.0.1:<port>`.
    Tcp { port: u16 },
    /// A command run with the container's environment, success on exit 0.
    Exec { argv: Vec<String> },
}

/// A declared probe with its timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probe {
    pub action: ProbeAction,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

/// How to start one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launch {
    pub program: String,
    pub args: Vec<String>,
    /// The whole environment (the agent's is not inherited, but for `PATH`).
    pub env: Vec<(String, String)>,
    /// Working directory (a per-container directory).
    pub cwd: PathBuf,
    /// `resources.limits.memory` in bytes.
    pub memory_limit: Option<u64>,
    pub readiness: Option<Probe>,
    pub liveness: Option<Probe>,
    /// `securityContext.runAsUser`: recorded, not applied.
    pub run_as_user: Option<i64>,
}

/// One container of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerPlan {
    pub name: String,
    pub image: String,
    pub launch: Result<Launch, Waiting>,
}

/// A file to write before the containers start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// Whether a container that exited with `code` starts again.
    pub(crate) fn restarts(self, code: i32) -> bool {
        match self {
            Self::Always => true,
            Self::OnFailure => code != 0,
            Self::Never => false,
        }
    }
}

/// Everything the supervisor needs for a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodPlan {
    /// Directories to create (volumes, working directories).
    pub dirs: Vec<PathBuf>,
    pub files: Vec<PlannedFile>,
    pub containers: Vec<ContainerPlan>,
    /// `127.0.0.1:<port>` for [`vdi_crd::LOCAL_ENDPOINT_ANNOTATION`].
    pub endpoint: Option<String>,
    pub restart: RestartPolicy,
    pub grace: Duration,
}

/// What the plan is made from.
pub(crate) struct PodContext<'a> {
    pub pod: &'a Value,
    pub node: &'a ProcessNode,
    pub pod_dir: &'a Path,
    pub display: u32,
    /// (container, containerPort) → loopback port.
    pub ports: &'a HashMap<(String, u16), u16>,
    pub lookup: &'a Lookup<'a>,
}

/// The pod's containers.
fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    pod["spec"]["containers"].as_array().into_iter().flatten()
}

/// The ports the pod's containers declare: (container, containerPort), in order.
pub(crate) fn declared_ports(pod: &Value) -> Vec<(String, u16)> {
    containers(pod)
        .flat_map(|c| {
            let name = c["name"].as_str().unwrap_or_default().to_owned();
            c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |p| {
                    let port = p["containerPort"]
                        .as_u64()
                        .and_then(|n| u16::try_from(n).ok())?;
                    Some((name.clone(), port))
                })
        })
        .collect()
}

/// A name that may become one path segment.
fn segment(what: &str, s: &str) -> Result<(), Waiting> {
    if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains('\0') {
        return Err(Waiting::config(format!(
            "{what} {s:?} cannot name a directory"
        )));
    }
    Ok(())
}

/// A relative file path inside a volume (no `..`, not absolute).
fn relative(what: &str, s: &str) -> Result<(), Waiting> {
    if s.is_empty()
        || s.starts_with('/')
        || s.contains('\0')
        || s.split('/').any(|p| p == ".." || p.is_empty())
    {
        return Err(Waiting::config(format!(
            "{what} {s:?} is not a relative path inside the volume"
        )));
    }
    Ok(())
}

/// Builds the plan. Pod-level problems (a volume) become every container's waiting reason.
pub(crate) fn plan(ctx: &PodContext<'_>) -> PodPlan {
    let pod = ctx.pod;
    let spec = &pod["spec"];
    let restart = match spec["restartPolicy"].as_str() {
        Some("OnFailure") => RestartPolicy::OnFailure,
        Some("Never") => RestartPolicy::Never,
        _ => RestartPolicy::Always,
    };
    let grace = spec["terminationGracePeriodSeconds"]
        .as_u64()
        .map_or(MAX_GRACE, |s| Duration::from_secs(s).min(MAX_GRACE));
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let volumes = volumes(ctx, &mut dirs, &mut files);
    let mut endpoint = None;
    let mut first_port = None;
    let mut out = Vec::new();
    for c in containers(pod) {
        let name = c["name"].as_str().unwrap_or_default().to_owned();
        let image = c["image"].as_str().unwrap_or_default().to_owned();
        for p in c["ports"].as_array().into_iter().flatten() {
            let Some(host) = p["containerPort"]
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .and_then(|n| ctx.ports.get(&(name.clone(), n)))
            else {
                continue;
            };
            first_port.get_or_insert(*host);
            if p["name"] == "http" && endpoint.is_none() {
                endpoint = Some(*host);
            }
        }
        let launch = match &volumes {
            Err(w) => Err(w.clone()),
            Ok(mounts) => container(ctx, c, &name, &image, mounts, &mut dirs, &mut files),
        };
        out.push(ContainerPlan {
            name,
            image,
            launch,
        });
    }
    PodPlan {
        dirs,
        files,
        containers: out,
        endpoint: endpoint.or(first_port).map(|p| format!("127.0.0.1:{p}")),
        restart,
        grace,
    }
}

/// Volume name → host directory; plans the directories and files.
fn volumes(
    ctx: &PodContext<'_>,
    dirs: &mut Vec<PathBuf>,
    files: &mut Vec<PlannedFile>,
) -> Result<HashMap<String, (PathBuf, bool)>, Waiting> {
    let ns = ctx.pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let mut out = HashMap::new();
    for v in ctx.pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default();
        segment("volume name", name)?;
        let per_pod = ctx.pod_dir.join("volumes").join(name);
        let (dir, is_empty_dir) = if let Some(claim) =
            v["persistentVolumeClaim"]["claimName"].as_str()
        {
            segment("persistentVolumeClaim.claimName", claim)?;
            segment("namespace", ns)?;
            (
                ctx.node.data_dir.join("volumes").join(ns).join(claim),
                false,
            )
        } else if let Some(path) = v["hostPath"]["path"].as_str() {
            (PathBuf::from(path), false)
        } else if v["configMap"].is_object() || v["secret"].is_object() {
            let secret = v["secret"].is_object();
            let (src, kind, field) = if secret {
                (&v["secret"], "secrets", "secretName")
            } else {
                (&v["configMap"], "configmaps", "name")
            };
            let obj_name = src[field].as_str().unwrap_or_default();
            let default_mode = src["defaultMode"]
                .as_u64()
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(if secret { 0o600 } else { 0o644 });
            match (ctx.lookup)(kind, obj_name) {
                Some(obj) => {
                    for (key, contents, mode) in env::volume_files(&obj, secret, src, default_mode)?
                    {
                        relative(&format!("volume {name:?} item path"), &key)?;
                        files.push(PlannedFile {
                            path: per_pod.join(&key),
                            contents,
                            mode,
                        });
                    }
                }
                None if src["optional"] == true => {}
                None => {
                    let what = if secret { "secret" } else { "configmap" };
                    return Err(Waiting::config(format!(
                        "volume {name:?}: {what} {obj_name:?} not found"
                    )));
                }
            }
            (per_pod, false)
        } else {
            // emptyDir, and kinds a process cannot be given (projected, downwardAPI, ...): a
            // per-pod directory.
            (per_pod, v.get("emptyDir").is_some())
        };
        // A hostPath is the machine's own: used as it is, never created.
        if v["hostPath"].is_null() {
            dirs.push(dir.clone());
        }
        out.insert(name.to_owned(), (dir, is_empty_dir));
    }
    Ok(out)
}

/// Plans one container.
fn container(
    ctx: &PodContext<'_>,
    c: &Value,
    name: &str,
    image: &str,
    volumes: &HashMap<String, (PathBuf, bool)>,
    dirs: &mut Vec<PathBuf>,
    files: &mut Vec<PlannedFile>,
) -> Result<Launch, Waiting> {
    segment("container name", name)?;
    let Some(entry) = ctx.node.runtime.lookup(image) else {
        return Err(Waiting {
            reason: "ErrImagePull",
            message: format!(
                "image {image:?} is not in the process node's runtime table (known: {}); add an entry to ProcessNode::runtime",
                ctx.node
                    .runtime
                    .entries
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    };
    let cwd = ctx.pod_dir.join("containers").join(name);
    dirs.push(cwd.clone());
    // mountPath → host path, longest first so that nested mounts win.
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    for (i, m) in c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("containers[{name}].volumeMounts[{i}]");
        let vol = m["name"].as_str().unwrap_or_default();
        let path = m["mountPath"].as_str().unwrap_or_default();
        let Some((dir, empty_dir)) = volumes.get(vol) else {
            return Err(Waiting::config(format!("{field}: no volume named {vol:?}")));
        };
        if !path.starts_with('/') {
            return Err(Waiting::config(format!(
                "{field}.mountPath {path:?} is not absolute"
            )));
        }
        let mut host = if *empty_dir && path.trim_end_matches('/') == X11_DIR {
            PathBuf::from(X11_DIR)
        } else {
            dir.clone()
        };
        if let Some(sub) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
            relative(&format!("{field}.subPath"), sub)?;
            host = host.join(sub);
            dirs.push(host.clone());
        }
        let trimmed = path.trim_end_matches('/');
        mounts.push((
            if trimmed.is_empty() {
                "/".into()
            } else {
                trimmed.into()
            },
            host,
        ));
    }
    mounts.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    let translate = |s: &str| -> String {
        for (m, host) in &mounts {
            if s == m {
                return host.display().to_string();
            }
            if let Some(rest) = s.strip_prefix(m.as_str()).and_then(|r| r.strip_prefix('/')) {
                return host.join(rest).display().to_string();
            }
        }
        s.to_owned()
    };
    let ports: Vec<(String, u16, u16)> = c["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let cp = p["containerPort"]
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())?;
            let host = *ctx.ports.get(&(name.to_owned(), cp))?;
            Some((p["name"].as_str().unwrap_or_default().to_owned(), cp, host))
        })
        .collect();
    let mut vars = env::Env::default();
    for (k, v) in &entry.env {
        vars.set(k, v.clone());
    }
    env::resolve(ctx, c, name, &mut vars)?;
    let mut environment: Vec<(String, String)> = vars
        .into_pairs()
        .into_iter()
        .map(|(k, v)| {
            let v = translate(&v);
            (k, v)
        })
        .collect();
    let set = |env: &mut Vec<(String, String)>, k: &str, v: String| {
        env.retain(|(n, _)| n != k);
        env.push((k.to_owned(), v));
    };
    if !environment.iter().any(|(k, _)| k == "PATH") {
        set(&mut environment, "PATH", env::DEFAULT_PATH.to_owned());
    }
    set(&mut environment, "DISPLAY", format!(":{}", ctx.display));
    set(
        &mut environment,
        "HOSTNAME",
        ctx.pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    if let (Some(var), Some((_, _, host))) = (&entry.listen_env, ports.first()) {
        set(&mut environment, var, format!("127.0.0.1:{host}"));
    }
    let home = entry
        .home
        .as_deref()
        .and_then(|h| mounts.iter().find(|(m, _)| m == h.trim_end_matches('/')))
        .map_or_else(|| cwd.clone(), |(_, host)| host.clone());
    set(&mut environment, "HOME", home.display().to_string());
    let lookup_var = |k: &str| {
        environment
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let words = |field: &str| -> Vec<String> {
        c[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|s| translate(&env::expand(s, &lookup_var)))
            .collect()
    };
    let (program, mut args) = match &entry.command {
        RuntimeCommand::Desktop => {
            let script = ctx.pod_dir.join("desktop.sh");
            files.push(PlannedFile {
                path: script.clone(),
                contents: DESKTOP_SCRIPT.as_bytes().to_vec(),
                mode: 0o700,
            });
            ("/bin/sh".to_owned(), vec![script.display().to_string()])
        }
        RuntimeCommand::Streamer => (ctx.node.streamer_binary.display().to_string(), Vec::new()),
        RuntimeCommand::Exec(argv) => match argv.split_first() {
            Some((p, rest)) => (p.clone(), rest.to_vec()),
            None => {
                return Err(Waiting::config(format!(
                    "the runtime table entry of {image:?} has an empty command"
                )));
            }
        },
    };
    args.extend(words("command"));
    args.extend(words("args"));
    let port_of = |v: &Value| -> Option<u16> {
        match v {
            Value::String(s) => ports.iter().find(|(n, _, _)| n == s).map(|(_, _, h)| *h),
            Value::Number(n) => {
                let n = u16::try_from(n.as_u64()?).ok()?;
                Some(
                    ports
                        .iter()
                        .find(|(_, cp, _)| *cp == n)
                        .map_or(n, |(_, _, h)| *h),
                )
            }
            _ => None,
        }
    };
    let probe = |field: &str| -> Result<Option<Probe>, Waiting> {
        let p = &c[field];
        if !p.is_object() {
            return Ok(None);
        }
        let secs = |k: &str, d: u64| Duration::from_secs(p[k].as_u64().unwrap_or(d));
        let count = |k: &str, d: u32| {
            p[k].as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(d)
        };
        let bad_port = |k: &str| {
            Waiting::config(format!(
                "containers[{name}].{field}.{k}.port {} names no declared port",
                p[k]["port"]
            ))
        };
        let action = if p["httpGet"].is_object() {
            ProbeAction::Http {
                port: port_of(&p["httpGet"]["port"]).ok_or_else(|| bad_port("httpGet"))?,
                path: p["httpGet"]["path"].as_str().unwrap_or("/").to_owned(),
            }
        } else if p["tcpSocket"].is_object() {
            ProbeAction::Tcp {
                port: port_of(&p["tcpSocket"]["port"]).ok_or_else(|| bad_port("tcpSocket"))?,
            }
        } else if let Some(cmd) = p["exec"]["command"].as_array() {
            ProbeAction::Exec {
                argv: cmd
                    .iter()
                    .filter_map(Value::as_str)
                    .map(&translate)
                    .collect(),
            }
        } else {
            return Err(Waiting::config(format!(
                "containers[{name}].{field}: no httpGet, tcpSocket or exec"
            )));
        };
        Ok(Some(Probe {
            action,
            initial_delay: secs("initialDelaySeconds", 0),
            period: secs("periodSeconds", 10).max(Duration::from_secs(1)),
            timeout: secs("timeoutSeconds", 1).max(Duration::from_secs(1)),
            success_threshold: count("successThreshold", 1),
            failure_threshold: count("failureThreshold", 3),
        }))
    };
    let memory_limit = match c["resources"]["limits"]["memory"].as_str() {
        None => None,
        Some(q) => Some(vdi_crd::quantity::bytes(q).ok_or_else(|| {
            Waiting::config(format!(
                "containers[{name}].resources.limits.memory {q:?} is not a quantity"
            ))
        })?),
    };
    Ok(Launch {
        program,
        args,
        env: environment,
        cwd,
        memory_limit,
        readiness: probe("readinessProbe")?,
        liveness: probe("livenessProbe")?,
        run_as_user: c["securityContext"]["runAsUser"]
            .as_i64()
            .or_else(|| ctx.pod["spec"]["securityContext"]["runAsUser"].as_i64()),
    })
}
