//! The real `kubectl` binary against the embedded control plane (`vdi cluster`), over HTTPS
//! with the kubeconfig the server writes.

mod common;

use std::process::{Command, Output};

use common::{ClusterProcess, kubectl_path};

struct Kubectl<'a> {
    cluster: &'a ClusterProcess,
    dir: &'a std::path::Path,
}

impl Kubectl<'_> {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut cmd = Command::new(kubectl_path());
        cmd.args(args)
            .env("KUBECONFIG", &self.cluster.kubeconfig)
            .env("HOME", self.dir)
            .current_dir(self.dir);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl, asserts success, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None)
    }

    fn ok_with(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{stdout}\n{stderr}"
        );
        stdout.into_owned()
    }

    /// Runs kubectl, asserts failure, returns stderr.
    fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(!out.status.success(), "kubectl {args:?} should have failed");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n  labels: {app: demo}\ndata: {a: \"1\"}\n";

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.vdi.dev
spec:
  group: test.vdi.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Colour, type: string, jsonPath: .spec.colour}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1, maximum: 10, description: How big the widget is.}
              colour: {type: string}
"#;

#[test]
fn kubectl_apply_get_patch_label_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = ClusterProcess::start(dir.path());
    let k = Kubectl {
        cluster: &cluster,
        dir: dir.path(),
    };

    assert!(k.ok(&["get", "namespaces"]).contains("kube-system"));
    // Client-side apply: create, no-op, change.
    assert!(
        k.ok_with(&["apply", "-f", "-"], Some(CONFIGMAP))
            .contains("configmap/demo created")
    );
    assert!(
        k.ok_with(&["apply", "-f", "-"], Some(CONFIGMAP))
            .contains("configmap/demo unchanged")
    );
    let changed = CONFIGMAP.replace("a: \"1\"", "a: \"2\"");
    assert!(
        k.ok_with(&["apply", "-f", "-"], Some(&changed))
            .contains("configmap/demo configured")
    );
    assert!(
        k.ok(&["get", "cm", "demo", "-o", "yaml"])
            .contains("a: \"2\"")
    );
    // Switching to server-side apply: the fields client-side apply set belong to
    // `kubectl-client-side-apply`, so changing one needs --force-conflicts here (kubectl's
    // automatic ownership migration is not recognised yet).
    let ssa = changed.replace("a: \"2\"", "a: \"3\"");
    assert!(
        k.fails(&["apply", "--server-side", "-f", "-"], Some(&ssa))
            .contains(r#"conflict with "kubectl-client-side-apply""#)
    );
    assert!(
        k.ok_with(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(&ssa)
        )
        .contains("serverside-applied")
    );
    // Patches and labels.
    k.ok(&[
        "patch",
        "cm",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"b":"x"}}"#,
    ]);
    k.ok(&[
        "patch",
        "cm",
        "demo",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/data/b","value":"y"}]"#,
    ]);
    k.ok(&["label", "cm", "demo", "tier=gpu"]);
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "-l",
            "tier=gpu",
            "-o",
            "jsonpath={.items[*].data.b}"
        ]),
        "y"
    );
    let table = k.ok(&["get", "cm"]);
    assert!(
        table.starts_with("NAME") && table.contains("demo"),
        "{table}"
    );

    // Delete waits for a finalizer to be released.
    k.ok(&[
        "patch",
        "cm",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":["test/hold"]}}"#,
    ]);
    let kubeconfig = cluster.kubeconfig.clone();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let out = Command::new(kubectl_path())
            .args([
                "patch",
                "cm",
                "demo",
                "--type",
                "merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ])
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("kubectl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    k.ok(&["delete", "cm", "demo", "--wait", "--timeout=20s"]);
    releaser.join().expect("releaser");
    assert!(k.fails(&["get", "cm", "demo"], None).contains("NotFound"));
}

#[test]
fn kubectl_creates_a_crd_then_its_objects_with_printer_columns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = ClusterProcess::start(dir.path());
    let k = Kubectl {
        cluster: &cluster,
        dir: dir.path(),
    };
    k.ok_with(&["create", "-f", "-"], Some(CRD));
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.test.vdi.dev",
        "--timeout=20s",
    ]);
    k.ok_with(&["apply", "-f", "-"], Some("apiVersion: test.vdi.dev/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3, colour: red}\n"));
    let table = k.ok(&["get", "wd"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "SIZE", "COLOUR", "AGE"], "{table}");
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..3], ["w1", "3", "red"], "{table}");
    // Schema validation names the field.
    let err = k.fails(
        &["apply", "-f", "-"],
        Some("apiVersion: test.vdi.dev/v1\nkind: Widget\nmetadata: {name: w2}\nspec: {size: 30}\n"),
    );
    assert!(
        err.contains("spec.size") && err.contains("less than or equal to 10"),
        "{err}"
    );
    // kubectl explain reads the CRD's schema.
    assert!(
        k.ok(&["explain", "widget.spec.size"])
            .contains("How big the widget is.")
    );
}

