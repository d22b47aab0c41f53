//! OpenID Connect ID tokens from an external identity provider, checked as kube-apiserver's
//! `--oidc-*` flags check them: signature by a key of the issuer's JWKS, `iss`, `aud` (the
//! client id), `exp`/`nbf`/`iat`, required claims, then the username and groups claims mapped
//! to a prefixed identity.

mod keys;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::Value;

use self::keys::{KeyCache, MAX_KEY_AGE, MIN_REFETCH_INTERVAL};
use super::jwt::{self, Claims};
use super::{Rejected, unauthorized};
use crate::error::{ApiError, Result};
use crate::rbac::{AUTHENTICATED_GROUP, UserInfo};

/// The username claim unless configured (`--oidc-username-claim`).
pub const DEFAULT_USERNAME_CLAIM: &str = "sub";
/// The groups claim unless configured (`--oidc-groups-claim`).
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";
/// The username and groups prefix unless configured. (kube-apiserver's defaults differ: the
/// issuer URL and `#` for usernames from claims other than `email`, nothing for groups; one
/// fixed prefix keeps OIDC identities apart from `system:` and service-account names.)
pub const DEFAULT_PREFIX: &str = "oidc:";
/// The prefix value that means "no prefix", as in kube-apiserver.
pub const NO_PREFIX: &str = "-";

/// Identities in this namespace belong to the cluster itself; an IdP may not mint them.
const RESERVED_PREFIX: &str = "system:";

fn default_username_claim() -> String {
    DEFAULT_USERNAME_CLAIM.to_owned()
}

fn default_groups_claim() -> Option<String> {
    Some(DEFAULT_GROUPS_CLAIM.to_owned())
}

fn default_prefix() -> String {
    DEFAULT_PREFIX.to_owned()
}

fn default_signing_algs() -> Vec<Algorithm> {
    vec![Algorithm::RS256, Algorithm::ES256]
}

/// An OIDC issuer to trust, with kube-apiserver's `--oidc-*` flag meanings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OidcConfig {
    /// The issuer URL (`--oidc-issuer-url`): https, compared exactly with the discovery
    /// document's `issuer` and the tokens' `iss`.
    pub issuer_url: String,
    /// The client id (`--oidc-client-id`): tokens must name it in `aud`.
    pub client_id: String,
    /// The claim holding the user name (`--oidc-username-claim`), default `sub`. When it is
    /// `email`, a present `email_verified` claim must be `true`.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Prepended to the user name (`--oidc-username-prefix`), default `oidc:`; `-` means none.
    #[serde(default = "default_prefix")]
    pub username_prefix: String,
    /// The claim holding the groups, a string or an array of strings (`--oidc-groups-claim`),
    /// default `groups`; `None` ignores groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: Option<String>,
    /// Prepended to every group (`--oidc-groups-prefix`), default `oidc:`; `-` means none.
    #[serde(default = "default_prefix")]
    pub groups_prefix: String,
    /// PEM certificates to trust for the issuer's HTTPS (`--oidc-ca-file`); when given, the
    /// only ones trusted. Default: the system's roots.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// Claims every token must carry with exactly these string values
    /// (`--oidc-required-claim`).
    #[serde(default)]
    pub required_claims: BTreeMap<String, String>,
    /// The signature algorithms accepted (`--oidc-signing-algs`), default RS256 and ES256.
    /// Only asymmetric algorithms are allowed.
    #[serde(default = "default_signing_algs")]
    pub signing_algs: Vec<Algorithm>,
    /// Allows an `http://` issuer on 127.0.0.1, `[::1]` or localhost (development IdPs and
    /// tests). Off by default.
    #[serde(default)]
    pub allow_insecure_loopback: bool,
}

impl OidcConfig {
    /// A configuration with every default for `issuer_url` and `client_id`.
    pub fn new(issuer_url: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            issuer_url: issuer_url.into(),
            client_id: client_id.into(),
            username_claim: default_username_claim(),
            username_prefix: default_prefix(),
            groups_claim: default_groups_claim(),
            groups_prefix: default_prefix(),
            ca_pem: None,
            required_claims: BTreeMap::new(),
            signing_algs: default_signing_algs(),
            allow_insecure_loopback: false,
        }
    }
}

/// Authenticates ID tokens of one OIDC issuer. Discovery and key fetches happen lazily (and
/// are retried): an unreachable issuer only makes its tokens fail with 401 until it answers.
pub struct OidcAuthenticator {
    config: OidcConfig,
    keys: KeyCache,
}

fn config_err(reason: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("OIDC configuration: {reason}"))
}

/// Whether `url` may be fetched: https, or http on a loopback host when allowed.
pub(crate) fn check_url(url: &str, allow_insecure_loopback: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http"
            if allow_insecure_loopback
                && matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "{url:?}: must be https (http only on a loopback host with allowInsecureLoopback)"
        )),
    }
}

