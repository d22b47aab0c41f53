//! `vdi login` and `vdi token` against the development OpenID Provider: the real binary, a
//! scripted browser (vdi-testkit) on the printed URL, the loopback redirect, the kubeconfig it
//! merges, the 0600 token cache, and refreshes of an expired ID token.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use vdi_testkit::DevIdp;
use vdi_testkit::idp::jwt_payload;

const VDI: &str = env!("CARGO_BIN_EXE_vdi");

const KUBECONFIG: &str = "\
apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster:
    server: https://127.0.0.1:6443
users:
- name: admin
  user:
    token: admin-secret
contexts:
- name: dev-admin
  context:
    cluster: dev
    user: admin
current-context: dev-admin
";

/// One test's files: the IdP's CA, a kubeconfig, and `XDG_CACHE_HOME`.
struct Home {
    dir: tempfile::TempDir,
    ca: PathBuf,
}

impl Home {
    fn new(idp: &DevIdp) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("idp-ca.pem");
        std::fs::write(&ca, idp.ca_pem()).unwrap();
        std::fs::write(dir.path().join("kubeconfig"), KUBECONFIG).unwrap();
        Self { dir, ca }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn vdi(&self) -> Command {
        let mut cmd = Command::new(VDI);
        cmd.env("XDG_CACHE_HOME", self.cache_dir())
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null());
        cmd
    }

    fn oidc_args<'a>(&'a self, idp: &'a DevIdp) -> [&'a str; 6] {
        [
            "--issuer",
            idp.issuer(),
            "--client-id",
            "vdi-cli",
            "--ca-file",
            self.ca.to_str().unwrap(),
        ]
    }

    /// Starts `vdi login` and returns it with the authorization URL it printed.
    fn start_login(&self, idp: &DevIdp, extra: &[&str]) -> (Login, String) {
        let mut child = self
            .vdi()
            .arg("login")
            .args(self.oidc_args(idp))
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vdi login");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let url = loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.starts_with("https://") => break line,
                Ok(_) => {}
                Err(e) => {
                    let _ = child.kill();
                    let out = child.wait_with_output().unwrap();
                    panic!(
                        "vdi login printed no URL ({e}): {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        };
        (Login { child, stdout: rx }, url)
    }

    /// Runs `vdi token` as the kubeconfig's exec entry for `user` says.
    fn exec_plugin(&self, user: &str) -> Output {
        let doc = self.read_kubeconfig();
        let exec = &entry(&doc, "users", user)["user"]["exec"];
        let args: Vec<&str> = exec["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let mut cmd = Command::new(exec["command"].as_str().unwrap());
        cmd.args(&args)
            .env("XDG_CACHE_HOME", self.cache_dir())
            .env("HOME", self.dir.path());
        cmd.output().expect("run the exec plugin")
    }

    fn read_kubeconfig(&self) -> Value {
        serde_saphyr::from_str(&std::fs::read_to_string(self.kubeconfig()).unwrap()).unwrap()
    }

    /// The one token cache file.
    fn cache_file(&self) -> PathBuf {
        let files: Vec<_> = std::fs::read_dir(self.cache_dir().join("vdi"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    }
}

fn entry<'a>(doc: &'a Value, list: &str, name: &str) -> &'a Value {
    doc[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {list} entry {name}: {doc}"))
}

fn param(url: &str, name: &str) -> String {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

/// A running `vdi login`; its stdout is read line by line.
struct Login {
    child: Child,
    stdout: mpsc::Receiver<String>,
}

impl Login {
    /// Waits for the exit; returns the status, the rest of stdout and stderr.
    fn wait(mut self) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "vdi login did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = self.child.wait_with_output().unwrap();
        let stdout: Vec<String> = self.stdout.iter().collect();
        (
            out.status,
            stdout.join("\n"),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn credential(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "vdi token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cred: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cred["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(cred["kind"], "ExecCredential");
    cred
}

/// A copy of `jwt` whose payload says it expires `in_s` seconds from now (negative: expired);
/// the signature no longer matches, but the CLI reads the payload only.
fn expiring(jwt: &str, in_s: i64) -> String {
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    let mut payload = jwt_payload(jwt);
    payload["exp"] = json!(jiff::Timestamp::now().as_second() + in_s);
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    parts.join(".")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn login_writes_an_exec_user_and_token_serves_and_refreshes_the_id_token() {
    let idp = DevIdp::start();
    let home = Home::new(&idp);
    let started = Instant::now();
    let (login, url) = home.start_login(&idp, &["--cluster", "dev", "--user-name", "alice-oidc"]);
    assert_eq!(param(&url, "code_challenge_method"), "S256");
    assert_eq!(param(&url, "client_id"), "vdi-cli");

    let redirect = idp
        .complete_authorization(&url, "alice", "alice-password")
        .await;
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    let answer = reqwest::get(&redirect).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains("Signed in"));
    let (status, stdout, stderr) = login.wait();
    assert!(status.success(), "vdi login failed: {stdout}{stderr}");
    eprintln!("login round trip: {:?}", started.elapsed());
    assert!(stdout.contains("Logged in as alice"), "{stdout}");

    // The kubeconfig: the exec user and its context added, everything else kept.
    let doc = home.read_kubeconfig();
    let exec = &entry(&doc, "users", "alice-oidc")["user"]["exec"];
    assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(exec["interactiveMode"], "Never");
    assert_eq!(
        Path::new(exec["command"].as_str().unwrap()),
        std::fs::canonicalize(VDI).unwrap()
    );
    let ca = std::fs::canonicalize(&home.ca).unwrap();
    assert_eq!(
        exec["args"],
        json!([
            "token",
            "--issuer",
            idp.issuer(),
            "--client-id",
            "vdi-cli",
            "--ca-file",
            ca
        ])
    );
    assert_eq!(
        entry(&doc, "users", "admin")["user"]["token"],
        "admin-secret"
    );
    assert_eq!(
        entry(&doc, "contexts", "alice-oidc@dev")["context"],
        json!({"cluster": "dev", "user": "alice-oidc"})
    );
    entry(&doc, "contexts", "dev-admin");
    assert_eq!(
        entry(&doc, "clusters", "dev")["cluster"]["server"],
        "https://127.0.0.1:6443"
    );
    assert_eq!(doc["current-context"], "alice-oidc@dev");
    assert_eq!(mode(&home.kubeconfig()), 0o600);

    // The cache: owner-only, the ID and refresh tokens.
    let cache_file = home.cache_file();
    assert_eq!(mode(&cache_file), 0o600);
    assert_eq!(mode(cache_file.parent().unwrap()), 0o700);
    let cache: Value =
        serde_json::from_str(&std::fs::read_to_string(&cache_file).unwrap()).unwrap();
    let first_refresh = cache["refreshToken"]
        .as_str()
        .expect("a refresh token")
        .to_owned();

    // `vdi token`, run as kubectl would from the kubeconfig: the cached token.
    let cred = credential(&home.exec_plugin("alice-oidc"));
    let token = cred["status"]["token"].as_str().unwrap();
    assert_eq!(token, cache["idToken"]);
    let claims = jwt_payload(token);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], "vdi-cli");
    assert_eq!(claims["iss"], idp.issuer());
    assert_eq!(claims["groups"], json!(["staff"]));
    let exp = jiff::Timestamp::from_second(claims["exp"].as_i64().unwrap()).unwrap();
    assert_eq!(cred["status"]["expirationTimestamp"], exp.to_string());

    // An ID token that expires within the minute is refreshed, and the cache rewritten.
    let mut stale = cache.clone();
    stale["idToken"] = json!(expiring(token, 30));
    std::fs::write(&cache_file, stale.to_string()).unwrap();
    let cred = credential(&home.exec_plugin("alice-oidc"));
    let fresh = cred["status"]["token"].as_str().unwrap();
    assert_ne!(fresh, stale["idToken"].as_str().unwrap());
    let claims = jwt_payload(fresh);
    assert_eq!(claims["sub"], "alice");
    assert!(claims["exp"].as_i64().unwrap() > jiff::Timestamp::now().as_second() + 600);
    let cache: Value =
        serde_json::from_str(&std::fs::read_to_string(&cache_file).unwrap()).unwrap();
    assert_eq!(cache["idToken"], fresh);
    assert_ne!(cache["refreshToken"], first_refresh.as_str(), "rotated");
    assert_eq!(mode(&cache_file), 0o600);

    // Expired, and the refresh token is no good: the user is told to log in again.
    let mut dead = cache.clone();
    dead["idToken"] = json!(expiring(fresh, -10));
    dead["refreshToken"] = json!("not-a-refresh-token");
    std::fs::write(&cache_file, dead.to_string()).unwrap();
    let out = home.exec_plugin("alice-oidc");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refreshing the ID token failed"),
        "{stderr}"
    );
    assert!(stderr.contains("vdi login --issuer"), "{stderr}");
}

#[test]
fn token_without_a_login_says_to_log_in() {
    let idp = DevIdp::start();
    let home = Home::new(&idp);
    let out = home
        .vdi()
        .arg("token")
        .args(home.oidc_args(&idp))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no cached login"), "{stderr}");
    assert!(stderr.contains("vdi login --issuer"), "{stderr}");
}

#[tokio::test]
async fn a_redirect_with_the_wrong_state_ends_the_login_refused() {
    let idp = DevIdp::start();
    let home = Home::new(&idp);
    let (login, url) = home.start_login(&idp, &[]);
    let redirect_uri = param(&url, "redirect_uri");
    let forged = format!("{redirect_uri}?code=forged&state=not-the-state");
    let answer = reqwest::get(&forged).await.unwrap();
    assert_eq!(answer.status(), 400);
    let (status, _, stderr) = login.wait();
    assert!(!status.success());
    assert!(stderr.contains("state does not match"), "{stderr}");
    // Nothing was written.
    assert_eq!(
        std::fs::read_to_string(home.kubeconfig()).unwrap(),
        KUBECONFIG
    );
    assert!(!home.cache_dir().exists());
}

#[test]
fn login_refuses_a_cluster_the_kubeconfig_lacks_before_any_browser() {
    let idp = DevIdp::start();
    let home = Home::new(&idp);
    let out = home
        .vdi()
        .arg("login")
        .args(home.oidc_args(&idp))
        .arg("--kubeconfig")
        .arg(home.kubeconfig())
        .args(["--cluster", "prod"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no cluster named \"prod\""), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("https://"));
}