#[test]
fn kubectl_watch_ends_at_its_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = ClusterProcess::start(dir.path());
    let k = Kubectl {
        cluster: &cluster,
        dir: dir.path(),
    };
    k.ok_with(&["apply", "-f", "-"], Some(CONFIGMAP));
    let started = std::time::Instant::now();
    let out = k.run(&["get", "cm", "-w", "--request-timeout=2s"], None);
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("demo"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: desk}\nspec:\n  containers:\n  - name: desktop\n    image: desktop:1\n    env: [{name: A, value: \"1\"}]\n    resources: {limits: {cpu: \"1\"}}\n  - name: streamer\n    image: streamer:1\n";

#[test]
fn kubectl_apply_merges_container_lists_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = ClusterProcess::start(dir.path());
    let k = Kubectl {
        cluster: &cluster,
        dir: dir.path(),
    };
    k.ok_with(&["apply", "-f", "-"], Some(POD));
    // A strategic merge patch naming one container leaves the other alone.
    k.ok(&[
        "patch",
        "pod",
        "desk",
        "-p",
        r#"{"spec":{"containers":[{"name":"desktop","image":"desktop:2"}]}}"#,
    ]);
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "desk",
            "-o",
            "jsonpath={.spec.containers[*].image}"
        ]),
        "desktop:2 streamer:1"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "desk",
            "-o",
            "jsonpath={.spec.containers[0].resources.limits.cpu}"
        ]),
        "1"
    );
    // Client-side apply of a changed manifest computes a strategic patch too.
    k.ok_with(
        &["apply", "-f", "-"],
        Some(&POD.replace("streamer:1", "streamer:2")),
    );
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "desk",
            "-o",
            "jsonpath={.spec.containers[*].image}"
        ]),
        "desktop:1 streamer:2"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "desk",
            "-o",
            "jsonpath={.spec.containers[0].env[0].value}"
        ]),
        "1"
    );
}

