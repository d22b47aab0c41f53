//! deploy/'s manifests as a platform team applies them: the base and the k3s overlay rendered by
//! the real `kubectl kustomize`, the overlay's committed snapshot checked for drift, every
//! document validated strictly against the Kubernetes 1.37 schemas (kubernetes-validate) or its
//! CRD's schema, and the whole render applied with a server-side dry-run to `vdi cluster`. The
//! desktop template's rendered objects (its test vectors run through the real component) go
//! through the same checks.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{ClusterProcess, kubectl_path, repo_root};
use vdi_plugin_host::{Limits, Runtime, RuntimeConfig, vectors};
use vdi_testkit::{compile_cache, wasm};

const KUBERNETES_VERSION: &str = "1.37";
const SNAPSHOT: &str = "deploy/overlays/k3s/rendered.yaml";

/// CRDs whose schemas the custom resources are checked against, and which the dry-run registers.
const CRDS: [&str; 4] = [
    "deploy/crds/vdi.dev.yaml",
    "deploy/embedded/traefik-ingressroute-crd.yaml",
    // Test stand-ins: the embedded control plane has no cert-manager and registers only
    // Traefik's IngressRoute (see the files).
    "host/cli/tests/fixtures/cert-manager-crds.yaml",
    "host/cli/tests/fixtures/traefik-serverstransport-crd.yaml",
];

fn kubectl(args: &[&str], stdin: Option<&str>, kubeconfig: Option<&Path>, home: &Path) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(kubectl_path());
    cmd.args(args)
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    let mut child = cmd.spawn().expect("spawn kubectl");
    let input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        let mut input = input;
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("kubectl output")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `kubectl kustomize <dir>` (relative to the repository root).
fn render(dir: &str, home: &Path) -> String {
    let path = repo_root().join(dir);
    let out = kubectl(
        &["kustomize", path.to_str().expect("utf-8 path")],
        None,
        None,
        home,
    );
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        text(&out)
    );
    String::from_utf8(out.stdout).expect("utf-8 render")
}

/// scripts/validate-manifests.py with the tools venv's Python (kubernetes-validate, strict).
fn validate_strictly(files: &[PathBuf]) {
    let python = kubectl_path().with_file_name("python");
    let mut cmd = Command::new(&python);
    cmd.arg(repo_root().join("scripts/validate-manifests.py"))
        .args(["--kubernetes-version", KUBERNETES_VERSION]);
    for crd in CRDS {
        cmd.arg("--crds").arg(repo_root().join(crd));
    }
    let out = cmd.args(files).output().expect("run validate-manifests.py");
    assert!(
        out.status.success(),
        "strict validation failed (document and field on each ERROR line; \
         is kubernetes-validate installed? run scripts/setup.sh):\n{}",
        text(&out)
    );
}

/// The desktop template's objects for each of its test vectors that renders, from the real
/// component: (vector file, objects as a YAML stream of JSON documents).
fn desktop_renders() -> Vec<(String, String)> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(compile_cache()),
        ..RuntimeConfig::default()
    })
    .expect("plugin runtime");
    let (plugin, _) = runtime
        .load("desktop", &wasm("vdi_desktop"), None, Limits::default(), "")
        .expect("load the desktop plugin");
    let dir = repo_root().join("plugins/testdata/desktop");
    let all = vectors::load_dir(&dir).expect("desktop vectors");
    let mut renders = Vec::new();
    for (path, vector) in &all {
        let result = vectors::run(&plugin, path, vector);
        assert!(result.passed(), "{}: {:?}", path.display(), result.diff);
        let Some(objects) = result.actual.as_array() else {
            continue; // a refusal vector renders nothing
        };
        let stream = objects
            .iter()
            .map(|o| serde_json::to_string_pretty(o).expect("json"))
            .collect::<Vec<_>>()
            .join("\n---\n");
        let name = path.file_name().expect("file name").to_string_lossy();
        renders.push((name.into_owned(), stream));
    }
    assert!(
        renders.len() >= 3,
        "expected at least 3 rendering desktop vectors"
    );
    renders
}

#[test]
fn the_k3s_overlay_matches_its_committed_snapshot() {
    let home = tempfile::tempdir().expect("tempdir");
    let rendered = render("deploy/overlays/k3s", home.path());
    let committed = std::fs::read_to_string(repo_root().join(SNAPSHOT)).expect("read the snapshot");
    if rendered != committed {
        let first = rendered
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "length".to_owned(), |i| format!("line {}", i + 1));
        panic!(
            "{SNAPSHOT} drifted from deploy/ (first difference: {first}); regenerate it with \
             `.tools/venv/bin/kubectl kustomize deploy/overlays/k3s > {SNAPSHOT}` and review the diff"
        );
    }
}

