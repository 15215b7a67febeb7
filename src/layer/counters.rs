//! The layer's counters: written as requests come, read by the handle, and told to the
//! `metrics` facade with the feature of that name.

use crate::metrics::{self as m, Count, Latency, Started};

/// What happened to requests and reports so far.
#[derive(Debug)]
pub(crate) struct Counters {
    requests: Count,
    rejected: Count,
    busy: Count,
    received: Count,
    invalid: Count,
    filtered: Count,
    accepted: Count,
    truncated: Count,
    rate_limited: Count,
    sampled: Count,
    rejected_overload: Count,
    request_duration: Latency,
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

impl Counters {
    /// The counters, registered with the `metrics` recorder installed now.
    pub(crate) fn new() -> Self {
        let count = |name, help| Count::new((name, help), None);
        Self {
            requests: count(m::REQUESTS, "The number of requests to a report path."),
            rejected: count(
                m::REJECTED,
                "The number of report requests answered with a 4xx.",
            ),
            busy: count(
                m::BUSY,
                "The number of requests refused with 503 before their body was read (memory budget).",
            ),
            received: count(m::RECEIVED, "The number of reports parsed, valid or not."),
            invalid: count(m::INVALID, "The number of invalid reports received."),
            filtered: count(m::FILTERED, "The number of reports dropped by the filter."),
            accepted: count(m::ACCEPTED, "The number of reports handed to the sinks."),
            truncated: count(
                m::TRUNCATED,
                "The number of reports beyond the per-request limit.",
            ),
            rate_limited: count(
                m::RATE_LIMITED,
                "The number of requests refused by the rate limit.",
            ),
            sampled: count(m::SAMPLED, "The number of reports left out by sampling."),
            rejected_overload: count(
                m::REJECTED_OVERLOAD,
                "The number of reports refused with 503 because a required sink had no room.",
            ),
            request_duration: Latency::new(
                (
                    m::REQUEST_DURATION,
                    "Seconds from a request to a report path to its answer.",
                ),
                None,
            ),
        }
    }

    pub(crate) fn request(&self) {
        self.requests.add(1);
    }

    /// A request to a report path answered: how long it took.
    pub(crate) fn answered(&self, started: Started) {
        self.request_duration.record(started);
    }

    /// A request answered with a `4xx`.
    pub(crate) fn rejected(&self) {
        self.rejected.add(1);
    }

    /// A request refused with `503` before its body was read.
    pub(crate) fn busy(&self) {
        self.busy.add(1);
    }

    pub(crate) fn rate_limited(&self) {
        self.rate_limited.add(1);
    }

    /// A body's reports as parsed: how many, how many invalid, how many left unparsed.
    pub(crate) fn received(&self, reports: usize, invalid: usize, truncated: usize) {
        self.received.add(reports);
        self.invalid.add(invalid);
        self.truncated.add(truncated);
    }

    pub(crate) fn filtered(&self, reports: usize) {
        self.filtered.add(reports);
    }

    pub(crate) fn sampled(&self, reports: usize) {
        self.sampled.add(reports);
    }

    pub(crate) fn accepted(&self, reports: usize) {
        self.accepted.add(reports);
    }

    /// Reports a required sink had no room for: their request is answered `503`.
    pub(crate) fn rejected_overload(&self, reports: usize) {
        self.rejected_overload.add(reports);
    }

    pub(crate) fn values(&self) -> CounterValues {
        CounterValues {
            requests: self.requests.get(),
            rejected: self.rejected.get(),
            busy: self.busy.get(),
            received: self.received.get(),
            invalid: self.invalid.get(),
            filtered: self.filtered.get(),
            accepted: self.accepted.get(),
            truncated: self.truncated.get(),
            rate_limited: self.rate_limited.get(),
            sampled: self.sampled.get(),
            rejected_overload: self.rejected_overload.get(),
        }
    }
}
