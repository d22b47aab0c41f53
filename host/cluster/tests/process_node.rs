//! The process node runs pods as local process groups: real status, logs (`follow`,
//! `previous`), restarts, readiness probes, X desktops, and deletion that leaves nothing.

mod common;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, LogParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use vdi_cluster::{Cluster, ProcessNode, ProcessNodeHandle, RuntimeEntry, RuntimeTable};

const DEADLINE: Duration = Duration::from_secs(20);

struct Env {
    dir: tempfile::TempDir,
    _cluster: Cluster,
    client: Client,
    node: Option<ProcessNodeHandle>,
}

impl Env {
    fn data(&self) -> PathBuf {
        self.dir.path().join("node")
    }

    fn pods(&self) -> Api<Pod> {
        Api::default_namespaced(self.client.clone())
    }
}

/// A cluster and a process node whose runtime table maps `test/sh` to `sh -c` and `test/web`
/// to `sh -c` with the mapped port in `LISTEN`.
async fn start(display_base: u32) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, client) = common::start(&dir.path().join("cluster")).await;
    let mut node = ProcessNode::new(dir.path().join("node"), "/bin/false");
    node.display_base = display_base;
    node.runtime = RuntimeTable::default()
        .with("test/sh", RuntimeEntry::exec(["/bin/sh", "-c"]))
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
        _cluster: cluster,
        client,
        node: Some(node),
    }
}

fn pod(name: &str, spec: Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pod")
}