#[test]
fn the_k3s_overlay_has_every_part() {
    let home = tempfile::tempdir().expect("tempdir");
    let yaml = render("deploy/overlays/k3s", home.path());
    for needle in [
        "kind: PodDisruptionBudget",
        "name: coturn",
        "name: coturn-rest-secret",
        "--min-port=49152",
        "name: default-deny",
        "name: time-slicing-config",
        "renameByDefault: false",
        "replicas: 8",
        "kind: StorageClass",
        "provisioner: rancher.io/local-path",
        "kind: Issuer",
        "pod-security.kubernetes.io/enforce: restricted",
        "readOnlyRootFilesystem: true",
        "name: vdi-api",
        "kind: IngressRoute",
        "kind: ServersTransport",
        "secretName: vdi-tls",
    ] {
        assert!(yaml.contains(needle), "no `{needle}` in the k3s overlay");
    }
    // `kubectl apply -k deploy/` still applies the base.
    assert_eq!(
        render("deploy", home.path()),
        render("deploy/base", home.path())
    );
}

/// The documents of a YAML stream, as JSON values.
fn documents(yaml: &str) -> Vec<serde_json::Value> {
    yaml.split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str(d).expect("a YAML document"))
        .collect()
}

fn of_kind<'a>(docs: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The host names a Traefik rule matches (`Host(`a`)`).
fn rule_hosts(rule: &str) -> Vec<String> {
    rule.split("Host(`")
        .skip(1)
        .filter_map(|rest| rest.split_once('`').map(|(host, _)| host.to_owned()))
        .collect()
}

/// The overlay's public route and each session's route (rendered by the real desktop template)
/// meet on one origin: the same entry points, the host of the operator's session URLs, the API
/// paths on the API's Service, and the dashboard's catch-all below every session route.
#[test]
fn the_public_ingress_and_the_session_routes_agree() {
    let home = tempfile::tempdir().expect("tempdir");
    let docs = documents(&render("deploy/overlays/k3s", home.path()));
    let routes = of_kind(&docs, "IngressRoute");
    assert_eq!(routes.len(), 1, "one public IngressRoute in the overlay");
    let public = routes[0];
    let entry_points = &public["spec"]["entryPoints"];
    assert_eq!(public["spec"]["tls"]["secretName"], "vdi-tls");

    let operator = of_kind(&docs, "Deployment")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "vdi-operator")
        .expect("the operator's Deployment");
    let url = operator["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "VDI_URL_TEMPLATE")
        .and_then(|e| e["value"].as_str())
        .expect("VDI_URL_TEMPLATE");
    let (host, path) = url
        .strip_prefix("https://")
        .and_then(|u| u.split_once('/'))
        .expect("an https session URL");
    assert!(path.starts_with("sessions/"), "{url}");

    let certificate = of_kind(&docs, "Certificate")
        .into_iter()
        .find(|c| c["spec"]["secretName"] == "vdi-tls")
        .expect("the public certificate");
    assert_eq!(certificate["spec"]["dnsNames"], serde_json::json!([host]));

    let rules = public["spec"]["routes"].as_array().expect("routes");
    let api = rules
        .iter()
        .find(|r| {
            r["match"]
                .as_str()
                .is_some_and(|m| m.contains("/graphql/ws"))
        })
        .expect("a route for /graphql/ws");
    let api_rule = api["match"].as_str().expect("match");
    assert!(api_rule.contains("Path(`/graphql`)"), "{api_rule}");
    assert_eq!(api["services"][0]["name"], "vdi-api");
    let service = of_kind(&docs, "Service")
        .into_iter()
        .find(|s| s["metadata"]["name"] == "vdi-api")
        .expect("the API's Service");
    assert!(
        service["spec"]["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .any(|p| p["name"] == api["services"][0]["port"]),
        "the route names a port of the vdi-api Service"
    );
    let transport = of_kind(&docs, "ServersTransport");
    assert_eq!(transport.len(), 1);
    assert_eq!(
        api["services"][0]["serversTransport"],
        transport[0]["metadata"]["name"]
    );
    let catch_all = rules
        .iter()
        .find(|r| r["match"].as_str().is_some_and(|m| !m.contains("Path")))
        .expect("the dashboard's catch-all route");
    assert_eq!(catch_all["priority"], 1, "below every session route");
    for rule in rules {
        let hosts = rule_hosts(rule["match"].as_str().expect("match"));
        assert_eq!(hosts, [host], "{rule}");
    }

    for (vector, stream) in desktop_renders() {
        let objects = documents(&stream);
        for route in of_kind(&objects, "IngressRoute") {
            assert_eq!(
                &route["spec"]["entryPoints"], entry_points,
                "{vector}: the session's entry points"
            );
            for rule in route["spec"]["routes"].as_array().expect("routes") {
                let rule = rule["match"].as_str().expect("match");
                assert!(rule.contains("PathPrefix(`/sessions/"), "{vector}: {rule}");
                // A session route names the platform's host or none (then any host matches).
                let hosts = rule_hosts(rule);
                assert!(
                    hosts.is_empty() || hosts == [host],
                    "{vector}: {rule} is not on {host}"
                );
            }
        }
    }
}

#[test]
fn the_base_the_k3s_overlay_and_the_desktop_objects_validate_strictly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for (name, source) in [
        ("base.yaml", "deploy/base"),
        ("k3s.yaml", "deploy/overlays/k3s"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, render(source, dir.path())).expect("write render");
        files.push(path);
    }
    for (vector, stream) in desktop_renders() {
        let path = dir.path().join(format!("desktop-{vector}.yaml"));
        std::fs::write(&path, stream).expect("write desktop render");
        files.push(path);
    }
    validate_strictly(&files);
}

