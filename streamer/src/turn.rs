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
    fn matches_the_rest_api_scheme() {
        // Computed independently: printf '1700003600:alice' | openssl dgst -sha1 -hmac secret -binary | base64
        let c = credentials("secret", "alice", 1_700_000_000, 3600);
        assert_eq!(c.username, "1700003600:alice");
        assert_eq!(c.credential, "LLPLO4qjdVL2qZhwr3eImhn7J20=");
    }
}
