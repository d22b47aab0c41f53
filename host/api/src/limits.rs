//! The per-user mutation rate limit: a token bucket per user, pure over the time it is given.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Users tracked before idle full buckets are forgotten.
const MAX_TRACKED: usize = 10_000;

/// One user's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets per user: `burst` tokens, refilled at `per_minute` a minute.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter allowing `burst` mutations at once and `per_minute` sustained.
    pub fn new(burst: u32, per_minute: u32) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `user` at `now`; `Err(wait)` when there is none yet.
    pub fn check(&self, user: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(user) {
            let (burst, rate) = (self.burst, self.per_second);
            buckets.retain(|_, b| refill(b, now, rate, burst).tokens < burst);
        }
        let bucket = buckets.entry(user.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        *bucket = refill(bucket, now, self.per_second, self.burst);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        if self.per_second <= 0.0 {
            return Err(Duration::from_secs(60));
        }
        Err(Duration::from_secs_f64(
            (1.0 - bucket.tokens) / self.per_second,
        ))
    }
}

fn refill(b: &Bucket, now: Instant, per_second: f64, burst: f64) -> Bucket {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    Bucket {
        tokens: (b.tokens + elapsed * per_second).min(burst),
        at: now.max(b.at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_until_refilled() {
        let limiter = RateLimiter::new(2, 60);
        let t0 = Instant::now();
        assert!(limiter.check("alice", t0).is_ok());
        assert!(limiter.check("alice", t0).is_ok());
        let wait = limiter.check("alice", t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        // Another user has a bucket of their own.
        assert!(limiter.check("bob", t0).is_ok());
        // One token a second comes back.
        assert!(limiter.check("alice", t0 + Duration::from_secs(1)).is_ok());
        assert!(limiter.check("alice", t0 + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn the_bucket_never_holds_more_than_the_burst() {
        let limiter = RateLimiter::new(1, 60);
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(3600);
        assert!(limiter.check("alice", later).is_ok());
        assert!(limiter.check("alice", later).is_err());
    }

    #[test]
    fn no_refill_waits_a_minute() {
        let limiter = RateLimiter::new(1, 0);
        let t0 = Instant::now();
        assert!(limiter.check("alice", t0).is_ok());
        assert_eq!(
            limiter.check("alice", t0 + Duration::from_secs(600)),
            Err(Duration::from_secs(60))
        );
    }
}
