//! kubectl's everyday verbs against `vdi up`, table-driven: each invocation of the real kubectl
//! 1.37 with the outcome it must have, run in order (later rows use what earlier ones made).
//! The table is printed, and docs/kubectl.md must list every row (checked here), so the doc
//! says truthfully what works and what does not.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ClusterProcess, kubectl_path, repo_root};

/// What a row must do.
#[derive(Clone, Copy)]
enum Want {
    /// Succeed, its stdout containing each string.
    Ok(&'static [&'static str]),
    /// Fail, its stderr (or stdout) containing each string: a documented limit.
    Fails(&'static [&'static str]),
}

/// One row: the kubectl arguments (`$POD` is replaced by the session's pod), stdin, outcome.
struct Row {
    args: &'static [&'static str],
    stdin: Option<&'static str>,
    want: Want,
}

const fn ok(args: &'static [&'static str], out: &'static [&'static str]) -> Row {
    Row {
        args,
        stdin: None,
        want: Want::Ok(out),
    }
}

const fn fails(args: &'static [&'static str], err: &'static [&'static str]) -> Row {
    Row {
        args,
        stdin: None,
        want: Want::Fails(err),
    }
}

const fn with_stdin(row: Row, stdin: &'static str) -> Row {
    Row {
        stdin: Some(stdin),
        ..row
    }
}

const CM: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied, namespace: sweep}\ndata: {k: v}\n";
const CM_CHANGED: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied, namespace: sweep}\ndata: {k: changed}\n";
const SET_TWO: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s1}\ndata: {k: v}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: s2}\ndata: {k: v}\n";
const SET_ONE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s1}\ndata: {k: v}\n";
const CM_DRY: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry, namespace: sweep}\ndata: {k: v}\n";

