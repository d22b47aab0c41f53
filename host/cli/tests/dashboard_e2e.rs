//! The dashboard end to end, as a new user meets it: `vdi up` (control plane, simulated GPU
//! nodes, the local process node, the dev OpenID Provider, the dashboard on the proxy's HTTPS
//! origin) and headless Chromium driven by playwright-core (`dashboard/e2e/journey.mjs`): alice
//! signs in on the provider's own page, launches a desktop and sees it reach Running without a
//! reload, connects (the embedded player decodes frames), extends and terminates it; bob does
//! not see her session and her session's page is "not found" for him; carol's launch shows the
//! quota policy's reason; the admin sees the GPU grid change when alice launches a GPU desktop,
//! uploads a module and creates a plugin that becomes Ready, and edits a template; alice signs
//! out through the provider. The session page shows the player's live statistics (fps,
//! bitrate, RTT, loss, a glass-to-glass estimate) and a chart.
//! Every page is screenshotted into the test's temporary directory (`VDI_DASHBOARD_SHOTS=<dir>`
//! keeps a copy, for docs/img), and the sessions page's first contentful paint and the JS
//! bundle's gzip size are measured.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::repo_root;
use vdi_testkit::{compile_cache, guests, streamer_binary};

/// How long `vdi up` may take to print the dashboard's URL.
const UP_TIMEOUT: Duration = Duration::from_secs(120);
/// First contentful paint of the sessions page on loopback (the budget).
const FCP_BUDGET_MS: f64 = 1000.0;
/// The dashboard's JavaScript, gzipped (the budget).
const JS_BUDGET_BYTES: u64 = 300 * 1024;

