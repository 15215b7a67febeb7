//! Per-client rate limiting of report requests.
//!
//! A report endpoint is public: one client can post as fast as it likes. With a
//! [`RateLimit`], each client gets a token bucket; a request that finds it empty is
//! answered `429 Too Many Requests` with `Retry-After`, before its body is read, and is
//! counted as rate-limited. Requests whose client address is unknown are not limited (see
//! [`CspReportLayerBuilder::client_ip`](crate::CspReportLayerBuilder::client_ip) and
//! [`client_ip::forwarded_for`](crate::client_ip::forwarded_for)).
//!
//! ```
//! use std::time::Duration;
//! use tower_csp_reports::RateLimit;
//!
//! // Bursts of 20, refilled at 20 a minute; IPv6 clients keyed by /56 rather than /64.
//! let limit = RateLimit::per_client(20, Duration::from_secs(60))
//!     .unwrap()
//!     .ipv6_prefix(56)
//!     .unwrap();
//! assert!(RateLimit::per_client(0, Duration::from_secs(60)).is_err());
//! assert!(limit.ipv6_prefix(129).is_err());
//! ```
//!
//! # Who is a client
//!
//! An IPv4 address, or an IPv6 network of [`ipv6_prefix`](RateLimit::ipv6_prefix) bits
//! (default 64: what one customer is usually given, and can spread over freely). An
//! IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as a dual-stack socket reports IPv4 peers)
//! is its IPv4 address.
//!
//! # Memory
//!
//! At most [`max_clients`](RateLimit::max_clients) buckets are kept (default 100,000, about
//! 6 MB), in shards of their own lock. When full, the buckets that have refilled go first
//! (forgetting them changes nothing), then the fullest: a client spraying requests from many
//! addresses leaves one request's worth in each, so it evicts its own buckets before the one
//! of a client that has used its burst. No bucket is ever reset by another client's traffic
//! while fuller ones are left to evict.
//!
//! # Connections are your server's
//!
//! The layer sees requests, not connections. A client that opens connections and never
//! finishes a request's headers never reaches it: only the server can close such
//! connections, and a server that does not will run out of file descriptors. `csp-reports
//! serve` does all of the below (`--header-read-timeout`, `--idle-timeout`,
//! `--max-connections`, `--http2-*`); in your own server:
//!
//! - give hyper a timer, without which its header-read timeout never fires, and set that
//!   timeout (hyper-util's `auto::Builder`: `http1().timer(TokioTimer::new())
//!   .header_read_timeout(..)`); `axum::serve` sets neither, so serve the router with
//!   hyper-util's builder, as below, or behind a proxy that has these limits;
//! - close connections that send nothing at all, or sit idle: hyper's HTTP/1 timer starts
//!   only once it has seen HTTP/1 bytes, and HTTP/2 has none (race the connection against a
//!   deadline and call `graceful_shutdown`);
//! - limit HTTP/2: `http2().max_concurrent_streams(..)`, `.max_header_list_size(..)`,
//!   `.keep_alive_interval(..)` and `.keep_alive_timeout(..)`;
//! - cap open connections below the open-file limit (`RLIMIT_NOFILE`), e.g. take a
//!   `tokio::sync::Semaphore` permit before each `accept`, so that the rest wait in the
//!   listen backlog;
//! - pause after a failed `accept` (`EMFILE`, `ENFILE`, `ENOBUFS`) instead of retrying at
//!   once, which spins a core.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::convert::Infallible;
//! use std::time::Duration;
//!
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
//! use hyper_util::server::conn::auto::Builder;
//! use hyper_util::service::TowerToHyperService;
//! use tokio::io::AsyncWriteExt;
//! use tower::ServiceBuilder;
//! use tower_csp_reports::CspReportLayer;
//!
//! let mut builder = Builder::new(TokioExecutor::new());
//! builder
//!     .http1()
//!     .timer(TokioTimer::new())
//!     .header_read_timeout(Duration::from_millis(200));
//! builder
//!     .http2()
//!     .timer(TokioTimer::new())
//!     .max_concurrent_streams(100)
//!     .max_header_list_size(16 * 1024)
//!     .keep_alive_interval(Duration::from_secs(20))
//!     .keep_alive_timeout(Duration::from_secs(10));
//! let app = ServiceBuilder::new()
//!     .layer(CspReportLayer::builder().build().expect("the defaults are valid"))
//!     .service_fn(|_| async { Ok::<_, Infallible>(http::Response::new(Empty::<Bytes>::new())) });
//!
//! // A client that never finishes its headers (an in-memory pipe stands for the socket).
//! let (mut client, socket) = tokio::io::duplex(4096);
//! let connection = builder.serve_connection(TokioIo::new(socket), TowerToHyperService::new(app));
//! client.write_all(b"POST /csp-report HTTP/1.1\r\nHost: x\r\n").await.unwrap();
//! let ended = tokio::time::timeout(Duration::from_secs(10), connection).await;
//! assert!(ended.expect("the server closed the connection").is_err(), "a header-read timeout");
//! # }
//! ```

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::error::ConfigError;
use crate::table::{Clock, Table, Worth, nanos};

