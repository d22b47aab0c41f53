//! The process node ends what it runs: a desktop whose X server dies fails alone, a deleted pod
//! leaves no process, display, port or directory (its claim stays), a dropped node kills its
//! pods, and a restarted one ends what a previous run left.

mod common;
mod process;

use std::os::unix::process::CommandExt as _;
use std::path::Path;

use kube::api::{DeleteParams, LogParams, PostParams};
use serde_json::json;
use vdi_cluster::ProcessNode;

use process::*;

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
    // A group whose leader exited but whose child lives on.
    let orphaned = std::process::Command::new("sh")
        .args(["-c", "sleep 1000 >/dev/null 2>&1 & echo $!"])
        .process_group(0)
        .output()
        .expect("spawn");
    let child: i32 = String::from_utf8_lossy(&orphaned.stdout)
        .trim()
        .parse()
        .expect("child pid");
    let child_group = std::fs::read_to_string(format!("/proc/{child}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(2)?
                .parse::<i32>()
                .ok()
        })
        .expect("child's group");
    assert!(!alive(child_group), "the group's leader has exited");
    std::fs::write(left.join("pids/orphaned"), format!("{child_group} 1\n")).expect("pid file");
    let mut node = ProcessNode::new(env.data(), "/bin/false");
    node.display_base = 700;
    let again = node
        .start(env.cluster.store().clone())
        .await
        .expect("restart");
    let status = orphan.wait().expect("wait");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(!left.exists());
    wait_until("the orphaned group's child is killed", || !alive(child)).await;
    assert!(alive(stranger_pid));
    stranger.kill().expect("kill stranger");
    let _ = stranger.wait();
    again.stop().await;
}