/// Polls the pod until `check` accepts it.
async fn wait_pod(
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
async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never {what}");
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

async fn logs(pods: &Api<Pod>, name: &str, lp: &LogParams) -> String {
    pods.logs(name, lp).await.expect("logs")
}

/// Whether a process lives (and is not a zombie).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// Live members of a process group, from /proc.
fn group_members(pgid: i32) -> Vec<i32> {
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

fn pod_dir(env: &Env, pod: &Value) -> PathBuf {
    env.data()
        .join("pods")
        .join(pod["metadata"]["uid"].as_str().expect("uid"))
}

/// The process groups a pod's directory records.
fn recorded_groups(dir: &Path) -> Vec<i32> {
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

#[tokio::test]
async fn node_registers_and_shell_pod_logs_follows_restarts_and_keeps_previous() {
    let env = start(200).await;
    let nodes: Api<Node> = Api::all(env.client.clone());
    let node = serde_json::to_value(nodes.get("local").await.expect("node")).expect("json");
    assert_eq!(node["metadata"]["labels"]["vdi.dev/runtime"], "process");
    assert_eq!(
        node["metadata"]["labels"]["kubernetes.io/hostname"],
        "local"
    );
    assert!(
        node["status"]["nodeInfo"]["containerRuntimeVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("process://"))
    );
    assert!(node["status"]["allocatable"]["cpu"].as_str().is_some());
    assert_eq!(node["status"]["conditions"][0]["type"], "Ready");

    let pods = env.pods();
    // Bound by the binder through its node selector.
    pods.create(
        &PostParams::default(),
        &pod(
            "printer",
            json!({
                "nodeSelector": {"vdi.dev/runtime": "process"},
                "containers": [{"name": "sh", "image": "test/sh:1",
                    "args": ["echo line-1; echo line-2 >&2; sleep 1; echo line-3"],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
            }),
        ),
    )
    .await
    .expect("create");
    let running = wait_pod(&pods, "printer", "Running", |p| {
        p["status"]["phase"] == "Running" && container(p, "sh")["state"]["running"].is_object()
    })
    .await;
    assert_eq!(running["spec"]["nodeName"], "local");
    assert_eq!(running["status"]["podIP"], "127.0.0.1");

    // follow streams the instance's lines and ends with it.
    let stream = pods
        .log_stream(
            "printer",
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("follow");
    let followed: Vec<String> = tokio::time::timeout(DEADLINE, stream.lines().try_collect())
        .await
        .expect("follow ends with the container")
        .expect("lines");
    assert_eq!(followed, ["line-1", "line-2", "line-3"]);

    let restarted = wait_pod(&pods, "printer", "restarted", |p| {
        container(p, "sh")["restartCount"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(
        container(&restarted, "sh")["lastState"]["terminated"]["reason"],
        "Completed"
    );
    let previous = logs(
        &pods,
        "printer",
        &LogParams {
            previous: true,
            ..LogParams::default()
        },
    )
    .await;
    assert_eq!(previous, "line-1\nline-2\nline-3\n");
    let stamped = logs(
        &pods,
        "printer",
        &LogParams {
            previous: true,
            timestamps: true,
            tail_lines: Some(1),
            ..LogParams::default()
        },
    )
    .await;
    let (time, text) = stamped.trim_end().split_once(' ').expect("stamp");
    assert!(time.parse::<jiff::Timestamp>().is_ok(), "{stamped}");
    assert_eq!(text, "line-3");

    // The second exit backs off as the kubelet does.
    let backoff = wait_pod(&pods, "printer", "backing off", |p| {
        container(p, "sh")["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    })
    .await;
    assert_eq!(backoff["status"]["phase"], "Running");

    // An image the runtime table does not know waits, naming it.
    pods.create(
        &PostParams::default(),
        &pod(
            "web",
            json!({"nodeName": "local", "containers": [{"name": "nginx", "image": "nginx:1.27"}]}),
        ),
    )
    .await
    .expect("create");
    let waiting = wait_pod(&pods, "web", "ErrImagePull", |p| {
        container(p, "nginx")["state"]["waiting"]["reason"] == "ErrImagePull"
    })
    .await;
    assert_eq!(waiting["status"]["phase"], "Pending");
    assert!(
        container(&waiting, "nginx")["state"]["waiting"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nginx:1.27") && m.contains("runtime table"))
    );
    env.node.expect("node").stop().await;
}

/// `X server ready on :N (pid P)` and `openbox (pid W) and xterm (pid T)` from the log.
fn desktop_pids(log: &str) -> Option<(String, i32, i32, i32)> {
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

async fn desktop_of(pods: &Api<Pod>, name: &str) -> (String, i32, i32, i32) {
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

fn xdpyinfo(display: &str) -> bool {
    std::process::Command::new("xdpyinfo")
        .args(["-display", display])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn killing_a_desktops_x_server_fails_that_pod_only() {
    let env = start(300).await;
    let pods = env.pods();
    for name in ["desk-a", "desk-b"] {
        pods.create(
            &PostParams::default(),
            &pod(name, json!({"nodeName": "local", "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 5,
                "containers": [{"name": "desktop", "image": "ghcr.io/vdi-platform/ubuntu-desktop:24.04",
                    "env": [{"name": "DISPLAY", "value": ":0"}]}]})),
        )
        .await
        .expect("create");
    }
    let (display_a, x_a, wm_a, term_a) = desktop_of(&pods, "desk-a").await;
    let (display_b, x_b, wm_b, term_b) = desktop_of(&pods, "desk-b").await;
    assert_ne!(display_a, display_b);
    assert!(xdpyinfo(&display_a) && xdpyinfo(&display_b));
    assert_eq!(
        (comm(wm_a), comm(term_a)),
        ("openbox".into(), "xterm".into())
    );
    assert!(alive(wm_b) && alive(term_b));

    let killed = std::process::Command::new("kill")
        .args(["-KILL", &x_a.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let failed = wait_pod(&pods, "desk-a", "Failed", |p| {
        p["status"]["phase"] == "Failed"
    })
    .await;
    let terminated = &container(&failed, "desktop")["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 137);
    assert_eq!(terminated["reason"], "Error");
    assert_eq!(
        failed["status"]["message"],
        "container desktop exited with 137 (Error)"
    );
    wait_until("desk-a's window manager and terminal end", || {
        !alive(wm_a) && !alive(term_a)
    })
    .await;

    let other = serde_json::to_value(pods.get("desk-b").await.expect("desk-b")).expect("json");
    assert_eq!(other["status"]["phase"], "Running");
    assert!(alive(x_b) && alive(wm_b) && alive(term_b));
    assert!(xdpyinfo(&display_b));
    env.node.expect("node").stop().await;
    assert!(!alive(x_b), "stop ends every pod");
}

#[tokio::test]
async fn deleting_a_pod_leaves_nothing_but_its_claim() {
    let env = start(400).await;
    let pods = env.pods();
    let volumes = json!([{"name": "data", "persistentVolumeClaim": {"claimName": "home-claim"}},
                         {"name": "x11", "emptyDir": {}}]);
    pods.create(
        &PostParams::default(),
        &pod("writer", json!({"nodeName": "local", "terminationGracePeriodSeconds": 5,
            "volumes": volumes,
            "containers": [
                {"name": "desktop", "image": "ghcr.io/vdi-platform/ubuntu-desktop:24.04",
                 "volumeMounts": [{"name": "x11", "mountPath": "/tmp/.X11-unix"}]},
                {"name": "web", "image": "test/web",
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "env": [{"name": "NOTE", "value": "/data/note.txt"}],
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                 "args": ["echo hello > \"$NOTE\"; exec python3 -m http.server --bind 127.0.0.1 \"${LISTEN##*:}\""]},
            ]})),
    )
    .await
    .expect("create");
    let running = wait_pod(
        &pods,
        "writer",
        "announcing its endpoint and Running",
        |p| {
            p["status"]["phase"] == "Running"
                && p["metadata"]["annotations"]["vdi.dev/local-endpoint"].is_string()
        },
    )
    .await;
    let endpoint = running["metadata"]["annotations"]["vdi.dev/local-endpoint"]
        .as_str()
        .expect("endpoint")
        .to_owned();
    let (display, _, _, _) = desktop_of(&pods, "writer").await;
    let n: u32 = display.trim_start_matches(':').parse().expect("display");
    wait_until("the web server listens", || {
        std::net::TcpStream::connect(&endpoint).is_ok()
    })
    .await;
    let dir = pod_dir(&env, &running);
    let groups = recorded_groups(&dir);
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(groups.iter().all(|g| !group_members(*g).is_empty()));
    let x_files = [format!("/tmp/.X11-unix/X{n}"), format!("/tmp/.X{n}-lock")];
    assert!(x_files.iter().all(|f| Path::new(f).exists()));
    let note = env.data().join("volumes/default/home-claim/note.txt");
    assert_eq!(std::fs::read_to_string(&note).expect("note"), "hello\n");

    pods.delete("writer", &DeleteParams::default())
        .await
        .expect("delete");
    wait_until(
        "no process, display file, port or directory is left",
        || {
            groups.iter().all(|g| group_members(*g).is_empty())
                && x_files.iter().all(|f| !Path::new(f).exists())
                && std::net::TcpListener::bind(&endpoint).is_ok()
                && !dir.exists()
        },
    )
    .await;
    assert!(note.exists(), "the claim's directory survives the pod");

    pods.create(
        &PostParams::default(),
        &pod(
            "reader",
            json!({"nodeName": "local", "restartPolicy": "Never",
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "home-claim"}}],
            "containers": [{"name": "sh", "image": "test/sh", "args": ["cat \"$NOTE\""],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "env": [{"name": "NOTE", "value": "/data/note.txt"}]}]}),
        ),
    )
    .await
    .expect("create");
    wait_pod(&pods, "reader", "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    })
    .await;
    assert_eq!(
        logs(&pods, "reader", &LogParams::default()).await,
        "hello\n"
    );
    env.node.expect("node").stop().await;
}

#[tokio::test]
async fn readiness_follows_an_http_probe() {
    let env = start(500).await;
    let pods = env.pods();
    pods.create(
        &PostParams::default(),
        &pod("web", json!({"nodeName": "local",
            "containers": [{"name": "web", "image": "test/web",
                "ports": [{"name": "http", "containerPort": 8000}],
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
                "args": ["while [ ! -e go ]; do sleep 0.05; done; exec python3 -m http.server --bind 127.0.0.1 \"${LISTEN##*:}\""]}]})),
    )
    .await
    .expect("create");
    let running = wait_pod(&pods, "web", "Running", |p| {
        container(p, "web")["state"]["running"].is_object()
    })
    .await;
    assert_eq!(container(&running, "web")["ready"], false);
    let dir = pod_dir(&env, &running);
    // Nothing listens yet: two probe periods later it is still not ready.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let still = serde_json::to_value(pods.get("web").await.expect("web")).expect("json");
    assert_eq!(container(&still, "web")["ready"], false);
    std::fs::write(dir.join("containers/web/go"), b"").expect("go");
    let ready = wait_pod(&pods, "web", "ready", |p| {
        container(p, "web")["ready"] == true
    })
    .await;
    let conditions = ready["status"]["conditions"]
        .as_array()
        .expect("conditions");
    for t in ["Ready", "ContainersReady"] {
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == t && c["status"] == "True"),
            "{t}: {conditions:?}"
        );
    }
    let endpoint = ready["metadata"]["annotations"]["vdi.dev/local-endpoint"]
        .as_str()
        .expect("endpoint");
    assert!(std::net::TcpStream::connect(endpoint).is_ok());
    env.node.expect("node").stop().await;
}

#[tokio::test]
async fn a_missing_configmap_waits_until_it_appears() {
    let env = start(600).await;
    let pods = env.pods();
    pods.create(
        &PostParams::default(),
        &pod("late", json!({"nodeName": "local", "restartPolicy": "Never",
            "containers": [{"name": "sh", "image": "test/sh", "args": ["echo \"mode=$MODE\""],
                "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}]}]})),
    )
    .await
    .expect("create");
    let waiting = wait_pod(&pods, "late", "waiting on its ConfigMap", |p| {
        container(p, "sh")["state"]["waiting"]["reason"] == "CreateContainerConfigError"
    })
    .await;
    assert_eq!(
        container(&waiting, "sh")["state"]["waiting"]["message"],
        "configmap \"settings\" not found"
    );
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::default_namespaced(env.client.clone());
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "settings"}, "data": {"mode": "fast"}}),
        )
        .expect("configmap"),
    )
    .await
    .expect("create configmap");
    wait_pod(&pods, "late", "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    })
    .await;
    assert_eq!(
        logs(&pods, "late", &LogParams::default()).await,
        "mode=fast\n"
    );
    env.node.expect("node").stop().await;
}

/// The start time (field 22 of /proc/<pid>/stat) of a process.
fn start_time(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = stat.rsplit_once(')').expect("comm").1.to_owned();
    rest.split_whitespace()
        .nth(19)
        .expect("starttime")
        .to_owned()
}

#[tokio::test]
async fn dropping_the_node_kills_its_pods_and_a_restart_ends_what_a_previous_run_left() {
    let mut env = start(700).await;
    let pods = env.pods();
    pods.create(
        &PostParams::default(),
        &pod("sleeper", json!({"nodeName": "local",
            "containers": [{"name": "sh", "image": "test/sh", "args": ["sleep 1000 & sleep 1000"]}]})),
    )
    .await
    .expect("create");
    let running = wait_pod(&pods, "sleeper", "Running", |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    let dir = pod_dir(&env, &running);
    let groups = recorded_groups(&dir);
    assert_eq!(groups.len(), 1);
    wait_until("both sleeps run", || group_members(groups[0]).len() == 3).await;
    drop(env.node.take());
    wait_until("the dropped node's processes are gone", || {
        group_members(groups[0]).is_empty() && !dir.exists()
    })
    .await;

    // What a crashed agent leaves: a live group recorded in a pid file, and its directory.
    let mut orphan = std::process::Command::new("sleep")
        .arg("1000")
        .process_group(0)
        .spawn()
        .expect("spawn");
    let pid = i32::try_from(orphan.id()).expect("pid");
    let left = env.data().join("pods/left-over-uid");
    std::fs::create_dir_all(left.join("pids")).expect("dirs");
    std::fs::write(left.join("pids/sh"), format!("{pid} {}\n", start_time(pid))).expect("pid file");
    // A pid file whose start time does not match is someone else's process: left alone.
    let mut stranger = std::process::Command::new("sleep")
        .arg("1000")
        .process_group(0)
        .spawn()
        .expect("spawn");
    let stranger_pid = i32::try_from(stranger.id()).expect("pid");
    std::fs::write(left.join("pids/other"), format!("{stranger_pid} 1\n")).expect("pid file");
    let mut node = ProcessNode::new(env.data(), "/bin/false");
    node.display_base = 700;
    let again = node
        .start(env._cluster.store().clone())
        .await
        .expect("restart");
    let status = orphan.wait().expect("wait");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(!left.exists());
    assert!(alive(stranger_pid));
    stranger.kill().expect("kill stranger");
    let _ = stranger.wait();
    again.stop().await;
}

#[tokio::test]
async fn a_memory_limit_bounds_the_data_segment() {
    let env = start(800).await;
    let pods = env.pods();
    pods.create(
        &PostParams::default(),
        &pod(
            "limited",
            json!({"nodeName": "local", "restartPolicy": "Never",
            "containers": [{"name": "sh", "image": "test/sh", "args": ["ulimit -d"],
                "resources": {"limits": {"memory": "64Mi"}}}]}),
        ),
    )
    .await
    .expect("create");
    wait_pod(&pods, "limited", "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    })
    .await;
    let log = logs(&pods, "limited", &LogParams::default()).await;
    if log == "unlimited\n" {
        // The limit went to a delegated cgroup v2 instead.
        assert!(
            Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
            "no limit at all"
        );
    } else {
        assert_eq!(log, "65536\n", "RLIMIT_DATA in KiB");
    }
    env.node.expect("node").stop().await;
}
