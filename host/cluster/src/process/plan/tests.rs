use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::process::config::{RuntimeEntry, RuntimeTable};

fn node() -> ProcessNode {
    let mut n = ProcessNode::new("/data", "/opt/vdi/vdi-streamer");
    n.runtime = RuntimeTable::default().with("test/sh", RuntimeEntry::exec(["/bin/sh", "-c"]));
    n
}

fn store_objects(kind: &str, name: &str) -> Option<Value> {
    match (kind, name) {
        ("configmaps", "settings") => {
            Some(json!({"metadata": {"name": "settings"}, "data": {"MODE": "fast", "LEVEL": "3"}}))
        }
        ("secrets", "connect-keys") => Some(json!({"metadata": {"name": "connect-keys"},
            "data": {"keys.pem": "UFVCTElD", "token": "c2VjcmV0"}})),
        _ => None,
    }
}

fn session_pod() -> Value {
    json!({
        "metadata": {"name": "s1", "namespace": "alice", "uid": "u-1",
            "labels": {"app": "desk"}, "annotations": {"note": "hi"}},
        "spec": {
            "nodeName": "local",
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 600,
            "volumes": [
                {"name": "home", "persistentVolumeClaim": {"claimName": "home-alice"}},
                {"name": "x11", "emptyDir": {}},
                {"name": "connect-keys", "secret": {"secretName": "connect-keys"}},
                {"name": "scratch", "emptyDir": {}},
            ],
            "containers": [
                {"name": "desktop", "image": "ghcr.io/vdi-platform/ubuntu-desktop:24.04",
                 "env": [{"name": "DISPLAY", "value": ":0"}],
                 "volumeMounts": [{"name": "home", "mountPath": "/home/user"},
                                  {"name": "x11", "mountPath": "/tmp/.X11-unix"}],
                 "resources": {"limits": {"memory": "2Gi"}}},
                {"name": "streamer", "image": "ghcr.io/vdi-platform/vdi-streamer:0.1",
                 "args": ["--display", "$(DISPLAY)", "--keys=/etc/vdi/connect/keys.pem", "/etc/vdi/connect/keys.pem"],
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "env": [
                    {"name": "VDI_TOKEN_PUBLIC_KEY", "value": "/etc/vdi/connect/keys.pem"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "connect-keys", "key": "token"}}},
                    {"name": "MODE_COPY", "value": "$(MODE)-x"},
                 ],
                 "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
                             {"configMapRef": {"name": "settings"}}],
                 "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2},
                 "volumeMounts": [{"name": "connect-keys", "mountPath": "/etc/vdi/connect", "readOnly": true},
                                  {"name": "x11", "mountPath": "/tmp/.X11-unix"}]},
            ],
        },
    })
}

fn plan_of(pod: &Value, ports: &HashMap<(String, u16), u16>) -> PodPlan {
    let node = node();
    plan(&PodContext {
        pod,
        node: &node,
        pod_dir: Path::new("/data/pods/u-1"),
        display: 101,
        ports,
        lookup: &store_objects,
    })
}

fn env_of<'a>(launch: &'a Launch, k: &str) -> Option<&'a str> {
    launch
        .env
        .iter()
        .rev()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
}

#[test]
fn session_pod_maps_to_host_paths_ports_and_env() {
    let pod = session_pod();
    let ports = HashMap::from([(("streamer".to_owned(), 8080), 41_234)]);
    assert_eq!(declared_ports(&pod), vec![("streamer".to_owned(), 8080)]);
    let p = plan_of(&pod, &ports);
    assert_eq!(p.endpoint.as_deref(), Some("127.0.0.1:41234"));
    assert_eq!(p.restart, RestartPolicy::Never);
    assert_eq!(p.grace, MAX_GRACE);
    assert!(
        p.dirs
            .contains(&PathBuf::from("/data/volumes/alice/home-alice"))
    );
    let key = p
        .files
        .iter()
        .find(|f| f.path.ends_with("keys.pem"))
        .expect("secret file");
    assert_eq!(
        key.path,
        Path::new("/data/pods/u-1/volumes/connect-keys/keys.pem")
    );
    assert_eq!((key.contents.as_slice(), key.mode), (&b"PUBLIC"[..], 0o600));

    let desktop = p.containers[0].launch.as_ref().expect("desktop plan");
    assert_eq!(desktop.program, "/bin/sh");
    assert_eq!(desktop.args, ["/data/pods/u-1/desktop.sh"]);
    assert_eq!(env_of(desktop, "DISPLAY"), Some(":101"));
    assert_eq!(
        env_of(desktop, "HOME"),
        Some("/data/volumes/alice/home-alice")
    );
    assert_eq!(desktop.memory_limit, Some(2 << 30));
    assert!(
        p.files
            .iter()
            .any(|f| f.path.ends_with("desktop.sh") && f.mode == 0o700)
    );

    let streamer = p.containers[1].launch.as_ref().expect("streamer plan");
    assert_eq!(streamer.program, "/opt/vdi/vdi-streamer");
    assert_eq!(
        streamer.args,
        [
            "--display",
            ":101",
            "--keys=/etc/vdi/connect/keys.pem",
            "/data/pods/u-1/volumes/connect-keys/keys.pem"
        ]
    );
    assert_eq!(
        env_of(streamer, "VDI_TOKEN_PUBLIC_KEY"),
        Some("/data/pods/u-1/volumes/connect-keys/keys.pem")
    );
    assert_eq!(env_of(streamer, "VDI_LISTEN"), Some("127.0.0.1:41234"));
    assert_eq!(env_of(streamer, "POD"), Some("s1"));
    assert_eq!(env_of(streamer, "APP"), Some("desk"));
    assert_eq!(env_of(streamer, "IP"), Some("127.0.0.1"));
    assert_eq!(env_of(streamer, "TOKEN"), Some("secret"));
    assert_eq!(env_of(streamer, "CFG_MODE"), Some("fast"));
    assert_eq!(env_of(streamer, "MODE_COPY"), Some("fast-x"));
    assert_eq!(
        env_of(streamer, "HOME"),
        Some("/data/pods/u-1/containers/streamer")
    );
    assert_eq!(
        streamer.cwd,
        Path::new("/data/pods/u-1/containers/streamer")
    );
    assert_eq!(
        streamer.readiness.as_ref().map(|r| (&r.action, r.period)),
        Some((
            &ProbeAction::Http {
                port: 41_234,
                path: "/healthz".into()
            },
            Duration::from_secs(2)
        ))
    );
}

