//! Sampling repeated violations.
//!
//! A violation on a busy page arrives thousands of times an hour. [`Sampling`] keeps the
//! first `K` reports of each fingerprint in a period, then one in `N`; the rest are counted
//! as sampled out. A fingerprint's count starts again a period after its first report, so a
//! violation that returns after a quiet spell is seen in full again.
//!
//! At most [`max_fingerprints`](Sampling::max_fingerprints) counts are kept, in shards of
//! their own lock. When full, the counts whose period is over go first, then the smallest:
//! a flood of distinct fingerprints forgets its own, never the count of a violation seen
//! often (forgetting a small count only means its next reports are kept again).
//!
//! ```
//! use std::time::Duration;
//! use tower_csp_reports::Sampling;
//!
//! let sampling = Sampling::new(10, 100)
//!     .unwrap()
//!     .period(Duration::from_secs(3600))
//!     .max_fingerprints(10_000);
//! assert!(Sampling::new(10, 0).is_err());
//! ```

use std::time::{Duration, Instant};

use crate::error::ConfigError;
use crate::report::Fingerprint;
use crate::table::{Clock, Table, Worth, nanos};

/// Keep the first `first` reports of a fingerprint, then one in `one_in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    first: u64,
    one_in: u64,
    period: Duration,
    max_fingerprints: usize,
}

impl Sampling {
    /// Keeps the first `first` of each fingerprint per period (default one hour), then one
    /// in `one_in`.
    pub fn new(first: u64, one_in: u64) -> Result<Self, ConfigError> {
        if one_in == 0 {
            return Err(ConfigError::Invalid {
                setting: "sampling",
                reason: "one_in must be at least 1".to_owned(),
            });
        }
        Ok(Self {
            first,
            one_in,
            period: Duration::from_secs(3600),
            max_fingerprints: 100_000,
        })
    }

    /// How long a fingerprint's count lasts, from its first report, before it starts again.
    #[must_use]
    pub fn period(mut self, period: Duration) -> Self {
        self.period = period;
        self
    }

    /// How many fingerprints are counted at once (default 100,000); past that, the counts
    /// whose period is over are forgotten first, then the smallest.
    #[must_use]
    pub fn max_fingerprints(mut self, fingerprints: usize) -> Self {
        self.max_fingerprints = fingerprints.max(1);
        self
    }
}

/// The reports of one fingerprint in its period.
#[derive(Debug, Clone, Copy)]
struct Count {
    /// When the period ends, on the sampler's clock.
    until: u64,
    seen: u64,
}

impl Worth for Count {
    fn worth(&self, now: u64) -> Option<u64> {
        (now < self.until).then_some(self.seen)
    }
}

/// The counts of a [`Sampling`].
#[derive(Debug)]
pub(crate) struct Sampler {
    sampling: Sampling,
    clock: Clock,
    period: u64,
    counts: Table<Fingerprint, Count>,
}

impl Sampler {
    pub(crate) fn new(sampling: Sampling) -> Self {
        Self {
            sampling,
            clock: Clock::new(),
            period: nanos(sampling.period),
            counts: Table::new(sampling.max_fingerprints),
        }
    }

    /// Whether to keep the next report with this fingerprint.
    pub(crate) fn keep(&self, fingerprint: Fingerprint) -> bool {
        self.keep_at(fingerprint, Instant::now())
    }

    fn keep_at(&self, fingerprint: Fingerprint, now: Instant) -> bool {
        let s = &self.sampling;
        let now = self.clock.at(now);
        let fresh = || Count {
            until: now.saturating_add(self.period),
            seen: 0,
        };
        let index = self.counts.with(fingerprint, now, fresh, |count| {
            if now >= count.until {
                *count = fresh();
            }
            count.seen += 1;
            count.seen - 1
        });
        index < s.first || (index - s.first).is_multiple_of(s.one_in)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_k_then_one_in_n() {
        // (first, one in, reports, kept)
        let cases: &[(u64, u64, usize, usize)] = &[
            // The first 3, then indexes 3, 13, 23 and 33.
            (3, 10, 40, 7),
            (0, 1, 50, 50),
            (0, 10, 50, 5),
            (10, 1, 50, 50),
            (5, 1_000, 100, 6),
            (u64::MAX, 2, 100, 100),
        ];
        for &(first, one_in, reports, kept) in cases {
            let sampler = Sampler::new(Sampling::new(first, one_in).unwrap());
            let now = Instant::now();
            let got = (0..reports)
                .filter(|_| sampler.keep_at(Fingerprint(1), now))
                .count();
            assert_eq!(
                got, kept,
                "first {first}, one in {one_in}, {reports} reports"
            );
            assert!(
                sampler.keep_at(Fingerprint(2), now),
                "another fingerprint starts fresh"
            );
        }
    }

    #[test]
    fn counts_start_again_a_period_after_the_first_report() {
        let sampler = Sampler::new(
            Sampling::new(2, 1_000)
                .unwrap()
                .period(Duration::from_secs(60)),
        );
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let a = Fingerprint(1);
        let b = Fingerprint(2);
        // The first two, then the first of each thousand.
        let three = |f, s| (0..3).all(|_| sampler.keep_at(f, at(s)));
        assert!(three(a, 0));
        assert!(!sampler.keep_at(a, at(1)));
        assert!(three(b, 30));
        assert!(!sampler.keep_at(b, at(31)));
        assert!(sampler.keep_at(a, at(60)), "a's period is over");
        assert!(!sampler.keep_at(b, at(60)), "b's is not");
        assert!(sampler.keep_at(b, at(90)));
    }

    #[test]
    fn an_endless_period_never_overflows() {
        let sampler = Sampler::new(Sampling::new(1, 2).unwrap().period(Duration::MAX));
        let now = Instant::now();
        let kept: Vec<bool> = (0..5)
            .map(|_| sampler.keep_at(Fingerprint(1), now))
            .collect();
        assert_eq!(kept, [true, true, false, true, false]);
    }

    #[test]
    fn a_spray_of_fingerprints_keeps_a_steady_count() {
        // A violation seen 1,000 times, then 200,000 fingerprints once each, then the
        // violation again: sampled as if the spray had not happened.
        let sampling = Sampling::new(10, 100).unwrap();
        let sprayed = Sampler::new(sampling);
        let alone = Sampler::new(sampling);
        let now = Instant::now();
        let steady = Fingerprint(u64::MAX);
        for _ in 0..1_000 {
            sprayed.keep_at(steady, now);
            alone.keep_at(steady, now);
        }
        for i in 0..200_000 {
            assert!(
                sprayed.keep_at(Fingerprint(i), now),
                "a first report is kept"
            );
        }
        assert!(sprayed.counts.len() <= 100_000);
        let after: Vec<bool> = (0..300).map(|_| sprayed.keep_at(steady, now)).collect();
        let expected: Vec<bool> = (0..300).map(|_| alone.keep_at(steady, now)).collect();
        assert_eq!(after, expected);
        assert_eq!(after.iter().filter(|kept| **kept).count(), 3);
    }

    #[test]
    fn memory_stays_bounded() {
        for max in [1, 100, 1_000, 20_000] {
            let sampler = Sampler::new(Sampling::new(1, 10).unwrap().max_fingerprints(max));
            let now = Instant::now();
            for i in 0..(2 * max as u64 + 1_000) {
                sampler.keep_at(Fingerprint(i), now);
            }
            assert!(
                sampler.counts.len() <= max,
                "{max}: {}",
                sampler.counts.len()
            );
        }
    }
}
