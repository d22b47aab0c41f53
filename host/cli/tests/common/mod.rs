//! Runs `vdi cluster` as a separate process for tests that need a real server process (the
//! real `kubectl`, crash tests).

#![allow(
    dead_code,
    unused_imports,
    reason = "each test file uses a different part"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use vdi_testkit::repo_root;
use vdi_testkit::{compile_cache, guests, streamer_binary};

/// A `vdi cluster` process and its kubeconfig.
pub struct ClusterProcess {
    child: Child,
    /// The kubeconfig it wrote.
    pub kubeconfig: PathBuf,
}

impl ClusterProcess {
    /// Starts `vdi cluster` on a free port with its data in `data_dir`; waits for the kubeconfig.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_command(data_dir, &["cluster"], &[])
    }

    /// `vdi cluster` with more arguments (e.g. `--oidc-issuer-url`).
    pub fn start_with(data_dir: &Path, args: &[&str]) -> Self {
        let mut all = vec!["cluster"];
        all.extend_from_slice(args);
        Self::start_command(data_dir, &all, &[])
    }

    /// Starts `vdi up` (control plane, two simulated nodes, default plugins, operator, the dev
    /// OpenID Provider) with the guest plugins built from source; waits for the kubeconfig,
    /// written once all is up.
    pub fn up(data_dir: &Path) -> Self {
        let plugins = guests();
        let cache = compile_cache();
        Self::start_command(
            data_dir,
            &[
                "up",
                "--sim-nodes",
                "2",
                "--operator-listen",
                "127.0.0.1:0",
                "--proxy-listen",
                "127.0.0.1:0",
                "--plugins-dir",
                plugins.to_str().expect("utf-8 path"),
                "--dev-idp",
                "--dev-idp-listen",
                "127.0.0.1:0",
                "--dev-idp-dir",
                repo_root()
                    .join("tools/dev-idp")
                    .to_str()
                    .expect("utf-8 path"),
                "--streamer-bin",
                streamer_binary().to_str().expect("utf-8 path"),
            ],
            &[("VDI_CACHE_DIR", cache.to_str().expect("utf-8 path"))],
        )
    }

    fn start_command(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let kubeconfig = data_dir.join(format!("kubeconfig-{}", std::process::id()));
        let _ = std::fs::remove_file(&kubeconfig);
        let child = Command::new(env!("CARGO_BIN_EXE_vdi"))
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .arg("--data-dir")
            .arg(data_dir.join("db"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn vdi cluster");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !kubeconfig.exists() {
            assert!(
                Instant::now() < deadline,
                "vdi cluster did not write its kubeconfig"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, kubeconfig }
    }

    /// Kills the process with SIGKILL (no shutdown path runs) and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ClusterProcess {
    /// Asks the process to stop (SIGTERM: `vdi up` then ends the local node's desktops and
    /// removes their files), and SIGKILLs it after 20 s.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return; // already reaped (`kill`)
        }
        let pid = self.child.id().to_string();
        let asked = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while asked && Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real kubectl: `$VDI_KUBECTL`, or the one `scripts/setup.sh` installs.
pub fn kubectl_path() -> PathBuf {
    let path = std::env::var_os("VDI_KUBECTL").map_or_else(
        || repo_root().join(".tools/venv/bin/kubectl"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "kubectl not found at {} (run scripts/setup.sh)",
        path.display()
    );
    path
}
