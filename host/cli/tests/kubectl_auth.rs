//! The real `kubectl` as a signed-in user: `vdi login` against the dev OpenID Provider writes
//! an exec-credential user, and the embedded control plane (`vdi cluster --oidc-issuer-url`)
//! authenticates its ID token and authorizes with `deploy/`'s RBAC: `kubectl auth can-i`,
//! `--list`, `whoami`, a refused `get vds -A`, a refused `--as`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{ClusterProcess, kubectl_path, repo_root};
use vdi_testkit::DevIdp;

const VDI: &str = env!("CARGO_BIN_EXE_vdi");

fn kubectl(kubeconfig: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(kubectl_path())
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .output()
        .expect("run kubectl")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(out: &Output, what: &str) -> String {
    assert!(
        !out.status.success(),
        "{what} should have been refused:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Signs `user` in with `vdi login`, the IdP's pages driven by the testkit's browser, into
/// `kubeconfig` (a copy of the admin's) as context `<user>@vdi`.
async fn login(idp: &DevIdp, home: &Path, ca: &Path, kubeconfig: &Path, user: &str) {
    let mut child = Command::new(VDI)
        .args(["login", "--issuer", idp.issuer(), "--client-id", "vdi-cli"])
        .arg("--ca-file")
        .arg(ca)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--cluster", "vdi", "--user-name", user])
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vdi login");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("vdi login printed the authorization URL");
        if line.starts_with("https://") {
            break line;
        }
    };
    let redirect = idp
        .complete_authorization(&url, user, &format!("{user}-password"))
        .await;
    let answer = reqwest::get(&redirect)
        .await
        .expect("the loopback redirect");
    assert!(answer.status().is_success(), "{answer:?}");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("vdi login output");
    assert!(
        out.status.success(),
        "vdi login: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_as_a_signed_in_user_sees_and_may_only_what_rbac_grants() {
    let idp = DevIdp::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path();
    let ca: PathBuf = home.join("idp-ca.pem");
    std::fs::write(&ca, idp.ca_pem()).expect("write CA");
    let cluster = ClusterProcess::start_with(
        home,
        &[
            "--sim-nodes",
            "0",
            "--oidc-issuer-url",
            idp.issuer(),
            "--oidc-ca-file",
            ca.to_str().expect("utf-8"),
        ],
    );
    let admin = cluster.kubeconfig.clone();
    let root = repo_root();
    for file in ["deploy/crds/vdi.dev.yaml", "deploy/rbac/users.yaml"] {
        let path = root.join(file);
        ok(
            &kubectl(
                &admin,
                home,
                &["apply", "-f", path.to_str().expect("utf-8")],
            ),
            file,
        );
    }
    let add = |user: &str| {
        let out = Command::new(VDI)
            .args(["user", "add", user])
            .env("KUBECONFIG", &admin)
            .output()
            .expect("vdi user add");
        let text = ok(&out, "vdi user add");
        text.split_whitespace()
            .last()
            .expect("namespace")
            .to_owned()
    };
    let alice_ns = add("oidc:alice");
    let bob_ns = add("oidc:bob");
    assert!(alice_ns.starts_with("u-alice-"), "{alice_ns}");
    for (ns, name, user) in [
        (&alice_ns, "mine", "oidc:alice"),
        (&bob_ns, "theirs", "oidc:bob"),
    ] {
        let session = format!(
            "apiVersion: vdi.dev/v1alpha1\nkind: VDISession\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{user: {{name: \"{user}\", groups: []}}, template: ubuntu-desktop}}\n"
        );
        let file = home.join(format!("{name}.yaml"));
        std::fs::write(&file, session).expect("write session");
        ok(
            &kubectl(
                &admin,
                home,
                &["apply", "-f", file.to_str().expect("utf-8")],
            ),
            "admin applies a session",
        );
    }

    let alice = home.join("alice.kubeconfig");
    std::fs::copy(&admin, &alice).expect("copy kubeconfig");
    login(&idp, home, &ca, &alice, "alice").await;
    let as_alice = |args: &[&str]| kubectl(&alice, home, args);

    let whoami = ok(&as_alice(&["auth", "whoami", "-o", "json"]), "whoami");
    assert!(whoami.contains("\"username\": \"oidc:alice\""), "{whoami}");
    assert!(whoami.contains("oidc:staff"), "{whoami}");

    let list = ok(
        &as_alice(&["auth", "can-i", "--list", "-n", &alice_ns]),
        "can-i --list",
    );
    println!("kubectl auth can-i --list -n {alice_ns} (alice):\n{list}");
    let sessions_row = list
        .lines()
        .find(|l| l.starts_with("vdisessions.vdi.dev "))
        .unwrap_or_else(|| panic!("no vdisessions row:\n{list}"));
    // patch/update: she may extend her sessions (admission lets only spec.timeout change).
    for verb in [
        "create", "get", "list", "watch", "delete", "patch", "update",
    ] {
        assert!(sessions_row.contains(verb), "{sessions_row}");
    }
    assert!(!sessions_row.contains("deletecollection"), "{sessions_row}");
    assert!(
        list.lines().any(|l| l.starts_with("vditemplates.vdi.dev ")),
        "{list}"
    );

    assert_eq!(
        ok(
            &as_alice(&["auth", "can-i", "create", "vdisessions", "-n", &alice_ns]),
            "can-i"
        )
        .trim(),
        "yes"
    );
    let no = as_alice(&["auth", "can-i", "create", "vdisessions", "-n", &bob_ns]);
    assert_eq!(String::from_utf8_lossy(&no.stdout).trim(), "no");

    // Her sessions, and nobody else's.
    let mine = ok(
        &as_alice(&["get", "vds", "-n", &alice_ns, "-o", "name"]),
        "get vds",
    );
    assert_eq!(mine.trim(), "vdisession.vdi.dev/mine");
    let err = refused(
        &as_alice(&["get", "vds", "-n", &bob_ns]),
        "alice reading bob's sessions",
    );
    assert!(
        err.contains("Forbidden") || err.contains("forbidden"),
        "{err}"
    );
    let err = refused(
        &as_alice(&["get", "vds", "-A"]),
        "alice listing every session",
    );
    assert!(
        err.contains(
            "User \"oidc:alice\" cannot list resource \"vdisessions\" in API group \"vdi.dev\" at the cluster scope"
        ),
        "{err}"
    );
    let all = ok(
        &kubectl(&admin, home, &["get", "vds", "-A", "-o", "name"]),
        "admin get vds -A",
    );
    assert!(
        all.contains("vdisession.vdi.dev/mine") && all.contains("vdisession.vdi.dev/theirs"),
        "{all}"
    );

    // Impersonation takes the `impersonate` verb, which alice does not have.
    let err = refused(
        &as_alice(&["get", "vds", "-n", &bob_ns, "--as", "oidc:bob"]),
        "alice impersonating bob",
    );
    assert!(
        err.contains(
            "users \"oidc:bob\" is forbidden: User \"oidc:alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        ),
        "{err}"
    );
    // The admin token may (system:masters), and then bob's rights apply.
    let theirs = ok(
        &kubectl(
            &admin,
            home,
            &[
                "get", "vds", "-n", &bob_ns, "--as", "oidc:bob", "-o", "name",
            ],
        ),
        "admin as bob",
    );
    assert_eq!(theirs.trim(), "vdisession.vdi.dev/theirs");
    drop(cluster);
}
