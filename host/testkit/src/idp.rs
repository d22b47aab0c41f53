//! The development OpenID Provider (`tools/dev-idp`, npm oidc-provider) as a child process, and
//! a scripted browser for it: the authorization-code flow with PKCE over real HTTPS, through the
//! IdP's own login form, with a cookie jar.
//!
//! Every helper panics with the reason when the IdP answers something unexpected: they are for
//! tests only.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::repo_root;

/// How long [`DevIdp::start`] waits for the READY line.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Redirects followed before a login counts as looping.
const MAX_STEPS: usize = 20;

/// The demo users: (user name = `sub`, password, groups). Dev only, documented in
/// `tools/dev-idp/README.md`.
pub const DEMO_USERS: &[(&str, &str, &[&str])] = &[
    ("alice", "alice-password", &["staff"]),
    ("bob", "bob-password", &["staff"]),
    ("carol", "carol-password", &["contractors"]),
    ("admin", "admin-password", &["vdi-admins"]),
];

/// The public client of the `vdi` CLI.
pub const CLI_CLIENT: &str = "vdi-cli";
/// The public client of the dashboard.
pub const DASHBOARD_CLIENT: &str = "vdi-dashboard";
/// Every scope the IdP knows, including `offline_access` (a refresh token).
pub const ALL_SCOPES: &[&str] = &["openid", "profile", "email", "groups", "offline_access"];
/// The redirect URI [`DevIdp::login`] uses: loopback, a port nobody listens on (the flow stops
/// at the redirect and never fetches it). The clients are registered with
/// `http://127.0.0.1/callback`; oidc-provider accepts any port for native clients (RFC 8252).
pub const LOOPBACK_REDIRECT: &str = "http://127.0.0.1:9/callback";

/// Tokens from the IdP's token endpoint.
#[derive(Clone, Debug, Deserialize)]
pub struct Tokens {
    /// The ID token (a JWT; `aud` is the client id): the bearer for kube-apiserver-style OIDC.
    pub id_token: String,
    /// The opaque access token.
    pub access_token: String,
    /// Present when `offline_access` was granted.
    pub refresh_token: Option<String>,
    /// Lifetime of the access token, seconds.
    pub expires_in: u64,
}

impl Tokens {
    /// The ID token's payload (not verified).
    pub fn id_claims(&self) -> serde_json::Value {
        jwt_payload(&self.id_token)
    }
}

