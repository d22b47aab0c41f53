//! A real OCI Distribution registry (Debian's `docker-registry`, installed by
//! `scripts/setup.sh`) on 127.0.0.1 with its own configuration: no authentication, storage in a
//! temporary directory. Killed on drop; it can be stopped and started again on the same port
//! with the same storage (a registry that goes away and comes back).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs the registry; `VDI_DOCKER_REGISTRY` names another binary.
pub const DEFAULT_BINARY: &str = "/usr/bin/docker-registry";
/// How long the registry may take to answer `/v2/`.
const START_WAIT: Duration = Duration::from_secs(30);

/// A running (or stopped) registry.
pub struct DistributionRegistry {
    child: Option<Child>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    std::env::var_os("VDI_DOCKER_REGISTRY")
        .map_or_else(|| PathBuf::from(DEFAULT_BINARY), PathBuf::from)
}

impl DistributionRegistry {
    /// Starts a registry on a free loopback port with empty storage; waits until it answers.
    /// Panics (never skips) when the binary is missing.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("pick a free port")
            .port();
        let dir = tempfile::tempdir().expect("registry temp dir");
        let mut registry = Self {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        registry.resume();
        registry
    }

    /// `host:port`, as in a reference.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `oci://127.0.0.1:<port>/<path>` (`path` is `repository[:tag|@digest]`).
    pub fn reference(&self, path: &str) -> String {
        format!("oci://{}/{path}", self.addr)
    }

    /// The directory holding the stored blobs and manifests.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Kills the registry (its storage stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same storage; waits until it answers.
    pub fn resume(&mut self) {
        self.stop();
        let bin = binary();
        assert!(
            bin.exists(),
            "{} is missing: run scripts/setup.sh (it installs Debian's docker-registry)",
            bin.display()
        );
        let config = self.dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {}\n",
                self.storage().display(),
                self.addr
            ),
        )
        .expect("write the registry config");
        let log = std::fs::File::create(self.dir.path().join("registry.log")).expect("log file");
        let child = Command::new(&bin)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        self.child = Some(child);
        let started = Instant::now();
        while !self.answers() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "docker-registry exited ({status}) before answering:\n{}",
                    self.log()
                );
            }
            assert!(
                started.elapsed() < START_WAIT,
                "docker-registry did not answer /v2/ within {START_WAIT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the registry logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Whether `GET /v2/` answers 200.
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr);
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
    }
}

impl Drop for DistributionRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}
