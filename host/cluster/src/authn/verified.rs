//! Tokens whose signature was verified recently, as kube-apiserver caches token authentication
//! (`--authentication-token-cache-ttl`-like, 10 s): verifying an ES256 signature costs far more
//! than serving a small request, and a controller sends the same token thousands of times.
//!
//! Only the signature check is skipped. Expiry, audiences and the objects a token is bound to
//! (its service account, pod or secret) are checked on every request, so a deleted account's
//! token is refused at once. Entries are keyed by the token's SHA-256 (the cache keeps no
//! token) and hold the verified claims.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::jwt::Claims;

/// How long a verified signature is trusted without verifying again.
pub(crate) const TTL: Duration = Duration::from_secs(10);
/// Most tokens remembered; when full, expired entries go, then everything.
const CAPACITY: usize = 4096;

/// The cache.
#[derive(Default)]
pub(crate) struct VerifiedTokens(Mutex<HashMap<[u8; 32], (Claims, Instant)>>);

impl VerifiedTokens {
    /// The claims of `token`: remembered if its signature was verified less than [`TTL`] ago,
    /// else from `verify` (remembered when it succeeds).
    pub(crate) fn claims<E>(
        &self,
        token: &str,
        now: Instant,
        verify: impl FnOnce() -> Result<Claims, E>,
    ) -> Result<Claims, E> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        {
            let map = self.map();
            if let Some((claims, at)) = map.get(&key)
                && now.saturating_duration_since(*at) < TTL
            {
                return Ok(claims.clone());
            }
        }
        let claims = verify()?;
        let mut map = self.map();
        if map.len() >= CAPACITY {
            map.retain(|_, (_, at)| now.saturating_duration_since(*at) < TTL);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (claims.clone(), now));
        Ok(claims)
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Claims, Instant)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(sub: &str) -> Claims {
        let mut c = Claims::new();
        c.insert("sub".into(), json!(sub));
        c
    }

    #[test]
    fn a_signature_is_verified_once_per_ttl_and_failures_are_not_remembered() {
        let cache = VerifiedTokens::default();
        let t0 = Instant::now();
        let calls = std::cell::Cell::new(0);
        let verify = |ok: bool| {
            calls.set(calls.get() + 1);
            if ok {
                Ok(claims("a"))
            } else {
                Err("bad signature")
            }
        };
        assert_eq!(cache.claims("tok", t0, || verify(true)), Ok(claims("a")));
        assert_eq!(
            cache.claims("tok", t0 + Duration::from_secs(9), || verify(true)),
            Ok(claims("a"))
        );
        assert_eq!(
            calls.get(),
            1,
            "the second request reuses the verified claims"
        );
        cache
            .claims("tok", t0 + TTL, || verify(true))
            .expect("verified again");
        assert_eq!(
            calls.get(),
            2,
            "after the TTL the signature is checked again"
        );
        assert_eq!(
            cache.claims("forged", t0, || verify(false)),
            Err("bad signature")
        );
        assert_eq!(
            cache.claims("forged", t0, || verify(false)),
            Err("bad signature")
        );
        assert_eq!(calls.get(), 4, "a failure is never remembered");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = VerifiedTokens::default();
        let t0 = Instant::now();
        for i in 0..CAPACITY + 10 {
            let _ = cache.claims::<()>(&format!("t{i}"), t0, || Ok(claims("x")));
        }
        assert!(cache.map().len() <= CAPACITY);
    }
}
