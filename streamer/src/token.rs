//! Session tokens: Ed25519-signed JWTs whose audience is this session, naming the user, with an
//! expiry. Checked before any offer is made.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// The claims a session token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Audience: the session's name.
    pub aud: String,
    /// The user.
    pub sub: String,
    /// Expiry (unix seconds).
    pub exp: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token was sent.
    #[error("a session token is required")]
    Missing,
    /// It has expired.
    #[error("the session token has expired")]
    Expired,
    /// It is for another session.
    #[error("the session token is for another session")]
    WrongSession,
    /// It is malformed or its signature does not verify.
    #[error("invalid session token: {0}")]
    Invalid(String),
}

/// Verifies tokens for one session.
pub struct Verifier {
    key: DecodingKey,
    session: String,
}

impl Verifier {
    /// A verifier with an Ed25519 public key (PEM) for `session`.
    pub fn new(public_key_pem: &[u8], session: &str) -> Result<Self, TokenError> {
        let key = DecodingKey::from_ed_pem(public_key_pem)
            .map_err(|e| TokenError::Invalid(format!("public key: {e}")))?;
        Ok(Self {
            key,
            session: session.to_owned(),
        })
    }

    /// Checks `token`; returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[&self.session]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.key, &validation)
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::InvalidAudience => TokenError::WrongSession,
                    _ => TokenError::Invalid(e.to_string()),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
    use jsonwebtoken::{EncodingKey, Header};

    fn keys() -> (EncodingKey, Vec<u8>) {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let private = signing.to_pkcs8_pem(Default::default()).expect("pkcs8");
        let public = signing
            .verifying_key()
            .to_public_key_pem(Default::default())
            .expect("spki");
        (
            EncodingKey::from_ed_pem(private.as_bytes()).expect("key"),
            public.into_bytes(),
        )
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn sign(key: &EncodingKey, aud: &str, exp: u64) -> String {
        let claims = Claims {
            aud: aud.into(),
            sub: "alice".into(),
            exp,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, key).expect("sign")
    }

    #[test]
    fn accepts_only_unexpired_tokens_for_this_session_signed_by_the_key() {
        let (key, public) = keys();
        let v = Verifier::new(&public, "desk-1").expect("verifier");
        let claims = v.verify(&sign(&key, "desk-1", now() + 60)).expect("valid");
        assert_eq!(claims.sub, "alice");
        assert_eq!(v.verify(""), Err(TokenError::Missing));
        assert_eq!(
            v.verify(&sign(&key, "desk-1", now() - 60)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            v.verify(&sign(&key, "desk-2", now() + 60)),
            Err(TokenError::WrongSession)
        );
        let (other_key, _) = keys();
        assert!(matches!(
            v.verify(&sign(&other_key, "desk-1", now() + 60)),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(v.verify("not.a.jwt"), Err(TokenError::Invalid(_))));
    }
}
