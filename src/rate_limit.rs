//! Per-client rate limiting of report requests.
//!
//! A report endpoint is public: one client can post as fast as it likes. With a
//! [`RateLimit`], each client address gets a token bucket; a request that finds it empty is
//! answered `429 Too Many Requests` with `Retry-After`, before its body is read, and is
//! counted as rate-limited. Requests whose client address is unknown are not limited (see
//! [`CspReportLayer::client_ip`](crate::CspReportLayer::client_ip) and
//! [`client_ip::forwarded_for`](crate::client_ip::forwarded_for)).
//!
//! ```
//! use std::time::Duration;
//! use tower_csp_reports::RateLimit;
//!
//! // Bursts of 20, refilled at 20 a minute.
//! let limit = RateLimit::per_client(20, Duration::from_secs(60)).unwrap();
//! assert!(RateLimit::per_client(0, Duration::from_secs(60)).is_err());
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::ConfigError;

/// How many report requests a client may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    burst: u32,
    period: Duration,
    max_clients: usize,
}

impl RateLimit {
    /// At most `requests` in a burst, refilled at `requests` per `period`.
    pub fn per_client(requests: u32, period: Duration) -> Result<Self, ConfigError> {
        if requests == 0 || period.is_zero() {
            return Err(ConfigError::Invalid {
                setting: "rate limit",
                reason: "needs at least one request per non-zero period".to_owned(),
            });
        }
        Ok(Self {
            burst: requests,
            period,
            max_clients: 100_000,
        })
    }

    /// How many clients are tracked at once (default 100,000); past that, idle ones are
    /// forgotten first, so memory stays bounded under a spread-out flood.
    #[must_use]
    pub fn max_clients(mut self, clients: usize) -> Self {
        self.max_clients = clients.max(1);
        self
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of a [`RateLimit`].
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn per_second(&self) -> f64 {
        f64::from(self.limit.burst) / self.limit.period.as_secs_f64()
    }

    /// Takes a token for `ip`, or says how long until one is there.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(ip, Instant::now())
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.limit.burst);
        let rate = self.per_second();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= self.limit.max_clients && !buckets.contains_key(&ip) {
            // Forget the clients whose buckets have refilled: they owe nothing.
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
            if buckets.len() >= self.limit.max_clients {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_empties_and_refills() {
        let limiter = RateLimiter::new(RateLimit::per_client(3, Duration::from_secs(3)).unwrap());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(a, t0).is_ok());
        }
        let wait = limiter.check_at(a, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            limiter.check_at(b, t0).is_ok(),
            "clients have their own buckets"
        );
        assert!(
            limiter.check_at(a, t0 + Duration::from_secs(1)).is_ok(),
            "one token back per second"
        );
        assert!(limiter.check_at(a, t0 + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = RateLimiter::new(
            RateLimit::per_client(1, Duration::from_secs(60))
                .unwrap()
                .max_clients(100),
        );
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let _ = limiter.check_at(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(limiter.buckets.lock().unwrap().len() <= 100);
    }
}