#[test]
fn unknown_images_and_missing_references_wait_with_kubelet_reasons() {
    let pod = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {"containers": [
        {"name": "web", "image": "nginx:1.27"},
        {"name": "cfg", "image": "test/sh", "env": [
            {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]},
        {"name": "key", "image": "test/sh", "env": [
            {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "nope"}}}]},
        {"name": "opt", "image": "test/sh", "env": [
            {"name": "Z", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": true}}}]},
    ]}});
    let p = plan_of(&pod, &HashMap::new());
    let waiting = |i: usize| p.containers[i].launch.clone().expect_err("waits");
    let web = waiting(0);
    assert_eq!(web.reason, "ErrImagePull");
    assert!(
        web.message.contains("nginx:1.27") && web.message.contains("runtime table"),
        "{}",
        web.message
    );
    let cfg = waiting(1);
    assert_eq!(cfg.reason, "CreateContainerConfigError");
    assert!(
        cfg.message.contains("configmap \"absent\" not found"),
        "{}",
        cfg.message
    );
    assert!(waiting(2).message.contains("couldn't find key nope"));
    let opt = p.containers[3].launch.as_ref().expect("optional is fine");
    assert_eq!(opt.program, "/bin/sh");
    assert_eq!(env_of(opt, "Z"), None);
    assert_eq!(p.restart, RestartPolicy::Always);
}

#[test]
fn volume_problems_name_the_field() {
    let bad_claim = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {
        "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "../etc"}}],
        "containers": [{"name": "c", "image": "test/sh"}]}});
    let w = plan_of(&bad_claim, &HashMap::new()).containers[0]
        .launch
        .clone()
        .expect_err("bad claim");
    assert!(w.message.contains("claimName"), "{}", w.message);
    let no_volume = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {
        "containers": [{"name": "c", "image": "test/sh",
            "volumeMounts": [{"name": "ghost", "mountPath": "/x"}]}]}});
    let w = plan_of(&no_volume, &HashMap::new()).containers[0]
        .launch
        .clone()
        .expect_err("no volume");
    assert!(
        w.message.contains("volumeMounts[0]") && w.message.contains("ghost"),
        "{}",
        w.message
    );
    let missing_secret = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {
        "volumes": [{"name": "k", "secret": {"secretName": "gone"}}],
        "containers": [{"name": "c", "image": "test/sh"}]}});
    let w = plan_of(&missing_secret, &HashMap::new()).containers[0]
        .launch
        .clone()
        .expect_err("missing secret");
    assert!(
        w.message.contains("secret \"gone\" not found"),
        "{}",
        w.message
    );
}

#[test]
fn host_paths_are_used_not_created() {
    let pod = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {
        "volumes": [{"name": "shm", "hostPath": {"path": "/dev/shm"}}],
        "containers": [{"name": "c", "image": "test/sh", "args": ["/mnt/shm/x"],
            "volumeMounts": [{"name": "shm", "mountPath": "/mnt/shm"}]}]}});
    let p = plan_of(&pod, &HashMap::new());
    assert!(!p.dirs.contains(&PathBuf::from("/dev/shm")));
    let launch = p.containers[0].launch.as_ref().expect("plan");
    assert_eq!(launch.args, ["-c", "/dev/shm/x"]);
}

#[test]
fn expansion_follows_kubelet_rules() {
    let var = |k: &str| (k == "A").then(|| "1".to_owned());
    assert_eq!(env::expand("x$(A)y", &var), "x1y");
    assert_eq!(env::expand("$$(A) $(B) $", &var), "$(A) $(B) $");
    assert_eq!(env::expand("$(A", &var), "$(A");
}