/// `vdi up` with its stdout read line by line; stopped with SIGTERM on drop.
struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Up {
    fn start(data_dir: &Path) -> Self {
        let root = repo_root();
        let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vdi"))
            .args(["up", "--sim-nodes", "2", "--listen", "127.0.0.1:0"])
            .args([
                "--operator-listen",
                "127.0.0.1:0",
                "--proxy-listen",
                "127.0.0.1:0",
            ])
            .args(["--plugins-dir", &path(guests())])
            .args(["--dev-idp", "--dev-idp-listen", "127.0.0.1:0"])
            .args(["--dev-idp-dir", &path(&root.join("tools/dev-idp"))])
            .args(["--dashboard-dir", &path(&root.join("dashboard/dist"))])
            .args(["--streamer-bin", &path(streamer_binary())])
            .args(["--data-dir", &path(&data_dir.join("db"))])
            .args(["--kubeconfig", &path(&data_dir.join("kubeconfig"))])
            .env("VDI_CACHE_DIR", compile_cache())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn vdi up");
        let out = child.stdout.take().expect("vdi up's stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The value after `label` on the first line that starts with it.
    fn wait_for(&self, label: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(UP_TIMEOUT)
                .unwrap_or_else(|e| panic!("vdi up printed no {label:?} line: {e}"));
            if let Some(rest) = line.strip_prefix(label) {
                return rest.trim().to_owned();
            }
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let asked = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        for _ in 0..400 {
            if !asked || matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds dashboard/dist (type check + Vite) so the test runs the code in the tree.
fn build_dashboard(dashboard: &Path) {
    let out = Command::new("npm")
        .args(["run", "build", "--silent"])
        .current_dir(dashboard)
        .output()
        .expect("run npm run build in dashboard/ (scripts/setup.sh installs its packages)");
    assert!(
        out.status.success(),
        "npm run build failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The gzip size of every JavaScript file the build made.
fn js_gzip_bytes(dist: &Path) -> u64 {
    let assets = dist.join("assets");
    let mut total = 0;
    for entry in std::fs::read_dir(&assets).expect("dashboard/dist/assets") {
        let path = entry.expect("a dist entry").path();
        if path.extension().is_some_and(|e| e == "js") {
            let out = Command::new("gzip")
                .args(["-9", "-c"])
                .arg(&path)
                .output()
                .expect("run gzip");
            assert!(out.status.success(), "gzip {}", path.display());
            total += out.stdout.len() as u64;
        }
    }
    total
}

/// The JSON object on the script's `E2E RESULT ` line.
fn result_of(stdout: &str) -> serde_json::Value {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("E2E RESULT "))
        .unwrap_or_else(|| panic!("no E2E RESULT line in:\n{stdout}"));
    serde_json::from_str(line).expect("E2E RESULT is JSON")
}

#[test]
fn a_new_user_launches_connects_and_terminates_through_the_dashboard() {
    let root = repo_root();
    let dashboard = root.join("dashboard");
    build_dashboard(&dashboard);
    let js = js_gzip_bytes(&dashboard.join("dist"));
    assert!(
        js < JS_BUDGET_BYTES,
        "the dashboard's JS is {js} bytes gzipped, over the {JS_BUDGET_BYTES} budget"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let shots = dir.path().join("screenshots");
    let up = Up::start(dir.path());
    let url = up.wait_for("dashboard ");
    assert!(url.starts_with("https://localhost:"), "dashboard URL {url}");
    // Written last: everything (operator, users' namespaces) is in place once it exists.
    let kubeconfig = dir.path().join("kubeconfig");
    for _ in 0..600 {
        if kubeconfig.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(kubeconfig.exists(), "vdi up wrote no kubeconfig");

    let playwright: PathBuf =
        root.join("streamer/tests/browser/node_modules/playwright-core/index.mjs");
    assert!(
        playwright.exists(),
        "{} is missing: run scripts/setup.sh",
        playwright.display()
    );
    let mut script = Command::new("node")
        .arg(dashboard.join("e2e/journey.mjs"))
        .env("DASHBOARD_URL", &url)
        .env("PLAYWRIGHT_CORE", &playwright)
        .env("SHOTS_DIR", &shots)
        .env("MODULE_WASM", guests().join("vdi_quota.wasm"))
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run node dashboard/e2e/journey.mjs");
    let mut stdout = String::new();
    script
        .stdout
        .take()
        .expect("the script's stdout")
        .read_to_string(&mut stdout)
        .expect("read the script's stdout");
    let status = script.wait().expect("wait for the script");
    print!("{stdout}");
    assert!(status.success(), "the browser journey failed ({status})");

    let result = result_of(&stdout);
    let phases: Vec<&str> = result["phasesSeen"]
        .as_array()
        .expect("phasesSeen")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert_eq!(phases.last(), Some(&"Running"), "phases {phases:?}");
    assert!(
        phases.len() >= 2,
        "alice saw only {phases:?}: no phase before Running"
    );
    assert_eq!(result["navigations"], 1, "the sessions page reloaded");
    assert!(
        result["framesDecoded"].as_u64().unwrap_or(0) > 0,
        "the embedded player decoded no frames: {result}"
    );
    assert!(
        result["streamFps"].as_f64().is_some(),
        "no live stream statistics on the session page: {result}"
    );
    let extend = result["extendOutcome"].as_str().unwrap_or_default();
    assert!(extend.starts_with("Extended"), "Extend 1h: {extend:?}");
    assert_eq!(result["bobSeesAlice"], false);
    assert_eq!(result["bobNotFound"], true);
    let carol = result["carolReason"].as_str().unwrap_or_default();
    assert!(
        carol.contains("template"),
        "carol's refusal does not give the policy's reason: {carol:?}"
    );
    assert_eq!(result["pluginPhase"], "Ready", "{result}");
    assert!(
        result["quotaCalls"].as_u64().unwrap_or(0) > 0,
        "the plugins page counts no quota decisions: {result}"
    );
    assert_eq!(result["gridChanged"], true, "{result}");
    assert_eq!(result["templateSettingsKept"], true, "{result}");
    assert_eq!(result["signedOut"], true, "{result}");
    let fcp = result["sessionsFcpMs"].as_f64().expect("sessionsFcpMs");
    assert!(
        fcp < FCP_BUDGET_MS,
        "first contentful paint of the sessions page took {fcp} ms"
    );
    println!("dashboard JS {js} bytes gzipped; sessions page FCP {fcp:.0} ms");

    for shot in result["screenshots"].as_array().expect("screenshots") {
        let name = shot.as_str().expect("a screenshot name");
        let file = shots.join(name);
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 1000,
            "screenshot {} is missing or empty",
            file.display()
        );
    }
    if let Some(keep) = std::env::var_os("VDI_DASHBOARD_SHOTS") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).expect("create VDI_DASHBOARD_SHOTS");
        for entry in std::fs::read_dir(&shots).expect("screenshots") {
            let path = entry.expect("a screenshot").path();
            let name = path.file_name().expect("a file name");
            std::fs::copy(&path, keep.join(name)).expect("copy a screenshot");
        }
    }
    drop(up);
}
