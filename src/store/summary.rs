use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;

use super::{TimeRange, ViolationStatus};
use crate::Fingerprint;

/// What a summary holds and leaves out.
///
/// ```
/// use tower_csp_reports::store::SummaryOptions;
///
/// let options = SummaryOptions::new().top(20).include_ignored(true);
/// assert_eq!(options.top_count(), 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct SummaryOptions {
    pub(crate) top: usize,
    pub(crate) include_ignored: bool,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl SummaryOptions {
    /// Top lists of 10, ignored violations left out.
    pub fn new() -> Self {
        Self {
            top: 10,
            include_ignored: false,
        }
    }

    /// How many entries each top list, and the list of invalid reports, holds.
    pub fn top(mut self, top: usize) -> Self {
        self.top = top;
        self
    }

    /// Whether the top lists count the reports of ignored violations (default: no; they are
    /// counted in [`Summary::ignored`] instead).
    pub fn include_ignored(mut self, include: bool) -> Self {
        self.include_ignored = include;
        self
    }

    /// The length of the top lists.
    pub fn top_count(&self) -> usize {
        self.top
    }
}

/// What happened in a time range.
///
/// The totals count every report; the top lists count valid CSP violations only, most
/// frequent first, ties in alphabetical order (fingerprints: in hexadecimal order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// The start of the range, included.
    pub since: Timestamp,
    /// The end of the range, excluded.
    pub to: Timestamp,
    /// Every report received in the range.
    pub total: u64,
    /// The valid ones.
    pub valid: u64,
    /// The invalid ones.
    pub invalid: u64,
    /// The reports of ignored violations, left out of the top lists.
    pub ignored: u64,
    /// Violation sources: the documents (URL without query and fragment).
    pub top_sources: Vec<Count>,
    /// What was blocked: origins, or keywords such as `inline` and `eval`.
    pub top_blocked: Vec<Count>,
    /// Effective directives (the violated directive when there is none).
    pub top_directives: Vec<Count>,
    /// The violations themselves.
    pub top_fingerprints: Vec<FingerprintCount>,
    /// The first invalid reports of the range, oldest first, with their raw text.
    pub invalid_reports: Vec<InvalidReport>,
}

/// A value and how many reports had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Count {
    /// The value (a URL, a directive, a user agent).
    pub value: String,
    /// How many reports.
    pub count: u64,
}

/// A violation and how many reports it had in the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FingerprintCount {
    /// The violation's fingerprint.
    pub fingerprint: Fingerprint,
    /// How many reports in the range.
    pub count: u64,
    /// Its directive.
    pub directive: String,
    /// What was blocked (an origin or a keyword).
    pub blocked: String,
    /// Its document, without query and fragment.
    pub source: String,
    /// Its status.
    pub status: ViolationStatus,
}

/// An invalid report, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct InvalidReport {
    /// Its identifier (a UUID).
    pub id: String,
    /// When it was received.
    pub received_at: Timestamp,
    /// Why it is invalid.
    pub reason: Option<String>,
    /// The body or item exactly as received.
    pub raw: String,
    /// The browser that sent it.
    pub user_agent: Option<String>,
}

/// Reports, valid and invalid, and violations in a range: the overview's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Counts {
    /// Every report received in the range.
    pub total: u64,
    /// The valid ones.
    pub valid: u64,
    /// The invalid ones.
    pub invalid: u64,
    /// The valid CSP violation reports (the others are other Reporting API types).
    pub violation_reports: u64,
    /// Violations first seen in the range.
    pub new_violations: u64,
    /// Violations that came back in the range after being marked fixed.
    pub regressed_violations: u64,
}

/// One violation's count in a range, as a store reads it for a summary.
#[derive(Debug, Clone)]
pub(crate) struct GroupCount {
    pub(crate) fingerprint: Fingerprint,
    pub(crate) count: u64,
    pub(crate) directive: String,
    pub(crate) blocked: String,
    pub(crate) document: String,
    pub(crate) status: ViolationStatus,
}

impl Summary {
    /// Puts a summary together from the per-violation counts of a range: the same for every
    /// store, whether the counts came from the hourly tables or from the report rows.
    pub(crate) fn assemble(
        range: TimeRange,
        total: u64,
        invalid: u64,
        groups: Vec<GroupCount>,
        invalid_reports: Vec<InvalidReport>,
        options: &SummaryOptions,
    ) -> Self {
        let mut ignored = 0;
        let groups: Vec<GroupCount> = groups
            .into_iter()
            .filter(|g| g.count > 0)
            .filter(|g| {
                let keep = options.include_ignored || g.status != ViolationStatus::Ignored;
                if !keep {
                    ignored += g.count;
                }
                keep
            })
            .collect();
        let top = |key: fn(&GroupCount) -> &str| {
            let mut counts: HashMap<&str, u64> = HashMap::new();
            for group in &groups {
                let value = key(group);
                if !value.is_empty() {
                    *counts.entry(value).or_default() += group.count;
                }
            }
            let mut counts: Vec<Count> = counts
                .into_iter()
                .map(|(value, count)| Count {
                    value: value.to_owned(),
                    count,
                })
                .collect();
            counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            counts.truncate(options.top);
            counts
        };
        let top_sources = top(|g| &g.document);
        let top_blocked = top(|g| &g.blocked);
        let top_directives = top(|g| &g.directive);
        let mut fingerprints: Vec<&GroupCount> = groups.iter().collect();
        fingerprints.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.fingerprint.cmp(&b.fingerprint))
        });
        let top_fingerprints = fingerprints
            .into_iter()
            .take(options.top)
            .map(|g| FingerprintCount {
                fingerprint: g.fingerprint,
                count: g.count,
                directive: g.directive.clone(),
                blocked: g.blocked.clone(),
                source: g.document.clone(),
                status: g.status,
            })
            .collect();
        let mut invalid_reports = invalid_reports;
        invalid_reports.truncate(options.top);
        Self {
            since: range.since(),
            to: range.to(),
            total,
            valid: total.saturating_sub(invalid),
            invalid,
            ignored,
            top_sources,
            top_blocked,
            top_directives,
            top_fingerprints,
            invalid_reports,
        }
    }
}
