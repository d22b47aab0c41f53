//! The OpenID Connect client shared by `vdi login` and `vdi token`: discovery, the
//! authorization request (code + PKCE S256), the token endpoint, and the ID-token claims the CLI
//! reads (it checks `iss`, `aud`, `nonce` and `exp`; the API server verifies the signature).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Scopes `vdi login` asks for unless told otherwise: groups and a refresh token too.
pub(crate) const DEFAULT_SCOPES: &str = "openid profile email groups offline_access";
/// Timeout of each request to the IdP.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Which OpenID Provider and client; the same flags for `vdi login` and `vdi token`.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct OidcArgs {
    /// The OpenID Provider's issuer URL (https), exactly as it appears in its tokens' `iss`.
    #[arg(long)]
    pub(crate) issuer: String,
    /// The OAuth client id registered for the CLI (a public client).
    #[arg(long, default_value = "vdi-cli")]
    pub(crate) client_id: String,
    /// PEM file of the CA(s) to trust for the issuer instead of the system's roots.
    #[arg(long)]
    pub(crate) ca_file: Option<PathBuf>,
}

/// The provider metadata the CLI uses (OpenID Connect Discovery 1.0).
#[derive(Debug, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

/// A discovered OpenID Provider and the client the CLI is.
pub(crate) struct Provider {
    http: reqwest::Client,
    client_id: String,
    metadata: Metadata,
}

/// What the token endpoint answers (the fields the CLI keeps).
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    /// The ID token: the bearer the API server takes.
    pub(crate) id_token: Option<String>,
    /// Present when `offline_access` was granted (and after a rotation).
    pub(crate) refresh_token: Option<String>,
}

/// The token endpoint's error body (RFC 6749 §5.2).
#[derive(Debug, Deserialize)]
struct TokenError {
    error: String,
    error_description: Option<String>,
}

/// The ID-token claims the CLI reads.
#[derive(Debug, Deserialize)]
pub(crate) struct IdClaims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    aud: Audience,
    pub(crate) exp: i64,
    nonce: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl IdClaims {
    /// Reads the payload of `jwt` without verifying its signature.
    pub(crate) fn parse(jwt: &str) -> Result<Self> {
        let payload = jwt.split('.').nth(1).context("the ID token is not a JWT")?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .context("the ID token's payload is not base64url")?;
        serde_json::from_slice(&bytes).context("the ID token's payload lacks iss, sub, aud or exp")
    }

    /// Checks that the token is from `issuer` for `client_id` (and carries `nonce`, if given).
    pub(crate) fn check(&self, issuer: &str, client_id: &str, nonce: Option<&str>) -> Result<()> {
        ensure!(
            self.iss == issuer,
            "the ID token is from {:?}, not {issuer:?}",
            self.iss
        );
        let for_us = match &self.aud {
            Audience::One(aud) => aud == client_id,
            Audience::Many(auds) => auds.iter().any(|a| a == client_id),
        };
        ensure!(for_us, "the ID token is not for client {client_id:?}");
        if let Some(nonce) = nonce {
            ensure!(
                self.nonce.as_deref() == Some(nonce),
                "the ID token's nonce does not match the request's"
            );
        }
        Ok(())
    }
}

/// A PKCE pair (RFC 7636): the verifier stays here, the S256 challenge goes in the request.
pub(crate) struct Pkce {
    pub(crate) verifier: String,
    pub(crate) challenge: String,
}