impl OidcAuthenticator {
    /// Checks `config` and builds the HTTP client; fetches nothing yet (see [`Self::prefetch`]).
    pub fn new(config: OidcConfig) -> Result<Self> {
        check_url(&config.issuer_url, config.allow_insecure_loopback).map_err(config_err)?;
        if config.client_id.is_empty() {
            return Err(config_err("clientId is empty"));
        }
        if config.username_claim.is_empty() {
            return Err(config_err("usernameClaim is empty"));
        }
        if config.signing_algs.is_empty() {
            return Err(config_err("signingAlgs is empty"));
        }
        if let Some(alg) = config
            .signing_algs
            .iter()
            .find(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        {
            // A symmetric key would have to be the client secret: anyone holding it could mint
            // identities.
            return Err(config_err(format_args!(
                "signingAlgs: {alg:?} is symmetric; only asymmetric algorithms are allowed"
            )));
        }
        let keys = KeyCache::new(&config)?;
        Ok(Self { config, keys })
    }

    /// Changes how often keys may be refetched for an unknown `kid` (default 10 s) and after
    /// how long they are refreshed anyway (default 5 min).
    pub fn with_key_refresh(mut self, min_refetch: Duration, max_age: Duration) -> Self {
        self.keys.set_intervals(min_refetch, max_age);
        self
    }

    /// The defaults [`Self::with_key_refresh`] overrides.
    pub fn default_key_refresh() -> (Duration, Duration) {
        (MIN_REFETCH_INTERVAL, MAX_KEY_AGE)
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Fetches discovery and keys now (at startup, so the first user does not wait). Failure
    /// is logged, not fatal: fetching is retried when tokens arrive.
    pub async fn prefetch(&self) -> bool {
        self.keys.refresh(&self.config, false).await
    }

    /// Authenticates an ID token now. `None` when the token's (unverified) `iss` is not this
    /// issuer; `Some(Err(Unauthorized))` when it is but the token does not pass.
    pub async fn authenticate(&self, token: &str) -> Option<Result<UserInfo>> {
        self.authenticate_at(token, Timestamp::now()).await
    }

    /// [`Self::authenticate`] at a given time.
    pub async fn authenticate_at(&self, token: &str, now: Timestamp) -> Option<Result<UserInfo>> {
        self.check(token, now)
            .await
            .map(|r| r.map_err(|e| unauthorized("oidc", &e)))
    }

    pub(crate) async fn check(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Option<Result<UserInfo, Rejected>> {
        if jwt::peek_issuer(token)? != self.config.issuer_url {
            return None;
        }
        Some(self.check_ours(token, now.as_second()).await)
    }

    async fn check_ours(&self, token: &str, now: i64) -> Result<UserInfo, Rejected> {
        // `alg: none` and unknown algorithms fail to parse here.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Rejected::new(format!("header: {e}")))?;
        if !self.config.signing_algs.contains(&header.alg) {
            return Err(Rejected::new(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let claims = self
            .keys
            .verify(&self.config, token, header.alg, header.kid.as_deref())
            .await?;
        check_claims(&self.config, &claims, now)?;
        identity(&self.config, &claims)
    }
}

/// Everything but the signature and the identity mapping: issuer, audience, times, required
/// claims.
pub(crate) fn check_claims(config: &OidcConfig, claims: &Claims, now: i64) -> Result<(), Rejected> {
    if jwt::string_claim(claims, "iss") != Some(config.issuer_url.as_str()) {
        return Err(Rejected::new("iss does not match the issuer"));
    }
    if !jwt::audiences(claims)?.contains(&config.client_id.as_str()) {
        return Err(Rejected::new("aud does not name the client id"));
    }
    jwt::check_times(claims, now, true)?;
    for (name, want) in &config.required_claims {
        match claims.get(name) {
            Some(Value::String(got)) if got == want => {}
            Some(Value::String(_)) => {
                return Err(Rejected::new(format!("required claim {name}: wrong value")));
            }
            Some(_) => {
                return Err(Rejected::new(format!(
                    "required claim {name}: not a string"
                )));
            }
            None => return Err(Rejected::new(format!("required claim {name}: missing"))),
        }
    }
    Ok(())
}

fn prefixed(prefix: &str, value: &str) -> String {
    if prefix == NO_PREFIX {
        value.to_owned()
    } else {
        format!("{prefix}{value}")
    }
}

/// The identity a verified token's claims map to.
pub(crate) fn identity(config: &OidcConfig, claims: &Claims) -> Result<UserInfo, Rejected> {
    let claim = &config.username_claim;
    let username = match claims.get(claim) {
        Some(Value::String(name)) if !name.is_empty() => name,
        Some(_) => return Err(Rejected::new(format!("{claim}: not a non-empty string"))),
        None => return Err(Rejected::new(format!("{claim}: missing"))),
    };
    if claim == "email" {
        match claims.get("email_verified") {
            None | Some(Value::Bool(true)) => {}
            Some(_) => return Err(Rejected::new("email not verified")),
        }
    }
    let groups: Vec<&str> = match config.groups_claim.as_ref().and_then(|g| claims.get(g)) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(group)) => vec![group],
        Some(Value::Array(items)) => items
            .iter()
            .map(|g| {
                g.as_str()
                    .ok_or_else(|| Rejected::new("groups: not a string"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Rejected::new("groups: neither a string nor an array")),
    };
    let name = prefixed(&config.username_prefix, username);
    let mut all_groups: Vec<String> = groups
        .into_iter()
        .map(|g| prefixed(&config.groups_prefix, g))
        .collect();
    // Only reachable with the `-` prefix: an IdP must not speak for the cluster's own users
    // and groups (system:masters, system:serviceaccount:...).
    if name.starts_with(RESERVED_PREFIX)
        || all_groups.iter().any(|g| g.starts_with(RESERVED_PREFIX))
    {
        return Err(Rejected::new(
            "username or group in the reserved system: namespace",
        ));
    }
    all_groups.push(AUTHENTICATED_GROUP.to_owned());
    Ok(UserInfo::new(name, all_groups))
}
