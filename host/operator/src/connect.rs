//! Connect tokens: the one way every client (`vdi connect`, the GraphQL API) gets into a
//! session's streamer.
//!
//! The platform signs short Ed25519 JWTs with a key it keeps; the streamer holds the public
//! key(s). Two keys are valid during a rotation: the current one signs, the previous one still
//! verifies, so tokens minted just before a rotation keep working. This module is pure: keys
//! come in as PEM and times as unix seconds, so minting and checking are unit-tested without a
//! cluster or a clock; only [`ConnectKeys::load_or_create`] and [`ConnectKeys::rotate`] (in
//! `secret`) talk to Kubernetes.

mod publish;
mod secret;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub use publish::{KEYS_CONFIGMAP, KEYS_PEM, KEYS_RESYNC, PublishedKeys, keys_configmap, keys_pem};
pub use secret::{
    CURRENT_KEY, CURRENT_PUBLIC, KEYS_NAMESPACE, KEYS_SECRET, PREVIOUS_KEY, PREVIOUS_PUBLIC,
};

/// How long a token may wait before it is used to connect (seconds).
pub const CONNECT_WINDOW_SECS: u64 = 5 * 60;

/// Why a token could not be minted or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// A key could not be made or read.
    #[error("connect key: {0}")]
    Key(String),
    /// The session has already expired: there is nothing to connect to.
    #[error("the session has expired")]
    SessionExpired,
    /// The token's connect window has passed (or not begun).
    #[error("the connect token has expired")]
    Expired,
    /// The token is for another session.
    #[error("the connect token is for another session")]
    WrongSession,
    /// It is malformed or no known key signed it.
    #[error("invalid connect token: {0}")]
    Invalid(String),
    /// The session has no stream to connect to (yet), e.g. a pool claim without its uid.
    #[error("the session has no stream to connect to: {0}")]
    NoStream(String),
}

/// The session whose streamer serves a session's desktop: the session itself, or the warm
/// pool's session it claimed (`status.servedBy`). Tokens are minted for this one (their `sub`
/// stays the user of the user's session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTarget {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
}

/// Resolves `session` to the session its stream is served under (see [`StreamTarget`]).
pub fn stream_target(session: &vdi_crd::VDISession) -> Result<StreamTarget, ConnectError> {
    let status = session.status.as_ref();
    if let Some(served_by) = status.and_then(|s| s.served_by.as_deref()) {
        let name = vdi_crd::pool::pool_session_name(served_by).ok_or_else(|| {
            ConnectError::NoStream(format!("status.servedBy {served_by:?} is no pool session"))
        })?;
        let uid = status
            .and_then(|s| s.served_by_uid.clone())
            .ok_or_else(|| ConnectError::NoStream("status.servedByUid is missing".into()))?;
        return Ok(StreamTarget {
            namespace: vdi_crd::POOL_NAMESPACE.to_owned(),
            name: name.to_owned(),
            uid,
        });
    }
    let missing = |field: &str| ConnectError::NoStream(format!("the session has no {field}"));
    Ok(StreamTarget {
        namespace: session
            .metadata
            .namespace
            .clone()
            .ok_or_else(|| missing("metadata.namespace"))?,
        name: session
            .metadata
            .name
            .clone()
            .ok_or_else(|| missing("metadata.name"))?,
        uid: session
            .metadata
            .uid
            .clone()
            .ok_or_else(|| missing("metadata.uid"))?,
    })
}

/// The claims a connect token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectClaims {
    /// Audience: the session as `<namespace>/<name>`.
    pub aud: String,
    /// The session's uid, so a token for a deleted and re-created session of the same name
    /// does not open the new one.
    pub sid: String,
    /// The user the desktop is opened for.
    pub sub: String,
    /// Issued at (unix seconds).
    pub iat: u64,
    /// Not before (unix seconds).
    pub nbf: u64,
    /// The end of the connect window (unix seconds).
    pub exp: u64,
    /// When the stream must end: the session's expiry (unix seconds).
    pub stream_exp: u64,
}