/// How many report requests a client may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    burst: u32,
    period: Duration,
    max_clients: usize,
    ipv6_prefix: u8,
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
            ipv6_prefix: 64,
        })
    }

    /// How many clients are tracked at once (default 100,000); past that, the buckets that
    /// have refilled are forgotten first, then the fullest, so memory stays bounded under a
    /// spread-out flood.
    #[must_use]
    pub fn max_clients(mut self, clients: usize) -> Self {
        self.max_clients = clients.max(1);
        self
    }

    /// How many leading bits of an IPv6 address name one client (default 64; 128 keys
    /// each address alone). More than 128 is an error.
    pub fn ipv6_prefix(mut self, bits: u8) -> Result<Self, ConfigError> {
        if bits > 128 {
            return Err(ConfigError::Invalid {
                setting: "rate limit IPv6 prefix",
                reason: format!("{bits} bits: an IPv6 address has 128"),
            });
        }
        self.ipv6_prefix = bits;
        Ok(self)
    }
}

/// Whose bucket a request takes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(u32),
    /// The address with all but the prefix bits cleared.
    V6(u128),
}

impl ClientKey {
    fn of(ip: IpAddr, ipv6_prefix: u8) -> Self {
        match ip {
            IpAddr::V4(ip) => Self::V4(ip.into()),
            IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                Some(ip) => Self::V4(ip.into()),
                None => {
                    let mask = u128::MAX
                        .checked_shl(128 - u32::from(ipv6_prefix))
                        .unwrap_or(0);
                    Self::V6(u128::from(ip) & mask)
                }
            },
        }
    }
}

/// A token bucket kept as one instant (the generic cell rate algorithm): when it will be
/// full again. A request takes one interval's worth, and is refused when that would put the
/// instant more than a burst ahead of now.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    full_at: u64,
}

impl Worth for Bucket {
    /// What the client owes: the fuller the bucket, the less is lost by forgetting it.
    fn worth(&self, now: u64) -> Option<u64> {
        (self.full_at > now).then(|| self.full_at - now)
    }
}

