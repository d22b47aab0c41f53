//! The benchmark's own OpenID Provider: discovery and a JWKS on loopback HTTP, and ID tokens it
//! signs (ES256) for synthetic users. The API and the control plane check them exactly as they
//! check a real provider's (discovery, JWKS by `kid`, issuer, audience, expiry); the benchmark
//! needs tokens for users without a browser sign-in, and nothing but loopback to serve them.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use axum::Json;
use axum::Router;
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use vdi_cluster::authn::OidcConfig;

/// The client (audience) the tokens are issued to.
pub(super) const CLIENT_ID: &str = "vdi-bench";
const KID: &str = "bench-1";

pub(super) struct Issuer {
    pub(super) url: String,
    key: EncodingKey,
    task: tokio::task::JoinHandle<()>,
}

impl Issuer {
    /// Generates a key and serves discovery and JWKS on `127.0.0.1`.
    pub(super) async fn start() -> Result<Self> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .context("generate the issuer's key")?;
        let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())
            .context("read the issuer's key")?;
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).context("the issuer's JWK")?;
        jwk.common.key_id = Some(KID.to_owned());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks"),
            "id_token_signing_alg_values_supported": ["ES256"],
        });
        let jwks = JwkSet { keys: vec![jwk] };
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let d = discovery.clone();
                    async move { Json(d) }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    let k = jwks.clone();
                    async move { Json(k) }
                }),
            );
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the benchmark's issuer stopped");
            }
        });
        Ok(Self { url, key, task })
    }

    /// What the API and the control plane are told about this issuer.
    pub(super) fn config(&self) -> OidcConfig {
        let mut config = OidcConfig::new(self.url.clone(), CLIENT_ID);
        config.allow_insecure_loopback = true;
        config
    }

    /// An hour-long ID token for `user` in `groups`.
    pub(super) fn token(&self, user: &str, groups: &[&str]) -> Result<String> {
        let now = jiff::Timestamp::now().as_second();
        let claims: Value = json!({
            "iss": self.url, "aud": CLIENT_ID, "sub": user, "email": format!("{user}@bench"),
            "groups": groups, "iat": now, "nbf": now, "exp": now + 3600,
        });
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(KID.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.key).context("sign a token")
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
