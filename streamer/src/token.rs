//! Session tokens: Ed25519-signed JWTs whose audience is this session (`<namespace>/<name>`, as
//! the platform's connect tokens carry it), naming the user, with an expiry to connect by and,
//! optionally, `stream_exp`: when the stream must end (the session's expiry). Checked before any
//! offer is made. During a key rotation the platform signs with a new key while tokens of the
//! previous one are still out, so the public key file may hold several keys; any of them verifies.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// The claims a session token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Audience: the session's name.
    pub aud: String,
    /// The user.
    pub sub: String,
    /// The end of the window to connect in (unix seconds).
    pub exp: u64,
    /// The session's uid, when the platform minted the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the stream must end (unix seconds): the session's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_exp: Option<u64>,
}

/// The audience tokens for the session `name` in `namespace` carry; a streamer run without a
/// namespace (local development, the bench) expects the bare name.
pub fn audience(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}/{name}")
    }
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
    keys: Vec<DecodingKey>,
    session: String,
}

const PEM_BEGIN: &str = "-----BEGIN ";

impl Verifier {
    /// A verifier with the Ed25519 public key(s) in `public_key_pem` (one PEM block or several
    /// concatenated) for the audience `session` (see [`audience`]).
    pub fn new(public_key_pem: &[u8], session: &str) -> Result<Self, TokenError> {
        let text = std::str::from_utf8(public_key_pem)
            .map_err(|_| TokenError::Invalid("public key: not PEM text".into()))?;
        let starts: Vec<usize> = text.match_indices(PEM_BEGIN).map(|(i, _)| i).collect();
        let keys = starts
            .iter()
            .enumerate()
            .map(|(n, &start)| {
                let end = starts.get(n + 1).copied().unwrap_or(text.len());
                DecodingKey::from_ed_pem(&text.as_bytes()[start..end])
                    .map_err(|e| TokenError::Invalid(format!("public key {}: {e}", n + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(TokenError::Invalid("public key: no PEM block".into()));
        }
        Ok(Self {
            keys,
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
        let mut refused = TokenError::Invalid("no key".into());
        for key in &self.keys {
            let verdict = jsonwebtoken::decode::<Claims>(token, key, &validation)
                .map(|d| d.claims)
                .map_err(|e| {
                    use jsonwebtoken::errors::ErrorKind;
                    match e.kind() {
                        ErrorKind::ExpiredSignature => TokenError::Expired,
                        ErrorKind::InvalidAudience => TokenError::WrongSession,
                        _ => TokenError::Invalid(e.to_string()),
                    }
                });
            match verdict {
                // Another key may have signed it.
                Err(TokenError::Invalid(e)) => refused = TokenError::Invalid(e),
                Ok(claims) if claims.stream_exp.is_some_and(|t| t <= now()) => {
                    return Err(TokenError::Expired);
                }
                other => return other,
            }
        }
        Err(refused)
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How long until `stream_exp` (unix seconds) passes, from `now`; `None` when the token sets no
/// end to the stream.
pub fn stream_remaining(stream_exp: Option<u64>, now: u64) -> Option<std::time::Duration> {
    stream_exp.map(|t| std::time::Duration::from_secs(t.saturating_sub(now)))
}

/// How long the stream of `claims` may still run, from the present moment.
pub fn stream_time_left(claims: &Claims) -> Option<std::time::Duration> {
    stream_remaining(claims.stream_exp, now())
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

    fn sign(key: &EncodingKey, aud: &str, exp: u64) -> String {
        sign_claims(
            key,
            &Claims {
                aud: aud.into(),
                sub: "alice".into(),
                exp,
                sid: None,
                stream_exp: None,
            },
        )
    }

    fn sign_claims(key: &EncodingKey, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, key).expect("sign")
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

    #[test]
    fn connect_tokens_name_the_namespace_and_end_the_stream_with_the_session() {
        let (key, public) = keys();
        assert_eq!(audience("team-a", "desk-1"), "team-a/desk-1");
        assert_eq!(audience("", "desk-1"), "desk-1");
        let v = Verifier::new(&public, &audience("team-a", "desk-1")).expect("verifier");
        let connect = |stream_exp| Claims {
            aud: "team-a/desk-1".into(),
            sub: "alice".into(),
            exp: now() + 300,
            sid: Some("uid-1".into()),
            stream_exp: Some(stream_exp),
        };
        let claims = v
            .verify(&sign_claims(&key, &connect(now() + 3600)))
            .expect("valid");
        assert_eq!(claims.sid.as_deref(), Some("uid-1"));
        let left = stream_time_left(&claims).expect("bounded");
        assert!(left > std::time::Duration::from_secs(3500), "{left:?}");
        assert_eq!(
            v.verify(&sign_claims(&key, &connect(now() - 1))),
            Err(TokenError::Expired)
        );
        assert_eq!(
            v.verify(&sign(&key, "desk-1", now() + 60)),
            Err(TokenError::WrongSession)
        );
        assert_eq!(stream_remaining(None, 10), None);
        assert_eq!(
            stream_remaining(Some(5), 10),
            Some(std::time::Duration::ZERO)
        );
    }

    #[test]
    fn any_key_in_the_file_verifies_during_a_rotation() {
        let (old, old_public) = keys();
        let (new, new_public) = keys();
        let both = [new_public.as_slice(), old_public.as_slice()].concat();
        let v = Verifier::new(&both, "desk-1").expect("verifier");
        assert!(v.verify(&sign(&new, "desk-1", now() + 60)).is_ok());
        assert!(v.verify(&sign(&old, "desk-1", now() + 60)).is_ok());
        assert_eq!(
            v.verify(&sign(&old, "desk-2", now() + 60)),
            Err(TokenError::WrongSession)
        );
        let (gone, _) = keys();
        assert!(matches!(
            v.verify(&sign(&gone, "desk-1", now() + 60)),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            Verifier::new(b"no pem here", "desk-1"),
            Err(TokenError::Invalid(_))
        ));
    }
}
