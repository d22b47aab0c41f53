//! The real `kubectl create <generator>` against the embedded control plane: kubectl sends
//! built-in kinds as protobuf, the server converts them, and `kubectl get -o json` shows what
//! was stored.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{ClusterProcess, kubectl_path};
use serde_json::{Value, json};

fn kubectl(cluster: &ClusterProcess, home: &Path, args: &[&str]) -> Output {
    Command::new(kubectl_path())
        .args(args)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("HOME", home)
        .current_dir(home)
        .output()
        .expect("run kubectl")
}

fn ok(cluster: &ClusterProcess, home: &Path, args: &[&str]) -> String {
    let out = kubectl(cluster, home, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl get <what> -o json`, parsed.
fn get(cluster: &ClusterProcess, home: &Path, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend(["-o", "json"]);
    serde_json::from_str(&ok(cluster, home, &args)).expect("kubectl get prints JSON")
}

fn base64(v: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("a base64 string"))
        .expect("base64")
}

#[test]
fn kubectl_create_generators_send_protobuf_the_server_stores_as_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path();
    let cluster = ClusterProcess::start(home);
    let ok = |args: &[&str]| ok(&cluster, home, args);
    let get = |what: &[&str]| get(&cluster, home, what);

    ok(&["create", "namespace", "x"]);
    assert_eq!(get(&["namespace", "x"])["metadata"]["name"], "x");

    ok(&["create", "configmap", "c", "-n", "x", "--from-literal=a=1"]);
    assert_eq!(
        get(&["configmap", "c", "-n", "x"])["data"],
        json!({"a": "1"})
    );

    ok(&[
        "create",
        "secret",
        "generic",
        "s",
        "-n",
        "x",
        "--from-literal=p=q",
    ]);
    let s = get(&["secret", "s", "-n", "x"]);
    assert_eq!(base64(&s["data"]["p"]), b"q");
    // kubectl sends no type (kube-apiserver's defaulting makes it Opaque).
    assert!(matches!(s["type"].as_str(), None | Some("Opaque")), "{s}");

    ok(&[
        "create",
        "secret",
        "docker-registry",
        "r",
        "-n",
        "x",
        "--docker-server=registry.example.com",
        "--docker-username=u",
        "--docker-password=pw",
    ]);
    let r = get(&["secret", "r", "-n", "x"]);
    assert_eq!(r["type"], "kubernetes.io/dockerconfigjson");
    let config: Value =
        serde_json::from_slice(&base64(&r["data"][".dockerconfigjson"])).expect("docker config");
    let auth = &config["auths"]["registry.example.com"];
    assert_eq!(
        (auth["username"].as_str(), auth["password"].as_str()),
        (Some("u"), Some("pw"))
    );

    let certified = rcgen::generate_simple_self_signed(vec!["web.example.com".to_owned()])
        .expect("certificate");
    let (cert, key) = (certified.cert.pem(), certified.signing_key.serialize_pem());
    std::fs::write(home.join("tls.crt"), &cert).expect("write cert");
    std::fs::write(home.join("tls.key"), &key).expect("write key");
    ok(&[
        "create",
        "secret",
        "tls",
        "t",
        "-n",
        "x",
        "--cert=tls.crt",
        "--key=tls.key",
    ]);
    let t = get(&["secret", "t", "-n", "x"]);
    assert_eq!(t["type"], "kubernetes.io/tls");
    assert_eq!(base64(&t["data"]["tls.crt"]), cert.as_bytes());
    assert_eq!(base64(&t["data"]["tls.key"]), key.as_bytes());

    ok(&["create", "serviceaccount", "robot", "-n", "x"]);
    assert_eq!(
        get(&["serviceaccount", "robot", "-n", "x"])["metadata"]["namespace"],
        "x"
    );
    let token = ok(&["create", "token", "robot", "-n", "x", "--duration=10m"]);
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");

    ok(&[
        "create",
        "role",
        "reader",
        "-n",
        "x",
        "--verb=get,list",
        "--resource=pods,configmaps",
    ]);
    assert_eq!(
        get(&["role", "reader", "-n", "x"])["rules"],
        json!([{"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list"]}])
    );
    ok(&[
        "create",
        "rolebinding",
        "rb",
        "-n",
        "x",
        "--role=reader",
        "--serviceaccount=x:robot",
    ]);
    let rb = get(&["rolebinding", "rb", "-n", "x"]);
    assert_eq!(
        rb["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"})
    );
    assert_eq!(
        rb["subjects"],
        json!([{"kind": "ServiceAccount", "name": "robot", "namespace": "x"}])
    );
    ok(&[
        "create",
        "clusterrole",
        "node-reader",
        "--verb=get",
        "--resource=nodes",
    ]);
    assert_eq!(
        get(&["clusterrole", "node-reader"])["rules"],
        json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}])
    );
    ok(&[
        "create",
        "clusterrole",
        "gathered",
        "--aggregation-rule=example.com/gather=true",
    ]);
    assert_eq!(
        get(&["clusterrole", "gathered"])["aggregationRule"],
        json!({"clusterRoleSelectors": [{"matchLabels": {"example.com/gather": "true"}}]})
    );
    ok(&[
        "create",
        "clusterrolebinding",
        "crb",
        "--clusterrole=node-reader",
        "--user=alice",
    ]);
    assert_eq!(
        get(&["clusterrolebinding", "crb"])["subjects"],
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}])
    );

    ok(&[
        "create",
        "service",
        "clusterip",
        "web",
        "-n",
        "x",
        "--tcp=5678:8080",
    ]);
    let spec = &get(&["service", "web", "-n", "x"])["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["selector"], json!({"app": "web"}));
    let port = &spec["ports"][0];
    assert_eq!(
        (
            &port["name"],
            &port["port"],
            &port["targetPort"],
            &port["protocol"]
        ),
        (
            &json!("5678-8080"),
            &json!(5678),
            &json!(8080),
            &json!("TCP")
        )
    );

    ok(&[
        "run",
        "p",
        "-n",
        "x",
        "--image=busybox",
        "--labels=app=p",
        "--",
        "sleep",
        "1",
    ]);
    let pod = get(&["pod", "p", "-n", "x"]);
    assert_eq!(pod["metadata"]["labels"], json!({"app": "p"}));
    let c = &pod["spec"]["containers"][0];
    assert_eq!(
        (&c["image"], &c["args"]),
        (&json!("busybox"), &json!(["sleep", "1"]))
    );

    workloads_where_served(&cluster, home);
}

/// The kinds of groups the server may not serve yet: each is created and read back only when
/// `kubectl api-resources` lists it.
fn workloads_where_served(cluster: &ClusterProcess, home: &Path) {
    let ok = |args: &[&str]| ok(cluster, home, args);
    let get = |what: &[&str]| get(cluster, home, what);
    let served = ok(&["api-resources", "-o", "name"]);
    let serves = |name: &str| {
        let yes = served.lines().any(|l| l == name);
        if !yes {
            eprintln!("{name} is not served: kubectl create for it not tried");
        }
        yes
    };
    if serves("deployments.apps") {
        ok(&[
            "create",
            "deployment",
            "web",
            "-n",
            "x",
            "--image=nginx:1",
            "--replicas=2",
            "--port=80",
        ]);
        let d = get(&["deployment", "web", "-n", "x"]);
        assert_eq!(d["spec"]["replicas"], 2);
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            (&c["image"], &c["ports"][0]["containerPort"]),
            (&json!("nginx:1"), &json!(80))
        );
    }
    if serves("jobs.batch") {
        ok(&[
            "create",
            "job",
            "once",
            "-n",
            "x",
            "--image=busybox",
            "--",
            "echo",
            "hi",
        ]);
        let c = &get(&["job", "once", "-n", "x"])["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["command"], json!(["echo", "hi"]));
    }
    if serves("cronjobs.batch") {
        ok(&[
            "create",
            "cronjob",
            "nightly",
            "-n",
            "x",
            "--image=busybox",
            "--schedule=0 3 * * *",
        ]);
        assert_eq!(
            get(&["cronjob", "nightly", "-n", "x"])["spec"]["schedule"],
            "0 3 * * *"
        );
    }
    if serves("priorityclasses.scheduling.k8s.io") {
        ok(&[
            "create",
            "priorityclass",
            "high",
            "--value=1000",
            "--description=important",
        ]);
        assert_eq!(get(&["priorityclass", "high"])["value"], 1000);
    }
    if serves("poddisruptionbudgets.policy") {
        ok(&[
            "create",
            "poddisruptionbudget",
            "pdb",
            "-n",
            "x",
            "--selector=app=web",
            "--min-available=1",
        ]);
        assert_eq!(get(&["pdb", "pdb", "-n", "x"])["spec"]["minAvailable"], 1);
    }
    if serves("resourcequotas") {
        ok(&[
            "create",
            "quota",
            "q",
            "-n",
            "x",
            "--hard=pods=10,requests.cpu=2",
        ]);
        assert_eq!(
            get(&["resourcequota", "q", "-n", "x"])["spec"]["hard"],
            json!({"pods": "10", "requests.cpu": "2"})
        );
    }
    if serves("ingresses.networking.k8s.io") {
        ok(&[
            "create",
            "ingress",
            "web",
            "-n",
            "x",
            "--rule=a.example.com/=web:80",
        ]);
        let rule = &get(&["ingress", "web", "-n", "x"])["spec"]["rules"][0];
        assert_eq!(rule["host"], "a.example.com");
        assert_eq!(
            rule["http"]["paths"][0]["backend"]["service"],
            json!({"name": "web", "port": {"number": 80}})
        );
    }
}