impl Pkce {
    pub(crate) fn new() -> Self {
        let verifier = format!("{}{}", random_token(), random_token());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

/// 122 random bits from the OS (a v4 UUID), as 32 hex characters: for `state` and `nonce`.
pub(crate) fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// An HTTPS client that trusts `ca_file` (only) or, without one, the system's roots.
fn http_client(ca_file: Option<&std::path::Path>) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true);
    if let Some(path) = ca_file {
        let pem =
            std::fs::read(path).with_context(|| format!("read the CA file {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} is not a PEM certificate bundle", path.display()))?;
        ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().context("build the HTTPS client")
}

impl Provider {
    /// Fetches the issuer's discovery document and checks that it names the same issuer.
    pub(crate) async fn discover(args: &OidcArgs) -> Result<Self> {
        ensure!(
            args.issuer.starts_with("https://"),
            "the issuer must be an https URL, not {:?}",
            args.issuer
        );
        let http = http_client(args.ca_file.as_deref())?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            args.issuer.trim_end_matches('/')
        );
        let response = http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("fetch {url}"))?;
        let status = response.status();
        ensure!(status.is_success(), "{url} answered {status}");
        let metadata: Metadata = response
            .json()
            .await
            .with_context(|| format!("{url} is not a discovery document"))?;
        ensure!(
            metadata.issuer == args.issuer,
            "{url} names the issuer {:?}, not {:?}",
            metadata.issuer,
            args.issuer
        );
        Ok(Self {
            http,
            client_id: args.client_id.clone(),
            metadata,
        })
    }

    /// The issuer, as discovered (equal to the one asked for).
    pub(crate) fn issuer(&self) -> &str {
        &self.metadata.issuer
    }

    /// The authorization request URL of a code flow with PKCE (S256). `offline_access` needs
    /// `prompt=consent` (OpenID Connect Core §11), without which providers drop it.
    pub(crate) fn authorization_url(
        &self,
        redirect_uri: &str,
        scopes: &str,
        state: &str,
        nonce: &str,
        pkce: &Pkce,
    ) -> Result<String> {
        let mut url = Url::parse(&self.metadata.authorization_endpoint)
            .context("the provider's authorization_endpoint is not a URL")?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", scopes)
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        if scopes.split_whitespace().any(|s| s == "offline_access") {
            url.query_pairs_mut().append_pair("prompt", "consent");
        }
        Ok(url.into())
    }

    /// Trades an authorization code (with the PKCE verifier) for tokens.
    pub(crate) async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<TokenResponse> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("client_id", &self.client_id),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// Trades a refresh token for new tokens.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("client_id", &self.client_id),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse> {
        let url = &self.metadata.token_endpoint;
        let response = self
            .http
            .post(url)
            .form(form)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .with_context(|| format!("read the answer of {url}"))?;
        if !status.is_success() {
            match serde_json::from_str::<TokenError>(&body) {
                Ok(e) => bail!(
                    "the token endpoint refused: {} ({})",
                    e.error,
                    e.error_description.unwrap_or_default()
                ),
                Err(_) => bail!("the token endpoint answered {status}"),
            }
        }
        serde_json::from_str(&body).context("the token endpoint's answer is not a token response")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &serde_json::Value) -> String {
        format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(payload.to_string()))
    }

    #[test]
    fn id_claims_are_checked_for_issuer_audience_and_nonce() {
        let token = jwt(&serde_json::json!({
            "iss": "https://idp", "sub": "alice", "aud": "vdi-cli", "exp": 10, "nonce": "n1"
        }));
        let claims = IdClaims::parse(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.exp), ("alice", 10));
        claims.check("https://idp", "vdi-cli", Some("n1")).unwrap();
        claims.check("https://idp", "vdi-cli", None).unwrap();
        assert!(claims.check("https://other", "vdi-cli", None).is_err());
        assert!(claims.check("https://idp", "vdi-dashboard", None).is_err());
        assert!(claims.check("https://idp", "vdi-cli", Some("n2")).is_err());

        let many = jwt(&serde_json::json!({
            "iss": "https://idp", "sub": "a", "aud": ["x", "vdi-cli"], "exp": 10
        }));
        IdClaims::parse(&many)
            .unwrap()
            .check("https://idp", "vdi-cli", None)
            .unwrap();
        assert!(IdClaims::parse("not-a-jwt").is_err());
        assert!(IdClaims::parse(&jwt(&serde_json::json!({"sub": "a"}))).is_err());
    }

    #[test]
    fn pkce_pairs_are_fresh_s256_pairs() {
        let (a, b) = (Pkce::new(), Pkce::new());
        assert_ne!(a.verifier, b.verifier);
        assert_eq!(a.verifier.len(), 64);
        assert_eq!(
            a.challenge,
            URL_SAFE_NO_PAD.encode(Sha256::digest(a.verifier.as_bytes()))
        );
    }
}
