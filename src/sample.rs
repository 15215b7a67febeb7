//! Sampling repeated violations.
//!
//! A violation on a busy page arrives thousands of times an hour. [`Sampling`] keeps the
//! first `K` reports of each fingerprint in a period, then one in `N`; the rest are counted
//! as sampled out. Counts start again every period, so a violation that returns after a
//! quiet spell is seen in full again.
//!
//! ```
//! use std::time::Duration;
//! use tower_csp_reports::Sampling;
//!
//! let sampling = Sampling::new(10, 100).unwrap().period(Duration::from_secs(3600));
//! assert!(Sampling::new(10, 0).is_err());
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::ConfigError;
use crate::report::Fingerprint;

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

    /// How long counts last before they start again.
    #[must_use]
    pub fn period(mut self, period: Duration) -> Self {
        self.period = period;
        self
    }
}

#[derive(Debug)]
struct Counts {
    since: Instant,
    seen: HashMap<Fingerprint, u64>,
}

/// The counts of a [`Sampling`].
#[derive(Debug)]
pub(crate) struct Sampler {
    sampling: Sampling,
    counts: Mutex<Counts>,
}

impl Sampler {
    pub(crate) fn new(sampling: Sampling) -> Self {
        Self {
            sampling,
            counts: Mutex::new(Counts {
                since: Instant::now(),
                seen: HashMap::new(),
            }),
        }
    }

    /// Whether to keep the next report with this fingerprint.
    pub(crate) fn keep(&self, fingerprint: Fingerprint) -> bool {
        let s = &self.sampling;
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let full =
            counts.seen.len() >= s.max_fingerprints && !counts.seen.contains_key(&fingerprint);
        if counts.since.elapsed() >= s.period || full {
            counts.since = Instant::now();
            counts.seen.clear();
        }
        let n = counts.seen.entry(fingerprint).or_insert(0);
        let index = *n;
        *n += 1;
        index < s.first || (index - s.first) % s.one_in == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_k_then_one_in_n() {
        let sampler = Sampler::new(Sampling::new(3, 10).unwrap());
        let kept = (0..40).filter(|_| sampler.keep(Fingerprint(1))).count();
        // The first 3, then indexes 3, 13, 23 and 33.
        assert_eq!(kept, 7);
        assert!(
            sampler.keep(Fingerprint(2)),
            "another fingerprint starts fresh"
        );
    }
}
