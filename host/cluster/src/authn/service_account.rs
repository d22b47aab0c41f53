//! Service-account tokens as kube-apiserver's TokenRequest API issues them: ES256 JWTs with the
//! service account (and optionally the pod or secret the token is bound to) in the
//! `kubernetes.io` claim, valid only while those objects exist under the same uid.

use std::path::Path;

use jiff::Timestamp;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use serde::Deserialize;
use serde_json::{Value, json};

use super::jwt::{self, Claims};
use super::{Rejected, TokenLookup, files, unauthorized};
use crate::error::{ApiError, Result};
use crate::rbac::{UserInfo, service_account_username};

/// The issuer (`iss`) of service-account tokens unless configured otherwise
/// (kube-apiserver's `--service-account-issuer`).
pub const DEFAULT_SA_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// A TokenRequest's `spec.expirationSeconds` when it names none.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest lifetime a TokenRequest may ask for (kube-apiserver's validation).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The longest lifetime issued; longer requests are capped, as
/// `--service-account-max-token-expiration` does.
pub const MAX_EXPIRATION_SECONDS: i64 = 48 * 3600;

/// The signing algorithm (ECDSA P-256 with SHA-256).
const ALG: Algorithm = Algorithm::ES256;
/// The private claim holding the Kubernetes objects a token speaks for.
const PRIVATE_CLAIM: &str = "kubernetes.io";

/// The kind of object a token is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundKind {
    /// A pod: the token dies with it.
    Pod,
    /// A secret: the token dies with it.
    Secret,
}

impl BoundKind {
    /// The Kubernetes kind.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Pod => "Pod",
            Self::Secret => "Secret",
        }
    }

    fn claim(self) -> &'static str {
        match self {
            Self::Pod => "pod",
            Self::Secret => "secret",
        }
    }
}

/// The object a token is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundObject {
    /// Its kind.
    pub kind: BoundKind,
    /// Its name, in the service account's namespace.
    pub name: String,
    /// Its uid when the token was issued.
    pub uid: String,
}

/// What to put into a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    /// The service account's namespace.
    pub namespace: String,
    /// The service account's name.
    pub service_account: String,
    /// The service account's uid.
    pub service_account_uid: String,
    /// The audiences; empty means the API audiences.
    pub audiences: Vec<String>,
    /// The requested lifetime: at least [`MIN_EXPIRATION_SECONDS`], capped at
    /// [`MAX_EXPIRATION_SECONDS`].
    pub expiration_seconds: i64,
    /// The pod or secret the token is bound to.
    pub bound_object: Option<BoundObject>,
}

/// Issues and validates service-account tokens with one ES256 signing key.
pub struct ServiceAccountTokens {
    issuer: String,
    api_audiences: Vec<String>,
    key_id: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_jwk: Jwk,
    /// Signatures verified recently (see [`super::verified`]).
    verified: std::sync::Arc<super::verified::VerifiedTokens>,
}

fn key_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("service-account signing key: {e}"))
}