/// A JWT's payload, decoded but not verified.
pub fn jwt_payload(jwt: &str) -> serde_json::Value {
    let payload = jwt
        .split('.')
        .nth(1)
        .unwrap_or_else(|| panic!("not a JWT: {jwt}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_else(|e| panic!("JWT payload is not base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT payload is not JSON: {e}"))
}

/// A PKCE pair: the verifier stays with the client, the S256 challenge goes in the request.
#[derive(Clone, Debug)]
pub struct Pkce {
    /// The code verifier (64 characters).
    pub verifier: String,
    /// `BASE64URL(SHA256(verifier))`.
    pub challenge: String,
}

impl Pkce {
    /// A fresh random pair.
    pub fn new() -> Self {
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let challenge = s256(&verifier);
        Self {
            verifier,
            challenge,
        }
    }
}

/// The S256 code challenge of a verifier: `BASE64URL(SHA256(verifier))`.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// The login form said no: its status and the error it shows.
#[derive(Debug)]
struct Refused {
    status: StatusCode,
    message: String,
}

/// A running dev IdP (`node tools/dev-idp/server.mjs`) with its own CA; killed on drop.
pub struct DevIdp {
    child: Child,
    issuer: String,
    ca_pem: String,
    stderr: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl DevIdp {
    /// Makes a CA and a server certificate for 127.0.0.1, starts the IdP on a free port and
    /// waits for its READY line. The node binary is `$VDI_NODE` or `node`; its packages come
    /// from `scripts/setup.sh`.
    pub fn start() -> Self {
        let app = repo_root().join("tools/dev-idp");
        assert!(
            app.join("node_modules/oidc-provider").is_dir(),
            "{} has no node_modules: run scripts/setup.sh (npm ci --prefix tools/dev-idp)",
            app.display()
        );
        let dir = tempfile::tempdir().expect("temp dir for the IdP's certificate");
        let (ca_pem, cert_pem, key_pem) = pki();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, cert_pem).expect("write the IdP's certificate");
        std::fs::write(&key, key_pem).expect("write the IdP's key");

        let node = std::env::var_os("VDI_NODE").map_or_else(|| PathBuf::from("node"), Into::into);
        let mut child = Command::new(&node)
            .arg(app.join("server.mjs"))
            .args(["--port", "0", "--cert"])
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .current_dir(&app)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {} tools/dev-idp/server.mjs: {e}", node.display()));

        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err_pipe.read(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            }
        });
        let (tx, rx) = mpsc::channel();
        let out_pipe = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            // Keep reading to the end so the IdP never blocks on a full pipe.
            for line in BufReader::new(out_pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });

        let ready = rx.recv_timeout(START_TIMEOUT);
        let issuer = ready
            .as_deref()
            .ok()
            .and_then(|line| line.strip_prefix("DEV-IDP READY "))
            .map(str::to_owned);
        let Some(issuer) = issuer else {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            // Let the stderr reader drain what the process wrote before it died.
            std::thread::sleep(Duration::from_millis(100));
            let err = stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
            panic!(
                "the dev IdP did not print `DEV-IDP READY <issuer>` within {START_TIMEOUT:?} \
                 (got {ready:?}; {status}); stderr:\n{err}"
            );
        };
        Self {
            child,
            issuer,
            ca_pem,
            stderr,
            _dir: dir,
        }
    }

    /// The issuer URL, `https://127.0.0.1:<port>` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The CA that signed the IdP's certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// What the IdP wrote to stderr so far (warnings, interaction failures).
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A fresh HTTPS client that trusts only the IdP's CA, keeps cookies (one browser) and
    /// follows no redirects.
    pub fn http_client(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("the CA's PEM");
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("build the HTTPS client")
    }

    /// The authorization URL of a code flow with PKCE (S256). Asking for `offline_access` adds
    /// `prompt=consent`, without which the IdP issues no refresh token (OIDC Core §11).
    pub fn authorization_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        scopes: &[&str],
        state: &str,
        pkce: &Pkce,
    ) -> String {
        let mut url = Url::parse(&format!("{}/auth", self.issuer)).expect("issuer URL");
        url.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", state)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        if scopes.contains(&"offline_access") {
            url.query_pairs_mut().append_pair("prompt", "consent");
        }
        url.into()
    }

    /// Plays the browser from an authorization URL (made by anyone, e.g. `vdi login`): signs in
    /// through the login form as `user` and returns the URL the IdP finally redirects to (the
    /// client's redirect URI with `code` and `state`), without fetching it.
    pub async fn complete_authorization(&self, url: &str, user: &str, password: &str) -> String {
        match self.drive(&self.http_client(), url, user, password).await {
            Ok(redirect) => redirect,
            Err(refused) => panic!("the IdP refused {user}'s login: {refused:?}"),
        }
    }

    /// Signs in as `user` with the wrong (or any refused) password and returns the error the
    /// login form shows; panics if the IdP let the user in.
    pub async fn login_error(&self, user: &str, password: &str) -> String {
        let pkce = Pkce::new();
        let url = self.authorization_url(CLI_CLIENT, LOOPBACK_REDIRECT, &["openid"], "s", &pkce);
        match self.drive(&self.http_client(), &url, user, password).await {
            Ok(redirect) => panic!("the IdP let {user} in with password {password:?}: {redirect}"),
            Err(refused) => {
                assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
                refused.message
            }
        }
    }

    /// The whole code flow as `client_id` on [`LOOPBACK_REDIRECT`]: authorization request,
    /// login form, consent, and the code exchanged with the PKCE verifier.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        client_id: &str,
        scopes: &[&str],
    ) -> Tokens {
        let pkce = Pkce::new();
        let state = uuid::Uuid::new_v4().simple().to_string();
        let url = self.authorization_url(client_id, LOOPBACK_REDIRECT, scopes, &state, &pkce);
        let redirect = self.complete_authorization(&url, user, password).await;
        let redirect = Url::parse(&redirect).expect("redirect URL");
        let param = |name: &str| {
            redirect
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(
            param("state").as_deref(),
            Some(state.as_str()),
            "{redirect}"
        );
        assert_eq!(param("iss").as_deref(), Some(self.issuer()), "{redirect}");
        let code = param("code").unwrap_or_else(|| panic!("no code in {redirect}"));
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", &code),
            ("redirect_uri", LOOPBACK_REDIRECT),
            ("code_verifier", &pkce.verifier),
        ])
        .await
    }

    /// Trades a refresh token for new tokens (the IdP rotates the refresh token).
    pub async fn refresh(&self, refresh_token: &str, client_id: &str) -> Tokens {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Tokens {
        let response = self
            .http_client()
            .post(format!("{}/token", self.issuer))
            .form(form)
            .send()
            .await
            .expect("token request");
        let status = response.status();
        let body = response.text().await.expect("token response body");
        assert!(status.is_success(), "token endpoint: {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("token response {body}: {e}"))
    }

    /// Follows redirects inside the IdP and submits its login form once; stops at the first
    /// redirect that leaves the IdP.
    async fn drive(
        &self,
        client: &reqwest::Client,
        url: &str,
        user: &str,
        password: &str,
    ) -> Result<String, Refused> {
        let mut url = Url::parse(url).expect("authorization URL");
        let mut submitted = false;
        for _ in 0..MAX_STEPS {
            let response = client
                .get(url.clone())
                .send()
                .await
                .expect("GET at the IdP");
            if let Some(next) = self.redirect_target(&url, &response) {
                if !next.as_str().starts_with(&self.issuer) {
                    return Ok(next.into());
                }
                url = next;
                continue;
            }
            let status = response.status();
            let page = response.text().await.expect("IdP page");
            let action = form_action(&page).unwrap_or_else(|| {
                panic!("expected a redirect or the login form at {url}: {status}\n{page}")
            });
            assert!(!submitted, "the login form came back after a login: {page}");
            let response = client
                .post(url.join(&action).expect("form action"))
                .form(&[("username", user), ("password", password)])
                .send()
                .await
                .expect("POST the login form");
            submitted = true;
            match self.redirect_target(&url, &response) {
                Some(next) => url = next,
                None => {
                    let status = response.status();
                    let page = response.text().await.expect("login form");
                    let message = element_text(&page, "id=\"error\"").unwrap_or(page);
                    return Err(Refused { status, message });
                }
            }
        }
        panic!("the login did not finish within {MAX_STEPS} redirects (last: {url})")
    }

    fn redirect_target(&self, base: &Url, response: &reqwest::Response) -> Option<Url> {
        if !response.status().is_redirection() {
            return None;
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("redirect without Location from {base}"));
        Some(base.join(location).expect("Location URL"))
    }
}

impl Drop for DevIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it: (CA, certificate, key), PEM.
fn pki() -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&key, &issuer)
        .expect("server certificate");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// The `action` of the page's (only) form.
