//! What the process node tests share: a cluster with a process node, pod helpers, and reading
//! the machine's processes from /proc.
#![allow(dead_code, reason = "each test binary uses a part of the helpers")]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::{Api, Client};
use serde_json::{Value, json};
use vdi_cluster::{Cluster, ProcessNode, ProcessNodeHandle, RuntimeEntry, RuntimeTable};

use crate::common;

pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct Env {
    pub dir: tempfile::TempDir,
    pub cluster: Cluster,
    pub client: Client,
    pub node: Option<ProcessNodeHandle>,
}

impl Env {
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("node")
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::default_namespaced(self.client.clone())
    }
}

/// A cluster and a process node whose runtime table maps `test/sh` to `sh -c`, `test/web`
/// to `sh -c` with the mapped port in `LISTEN`, and `test/missing` to a program that does not
/// exist.
pub async fn start(display_base: u32) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, client) = common::start(&dir.path().join("cluster")).await;
    let mut node = ProcessNode::new(dir.path().join("node"), "/bin/false");
    node.display_base = display_base;
    node.runtime = RuntimeTable::default()
        .with("test/sh", RuntimeEntry::exec(["/bin/sh", "-c"]))
        .with("test/missing", RuntimeEntry::exec(["/nonexistent/program"]))
        .with(
            "test/web",
            RuntimeEntry::exec(["/bin/sh", "-c"]).with_listen_env("LISTEN"),
        );
    let node = node
        .start(cluster.store().clone())
        .await
        .expect("process node");
    Env {
        dir,
        cluster,
        client,
        node: Some(node),
    }
}

pub fn pod(name: &str, spec: Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pod")
}

/// Polls the pod until `check` accepts it.
pub async fn wait_pod(
    pods: &Api<Pod>,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + DEADLINE;
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok(p) = pods.get(name).await {
            last = serde_json::to_value(p).expect("json");
            if check(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name}: never {what}; last seen {:#}", last["status"]);
}

/// Polls a condition of the machine.
pub async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never {what}");
}

pub fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

pub async fn logs(pods: &Api<Pod>, name: &str, lp: &LogParams) -> String {
    pods.logs(name, lp).await.expect("logs")
}

/// Whether a process lives (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// Live members of a process group, from /proc.
pub fn group_members(pgid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(')')?.1.to_owned();
                    let f: Vec<&str> = rest.split_whitespace().collect();
                    Some(f.first() != Some(&"Z") && f.get(2)?.parse::<i32>().ok()? == pgid)
                })
                .unwrap_or(false)
        })
        .collect()
}

pub fn pod_dir(env: &Env, pod: &Value) -> PathBuf {
    env.data()
        .join("pods")
        .join(pod["metadata"]["uid"].as_str().expect("uid"))
}

/// The process groups a pod's directory records.
pub fn recorded_groups(dir: &Path) -> Vec<i32> {
    std::fs::read_dir(dir.join("pids"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|f| {
            std::fs::read_to_string(f.path())
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// `X server ready on :N (pid P)` and `openbox (pid W) and xterm (pid T)` from the log.
pub fn desktop_pids(log: &str) -> Option<(String, i32, i32, i32)> {
    let ready = log
        .lines()
        .find_map(|l| l.strip_prefix("desktop: X server ready on "))?;
    let (display, rest) = ready.split_once(" (pid ")?;
    let x = rest.trim_end_matches(')').parse().ok()?;
    let started = log
        .lines()
        .find_map(|l| l.strip_prefix("desktop: openbox (pid "))?;
    let (wm, rest) = started.split_once(") and xterm (pid ")?;
    let term = rest.split_once(')')?.0.parse().ok()?;
    Some((display.to_owned(), x, wm.parse().ok()?, term))
}

pub async fn desktop_of(pods: &Api<Pod>, name: &str) -> (String, i32, i32, i32) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let lp = LogParams {
            container: Some("desktop".into()),
            ..LogParams::default()
        };
        if let Ok(log) = pods.logs(name, &lp).await
            && let Some(found) = desktop_pids(&log)
        {
            return found;
        }
        assert!(Instant::now() < deadline, "{name}: desktop never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn xdpyinfo(display: &str) -> bool {
    std::process::Command::new("xdpyinfo")
        .args(["-display", display])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The start time (field 22 of /proc/<pid>/stat) of a process.
pub fn start_time(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = stat.rsplit_once(')').expect("comm").1.to_owned();
    rest.split_whitespace()
        .nth(19)
        .expect("starttime")
        .to_owned()
}
