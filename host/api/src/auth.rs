//! Who is calling: the bearer ID token checked against the OIDC issuer, and the Kubernetes
//! client that acts as that user (impersonation), so RBAC and admission decide.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::Client;
use vdi_cluster::authn::{MAX_TOKEN_BYTES, OidcAuthenticator};

use crate::error::{ApiError, Result};

/// Groups the API server adds by itself; impersonating them is refused (the embedded control
/// plane lets only `system:masters` impersonate `system:` groups) and needless.
const SYSTEM_PREFIX: &str = "system:";

/// The signed-in user, as the API server names them (`oidc:alice`, `oidc:staff`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    /// User name, prefixed as the control plane prefixes it.
    pub user: String,
    /// Groups, prefixed, without the `system:` ones the API server adds.
    pub groups: Vec<String>,
}

impl Caller {
    /// The caller's own namespace (`u-<name>-<10 hex>`).
    pub fn namespace(&self) -> String {
        vdi_crd::users::user_namespace(&self.user)
    }
}

/// The token of an `Authorization: Bearer …` header value.
pub fn bearer(header: Option<&str>) -> Result<&str> {
    let value = header.ok_or_else(|| {
        ApiError::Unauthenticated("no Authorization header with a bearer token".into())
    })?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthenticated("the Authorization scheme must be Bearer".into())
        })?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ApiError::Unauthenticated("the token is too long".into()));
    }
    Ok(token)
}

/// Checks an ID token; the reason for a refusal is logged, never returned.
pub async fn authenticate(oidc: &OidcAuthenticator, token: &str) -> Result<Caller> {
    match oidc.authenticate(token).await {
        Some(Ok(info)) => {
            if info.name.starts_with(SYSTEM_PREFIX) {
                return Err(ApiError::Unauthenticated("invalid token".into()));
            }
            Ok(Caller {
                user: info.name,
                groups: info
                    .groups
                    .into_iter()
                    .filter(|g| !g.starts_with(SYSTEM_PREFIX))
                    .collect(),
            })
        }
        Some(Err(e)) => {
            tracing::debug!(error = %e, "token refused");
            Err(ApiError::Unauthenticated("invalid or expired token".into()))
        }
        None => Err(ApiError::Unauthenticated(
            "the token is not from the configured issuer".into(),
        )),
    }
}

/// When a subscription's token expires (unix seconds): its subscriptions end then, as the
/// token would stop working for any other request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenExpiry(pub u64);

/// The `exp` claim of a JWT that has already been verified (so its payload is trusted).
pub fn token_expiry(token: &str) -> Option<TokenExpiry> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_u64().map(TokenExpiry)
}

/// The service account's configuration with impersonation of `caller` added.
pub fn impersonating(base: &kube::Config, caller: &Caller) -> kube::Config {
    let mut config = base.clone();
    config.auth_info.impersonate = Some(caller.user.clone());
    config.auth_info.impersonate_groups = Some(caller.groups.clone());
    config
}

/// Impersonating clients per caller: building one sets up TLS, so they are kept (until
/// `capacity` callers, then the cache starts over).
pub struct Clients {
    base: kube::Config,
    capacity: usize,
    cache: Mutex<HashMap<Caller, Client>>,
}

impl Clients {
    /// Clients made from the service account's `base` configuration.
    pub fn new(base: kube::Config, capacity: usize) -> Self {
        Self {
            base,
            capacity: capacity.max(1),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A client acting as `caller`.
    pub fn for_caller(&self, caller: &Caller) -> Result<Client> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = cache.get(caller) {
            return Ok(client.clone());
        }
        let client =
            Client::try_from(impersonating(&self.base, caller)).map_err(ApiError::internal)?;
        if cache.len() >= self.capacity {
            cache.clear();
        }
        cache.insert(caller.clone(), client.clone());
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bearer_tokens_are_read() {
        assert_eq!(bearer(Some("Bearer abc")).unwrap(), "abc");
        for bad in [None, Some("Basic abc"), Some("Bearer "), Some("abc")] {
            assert_eq!(
                bearer(bad).unwrap_err().code(),
                "UNAUTHENTICATED",
                "{bad:?}"
            );
        }
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert!(bearer(Some(&long)).is_err());
    }

    #[test]
    fn the_expiry_is_read_from_the_payload() {
        use base64::Engine as _;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let token = format!(
            "{}.{}.sig",
            b64(serde_json::json!({"alg": "RS256"})),
            b64(serde_json::json!({"sub": "alice", "exp": 1_900_000_000u64}))
        );
        assert_eq!(token_expiry(&token), Some(TokenExpiry(1_900_000_000)));
        assert_eq!(token_expiry("no-dots"), None);
        let no_exp = format!("a.{}.c", b64(serde_json::json!({"sub": "alice"})));
        assert_eq!(token_expiry(&no_exp), None);
    }

    #[test]
    fn impersonation_names_the_user_and_groups() {
        let base = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        let caller = Caller {
            user: "oidc:alice".into(),
            groups: vec!["oidc:staff".into()],
        };
        let c = impersonating(&base, &caller);
        assert_eq!(c.auth_info.impersonate.as_deref(), Some("oidc:alice"));
        assert_eq!(
            c.auth_info.impersonate_groups,
            Some(vec!["oidc:staff".to_owned()])
        );
        assert!(base.auth_info.impersonate.is_none());
        assert!(caller.namespace().starts_with("u-alice-"));
    }
}
