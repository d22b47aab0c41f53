//! `vdi up --dev-idp`: the development OpenID Provider (`tools/dev-idp`, npm `oidc-provider`)
//! started beside the platform, with a certificate of its own kept in the data directory, so
//! that `vdi login` and the dashboard have a real issuer on one machine. Dev only: its users and
//! passwords are public (tools/dev-idp/README.md).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// How long the IdP may take to print its READY line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The running dev IdP; stopped on drop.
pub(crate) struct DevIdp {
    child: Child,
    /// `https://127.0.0.1:<port>`.
    pub(crate) issuer: String,
    /// The CA file that signed its certificate (for `vdi login --ca-file`).
    pub(crate) ca_file: std::path::PathBuf,
}

impl DevIdp {
    /// Starts `node <app>/server.mjs` on `listen` with the certificate in `dir` (made the first
    /// time) and waits for it to be ready.
    pub(crate) fn start(app: &Path, listen: SocketAddr, dir: &Path) -> Result<Self> {
        if !app.join("node_modules/oidc-provider").is_dir() {
            bail!(
                "{} has no node_modules: run scripts/setup.sh (npm ci --prefix tools/dev-idp)",
                app.display()
            );
        }
        let ca_file = dir.join("ca.pem");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        if !(ca_file.exists() && cert.exists() && key.exists()) {
            write_pki(dir, &ca_file, &cert, &key)?;
        }
        let mut child = Command::new("node")
            .arg(app.join("server.mjs"))
            .arg("--port")
            .arg(listen.port().to_string())
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .current_dir(app)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("start node tools/dev-idp/server.mjs")?;
        let out = child.stdout.take().context("the IdP's stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let issuer = rx
            .recv_timeout(START_TIMEOUT)
            .ok()
            .and_then(|line| line.strip_prefix("DEV-IDP READY ").map(str::to_owned));
        match issuer {
            Some(issuer) => Ok(Self {
                child,
                issuer,
                ca_file,
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the dev IdP did not start within {START_TIMEOUT:?}")
            }
        }
    }
}

impl Drop for DevIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a certificate for 127.0.0.1 signed by it; the key readable by its owner only.
fn write_pki(dir: &Path, ca_file: &Path, cert: &Path, key: &Path) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate()?;
    let server =
        CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&server_key, &issuer)?;
    std::fs::write(ca_file, ca_cert.pem())?;
    std::fs::write(cert, server.pem())?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(key)?
        .write_all(server_key.serialize_pem().as_bytes())?;
    Ok(())
}
