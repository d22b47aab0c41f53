//! The issuer's signing keys: discovery (`/.well-known/openid-configuration`), then its
//! `jwks_uri`, cached by `kid`. Keys are refetched when a token names a `kid` we do not know
//! (key rotation), at most once per [`MIN_REFETCH_INTERVAL`], and when older than
//! [`MAX_KEY_AGE`]. A failed fetch keeps the keys we had.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use reqwest::redirect::Policy;
use serde_json::Value;

use super::{OidcConfig, check_url, config_err};
use crate::authn::Rejected;
use crate::authn::jwt::{self, Claims};
use crate::error::Result;

/// The shortest time between two fetches.
pub(crate) const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Keys older than this are refreshed on the next token.
pub(crate) const MAX_KEY_AGE: Duration = Duration::from_secs(300);
/// The largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A verification key.
struct Key {
    kid: Option<String>,
    /// The JWK's `alg`, when it names one: the key may then only verify that algorithm.
    alg: Option<Algorithm>,
    family: AlgorithmFamily,
    key: DecodingKey,
}

#[derive(Default)]
struct State {
    keys: Arc<Vec<Key>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

pub(crate) struct KeyCache {
    client: reqwest::Client,
    state: Mutex<State>,
    /// Serialises fetches, so a burst of tokens with a new `kid` costs one fetch.
    fetching: tokio::sync::Mutex<()>,
    min_refetch: Duration,
    max_age: Duration,
}

impl KeyCache {
    pub(crate) fn new(config: &OidcConfig) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT);
        if config.allow_insecure_loopback {
            // A development IdP on this machine: an HTTP(S)_PROXY from the environment would
            // otherwise carry loopback requests away.
            builder = builder.no_proxy();
        }
        if let Some(pem) = &config.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| config_err(format_args!("caPem: {e}")))?;
            if certs.is_empty() {
                return Err(config_err("caPem holds no certificate"));
            }
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| config_err(format_args!("HTTP client: {e}")))?;
        Ok(Self {
            client,
            state: Mutex::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
            min_refetch: MIN_REFETCH_INTERVAL,
            max_age: MAX_KEY_AGE,
        })
    }

    pub(crate) fn set_intervals(&mut self, min_refetch: Duration, max_age: Duration) {
        self.min_refetch = min_refetch;
        self.max_age = max_age;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is replaced whole; a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn may_fetch(&self, state: &State) -> bool {
        state
            .attempted_at
            .is_none_or(|at| at.elapsed() >= self.min_refetch)
    }

    /// Fetches the keys unless a fetch was attempted too recently; `force` skips the check of
    /// whether the keys are still fresh. Returns whether keys are now loaded.
    pub(crate) async fn refresh(&self, config: &OidcConfig, force: bool) -> bool {
        let _fetching = self.fetching.lock().await;
        {
            let mut state = self.lock();
            let fresh = state
                .fetched_at
                .is_some_and(|at| at.elapsed() < self.max_age);
            // Re-checked under the fetch lock: whoever held it may have just fetched.
            if (fresh && !force) || !self.may_fetch(&state) {
                return state.fetched_at.is_some();
            }
            state.attempted_at = Some(Instant::now());
        }
        match fetch_keys(&self.client, config).await {
            Ok(keys) => {
                tracing::debug!(issuer = %config.issuer_url, keys = keys.len(), "OIDC keys fetched");
                let mut state = self.lock();
                state.keys = Arc::new(keys);
                state.fetched_at = Some(Instant::now());
                true
            }
            Err(error) => {
                tracing::warn!(issuer = %config.issuer_url, %error, "OIDC discovery or key fetch failed; its tokens are refused until it succeeds");
                self.lock().fetched_at.is_some()
            }
        }
    }

    fn snapshot(&self) -> (Arc<Vec<Key>>, bool) {
        let state = self.lock();
        let stale = state
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.max_age);
        (state.keys.clone(), stale && self.may_fetch(&state))
    }

    /// Verifies `token`'s signature with the issuer's key for `kid` and returns its claims.
    pub(crate) async fn verify(
        &self,
        config: &OidcConfig,
        token: &str,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Claims, Rejected> {
        let (mut keys, stale) = self.snapshot();
        if stale {
            self.refresh(config, false).await;
            keys = self.snapshot().0;
        }
        if !keys.iter().any(|k| k.fits(alg, kid)) {
            // Perhaps the issuer rotated its keys.
            self.refresh(config, true).await;
            keys = self.snapshot().0;
        }
        let mut last = Rejected::new(match kid {
            Some(kid) => format!("no key {kid:?} for {alg:?}"),
            None => format!("no key for {alg:?}"),
        });
        for key in keys.iter().filter(|k| k.fits(alg, kid)) {
            match jwt::verify(token, &key.key, alg) {
                Ok(claims) => return Ok(claims),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl Key {
    fn fits(&self, alg: Algorithm, kid: Option<&str>) -> bool {
        self.family == alg.family()
            && self.alg.is_none_or(|a| a == alg)
            && kid.is_none_or(|kid| self.kid.as_deref() == Some(kid))
    }
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("GET {url}: more than {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {url}: {e}"))
}

async fn fetch_keys(client: &reqwest::Client, config: &OidcConfig) -> Result<Vec<Key>, String> {
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        config.issuer_url.trim_end_matches('/')
    );
    let doc = get_json(client, &discovery).await?;
    let issuer = doc.get("issuer").and_then(Value::as_str);
    if issuer != Some(config.issuer_url.as_str()) {
        return Err(format!(
            "discovery names issuer {issuer:?}, configured {:?}",
            config.issuer_url
        ));
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or("discovery has no jwks_uri")?;
    check_url(jwks_uri, config.allow_insecure_loopback)?;
    let jwks = get_json(client, jwks_uri).await?;
    let keys = parse_jwks(&jwks)?;
    if keys.is_empty() {
        return Err(format!("{jwks_uri}: no usable signing key"));
    }
    Ok(keys)
}

/// The usable signing keys of a JWKS; keys for encryption, of unknown types, or symmetric are
/// skipped.
fn parse_jwks(jwks: &Value) -> Result<Vec<Key>, String> {
    let items = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("JWKS has no keys array")?;
    Ok(items.iter().filter_map(parse_key).collect())
}

fn parse_key(item: &Value) -> Option<Key> {
    let jwk: Jwk = serde_json::from_value(item.clone()).ok()?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(_) => AlgorithmFamily::Ec,
        AlgorithmParameters::OctetKeyPair(_) => AlgorithmFamily::Ed,
        // Symmetric keys (`oct`) never verify an ID token here; unknown types are skipped.
        _ => return None,
    };
    let alg = match jwk.common.key_algorithm {
        // Same names in both enums; encryption algorithms (RSA-OAEP, ...) have no match.
        Some(a) => Some(serde_json::from_value(serde_json::to_value(a).ok()?).ok()?),
        None => None,
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id,
        alg,
        family,
        key,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn jwks_parsing_keeps_signing_keys_only() {
        let jwks = json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "ec",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "weird"},
            "not an object",
        ]});
        let keys = parse_jwks(&jwks).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("ec"));
        assert!(keys[0].fits(Algorithm::ES256, Some("ec")));
        assert!(keys[0].fits(Algorithm::ES256, None));
        assert!(!keys[0].fits(Algorithm::ES256, Some("other")));
        assert!(!keys[0].fits(Algorithm::RS256, Some("ec")));
        assert!(parse_jwks(&json!({"keys": "x"})).is_err());
        assert!(parse_jwks(&json!([])).is_err());
    }
}