#[test]
fn kubectl_server_side_apply_reports_conflicts_and_forces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = ClusterProcess::start(dir.path());
    let k = Kubectl {
        cluster: &cluster,
        dir: dir.path(),
    };
    k.ok_with(&["apply", "--server-side", "-f", "-"], Some(CONFIGMAP));
    // Another manager applying a different value to a field kubectl owns conflicts...
    let other = CONFIGMAP.replace("a: \"1\"", "a: \"9\"");
    let err = k.fails(
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        Some(&other),
    );
    assert!(err.contains("conflict") && err.contains(".data.a"), "{err}");
    assert_eq!(
        k.ok(&["get", "cm", "demo", "-o", "jsonpath={.data.a}"]),
        "1"
    );
    // ...until it forces, and then owns the field.
    k.ok_with(
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(&other),
    );
    assert_eq!(
        k.ok(&["get", "cm", "demo", "-o", "jsonpath={.data.a}"]),
        "9"
    );
    let managers = k.ok(&[
        "get",
        "cm",
        "demo",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert!(managers.contains("other"), "{managers}");
}

#[test]
fn kubectl_dry_run_server_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = ClusterProcess::start(dir.path());
    let k = Kubectl {
        cluster: &cluster,
        dir: dir.path(),
    };
    let created = k.ok_with(&["apply", "--dry-run=server", "-f", "-"], Some(CONFIGMAP));
    assert!(
        created.contains("configmap/demo created (server dry run)"),
        "{created}"
    );
    assert!(
        k.fails(&["get", "cm", "demo"], None).contains("not found"),
        "a dry run stores nothing"
    );
    k.ok_with(&["apply", "-f", "-"], Some(CONFIGMAP));
    let changed = CONFIGMAP.replace("a: \"1\"", "a: \"2\"");
    for args in [
        &["apply", "--dry-run=server", "-f", "-"][..],
        // (--force-conflicts: client-side apply owns the field; see the test above.)
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--dry-run=server",
            "-f",
            "-",
        ][..],
    ] {
        let out = k.ok_with(args, Some(&changed));
        assert!(out.contains("(server dry run)"), "{args:?}: {out}");
    }
    let shown = k.ok_with(
        &["apply", "--dry-run=server", "-o", "yaml", "-f", "-"],
        Some(&changed),
    );
    assert!(shown.contains("a: \"2\""), "{shown}");
    k.ok(&["delete", "cm", "demo", "--dry-run=server"]);
    assert!(
        k.ok(&["get", "cm", "demo", "-o", "yaml"])
            .contains("a: \"1\""),
        "neither the changes nor the delete were stored"
    );
    // A CRD is checked, not served.
    let out = k.ok_with(&["apply", "--dry-run=server", "-f", "-"], Some(CRD));
    assert!(out.contains("(server dry run)"), "{out}");
    assert!(
        k.fails(&["get", "crd", "widgets.test.vdi.dev"], None)
            .contains("not found")
    );
}