fn form_action(page: &str) -> Option<String> {
    let form = &page[page.find("<form")?..];
    let start = form.find("action=\"")? + "action=\"".len();
    let end = form[start..].find('"')?;
    Some(form[start..start + end].replace("&amp;", "&"))
}

/// The text inside the element whose opening tag contains `marker`.
fn element_text(page: &str, marker: &str) -> Option<String> {
    let at = page.find(marker)?;
    let start = at + page[at..].find('>')? + 1;
    let end = start + page[start..].find('<')?;
    Some(page[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_form_action_and_the_error() {
        let page = r#"<p id="error" role="alert">Unknown user or wrong password.</p><form method="post" action="/interaction/abc/login"><input></form>"#;
        assert_eq!(form_action(page).as_deref(), Some("/interaction/abc/login"));
        assert_eq!(
            element_text(page, "id=\"error\"").as_deref(),
            Some("Unknown user or wrong password.")
        );
        assert_eq!(form_action("<p>no form</p>"), None);
    }

    #[test]
    fn pkce_challenge_is_the_s256_of_the_verifier() {
        // RFC 7636 appendix B.
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let pkce = Pkce::new();
        assert_eq!(pkce.verifier.len(), 64);
        assert_eq!(pkce.challenge, s256(&pkce.verifier));
    }
}