/// The sweep, in order.
const ROWS: &[Row] = &[
    // Discovery and the cluster.
    ok(&["version", "-o", "json"], &["serverVersion", "gitVersion"]),
    ok(
        &["api-versions"],
        &[
            "vdi.dev/v1alpha1",
            "apps/v1",
            "rbac.authorization.k8s.io/v1",
        ],
    ),
    ok(
        &["api-resources"],
        &["vdisessions", "deployments", "priorityclasses"],
    ),
    ok(&["cluster-info"], &["is running at"]),
    ok(&["get", "--raw", "/healthz"], &["ok"]),
    ok(&["auth", "whoami"], &["system:admin"]),
    ok(&["get", "nodes", "-o", "wide"], &["sim-gpu-000", "Ready"]),
    ok(&["describe", "node", "sim-gpu-000"], &["nvidia.com/gpu"]),
    ok(&["get", "crd"], &["vdisessions.vdi.dev"]),
    ok(&["get", "vdp"], &["quota", "Ready"]),
    ok(&["get", "vdt"], &["ubuntu-desktop"]),
    // Imperative creates (kubectl sends these as protobuf).
    ok(
        &["create", "namespace", "sweep"],
        &["namespace/sweep created"],
    ),
    ok(
        &[
            "create",
            "configmap",
            "cm1",
            "-n",
            "sweep",
            "--from-literal=a=1",
        ],
        &["created"],
    ),
    ok(
        &[
            "create",
            "secret",
            "generic",
            "s1",
            "-n",
            "sweep",
            "--from-literal=p=q",
        ],
        &["created"],
    ),
    ok(
        &[
            "create",
            "secret",
            "docker-registry",
            "pull",
            "-n",
            "sweep",
            "--docker-server=registry.example",
            "--docker-username=u",
            "--docker-password=p",
        ],
        &["created"],
    ),
    ok(
        &["create", "serviceaccount", "bot", "-n", "sweep"],
        &["created"],
    ),
    ok(
        &[
            "create",
            "role",
            "reader",
            "-n",
            "sweep",
            "--verb=get,list",
            "--resource=pods",
        ],
        &["created"],
    ),
    ok(
        &[
            "create",
            "rolebinding",
            "bot-reader",
            "-n",
            "sweep",
            "--role=reader",
            "--serviceaccount=sweep:bot",
        ],
        &["created"],
    ),
    ok(&["create", "token", "bot", "-n", "sweep"], &["eyJ"]),
    ok(
        &[
            "create",
            "service",
            "clusterip",
            "web",
            "-n",
            "sweep",
            "--tcp=80:8080",
        ],
        &["created"],
    ),
    ok(
        &[
            "create",
            "deployment",
            "web",
            "-n",
            "sweep",
            "--image=nginx",
            "--replicas=2",
        ],
        &["created"],
    ),
    ok(
        &[
            "create",
            "job",
            "once",
            "-n",
            "sweep",
            "--image=busybox",
            "--",
            "echo",
            "hi",
        ],
        &["created"],
    ),
    ok(
        &[
            "create",
            "cronjob",
            "nightly",
            "-n",
            "sweep",
            "--image=busybox",
            "--schedule=0 0 * * *",
            "--",
            "echo",
            "hi",
        ],
        &["created"],
    ),
    ok(
        &["create", "priorityclass", "high", "--value=1000"],
        &["created"],
    ),
    ok(
        &[
            "create",
            "poddisruptionbudget",
            "pdb",
            "-n",
            "sweep",
            "--selector=app=web",
            "--min-available=1",
        ],
        &["created"],
    ),
    ok(
        &["create", "quota", "q", "-n", "sweep", "--hard=pods=10"],
        &["created"],
    ),
    // Reading.
    ok(
        &["get", "all", "-n", "sweep"],
        &["service/web", "deployment.apps/web"],
    ),
    ok(
        &["get", "deploy,svc,cm", "-n", "sweep", "-o", "wide"],
        &["web", "cm1"],
    ),
    ok(
        &[
            "get",
            "configmap",
            "cm1",
            "-n",
            "sweep",
            "-o",
            "jsonpath={.data.a}",
        ],
        &["1"],
    ),
    ok(
        &["describe", "deployment", "web", "-n", "sweep"],
        &["Replicas"],
    ),
    ok(
        &["describe", "secret", "pull", "-n", "sweep"],
        &["kubernetes.io/dockerconfigjson"],
    ),
    ok(&["explain", "pods.spec.containers"], &["image"]),
    ok(&["explain", "vds.spec"], &["template"]),
    // Changing.
    ok(
        &["label", "configmap", "cm1", "-n", "sweep", "tier=gold"],
        &["labeled"],
    ),
    ok(
        &["get", "cm", "-n", "sweep", "-l", "tier=gold", "-o", "name"],
        &["configmap/cm1"],
    ),
    ok(
        &["annotate", "configmap", "cm1", "-n", "sweep", "note=x"],
        &["annotated"],
    ),
    ok(
        &[
            "patch",
            "configmap",
            "cm1",
            "-n",
            "sweep",
            "-p",
            r#"{"data":{"b":"2"}}"#,
        ],
        &["patched"],
    ),
    ok(
        &[
            "patch",
            "configmap",
            "cm1",
            "-n",
            "sweep",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/data/c","value":"3"}]"#,
        ],
        &["patched"],
    ),
    ok(&["edit", "configmap", "cm1", "-n", "sweep"], &["edited"]),
    ok(
        &[
            "get",
            "configmap",
            "cm1",
            "-n",
            "sweep",
            "-o",
            "jsonpath={.data.a}",
        ],
        &["9"],
    ),
    with_stdin(
        ok(&["apply", "-f", "-"], &["configmap/applied created"]),
        CM,
    ),
    with_stdin(fails(&["diff", "-f", "-"], &["changed"]), CM_CHANGED),
    // Switching an object from client-side to server-side apply: kubectl 1.37 migrates the
    // ownership only when the server does its part, which this one does not yet.
    with_stdin(
        fails(
            &["apply", "--server-side", "-f", "-"],
            &["conflict with \"kubectl-client-side-apply\""],
        ),
        CM_CHANGED,
    ),
    with_stdin(
        ok(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            &["serverside-applied"],
        ),
        CM_CHANGED,
    ),
    with_stdin(
        ok(
            &["apply", "--dry-run=server", "-f", "-"],
            &["(server dry run)"],
        ),
        CM_DRY,
    ),
    fails(&["get", "configmap", "dry", "-n", "sweep"], &["not found"]),
    ok(
        &[
            "auth",
            "can-i",
            "list",
            "pods",
            "-n",
            "sweep",
            "--as=system:serviceaccount:sweep:bot",
        ],
        &["yes"],
    ),
    fails(
        &[
            "auth",
            "can-i",
            "delete",
            "pods",
            "-n",
            "sweep",
            "--as=system:serviceaccount:sweep:bot",
        ],
        &["no"],
    ),
    ok(&["auth", "can-i", "--list", "-n", "sweep"], &["*.*"]),
    // Pruning with an ApplySet (kubectl's alpha, enabled by KUBECTL_APPLYSET=true).
    with_stdin(
        ok(
            &[
                "apply",
                "-n",
                "sweep",
                "--prune",
                "--applyset=cm-set",
                "-f",
                "-",
            ],
            &["configmap/s1 created", "configmap/s2 created"],
        ),
        SET_TWO,
    ),
    with_stdin(
        ok(
            &[
                "apply",
                "-n",
                "sweep",
                "--prune",
                "--applyset=cm-set",
                "-f",
                "-",
            ],
            &["configmap/s2 pruned"],
        ),
        SET_ONE,
    ),
    fails(&["get", "configmap", "s2", "-n", "sweep"], &["not found"]),
    // A session, its events, pod, logs and metrics.
    ok(
        &["apply", "-f", "examples/session.yaml"],
        &["vdisession.vdi.dev/alice-desktop created"],
    ),
    ok(
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Running",
            "vds/alice-desktop",
            "--timeout=30s",
        ],
        &["condition met"],
    ),
    ok(
        &["describe", "vds", "alice-desktop"],
        &["Events:", "Running"],
    ),
    ok(
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=alice-desktop",
        ],
        // The Running event names where the desktop runs (no separate Scheduled event).
        &["Running", "(on local)"],
    ),
    ok(
        &[
            "get",
            "pods",
            "-l",
            "vdi.dev/session=alice-desktop",
            "-o",
            "wide",
        ],
        &["Running", "local", "127.0.0.1"],
    ),
    ok(&["logs", "$POD", "-c", "desktop"], &["X server ready"]),
    ok(
        &["logs", "$POD", "-c", "streamer", "--tail=50"],
        &["streamer listening"],
    ),
    // A GPU session lands on a simulated node, which keeps no logs and whose pods have metrics.
    ok(
        &["apply", "-f", "examples/session-gpu.yaml"],
        &["vdisession.vdi.dev/alice-gpu-desktop created"],
    ),
    ok(
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Running",
            "vds/alice-gpu-desktop",
            "--timeout=30s",
        ],
        &["condition met"],
    ),
    fails(
        &["logs", "alice-gpu-desktop", "-c", "desktop"],
        &["simulated node"],
    ),
    ok(&["top", "nodes"], &["sim-gpu-000"]),
    ok(&["top", "pods"], &["alice-gpu-desktop"]),
    // Nodes.
    ok(&["cordon", "sim-gpu-001"], &["cordoned"]),
    ok(&["get", "node", "sim-gpu-001"], &["SchedulingDisabled"]),
    ok(&["uncordon", "sim-gpu-001"], &["uncordoned"]),
    // What needs controllers or a node that runs containers (documented in docs/kubectl.md).
    fails(
        &[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "sweep",
            "--timeout=2s",
        ],
        &["timed out"],
    ),
    fails(
        &["exec", "$POD", "--", "true"],
        &["unable to upgrade connection"],
    ),
    // Deleting.
    ok(&["delete", "configmap", "cm1", "-n", "sweep"], &["deleted"]),
    ok(
        &[
            "wait",
            "--for=delete",
            "configmap/cm1",
            "-n",
            "sweep",
            "--timeout=10s",
        ],
        &[""],
    ),
    ok(
        &[
            "delete",
            "vds",
            "alice-desktop",
            "--wait=true",
            "--timeout=30s",
        ],
        &["deleted"],
    ),
    ok(
        &[
            "delete",
            "namespace",
            "sweep",
            "--wait=true",
            "--timeout=30s",
        ],
        &["deleted"],
    ),
    fails(&["get", "namespace", "sweep"], &["not found"]),
];

