//! The layer's counters: written as requests come, read by the handle.

use std::sync::atomic::{AtomicU64, Ordering};

/// What happened to requests and reports so far.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    rejected: AtomicU64,
    busy: AtomicU64,
    received: AtomicU64,
    invalid: AtomicU64,
    filtered: AtomicU64,
    accepted: AtomicU64,
    truncated: AtomicU64,
    rate_limited: AtomicU64,
    sampled: AtomicU64,
    rejected_overload: AtomicU64,
}

/// The counters at one moment, in the order of [`Counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CounterValues {
    pub(crate) requests: u64,
    pub(crate) rejected: u64,
    pub(crate) busy: u64,
    pub(crate) received: u64,
    pub(crate) invalid: u64,
    pub(crate) filtered: u64,
    pub(crate) accepted: u64,
    pub(crate) truncated: u64,
    pub(crate) rate_limited: u64,
    pub(crate) sampled: u64,
    pub(crate) rejected_overload: u64,
}

fn add(counter: &AtomicU64, n: usize) {
    // Most counts of a request are zero: skip the atomic operation for them.
    if n > 0 {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl Counters {
    pub(crate) fn request(&self) {
        add(&self.requests, 1);
    }

    /// A request answered with a `4xx`.
    pub(crate) fn rejected(&self) {
        add(&self.rejected, 1);
    }

    /// A request refused with `503` before its body was read.
    pub(crate) fn busy(&self) {
        add(&self.busy, 1);
    }

    pub(crate) fn rate_limited(&self) {
        add(&self.rate_limited, 1);
    }

    /// A body's reports as parsed: how many, how many invalid, how many left unparsed.
    pub(crate) fn received(&self, reports: usize, invalid: usize, truncated: usize) {
        add(&self.received, reports);
        add(&self.invalid, invalid);
        add(&self.truncated, truncated);
    }

    pub(crate) fn filtered(&self, reports: usize) {
        add(&self.filtered, reports);
    }

    pub(crate) fn sampled(&self, reports: usize) {
        add(&self.sampled, reports);
    }

    pub(crate) fn accepted(&self, reports: usize) {
        add(&self.accepted, reports);
    }

    /// Reports a required sink had no room for: their request is answered `503`.
    pub(crate) fn rejected_overload(&self, reports: usize) {
        add(&self.rejected_overload, reports);
    }

    pub(crate) fn values(&self) -> CounterValues {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CounterValues {
            requests: get(&self.requests),
            rejected: get(&self.rejected),
            busy: get(&self.busy),
            received: get(&self.received),
            invalid: get(&self.invalid),
            filtered: get(&self.filtered),
            accepted: get(&self.accepted),
            truncated: get(&self.truncated),
            rate_limited: get(&self.rate_limited),
            sampled: get(&self.sampled),
            rejected_overload: get(&self.rejected_overload),
        }
    }
}
