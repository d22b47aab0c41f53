//! A real desktop end to end on one machine: `vdi up` (control plane, simulated GPU nodes and the
//! local process node), `kubectl apply -f examples/session.yaml`, `vdi connect`, and headless
//! Chromium opening the printed URL through the HTTPS session proxy: it decodes frames and types
//! into the desktop's terminal, which creates a file in the session's home volume. Tokens for
//! another session, expired ones, one for the same name in another namespace and one for an
//! earlier session of the same name are refused. Deleting the session leaves no process, X
//! display, port or directory.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ClusterProcess, kubectl_path, repo_root};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::Value;
use vdi_crd::VDISession;
use vdi_operator::connect::ConnectKeys;

const VDI: &str = env!("CARGO_BIN_EXE_vdi");

fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new(kubectl_path())
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs `streamer/tests/browser/desktop.mjs` and returns its JSON lines.
fn browser(url: &str, args: &[&str]) -> Vec<Value> {
    let dir = repo_root().join("streamer/tests/browser");
    let out = Command::new("node")
        .arg(dir.join("desktop.mjs"))
        .arg(url)
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("run node");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    println!("browser {args:?}: {lines:?}");
    assert!(
        out.status.success(),
        "desktop.mjs {args:?} failed: {lines:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines
}

fn event<'a>(lines: &'a [Value], name: &str) -> Option<&'a Value> {
    lines.iter().find(|l| l["event"] == name)
}

async fn client(kubeconfig: &Path) -> Client {
    let yaml = std::fs::read_to_string(kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&yaml).expect("kubeconfig"),
        &KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    Client::try_from(config).expect("client")
}

/// Process groups of this machine by id: the processes in each.
fn process_groups() -> BTreeMap<i32, Vec<i32>> {
    let mut groups: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if let Some(pgrp) = fields.get(2).and_then(|f| f.parse().ok()) {
            groups.entry(pgrp).or_default().push(pid);
        }
    }
    groups
}

/// What the process node keeps for a pod: its directory, process groups, display and port.
struct PodFootprint {
    dir: PathBuf,
    groups: Vec<i32>,
    display: u32,
    port: u16,
}

impl PodFootprint {
    fn read(node_dir: &Path, pod: &Value) -> Self {
        let uid = pod["metadata"]["uid"].as_str().expect("pod uid");
        let dir = node_dir.join("pods").join(uid);
        let groups = std::fs::read_dir(dir.join("pids"))
            .expect("the pod's pid files")
            .flatten()
            .filter_map(|f| std::fs::read_to_string(f.path()).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse().ok())
            .collect::<Vec<i32>>();
        let display = std::fs::read_to_string(dir.join("display"))
            .expect("the pod's display file")
            .trim()
            .parse()
            .expect("a display number");
        let endpoint = pod["metadata"]["annotations"][vdi_crd::LOCAL_ENDPOINT_ANNOTATION]
            .as_str()
            .expect("the pod's local endpoint");
        let port = endpoint
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("a port");
        Self {
            dir,
            groups,
            display,
            port,
        }
    }

    /// What is still there, if anything.
    fn left(&self) -> Vec<String> {
        let mut left = Vec::new();
        let groups = process_groups();
        for g in &self.groups {
            if let Some(pids) = groups.get(g) {
                left.push(format!("process group {g}: {pids:?}"));
            }
        }
        for f in [
            format!("/tmp/.X11-unix/X{}", self.display),
            format!("/tmp/.X{}-lock", self.display),
        ] {
            if Path::new(&f).exists() {
                left.push(f);
            }
        }
        if std::net::TcpListener::bind(("127.0.0.1", self.port)).is_err() {
            left.push(format!("port {}", self.port));
        }
        if self.dir.exists() {
            left.push(self.dir.display().to_string());
        }
        left
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_on_the_local_node_is_a_live_desktop_in_the_browser_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = ClusterProcess::up(dir.path());
    let kc = platform.kubeconfig.clone();
    let node_dir = dir.path().join("db/process-node");

    // The example session lands on the local node.
    let example = repo_root().join("examples/session.yaml");
    kubectl(&kc, &["apply", "-f", example.to_str().expect("utf-8")]);
    kubectl(
        &kc,
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Running",
            "vds/alice-desktop",
            "--timeout=60s",
        ],
    );
    let wide = kubectl(&kc, &["get", "pod", "alice-desktop", "-o", "wide"]);
    println!("{wide}");
    let row = wide.lines().nth(1).expect("a pod row");
    for want in ["Running", "127.0.0.1", "local", "2/2"] {
        assert!(
            row.contains(want),
            "kubectl get pod -o wide: {want} in {row:?}"
        );
    }
    let logs = kubectl(&kc, &["logs", "alice-desktop", "-c", "desktop"]);
    assert!(logs.contains("X server ready on :"), "desktop logs: {logs}");
    let logs = kubectl(&kc, &["logs", "alice-desktop", "-c", "streamer"]);
    assert!(logs.contains("streamer listening"), "streamer logs: {logs}");