#[test]
fn the_renders_apply_with_a_server_side_dry_run_to_the_embedded_control_plane() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path();
    let cluster = ClusterProcess::start(home);
    let kc = Some(cluster.kubeconfig.as_path());
    // What the render needs before its objects can be admitted: the CRDs (cert-manager's and
    // Traefik's are not in the render) and the namespaces (a dry-run creates none).
    for crd in CRDS {
        let path = repo_root().join(crd);
        let out = kubectl(
            &["apply", "-f", path.to_str().expect("utf-8")],
            None,
            kc,
            home,
        );
        assert!(out.status.success(), "apply {crd}: {}", text(&out));
    }
    let desktop = desktop_renders();
    let mut namespaces = vec!["vdi-system", "vdi-sessions", "vdi-pool", "gpu-operator"];
    for (_, stream) in &desktop {
        for line in stream.lines() {
            if let Some(ns) = line.trim().strip_prefix("\"namespace\": \"") {
                let ns = ns.trim_end_matches(['"', ',']);
                if !namespaces.contains(&ns) {
                    namespaces.push(Box::leak(ns.to_owned().into_boxed_str()));
                }
            }
        }
    }
    for ns in &namespaces {
        let out = kubectl(&["create", "namespace", ns], None, kc, home);
        assert!(
            out.status.success(),
            "create namespace {ns}: {}",
            text(&out)
        );
    }
    let mut renders = vec![
        ("deploy/base".to_owned(), render("deploy/base", home)),
        (
            "deploy/overlays/k3s".to_owned(),
            render("deploy/overlays/k3s", home),
        ),
    ];
    renders.extend(
        desktop
            .into_iter()
            .map(|(v, s)| (format!("desktop template, vector {v}"), s)),
    );
    for (what, yaml) in &renders {
        // A fresh CRD can take a moment to be served: retry only "no matches for kind".
        let mut applied = false;
        let mut last = String::new();
        for _ in 0..20 {
            let out = kubectl(
                &["apply", "--dry-run=server", "-f", "-"],
                Some(yaml),
                kc,
                home,
            );
            last = text(&out);
            applied = out.status.success();
            if applied || !last.contains("no matches for kind") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        assert!(applied, "server-side dry-run of {what} failed:\n{last}");
        assert!(last.contains("(server dry run)"), "{what}: {last}");
    }
}

/// What the issue asks of the production manifests on the one-machine platform:
/// `kubectl apply -k deploy/ --dry-run=server` against `vdi up` (with cert-manager's CRDs, which
/// a real cluster has from cert-manager, from the test stand-in, and the sessions' namespace,
/// which a dry run cannot create for the objects inside it).
#[test]
fn kubectl_apply_k_deploy_dry_run_server_passes_against_vdi_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path();
    let platform = ClusterProcess::up(home);
    let kc = Some(platform.kubeconfig.as_path());
    let fixture = repo_root().join("host/cli/tests/fixtures/cert-manager-crds.yaml");
    let out = kubectl(
        &["apply", "-f", fixture.to_str().expect("utf-8")],
        None,
        kc,
        home,
    );
    assert!(out.status.success(), "cert-manager CRDs: {}", text(&out));
    let out = kubectl(&["create", "namespace", "vdi-sessions"], None, kc, home);
    assert!(out.status.success(), "namespace: {}", text(&out));
    let deploy = repo_root().join("deploy");
    let mut last = String::new();
    for _ in 0..20 {
        let out = kubectl(
            &[
                "apply",
                "-k",
                deploy.to_str().expect("utf-8"),
                "--dry-run=server",
            ],
            None,
            kc,
            home,
        );
        last = text(&out);
        if out.status.success() || !last.contains("no matches for kind") {
            assert!(
                out.status.success(),
                "kubectl apply -k deploy/ --dry-run=server:\n{last}"
            );
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    for kind in [
        "deployment.apps/vdi-operator",
        "customresourcedefinition.apiextensions.k8s.io/vdisessions.vdi.dev",
        "clusterrole.rbac.authorization.k8s.io/vdi-user",
    ] {
        assert!(
            last.contains(kind) && last.contains("(server dry run)"),
            "{kind} in:\n{last}"
        );
    }
}