#[test]
fn kubectls_everyday_verbs_against_vdi_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = ClusterProcess::up(dir.path());
    let root = repo_root();
    // `kubectl edit` runs this "editor" on the object: a = "1" becomes a = "9".
    let editor = dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/^  a: \"1\"$/  a: \"9\"/' \"$1\"\n",
    )
    .expect("write the editor");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod the editor");
    let mut pod = String::new();
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for row in ROWS {
        let args: Vec<String> = row.args.iter().map(|a| a.replace("$POD", &pod)).collect();
        let started = Instant::now();
        let mut child = Command::new(kubectl_path())
            .args(&args)
            .env("KUBECONFIG", &platform.kubeconfig)
            .env("HOME", dir.path())
            .env("KUBE_EDITOR", &editor)
            .env("KUBECTL_APPLYSET", "true")
            .current_dir(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kubectl");
        if let Some(input) = row.stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("kubectl output");
        let elapsed = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let (ok, needles) = match row.want {
            Want::Ok(n) => (out.status.success(), n),
            Want::Fails(n) => (!out.status.success(), n),
        };
        let text = format!("{stdout}{stderr}");
        let missing: Vec<String> = needles
            .iter()
            .map(|n| n.replace("$POD", &pod))
            .filter(|n| !text.contains(n.as_str()))
            .collect();
        let pass = ok && missing.is_empty();
        table.push(format!(
            "{} kubectl {} ({} ms)",
            if pass { "ok  " } else { "FAIL" },
            args.join(" "),
            elapsed.as_millis()
        ));
        if !pass {
            failures.push(format!(
                "kubectl {}: exit {:?}, missing {missing:?}\nstdout: {stdout}\nstderr: {stderr}",
                args.join(" "),
                out.status.code()
            ));
        }
        if row.args.first() == Some(&"wait") && row.args.contains(&"vds/alice-desktop") {
            pod = session_pod(&platform, dir.path());
        }
    }
    println!("{}", table.join("\n"));
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );

    // docs/kubectl.md lists every row.
    let doc = std::fs::read_to_string(root.join("docs/kubectl.md")).expect("docs/kubectl.md");
    for row in ROWS {
        let shown = format!("kubectl {}", row.args.join(" ").replace("$POD", "<pod>"));
        assert!(
            doc.contains(&shown),
            "docs/kubectl.md does not list `{shown}`"
        );
    }
}

/// The name of the session's pod, once it exists.
fn session_pod(platform: &ClusterProcess, home: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new(kubectl_path())
            .args([
                "get",
                "pods",
                "-l",
                "vdi.dev/session=alice-desktop",
                "-o",
                "jsonpath={.items[0].metadata.name}",
            ])
            .env("KUBECONFIG", &platform.kubeconfig)
            .env("HOME", home)
            .output()
            .expect("kubectl");
        let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !name.is_empty() {
            return name;
        }
        assert!(Instant::now() < deadline, "the session has no pod");
        std::thread::sleep(Duration::from_millis(100));
    }
}
