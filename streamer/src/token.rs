//! Session tokens: Ed25519-signed JWTs whose audience is this session (`<namespace>/<name>`, as
//! the platform's connect tokens carry it), naming the user, with an expiry to connect by and,
//! optionally, `stream_exp`: when the stream must end (the session's expiry). Checked before any
//! offer is made. During a key rotation the platform signs with a new key while tokens of the
//! previous one are still out, so the public key file may hold several keys; any of them verifies.
//! A verifier made from the key file re-reads it when it changes (see [`crate::keyfile`]), so a
//! rotation reaches a running streamer; with the session's uid set, the token's `sid` must match.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::keyfile::{KeyFile, Poll};

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
    /// Its `sid` is not this session's uid (or it has none): minted for another session of the
    /// same name.
    #[error("the connect token is for another session")]
    OtherSessionUid,
    /// It is malformed or its signature does not verify.
    #[error("invalid session token: {0}")]
    Invalid(String),
}

/// Verifies tokens for one session.
pub struct Verifier {
    keys: RwLock<Arc<Vec<DecodingKey>>>,
    file: Option<Mutex<KeyFile>>,
    session: String,
    session_uid: Option<String>,
}

const PEM_BEGIN: &str = "-----BEGIN ";

/// The Ed25519 public keys in `pem` (one PEM block or several concatenated).
fn parse_keys(pem: &[u8]) -> Result<Vec<DecodingKey>, TokenError> {
    let text = std::str::from_utf8(pem)
        .map_err(|_| TokenError::Invalid("public key: not PEM text".into()))?;
    let starts: Vec<usize> = text.match_indices(PEM_BEGIN).map(|(i, _)| i).collect();
    let keys = starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = starts.get(n + 1).copied().unwrap_or(text.len());
            let block = text.get(start..end).unwrap_or_default();
            DecodingKey::from_ed_pem(block.as_bytes())
                .map_err(|e| TokenError::Invalid(format!("public key {}: {e}", n + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(TokenError::Invalid("public key: no PEM block".into()));
    }
    Ok(keys)
}

/// What [`Verifier::refresh`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// No key file, or it was checked less than a second ago.
    NotDue,
    /// The file has not changed.
    Unchanged,
    /// The file changed and its keys replace the old ones.
    Reloaded,
    /// The file cannot be read or holds no valid key: the last good keys stay. `logged` is true
    /// the first time (one warning per failure, not one per viewer).
    KeptLastGood {
        /// Whether this call logged the failure.
        logged: bool,
        /// Why the file was not used.
        reason: String,
    },
}

impl Verifier {
    /// A verifier with the Ed25519 public key(s) in `public_key_pem` (one PEM block or several
    /// concatenated) for the audience `session` (see [`audience`]).
    pub fn new(public_key_pem: &[u8], session: &str) -> Result<Self, TokenError> {
        Ok(Self {
            keys: RwLock::new(Arc::new(parse_keys(public_key_pem)?)),
            file: None,
            session: session.to_owned(),
            session_uid: None,
        })
    }

    /// A verifier with the keys in the file at `path`, re-read when the file changes (at most
    /// once a second, when a token is verified): the file must be readable and valid now.
    pub fn from_file(path: &Path, session: &str) -> Result<Self, TokenError> {
        let (file, pem) = KeyFile::open(path)
            .map_err(|e| TokenError::Invalid(format!("public key file: {e}")))?;
        let mut verifier = Self::new(&pem, session)?;
        verifier.file = Some(Mutex::new(file));
        Ok(verifier)
    }

    /// Requires tokens to carry `uid` as their `sid` (`None`: any or none).
    #[must_use]
    pub fn with_session_uid(mut self, uid: Option<String>) -> Self {
        self.session_uid = uid;
        self
    }

    /// Re-reads the key file if it is due (a second since the last look) and it changed;
    /// `now` is the present moment (a parameter so tests need not wait).
    pub fn refresh(&self, now: Instant) -> Refresh {
        let Some(file) = &self.file else {
            return Refresh::NotDue;
        };
        let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
        let failed = match file.poll(now) {
            Poll::NotDue => return Refresh::NotDue,
            Poll::Unchanged => return Refresh::Unchanged,
            Poll::Changed(pem) => match parse_keys(&pem) {
                Ok(keys) => {
                    *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
                    file.recovered();
                    tracing::info!(path = %file.path().display(), "token public keys reloaded");
                    return Refresh::Reloaded;
                }
                Err(e) => e.to_string(),
            },
            Poll::Unreadable(e) => e,
        };
        let logged = file.failed();
        if logged {
            tracing::warn!(path = %file.path().display(), error = %failed, "token public key file unusable; keeping the last good keys");
        }
        Refresh::KeptLastGood {
            logged,
            reason: failed,
        }
    }

    /// Checks `token`; returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        self.refresh(Instant::now());
        let keys = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[&self.session]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        validation.leeway = 0;
        let mut refused = TokenError::Invalid("no key".into());
        for key in keys.iter() {
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
                Ok(claims)
                    if self
                        .session_uid
                        .as_ref()
                        .is_some_and(|uid| claims.sid.as_ref() != Some(uid)) =>
                {
                    return Err(TokenError::OtherSessionUid);
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

    #[test]
    fn with_the_session_uid_set_the_sid_must_match() {
        let (key, public) = keys();
        let v = Verifier::new(&public, "team-a/desk-1")
            .expect("verifier")
            .with_session_uid(Some("uid-2".into()));
        let with_sid = |sid: Option<&str>| Claims {
            aud: "team-a/desk-1".into(),
            sub: "alice".into(),
            exp: now() + 300,
            sid: sid.map(Into::into),
            stream_exp: None,
        };
        assert!(
            v.verify(&sign_claims(&key, &with_sid(Some("uid-2"))))
                .is_ok()
        );
        let refused = v.verify(&sign_claims(&key, &with_sid(Some("uid-1"))));
        assert_eq!(refused, Err(TokenError::OtherSessionUid));
        assert_eq!(
            refused.map_err(|e| e.to_string()),
            Err("the connect token is for another session".to_owned())
        );
        assert_eq!(
            v.verify(&sign_claims(&key, &with_sid(None))),
            Err(TokenError::OtherSessionUid)
        );
        // Without a uid configured, any sid passes (local development).
        let open = Verifier::new(&public, "team-a/desk-1").expect("verifier");
        assert!(
            open.verify(&sign_claims(&key, &with_sid(Some("uid-1"))))
                .is_ok()
        );
    }

    #[test]
    fn a_rotated_key_file_is_picked_up_and_a_broken_one_keeps_the_last_keys() {
        let (old, old_public) = keys();
        let (new, new_public) = keys();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.pem");
        std::fs::write(&path, &old_public).expect("write");
        let v = Verifier::from_file(&path, "desk-1").expect("verifier");
        let start = Instant::now();
        assert!(v.verify(&sign(&old, "desk-1", now() + 60)).is_ok());
        assert!(v.verify(&sign(&new, "desk-1", now() + 60)).is_err());
        // The rotation: the platform writes the new key first and keeps the old one.
        std::fs::write(
            &path,
            [new_public.as_slice(), old_public.as_slice()].concat(),
        )
        .expect("write");
        let step = crate::keyfile::RECHECK_INTERVAL * 2;
        assert_eq!(v.refresh(start + step), Refresh::Reloaded);
        assert!(v.verify(&sign(&new, "desk-1", now() + 60)).is_ok());
        assert!(v.verify(&sign(&old, "desk-1", now() + 60)).is_ok());
        assert_eq!(v.refresh(start + step * 2), Refresh::Unchanged);
        // Unreadable, then garbage: the last good keys stay, and the failure is logged once.
        std::fs::remove_file(&path).expect("remove");
        assert!(matches!(
            v.refresh(start + step * 3),
            Refresh::KeptLastGood { logged: true, .. }
        ));
        std::fs::write(&path, "not a key").expect("write");
        assert!(matches!(
            v.refresh(start + step * 4),
            Refresh::KeptLastGood { logged: false, .. }
        ));
        assert!(v.verify(&sign(&new, "desk-1", now() + 60)).is_ok());
        // The old key retired: its tokens no longer verify.
        std::fs::write(&path, &new_public).expect("write");
        assert_eq!(v.refresh(start + step * 5), Refresh::Reloaded);
        assert!(v.verify(&sign(&old, "desk-1", now() + 60)).is_err());
        assert!(v.verify(&sign(&new, "desk-1", now() + 60)).is_ok());
        assert!(Verifier::from_file(&dir.path().join("absent.pem"), "desk-1").is_err());
    }
}
