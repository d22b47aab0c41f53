//! Authentication, as kube-apiserver does it: who a request's bearer token says it is.
//!
//! Owns: the bootstrap admin token ([`AdminToken`]), service-account tokens minted by the
//! TokenRequest API and their validation ([`ServiceAccountTokens`]), OpenID Connect ID tokens
//! from an external identity provider ([`OidcAuthenticator`]), and the union of the three
//! ([`Authenticator`]) that turns an `Authorization` header into a [`UserInfo`].
//!
//! Does not own: what an identity may do (that is [`crate::rbac`]), reading service accounts,
//! pods and secrets from the store (the caller answers through [`TokenLookup`]), or HTTP.
//!
//! Every rejection is a plain 401 [`ApiError::Unauthorized`], as kube-apiserver answers: the
//! client learns nothing about why. The reason is logged at debug level.

mod admin;
mod files;
mod jwt;
mod oidc;
mod service_account;
mod token_request;
mod verified;

use crate::error::{ApiError, Result};
use crate::rbac::{UNAUTHENTICATED_GROUP, UserInfo};

pub use admin::{ADMIN_USER, AdminToken};
pub use oidc::{
    DEFAULT_GROUPS_CLAIM, DEFAULT_PREFIX, DEFAULT_USERNAME_CLAIM, NO_PREFIX, OidcAuthenticator,
    OidcConfig,
};
pub use service_account::{
    BoundKind, BoundObject, DEFAULT_EXPIRATION_SECONDS, DEFAULT_SA_ISSUER, MAX_EXPIRATION_SECONDS,
    MIN_EXPIRATION_SECONDS, ServiceAccountTokens, TokenSpec,
};

/// The user name of requests without credentials.
pub const ANONYMOUS_USER: &str = "system:anonymous";

/// The longest bearer token looked at; longer ones are rejected before any decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What token validation needs to know about the cluster's objects: whether the service
/// account (and the pod or secret a token is bound to) still exists, and under which uid.
///
/// A token outlives neither: kube-apiserver rejects a service-account token once its account
/// is deleted (or deleted and recreated under the same name: a new uid), and a bound token once
/// its pod or secret is.
pub trait TokenLookup: Sync {
    /// The uid of service account `name` in `namespace`, or `None` when there is none.
    fn service_account_uid(&self, namespace: &str, name: &str) -> Option<String>;
    /// The uid of pod `name` in `namespace`, or `None` when there is none.
    fn pod_uid(&self, namespace: &str, name: &str) -> Option<String>;
    /// The uid of secret `name` in `namespace`, or `None` when there is none.
    fn secret_uid(&self, namespace: &str, name: &str) -> Option<String>;
}

/// Why a token was rejected; logged, never shown to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected(pub(crate) String);

impl Rejected {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// Maps an internal rejection to the 401 the client sees, logging the reason.
pub(crate) fn unauthorized(source: &str, rejected: &Rejected) -> ApiError {
    tracing::debug!(source, reason = %rejected.0, "bearer token rejected");
    ApiError::Unauthorized
}

/// The union of the token authenticators, tried in kube-apiserver's order: the admin token,
/// service-account tokens, then each OIDC issuer. Cheap to share in an `Arc`.
pub struct Authenticator {
    anonymous: bool,
    admin: Option<AdminToken>,
    service_accounts: Option<ServiceAccountTokens>,
    oidc: Vec<OidcAuthenticator>,
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl Authenticator {
    /// An authenticator that knows no tokens and lets requests without credentials through as
    /// `system:anonymous` (kube-apiserver's `--anonymous-auth=true`).
    pub fn new() -> Self {
        Self {
            anonymous: true,
            admin: None,
            service_accounts: None,
            oidc: Vec::new(),
        }
    }

    /// Whether requests without credentials pass as `system:anonymous` (default) or get 401.
    pub fn with_anonymous(mut self, allowed: bool) -> Self {
        self.anonymous = allowed;
        self
    }

    /// Accepts the bootstrap admin token.
    pub fn with_admin_token(mut self, token: AdminToken) -> Self {
        self.admin = Some(token);
        self
    }

    /// Accepts service-account tokens from this issuer.
    pub fn with_service_accounts(mut self, tokens: ServiceAccountTokens) -> Self {
        self.service_accounts = Some(tokens);
        self
    }

    /// Accepts ID tokens from this OIDC issuer (several issuers may be added).
    pub fn with_oidc(mut self, oidc: OidcAuthenticator) -> Self {
        self.oidc.push(oidc);
        self
    }

    /// The admin token, if one is configured.
    pub fn admin_token(&self) -> Option<&AdminToken> {
        self.admin.as_ref()
    }

    /// The service-account token issuer, for the TokenRequest endpoint and `/openid/v1/jwks`.
    pub fn service_accounts(&self) -> Option<&ServiceAccountTokens> {
        self.service_accounts.as_ref()
    }

    /// Fetches every OIDC issuer's discovery document and keys (spawn it at startup so the
    /// first user does not wait). Failures are logged and retried when tokens arrive; returns
    /// whether every issuer answered.
    pub async fn prefetch_oidc(&self) -> bool {
        let mut all = true;
        for oidc in &self.oidc {
            all &= oidc.prefetch().await;
        }
        all
    }

    /// The identity behind a request's `Authorization` header.
    ///
    /// No header: `system:anonymous` in `system:unauthenticated` (RBAC decides what it may do),
    /// or 401 when anonymous requests are off. `Bearer <token>`: the first authenticator that
    /// recognises the token decides. Anything else (another scheme, an empty or oversized
    /// token, a token nobody recognises) is 401. (kube-apiserver lets a non-Bearer header fall
    /// through to anonymous; refusing it is stricter and catches misconfigured clients.)
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        lookup: &dyn TokenLookup,
    ) -> Result<UserInfo> {
        let Some(header) = authorization else {
            return if self.anonymous {
                Ok(UserInfo::new(ANONYMOUS_USER, [UNAUTHENTICATED_GROUP]))
            } else {
                Err(ApiError::Unauthorized)
            };
        };
        let token = bearer_token(header).map_err(|r| unauthorized("header", &r))?;
        if let Some(admin) = &self.admin
            && admin.matches(token)
        {
            return Ok(AdminToken::user());
        }
        if let Some(sa) = &self.service_accounts
            && let Some(result) = sa.validate(token, lookup)
        {
            return result;
        }
        for oidc in &self.oidc {
            if let Some(result) = oidc.authenticate(token).await {
                return result;
            }
        }
        Err(unauthorized(
            "union",
            &Rejected::new("no authenticator recognises the token"),
        ))
    }
}

/// The token of a `Bearer` header (the scheme is case-insensitive, as in kube-apiserver).
fn bearer_token(header: &str) -> Result<&str, Rejected> {
    let (scheme, token) = header
        .trim()
        .split_once(' ')
        .ok_or_else(|| Rejected::new("not a Bearer header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejected::new("not a Bearer header"));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Rejected::new("empty bearer token"));
    }
    if token.len() > MAX_TOKEN_BYTES || token.contains(char::is_whitespace) {
        return Err(Rejected::new("malformed bearer token"));
    }
    Ok(token)
}

#[cfg(test)]
mod tests;