impl ServiceAccountTokens {
    /// Loads the PKCS#8 PEM signing key at `path`, or generates a P-256 key and writes it there
    /// with mode 0600. Refuses a key file readable by group or others. Issuer and API audience
    /// default to [`DEFAULT_SA_ISSUER`].
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let pem = files::load_or_create(path, || {
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
                .map(|k| k.serialize_pem())
                .map_err(key_err)
        })?;
        Self::from_pem(&pem)
    }

    /// Uses a P-256 private key given as PKCS#8 PEM.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let pair = KeyPair::from_pem(pem).map_err(key_err)?;
        if pair.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err(key_err("not an ECDSA P-256 key"));
        }
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(key_err)?;
        let decoding = DecodingKey::from_ec_der(pair.public_key_raw());
        let mut public_jwk = Jwk::from_encoding_key(&encoding, ALG).map_err(key_err)?;
        // kube-apiserver derives the key id from the public key too; a thumbprint is stable
        // across restarts and changes with the key.
        let key_id = public_jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(key_err)?;
        public_jwk.common.key_id = Some(key_id.clone());
        public_jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        public_jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        Ok(Self {
            issuer: DEFAULT_SA_ISSUER.to_owned(),
            api_audiences: vec![DEFAULT_SA_ISSUER.to_owned()],
            key_id,
            encoding,
            decoding,
            public_jwk,
            verified: std::sync::Arc::default(),
        })
    }

    /// A fresh in-memory key (tests, throw-away clusters).
    pub fn generate() -> Result<Self> {
        let pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(key_err)?;
        Self::from_pem(&pair.serialize_pem())
    }

    /// Sets the issuer; the API audiences follow it unless set afterwards.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self.api_audiences = vec![self.issuer.clone()];
        self
    }

    /// Sets the audiences the API server accepts (`--api-audiences`); a token must name at
    /// least one of them. An empty list keeps the issuer.
    pub fn with_api_audiences(mut self, audiences: Vec<String>) -> Self {
        if !audiences.is_empty() {
            self.api_audiences = audiences;
        }
        self
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audiences tokens are issued for by default and must carry to be accepted.
    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    /// The signing key's id (`kid` of issued tokens).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key set, as `/openid/v1/jwks` serves it.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk] })
    }

    /// The discovery document, as `/.well-known/openid-configuration` serves it, pointing at
    /// `jwks_uri`.
    pub fn openid_configuration(&self, jwks_uri: &str) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }

    /// Signs a token for `spec`, issued at `now`; returns it with its expiry. A lifetime under
    /// [`MIN_EXPIRATION_SECONDS`] is refused naming `spec.expirationSeconds`; one over
    /// [`MAX_EXPIRATION_SECONDS`] is capped.
    pub fn mint(&self, spec: &TokenSpec, now: Timestamp) -> Result<(String, Timestamp)> {
        if spec.expiration_seconds < MIN_EXPIRATION_SECONDS {
            return Err(ApiError::Invalid {
                kind: "TokenRequest".into(),
                name: spec.service_account.clone(),
                field: "spec.expirationSeconds".into(),
                reason: format!(
                    "{}: may not specify a duration less than 10 minutes",
                    spec.expiration_seconds
                ),
            });
        }
        let lifetime = spec.expiration_seconds.min(MAX_EXPIRATION_SECONDS);
        let iat = now.as_second();
        let exp = iat.saturating_add(lifetime);
        let expires = Timestamp::from_second(exp).map_err(|e| ApiError::Internal(e.to_string()))?;
        let audiences = if spec.audiences.is_empty() {
            &self.api_audiences
        } else {
            &spec.audiences
        };
        let mut private = json!({
            "namespace": spec.namespace,
            "serviceaccount": { "name": spec.service_account, "uid": spec.service_account_uid },
        });
        if let (Some(bound), Some(map)) = (&spec.bound_object, private.as_object_mut()) {
            map.insert(
                bound.kind.claim().into(),
                json!({ "name": bound.name, "uid": bound.uid }),
            );
        }
        let claims = json!({
            "iss": self.issuer,
            "sub": service_account_username(&spec.namespace, &spec.service_account),
            "aud": audiences,
            "exp": exp,
            "iat": iat,
            "nbf": iat,
            "jti": uuid::Uuid::new_v4().to_string(),
            PRIVATE_CLAIM: private,
        });
        let mut header = Header::new(ALG);
        header.kid = Some(self.key_id.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("signing a service-account token: {e}")))?;
        Ok((token, expires))
    }

    /// Authenticates a service-account token now. `None` when the token is not one of ours
    /// (not a JWT, or another issuer); `Some(Err(Unauthorized))` when it is ours but invalid:
    /// bad signature, expired (60 s of clock skew allowed, as kube-apiserver), no API audience,
    /// or its service account, pod or secret is gone or was recreated under a new uid.
    pub fn validate(&self, token: &str, lookup: &dyn TokenLookup) -> Option<Result<UserInfo>> {
        self.validate_at(token, lookup, Timestamp::now())
    }

    /// [`Self::validate`] at a given time.
    pub fn validate_at(
        &self,
        token: &str,
        lookup: &dyn TokenLookup,
        now: Timestamp,
    ) -> Option<Result<UserInfo>> {
        self.check(token, lookup, now)
            .map(|r| r.map_err(|e| unauthorized("serviceaccount", &e)))
    }

    pub(crate) fn check(
        &self,
        token: &str,
        lookup: &dyn TokenLookup,
        now: Timestamp,
    ) -> Option<Result<UserInfo, Rejected>> {
        if jwt::peek_issuer(token)? != self.issuer {
            return None;
        }
        Some(self.check_ours(token, lookup, now.as_second()))
    }

    fn check_ours(
        &self,
        token: &str,
        lookup: &dyn TokenLookup,
        now: i64,
    ) -> Result<UserInfo, Rejected> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Rejected::new(format!("header: {e}")))?;
        if header.alg != ALG {
            return Err(Rejected::new(format!("algorithm {:?}", header.alg)));
        }
        if header.kid.as_deref().is_some_and(|kid| kid != self.key_id) {
            return Err(Rejected::new("unknown signing key"));
        }
        let claims = self.verified.claims(token, std::time::Instant::now(), || {
            jwt::verify(token, &self.decoding, ALG)
        })?;
        jwt::check_times(&claims, now, false)?;
        let audiences = jwt::audiences(&claims)?;
        if !audiences
            .iter()
            .any(|a| self.api_audiences.iter().any(|b| b == a))
        {
            return Err(Rejected::new("no audience of this API server"));
        }
        let objects = KubernetesClaim::from_claims(&claims)?;
        let ns = &objects.namespace;
        let sa = &objects.serviceaccount;
        if jwt::string_claim(&claims, "sub") != Some(&service_account_username(ns, &sa.name)) {
            return Err(Rejected::new("sub does not name the service account"));
        }
        if lookup.service_account_uid(ns, &sa.name).as_deref() != Some(sa.uid.as_str()) {
            return Err(Rejected::new(format!(
                "service account {ns}/{} is gone or has a new uid",
                sa.name
            )));
        }
        if let Some(pod) = &objects.pod
            && lookup.pod_uid(ns, &pod.name).as_deref() != Some(pod.uid.as_str())
        {
            return Err(Rejected::new(format!(
                "bound pod {ns}/{} is gone or has a new uid",
                pod.name
            )));
        }
        if let Some(secret) = &objects.secret
            && lookup.secret_uid(ns, &secret.name).as_deref() != Some(secret.uid.as_str())
        {
            return Err(Rejected::new(format!(
                "bound secret {ns}/{} is gone or has a new uid",
                secret.name
            )));
        }
        Ok(UserInfo::service_account(ns, &sa.name))
    }
}

/// The `kubernetes.io` claim.
#[derive(Deserialize)]
struct KubernetesClaim {
    namespace: String,
    serviceaccount: ObjectClaim,
    pod: Option<ObjectClaim>,
    secret: Option<ObjectClaim>,
}

#[derive(Deserialize)]
struct ObjectClaim {
    name: String,
    uid: String,
}

impl KubernetesClaim {
    fn from_claims(claims: &Claims) -> Result<Self, Rejected> {
        let value = claims
            .get(PRIVATE_CLAIM)
            .ok_or_else(|| Rejected::new("kubernetes.io: missing"))?;
        Self::deserialize(value).map_err(|e| Rejected::new(format!("kubernetes.io: {e}")))
    }
}

#[cfg(test)]
mod tests;