#[test]
fn vdi_up_then_kubectl_apply_gives_a_running_session_or_the_policy_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = ClusterProcess::up(dir.path());
    let k = Kubectl {
        cluster: &platform,
        dir: dir.path(),
    };
    let examples = common::repo_root().join("examples");
    let session = examples.join("session.yaml");
    k.ok(&["apply", "-f", session.to_str().unwrap()]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let phase = k.ok(&[
            "get",
            "vds",
            "alice-desktop",
            "-o",
            "jsonpath={.status.phase}",
        ]);
        if phase == "Running" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "session stuck in {phase:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The operator's events (written through events.k8s.io/v1) are what `kubectl describe`
    // reads through core/v1; Running is recorded just after the Running status.
    loop {
        let described = k.ok(&["describe", "vds", "alice-desktop"]);
        let events = described.split("Events:").nth(1).unwrap_or_default();
        let running = events
            .lines()
            .any(|l| l.contains("Normal") && l.contains("Running") && l.contains("vdi-operator"));
        // The Running event names the node (there is no separate Scheduled event).
        if running && events.contains("(on local)") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no Running event naming the node in:\n{described}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The example runs on the local node: its logs are the real processes' output.
    let logs = k.ok(&["logs", "alice-desktop", "-c", "desktop"]);
    assert!(logs.contains("X server ready on :"), "{logs}");
    // A GPU session lands on a simulated node: `kubectl top` reads the simulated figures, and
    // `kubectl logs` says why there are none.
    let gpu = examples.join("session-gpu.yaml");
    k.ok(&["apply", "-f", gpu.to_str().unwrap()]);
    k.ok(&[
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "vds/alice-gpu-desktop",
        "--timeout=30s",
    ]);
    let pod = k.ok(&[
        "get",
        "pods",
        "-A",
        "-l",
        "vdi.dev/session=alice-gpu-desktop",
        "-o",
        "jsonpath={.items[0].metadata.namespace} {.items[0].metadata.name}",
    ]);
    let (pod_ns, pod_name) = pod.split_once(' ').expect("the session's pod");
    let top_nodes = k.ok(&["top", "nodes"]);
    assert!(
        top_nodes.contains("CPU(cores)") && top_nodes.contains("sim-gpu-"),
        "{top_nodes}"
    );
    let top_pods = k.ok(&["top", "pods", "-A"]);
    assert!(top_pods.contains(pod_name), "{top_pods}");
    let logs = k.fails(&["logs", "-n", pod_ns, pod_name, "-c", "desktop"], None);
    assert!(
        logs.contains("simulated nodes run no containers and keep no logs"),
        "{logs}"
    );
    let table = k.ok(&["get", "vds", "-o", "wide"]);
    assert!(table.contains("PHASE") && table.contains("URL"), "{table}");
    assert!(
        table.contains("Running")
            && table.contains("alice")
            && table.contains("local-desktop")
            && table.contains("ubuntu-desktop"),
        "{table}"
    );
    assert!(
        table.contains("https://localhost:") && table.contains("/sessions/default/alice-desktop/"),
        "{table}"
    );
    // `--dev-idp` gave the demo users their namespaces.
    let namespaces = k.ok(&[
        "get",
        "ns",
        "-l",
        "vdi.dev/user-namespace=true",
        "-o",
        "name",
    ]);
    assert!(
        namespaces.contains("namespace/u-alice-") && namespaces.contains("namespace/u-bob-"),
        "{namespaces}"
    );
    let plugins = k.ok(&["get", "vdp"]);
    for name in ["quota", "gpu-binpack", "desktop"] {
        assert!(plugins.contains(name), "{plugins}");
    }
    assert_eq!(plugins.matches("Ready").count(), 3, "{plugins}");

    let denied = examples.join("session-denied.yaml");
    let err = k.fails(&["apply", "-f", denied.to_str().unwrap()], None);
    assert!(
        err.contains("denied by plugin quota") && err.contains("is not allowed for user \"bob\""),
        "{err}"
    );
    for example in [&session, &gpu] {
        k.ok(&[
            "delete",
            "-f",
            example.to_str().unwrap(),
            "--wait=true",
            "--timeout=30s",
        ]);
    }
    let left = k.ok(&[
        "get",
        "pods,pvc,svc",
        "-l",
        "vdi.dev/session=alice-desktop",
        "-o",
        "name",
    ]);
    assert_eq!(left.trim(), "", "objects left behind: {left}");
}

#[test]
fn the_deploy_kustomization_builds_with_every_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(kubectl_path())
        .args(["kustomize"])
        .arg(common::repo_root().join("deploy"))
        .env("HOME", dir.path())
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8_lossy(&out.stdout);
    for kind in [
        "kind: CustomResourceDefinition",
        "kind: Deployment",
        "kind: MutatingWebhookConfiguration",
        "kind: ValidatingWebhookConfiguration",
        "kind: ClusterRole",
        "kind: VDITemplate",
    ] {
        assert!(yaml.contains(kind), "no {kind} in deploy/");
    }
    for name in [
        "vdisessions.vdi.dev",
        "vditemplates.vdi.dev",
        "vdiplugins.vdi.dev",
    ] {
        assert!(yaml.contains(name), "no CRD {name}");
    }
    // The sessions' namespace enforces Pod Security `restricted` as a backstop.
    let sessions_ns = yaml
        .split("\n---\n")
        .find(|doc| doc.contains("kind: Namespace") && doc.contains("name: vdi-sessions"))
        .expect("a vdi-sessions Namespace");
    assert!(
        sessions_ns.contains("pod-security.kubernetes.io/enforce: restricted"),
        "{sessions_ns}"
    );
}
