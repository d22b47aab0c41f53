//! TURN credentials in the REST style coturn accepts with `use-auth-secret`: the user name is
//! `<expiry unix time>:<user>`, the password base64(HMAC-SHA1(secret, user name)).

use base64::Engine as _;
use hmac::{Hmac, Mac};

/// Credentials for one viewer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TurnCredentials {
    /// `<expiry>:<user>`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub credential: String,
}

/// How long TURN credentials handed out `now` may live: `ttl` seconds, but never past the end of
/// the stream (`stream_exp`, unix seconds), and at least one second.
pub fn ttl(ttl: u64, now: u64, stream_exp: Option<u64>) -> u64 {
    stream_exp
        .map_or(ttl, |end| ttl.min(end.saturating_sub(now)))
        .max(1)
}

/// Credentials for `user` valid until `now + ttl` (unix seconds).
pub fn credentials(secret: &str, user: &str, now: u64, ttl: u64) -> TurnCredentials {
    let username = format!("{}:{user}", now + ttl);
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    TurnCredentials {
        username,
        credential,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_outlive_the_stream() {
        assert_eq!(ttl(3600, 1000, None), 3600);
        assert_eq!(ttl(3600, 1000, Some(1600)), 600, "the stream ends first");
        assert_eq!(
            ttl(60, 1000, Some(5000)),
            60,
            "the configured lifetime ends first"
        );
        assert_eq!(
            ttl(3600, 1000, Some(900)),
            1,
            "past the end: the shortest lifetime"
        );
    }

    #[test]
    fn matches_the_rest_api_scheme() {
        // Computed independently: printf '1700003600:alice' | openssl dgst -sha1 -hmac secret -binary | base64
        let c = credentials("secret", "alice", 1_700_000_000, 3600);
        assert_eq!(c.username, "1700003600:alice");
        assert_eq!(c.credential, "LLPLO4qjdVL2qZhwr3eImhn7J20=");
    }
}