/// The buckets of a [`RateLimit`].
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    clock: Clock,
    /// How long one request's token takes to come back, in nanoseconds.
    interval: u64,
    /// How far ahead of now a bucket may be full again: all of the burst but one request.
    tolerance: u64,
    buckets: Table<ClientKey, Bucket>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let interval = nanos(limit.period / limit.burst);
        Self {
            limit,
            clock: Clock::new(),
            interval,
            tolerance: interval.saturating_mul(u64::from(limit.burst - 1)),
            buckets: Table::new(limit.max_clients),
        }
    }

    /// Takes a token for `ip`, or says how long until one is there.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(ip, Instant::now())
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = ClientKey::of(ip, self.limit.ipv6_prefix);
        let now = self.clock.at(now);
        self.buckets.with(
            key,
            now,
            || Bucket { full_at: now },
            |bucket| {
                let from = bucket.full_at.max(now);
                let ahead = from - now;
                if ahead > self.tolerance {
                    return Err(Duration::from_nanos(ahead - self.tolerance));
                }
                bucket.full_at = from.saturating_add(self.interval);
                Ok(())
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn limiter(requests: u32, seconds: u64) -> RateLimiter {
        RateLimiter::new(RateLimit::per_client(requests, Duration::from_secs(seconds)).unwrap())
    }

    #[test]
    fn bucket_empties_and_refills() {
        let limiter = limiter(3, 3);
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(a, t0).is_ok());
        }
        let wait = limiter.check_at(a, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        assert!(
            limiter.check_at(b, t0).is_ok(),
            "clients have their own buckets"
        );
        assert!(
            limiter.check_at(a, t0 + Duration::from_secs(1)).is_ok(),
            "one token back per second"
        );
        assert!(limiter.check_at(a, t0 + Duration::from_secs(1)).is_err());
        assert!(
            limiter.check_at(a, t0 + Duration::from_secs(100)).is_ok(),
            "refilled"
        );
    }

    #[test]
    fn who_shares_a_bucket() {
        // (first address, second address, IPv6 prefix, one bucket)
        let cases: &[(&str, &str, u8, bool)] = &[
            ("192.0.2.1", "192.0.2.1", 64, true),
            ("192.0.2.1", "192.0.2.2", 64, false),
            ("192.0.2.1", "::ffff:192.0.2.1", 64, true),
            ("192.0.2.1", "::ffff:192.0.2.1", 128, true),
            ("192.0.2.1", "::ffff:192.0.2.2", 64, false),
            (
                "2001:db8:1:2::1",
                "2001:db8:1:2:ffff:ffff:ffff:ffff",
                64,
                true,
            ),
            ("2001:db8:1:2::1", "2001:db8:1:3::1", 64, false),
            ("2001:db8:1:2::1", "2001:db8:1:3::1", 56, true),
            ("2001:db8:1:2::1", "2001:db8:1:100::1", 56, false),
            ("2001:db8:1:2::1", "2001:db8:1:2::2", 128, false),
            ("2001:db8::1", "2001:db9::1", 0, true),
            // A /64 of zeros is not the IPv4 address 0.0.0.0.
            ("::1", "0.0.0.0", 64, false),
            ("::", "0.0.0.0", 64, false),
        ];
        for &(a, b, prefix, shared) in cases {
            let limit = RateLimit::per_client(1, Duration::from_secs(60))
                .unwrap()
                .ipv6_prefix(prefix)
                .unwrap();
            let limiter = RateLimiter::new(limit);
            let now = Instant::now();
            assert!(limiter.check_at(ip(a), now).is_ok());
            assert_eq!(
                limiter.check_at(ip(b), now).is_err(),
                shared,
                "{a} and {b} at /{prefix}"
            );
        }
    }

    #[test]
    fn the_prefix_is_checked() {
        let limit = RateLimit::per_client(1, Duration::from_secs(1)).unwrap();
        for (bits, ok) in [(0, true), (48, true), (64, true), (128, true), (129, false)] {
            assert_eq!(limit.ipv6_prefix(bits).is_ok(), ok, "/{bits}");
        }
    }

    /// Addresses no one else uses: 10.0.0.0/8 and beyond, one per `i`.
    fn sprayed(i: u32) -> IpAddr {
        IpAddr::from((0x0a00_0000 + i).to_be_bytes())
    }

    #[test]
    fn a_spray_does_not_reset_a_steady_client() {
        let limiter = limiter(10, 10);
        let steady = ip("192.0.2.7");
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(limiter.check_at(steady, t0).is_ok());
        }
        assert!(limiter.check_at(steady, t0).is_err());
        for i in 0..200_000 {
            let _ = limiter.check_at(sprayed(i), t0);
        }
        assert!(
            limiter.check_at(steady, t0).is_err(),
            "the spray gave the emptied bucket its burst back"
        );
        assert!(limiter.buckets.len() <= 100_000);
    }

    #[test]
    fn a_spray_changes_nothing_for_a_client_at_its_limit() {
        // A client trying every 10 ms, let through at one request a second after a burst of
        // 10, while 200,000 addresses make one request each over the same 100 s: it is let
        // through exactly as often as with no spray at all.
        let steady = ip("2001:db8:7::1");
        let run = |spray: bool| {
            // A table smaller than the sprayed buckets still refilling (2,000 at a time):
            // live buckets have to be evicted.
            let limiter = RateLimiter::new(
                RateLimit::per_client(10, Duration::from_secs(10))
                    .unwrap()
                    .max_clients(1_000),
            );
            let t0 = Instant::now();
            let mut allowed = 0;
            for step in 0..10_000u32 {
                let now = t0 + Duration::from_millis(10) * step;
                if spray {
                    for i in 0..20 {
                        let _ = limiter.check_at(sprayed(step * 20 + i), now);
                    }
                }
                allowed += usize::from(limiter.check_at(steady, now).is_ok());
            }
            assert!(limiter.buckets.len() <= 1_000);
            allowed
        };
        let alone = run(false);
        assert_eq!(alone, 10 + 99, "a burst, then one a second");
        assert_eq!(run(true), alone);
    }

    #[test]
    fn addresses_of_one_network_share_a_bucket() {
        let limiter = limiter(5, 60);
        let now = Instant::now();
        let mut allowed = 0;
        for host in 1..=100u16 {
            let address = IpAddr::from([0x2001, 0xdb8, 0, 0x42, 0, 0, 0, host]);
            allowed += usize::from(limiter.check_at(address, now).is_ok());
        }
        assert_eq!(allowed, 5, "100 addresses of one /64: one burst");
        assert!(limiter.check_at(ip("2001:db8:0:43::1"), now).is_ok());
    }

    #[test]
    fn memory_stays_bounded() {
        for max in [1, 100, 1_000, 20_000] {
            let limiter = RateLimiter::new(
                RateLimit::per_client(1, Duration::from_secs(60))
                    .unwrap()
                    .max_clients(max),
            );
            let t0 = Instant::now();
            for i in 0..(2 * max as u32 + 1_000) {
                let _ = limiter.check_at(sprayed(i), t0);
                let v6 = IpAddr::from((u128::from(i) << 64).to_be_bytes());
                let _ = limiter.check_at(v6, t0);
            }
            assert!(
                limiter.buckets.len() <= max,
                "{max}: {}",
                limiter.buckets.len()
            );
        }
    }

    #[test]
    fn clients_on_many_threads_each_get_their_burst() {
        let limiter = limiter(50, 60);
        let now = Instant::now();
        let allowed: Vec<usize> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8u8)
                .map(|t| {
                    let limiter = &limiter;
                    scope.spawn(move || {
                        let client = IpAddr::from([192, 0, 2, t]);
                        (0..200)
                            .filter(|_| limiter.check_at(client, now).is_ok())
                            .count()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(allowed, [50; 8]);
    }
}