/// The audience of a token for the session `namespace/name`.
pub fn audience(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// One Ed25519 key pair, as PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPem {
    /// The private key, PKCS#8 PEM.
    pub private_pem: String,
    /// The public key, SPKI PEM (what the streamer is given).
    pub public_pem: String,
}

impl KeyPem {
    /// A fresh key pair.
    pub fn generate() -> Result<Self, ConnectError> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .map_err(|e| ConnectError::Key(e.to_string()))?;
        Ok(Self {
            private_pem: pair.serialize_pem(),
            public_pem: pair.public_key_pem(),
        })
    }

    fn decoding(&self) -> Result<DecodingKey, ConnectError> {
        DecodingKey::from_ed_pem(self.public_pem.as_bytes())
            .map_err(|e| ConnectError::Key(format!("public key: {e}")))
    }
}

/// The platform's connect keys: the current one signs; the previous one, kept through a
/// rotation, still verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectKeys {
    /// The signing key.
    pub current: KeyPem,
    /// The key before the last rotation, if any.
    pub previous: Option<KeyPem>,
}

impl ConnectKeys {
    /// Keys with one fresh current key.
    pub fn generate() -> Result<Self, ConnectError> {
        Ok(Self {
            current: KeyPem::generate()?,
            previous: None,
        })
    }

    /// The keys after a rotation: a fresh current key, the current one becomes the previous,
    /// and the old previous key is dropped (tokens it signed stop verifying).
    pub fn rotated(&self) -> Result<Self, ConnectError> {
        Ok(Self {
            current: KeyPem::generate()?,
            previous: Some(self.current.clone()),
        })
    }

    /// The public keys a streamer should accept, current first.
    pub fn public_pems(&self) -> Vec<&str> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|k| k.public_pem.as_str())
            .collect()
    }

    /// A token for `user` to connect to the session `namespace/name` (uid `uid`) that
    /// expires at `session_expires_at`; `now` and the expiry are unix seconds. The connect
    /// window is [`CONNECT_WINDOW_SECS`], never past the session's expiry.
    pub fn mint(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        user: &str,
        session_expires_at: u64,
        now: u64,
    ) -> Result<String, ConnectError> {
        if session_expires_at <= now {
            return Err(ConnectError::SessionExpired);
        }
        let claims = ConnectClaims {
            aud: audience(namespace, name),
            sid: uid.to_owned(),
            sub: user.to_owned(),
            iat: now,
            nbf: now,
            exp: (now + CONNECT_WINDOW_SECS).min(session_expires_at),
            stream_exp: session_expires_at,
        };
        let key = EncodingKey::from_ed_pem(self.current.private_pem.as_bytes())
            .map_err(|e| ConnectError::Key(format!("private key: {e}")))?;
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key)
            .map_err(|e| ConnectError::Key(format!("sign: {e}")))
    }

    /// Checks `token` for the session `namespace/name` at `now`, against the current and the
    /// previous key; returns its claims.
    pub fn verify(
        &self,
        token: &str,
        namespace: &str,
        name: &str,
        now: u64,
    ) -> Result<ConnectClaims, ConnectError> {
        let keys = std::iter::once(&self.current).chain(&self.previous);
        let mut last = ConnectError::Invalid("no key".into());
        for key in keys {
            match verify_with(&key.decoding()?, token, &audience(namespace, name), now) {
                Err(ConnectError::Invalid(e)) => last = ConnectError::Invalid(e),
                other => return other,
            }
        }
        Err(last)
    }
}