    // `vdi connect` prints the URL; the browser shows the desktop and types into its terminal.
    let out = Command::new(VDI)
        .args(["connect", "alice-desktop", "-n", "default"])
        .env("KUBECONFIG", &kc)
        .output()
        .expect("run vdi connect");
    assert!(
        out.status.success(),
        "vdi connect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert!(
        url.contains("/sessions/default/alice-desktop/#token="),
        "{url}"
    );
    let marker = format!("vdie2e{}", std::process::id());
    let lines = browser(&url, &["type", &format!("touch {marker}")]);
    let first = event(&lines, "first-frame").expect("a decoded frame");
    println!("first frame in the browser after {} ms", first["ms"]);
    let stats = event(&lines, "stats").expect("stats");
    assert_eq!(stats["role"], "controller");
    assert!(stats["framesDecoded"].as_u64().unwrap_or(0) > 0, "{stats}");
    let home = node_dir.join("volumes/default/home-local-desktop");
    let typed = home.join(&marker);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !typed.exists() {
        assert!(
            Instant::now() < deadline,
            "what the browser typed did not reach the terminal: no {}",
            typed.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The operator records the first frame the streamer sent (it asks the streamer every 2 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let timings = kubectl(
            &kc,
            &[
                "get",
                "vds",
                "alice-desktop",
                "-o",
                "jsonpath={.status.timings}",
            ],
        );
        if timings.contains("firstFrame") {
            println!("timings: {timings}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no first frame recorded: {timings}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Tokens the streamer must refuse.
    let admin = client(&kc).await;
    let session = Api::<VDISession>::namespaced(admin.clone(), "default")
        .get("alice-desktop")
        .await
        .expect("the session");
    let uid = session.metadata.uid.clone().expect("uid");
    let keys = ConnectKeys::load_or_create(&admin)
        .await
        .expect("connect keys");
    let now = u64::try_from(jiff::Timestamp::now().as_second()).expect("now");
    let stream_exp = now + 3600;
    let base = url.split_once('#').map(|(b, _)| b).expect("a fragment");
    for (why, ns, name, sid, at) in [
        (
            "another session",
            "default",
            "bob-desktop",
            uid.as_str(),
            now,
        ),
        (
            "expired",
            "default",
            "alice-desktop",
            uid.as_str(),
            now - 600,
        ),
        (
            "another namespace",
            "other",
            "alice-desktop",
            uid.as_str(),
            now,
        ),
        (
            "an earlier session of that name",
            "default",
            "alice-desktop",
            "0000-old-uid",
            now,
        ),
    ] {
        let token = keys
            .mint(ns, name, sid, "alice", stream_exp, at)
            .expect("mint");
        let lines = browser(&format!("{base}#token={token}"), &["refused"]);
        let refused = event(&lines, "refused").unwrap_or_else(|| panic!("{why}: {lines:?}"));
        assert_eq!(refused["code"], "unauthorized", "{why}");
    }

    // Deleting the session ends its processes and leaves nothing behind (but its home volume).
    let pod: Value = serde_json::from_str(&kubectl(
        &kc,
        &["get", "pod", "alice-desktop", "-o", "json"],
    ))
    .expect("pod json");
    let footprint = PodFootprint::read(&node_dir, &pod);
    assert!(
        !footprint.left().is_empty(),
        "the running pod has a footprint"
    );
    kubectl(&kc, &["delete", "vds", "alice-desktop", "--wait=true"]);
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let left = footprint.left();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left after deletion: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(typed.exists(), "the home volume survives the session");
}
