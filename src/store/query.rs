use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::Serialize;

use super::range::{from_micros, micros};
use super::{TimeRange, Violation, ViolationStatus};
use crate::{Fingerprint, Report, ReportId};

/// The most rows one page holds.
pub const MAX_PAGE: u32 = 10_000;

/// Which violations to list, in which order, and which page: every filter is optional.
///
/// ```
/// use jiff::SignedDuration;
/// use tower_csp_reports::store::{TimeRange, ViolationQuery, ViolationSort, ViolationStatus};
///
/// let query = ViolationQuery::new()
///     .range(TimeRange::last(SignedDuration::from_hours(24)))
///     .statuses([ViolationStatus::New, ViolationStatus::Acknowledged])
///     .text("cdn")
///     .sort(ViolationSort::Count)
///     .page(2, 50);
/// assert_eq!(query.offset(), 50);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct ViolationQuery {
    pub(crate) range: Option<TimeRange>,
    pub(crate) seen: Seen,
    pub(crate) text: Option<String>,
    pub(crate) directive: Option<String>,
    pub(crate) statuses: Vec<ViolationStatus>,
    pub(crate) document_host: Option<String>,
    pub(crate) document_prefix: Option<String>,
    pub(crate) fingerprints: Vec<Fingerprint>,
    pub(crate) sort: ViolationSort,
    pub(crate) offset: u64,
    pub(crate) limit: u32,
}

/// How a violation relates to the range of a [`ViolationQuery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Seen {
    /// It has stored reports in the range (the default).
    #[default]
    InRange,
    /// It was first seen in the range: a new violation.
    FirstInRange,
    /// It came back in the range after being marked fixed.
    RegressedInRange,
}

/// The order of a violation list; ties go by fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ViolationSort {
    /// Most reports in the range first (the default).
    #[default]
    Count,
    /// Most recently seen first.
    LastSeen,
    /// Most recently first seen first.
    FirstSeen,
}

impl Default for ViolationQuery {
    fn default() -> Self {
        Self::new()
    }
}

impl ViolationQuery {
    /// Every violation that has stored reports, most reports first, the first 50.
    pub fn new() -> Self {
        Self {
            range: None,
            seen: Seen::InRange,
            text: None,
            directive: None,
            statuses: Vec::new(),
            document_host: None,
            document_prefix: None,
            fingerprints: Vec::new(),
            sort: ViolationSort::Count,
            offset: 0,
            limit: 50,
        }
    }

    /// Only violations seen in this range; counts are then those of the range. The range is
    /// exact: whole days and hours come from the daily and hourly counts, the rest of an
    /// hour at either end from the report rows.
    pub fn range(mut self, range: TimeRange) -> Self {
        self.range = Some(range);
        self
    }

    /// How a violation must relate to the range (default: it has reports in it).
    pub fn seen(mut self, seen: Seen) -> Self {
        self.seen = seen;
        self
    }

    /// Only violations whose directive, blocked origin, document or note contain `text`
    /// (ASCII letters in any case). An empty text matches everything.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into()).filter(|t| !t.is_empty());
        self
    }

    /// Only this directive (exactly).
    pub fn directive(mut self, directive: impl Into<String>) -> Self {
        self.directive = Some(directive.into());
        self
    }

    /// Only violations with one of these statuses (default: any).
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = ViolationStatus>) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }

    /// Only violations on documents of this host (exactly, any case).
    pub fn document_host(mut self, host: impl Into<String>) -> Self {
        self.document_host = Some(host.into().to_ascii_lowercase());
        self
    }

    /// Only violations on documents whose URL starts with `prefix`.
    pub fn document_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.document_prefix = Some(prefix.into());
        self
    }

    /// Only these violations.
    pub fn fingerprints(mut self, fingerprints: impl IntoIterator<Item = Fingerprint>) -> Self {
        self.fingerprints = fingerprints.into_iter().collect();
        self
    }

    /// The order (default: most reports first).
    pub fn sort(mut self, sort: ViolationSort) -> Self {
        self.sort = sort;
        self
    }

    /// Page `number` (from 1) of `size` violations (at most [`MAX_PAGE`]).
    pub fn page(mut self, number: u64, size: u32) -> Self {
        self.limit = size.clamp(1, MAX_PAGE);
        self.offset = number
            .max(1)
            .saturating_sub(1)
            .saturating_mul(u64::from(self.limit));
        self
    }

    /// How many violations are skipped before the page.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// How many violations a page holds at most.
    pub fn limit(&self) -> u32 {
        self.limit
    }
}