/// Checks `token` against one public key, the audience `aud` and the time `now`.
pub fn verify_with(
    key: &DecodingKey,
    token: &str,
    aud: &str,
    now: u64,
) -> Result<ConnectClaims, ConnectError> {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[aud]);
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "sub"]);
    // Times are checked below against the caller's `now`, so tests need no clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let claims = jsonwebtoken::decode::<ConnectClaims>(token, key, &validation)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAudience => ConnectError::WrongSession,
            _ => ConnectError::Invalid(e.to_string()),
        })?;
    if now < claims.nbf || now >= claims.exp {
        return Err(ConnectError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;
    const HOUR: u64 = 3600;

    fn mint(keys: &ConnectKeys) -> String {
        keys.mint("team-a", "desk-1", "uid-1", "alice", NOW + HOUR, NOW)
            .expect("mint")
    }

    #[test]
    fn a_session_streams_as_itself_or_as_the_pool_session_it_claimed() {
        let mut s: vdi_crd::VDISession = serde_json::from_value(serde_json::json!({
            "apiVersion": "vdi.dev/v1alpha1", "kind": "VDISession",
            "metadata": {"name": "desk-1", "namespace": "team-a", "uid": "uid-1"},
            "spec": {"user": {"name": "alice"}, "template": "t"},
        }))
        .expect("session");
        let own = stream_target(&s).expect("own");
        assert_eq!(
            (own.namespace.as_str(), own.name.as_str()),
            ("team-a", "desk-1")
        );
        assert_eq!(own.uid, "uid-1");
        let mut status = vdi_crd::VDISessionStatus {
            served_by: Some("vdi-pool/t-pool-x".into()),
            ..Default::default()
        };
        s.status = Some(status.clone());
        assert!(matches!(stream_target(&s), Err(ConnectError::NoStream(_))));
        status.served_by_uid = Some("pool-uid".into());
        s.status = Some(status);
        assert_eq!(
            stream_target(&s).expect("pool"),
            StreamTarget {
                namespace: "vdi-pool".into(),
                name: "t-pool-x".into(),
                uid: "pool-uid".into(),
            }
        );
    }

    #[test]
    fn a_minted_token_verifies_with_its_claims() {
        let keys = ConnectKeys::generate().expect("keys");
        let claims = keys
            .verify(&mint(&keys), "team-a", "desk-1", NOW + 1)
            .expect("valid");
        assert_eq!(
            claims,
            ConnectClaims {
                aud: "team-a/desk-1".into(),
                sid: "uid-1".into(),
                sub: "alice".into(),
                iat: NOW,
                nbf: NOW,
                exp: NOW + CONNECT_WINDOW_SECS,
                stream_exp: NOW + HOUR,
            }
        );
    }

    #[test]
    fn a_token_for_another_session_is_refused() {
        let keys = ConnectKeys::generate().expect("keys");
        let token = mint(&keys);
        assert_eq!(
            keys.verify(&token, "team-a", "desk-2", NOW),
            Err(ConnectError::WrongSession)
        );
        assert_eq!(
            keys.verify(&token, "team-b", "desk-1", NOW),
            Err(ConnectError::WrongSession)
        );
    }

    #[test]
    fn a_token_expires_after_the_connect_window_or_with_the_session() {
        let keys = ConnectKeys::generate().expect("keys");
        assert_eq!(
            keys.verify(&mint(&keys), "team-a", "desk-1", NOW + CONNECT_WINDOW_SECS),
            Err(ConnectError::Expired)
        );
        let short = keys
            .mint("team-a", "desk-1", "uid-1", "alice", NOW + 60, NOW)
            .expect("mint");
        let claims = keys.verify(&short, "team-a", "desk-1", NOW).expect("valid");
        assert_eq!((claims.exp, claims.stream_exp), (NOW + 60, NOW + 60));
        assert_eq!(
            keys.verify(&short, "team-a", "desk-1", NOW + 60),
            Err(ConnectError::Expired)
        );
        assert_eq!(
            keys.mint("team-a", "desk-1", "uid-1", "alice", NOW, NOW),
            Err(ConnectError::SessionExpired)
        );
    }

    #[test]
    fn the_previous_key_verifies_during_rotation_and_a_removed_one_does_not() {
        let first = ConnectKeys::generate().expect("keys");
        let token = mint(&first);
        let second = first.rotated().expect("rotate");
        assert_eq!(second.previous.as_ref(), Some(&first.current));
        assert_eq!(second.public_pems().len(), 2);
        assert!(second.verify(&token, "team-a", "desk-1", NOW).is_ok());
        let third = second.rotated().expect("rotate");
        assert!(matches!(
            third.verify(&token, "team-a", "desk-1", NOW),
            Err(ConnectError::Invalid(_))
        ));
        assert!(matches!(
            third.verify("not.a.jwt", "team-a", "desk-1", NOW),
            Err(ConnectError::Invalid(_))
        ));
    }
}