/// One page of violations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ViolationPage {
    /// The violations of the page.
    pub violations: Vec<Violation>,
    /// How many violations match the query, on every page.
    pub total: u64,
}

/// Which reports to list, newest first, a page at a time.
///
/// ```
/// use tower_csp_reports::store::{ReportQuery, Validity};
///
/// let invalid = ReportQuery::new().validity(Validity::Invalid).limit(500);
/// assert_eq!(invalid.page_size(), 500);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct ReportQuery {
    pub(crate) range: TimeRange,
    pub(crate) fingerprint: Option<Fingerprint>,
    pub(crate) validity: Validity,
    pub(crate) directive: Option<String>,
    pub(crate) document_prefix: Option<String>,
    pub(crate) text: Option<String>,
    pub(crate) after: Option<ReportCursor>,
    pub(crate) limit: u32,
}

/// Valid reports, invalid ones, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Validity {
    /// Both (the default).
    #[default]
    Any,
    /// Only the reports that were understood.
    Valid,
    /// Only the reports kept raw because they could not be understood.
    Invalid,
}

impl Default for ReportQuery {
    fn default() -> Self {
        Self::new()
    }
}

impl ReportQuery {
    /// Every report, newest first, 100 a page.
    pub fn new() -> Self {
        Self {
            range: TimeRange::all(),
            fingerprint: None,
            validity: Validity::Any,
            directive: None,
            document_prefix: None,
            text: None,
            after: None,
            limit: 100,
        }
    }

    /// Only reports received in this range.
    pub fn range(mut self, range: TimeRange) -> Self {
        self.range = range;
        self
    }

    /// Only the reports of this violation.
    pub fn fingerprint(mut self, fingerprint: Fingerprint) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// Valid, invalid or both (default: both).
    pub fn validity(mut self, validity: Validity) -> Self {
        self.validity = validity;
        self
    }

    /// Only reports whose effective directive (else violated directive) is this one.
    pub fn directive(mut self, directive: impl Into<String>) -> Self {
        self.directive = Some(directive.into());
        self
    }

    /// Only reports whose document URL starts with `prefix`.
    pub fn document_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.document_prefix = Some(prefix.into());
        self
    }

    /// Only reports whose raw text contains `text` (exactly, case kept). An empty text matches
    /// everything.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into()).filter(|t| !t.is_empty());
        self
    }

    /// The page after this cursor (the [`next`](ReportPage::next) of the page before).
    pub fn after(mut self, cursor: ReportCursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// How many reports a page holds at most (default 100, at most [`MAX_PAGE`]).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit.clamp(1, MAX_PAGE);
        self
    }

    /// The page size.
    pub fn page_size(&self) -> u32 {
        self.limit
    }
}

/// One page of reports, and where the next starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ReportPage {
    /// The reports, newest first.
    pub reports: Vec<Report>,
    /// Pass it to [`ReportQuery::after`] for the next page; `None` on the last page.
    pub next: Option<ReportCursor>,
}

/// Where a page of reports ends: the last report's time and id. Its text form
/// (`1732269600000000-0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b`) can go in a URL.
///
/// ```
/// use tower_csp_reports::store::ReportCursor;
///
/// let cursor: ReportCursor = "1732269600000000-0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b".parse()?;
/// assert_eq!(cursor.to_string().parse::<ReportCursor>()?, cursor);
/// assert!("nonsense".parse::<ReportCursor>().is_err());
/// # Ok::<(), tower_csp_reports::store::InvalidCursor>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportCursor {
    pub(crate) received_at: Timestamp,
    pub(crate) id: ReportId,
}

impl ReportCursor {
    pub(crate) fn of(report: &Report) -> Self {
        Self {
            received_at: from_micros(micros(report.received_at)),
            id: report.id,
        }
    }
}

impl fmt::Display for ReportCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", micros(self.received_at), self.id)
    }
}

impl Serialize for ReportCursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The error of [`ReportCursor::from_str`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCursor;

impl fmt::Display for InvalidCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid report cursor")
    }
}

impl std::error::Error for InvalidCursor {}

impl FromStr for ReportCursor {
    type Err = InvalidCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (time, id) = s.split_once('-').ok_or(InvalidCursor)?;
        let micros: i64 = time.parse().map_err(|_| InvalidCursor)?;
        let hex: String = id.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 || id.len() != 36 {
            return Err(InvalidCursor);
        }
        let id = u128::from_str_radix(&hex, 16).map_err(|_| InvalidCursor)?;
        let received_at = Timestamp::from_microsecond(micros).map_err(|_| InvalidCursor)?;
        Ok(Self {
            received_at,
            id: ReportId(id),
        })
    }
}
