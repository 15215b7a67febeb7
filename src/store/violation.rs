use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::Serialize;

use super::summary::Count;
use crate::{Fingerprint, Report, ReportId};

/// What people decided about a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ViolationStatus {
    /// Not looked at yet: every violation starts here, and a fixed one seen again comes back.
    New,
    /// Seen by someone, not fixed yet.
    Acknowledged,
    /// Not worth acting on: left out of alerts, and of summaries unless asked.
    Ignored,
    /// Fixed: a report after this makes it [`New`](Self::New) again, as a regression.
    Fixed,
}

impl ViolationStatus {
    /// Every status, in the order above.
    pub const ALL: [Self; 4] = [Self::New, Self::Acknowledged, Self::Ignored, Self::Fixed];

    /// Its name as stored: `new`, `acknowledged`, `ignored`, `fixed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Acknowledged => "acknowledged",
            Self::Ignored => "ignored",
            Self::Fixed => "fixed",
        }
    }

    /// The inverse of [`as_str`](Self::as_str).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for ViolationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`ViolationStatus::from_str`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStatus(pub String);

impl fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown violation status {:?}: use new, acknowledged, ignored or fixed",
            self.0
        )
    }
}

impl std::error::Error for UnknownStatus {}

impl FromStr for ViolationStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(&s.to_ascii_lowercase()).ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// A violation: every report of one directive blocking one origin (or keyword) on one
/// document, grouped under their [`Fingerprint`], with counts, times and a status.
///
/// `count`, `first_seen` and `last_seen` are lifetime figures: retention keeps the group and
/// its times, and takes the reports it deletes off `count`, so `count` is always the number
/// of its reports still stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Violation {
    /// Its key: the fingerprint of each of its reports.
    pub fingerprint: Fingerprint,
    /// The effective directive (the violated one when there is none); empty when the reports
    /// had neither.
    pub directive: String,
    /// What was blocked: an origin (`https://cdn.example:8443`), or the keyword or scheme
    /// browsers send instead (`inline`, `eval`, `data`).
    pub blocked: String,
    /// The document, without query and fragment.
    pub document: String,
    /// The document's host, lowercase, without port (empty when it has none).
    pub document_host: String,
    /// When its first report was received.
    pub first_seen: Timestamp,
    /// When its latest report was received.
    pub last_seen: Timestamp,
    /// How many of its reports are stored.
    pub count: u64,
    /// How many of its reports fall in the range of the query that listed it (`count` when
    /// the query had none).
    pub in_range: u64,
    /// What people decided.
    pub status: ViolationStatus,
    /// A note people wrote about it.
    pub note: Option<String>,
    /// When its status was last set by someone (or by a regression).
    pub status_changed_at: Option<Timestamp>,
    /// When it was last seen again after being marked fixed.
    pub regressed_at: Option<Timestamp>,
    /// What its first report said beyond the key, for people and the policy builder.
    pub example: ViolationExample,
}

impl Violation {
    /// Whether it came back after being marked fixed.
    pub fn is_regression(&self) -> bool {
        self.regressed_at.is_some()
    }
}

/// The fields of a violation's first report that the key leaves out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ViolationExample {
    /// The report's id (the report itself may have been deleted by retention since).
    pub report_id: ReportId,
    /// The blocked URI in full.
    pub blocked_uri: Option<String>,
    /// The policy that was violated.
    pub original_policy: Option<String>,
    /// `enforce` or `report`.
    pub disposition: Option<String>,
    /// The first characters of the blocked code.
    pub script_sample: Option<String>,
    /// Where the blocked code is.
    pub source_file: Option<String>,
    /// Its line.
    pub line_number: Option<u32>,
    /// Its column.
    pub column_number: Option<u32>,
}

/// One violation with what its detail page shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ViolationDetail {
    /// The violation; `in_range` counts the reports of the detail's range.
    pub violation: Violation,
    /// Its reports per UTC hour in the range, oldest first, hours without reports left out.
    pub hourly: Vec<HourCount>,
    /// Its latest reports, newest first.
    pub recent: Vec<Report>,
    /// Among its latest 1,000 reports: the full document URLs, most frequent first.
    pub documents: Vec<Count>,
    /// Among its latest 1,000 reports: the user agents, most frequent first.
    pub user_agents: Vec<Count>,
    /// Among its latest 1,000 reports: the dispositions (`enforce`, `report`).
    pub dispositions: Vec<Count>,
}

/// How many reports in one UTC hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HourCount {
    /// The start of the hour.
    pub hour: Timestamp,
    /// How many reports.
    pub count: u64,
}

/// How many reports of one directive in one UTC hour: a bar segment of a chart stacked by
/// directive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DirectiveHour {
    /// The start of the hour.
    pub hour: Timestamp,
    /// The directive (empty when the reports named none).
    pub directive: String,
    /// How many reports.
    pub count: u64,
}

/// The size of the sample the detail's breakdowns are taken from.
pub(crate) const DETAIL_SAMPLE: usize = 1000;

/// The host of a URL, lowercase, without user information or port.
pub(crate) fn url_host(url: &str) -> String {
    let Some(at) = crate::report::find_scheme_separator(url) else {
        return String::new();
    };
    let rest = &url[at + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = if host_port.starts_with('[') {
        &host_port[..host_port.find(']').map_or(host_port.len(), |i| i + 1)]
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    host.to_ascii_lowercase()
}

/// Counts values, most frequent first, ties in alphabetical order, at most `top`.
pub(crate) fn top_counts<'a>(values: impl Iterator<Item = &'a str>, top: usize) -> Vec<Count> {
    let mut counts: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for value in values {
        *counts.entry(value).or_default() += 1;
    }
    let mut counts: Vec<Count> = counts
        .into_iter()
        .map(|(value, count)| Count {
            value: value.to_owned(),
            count,
        })
        .collect();
    counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    counts.truncate(top);
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for (url, host) in [
            ("https://Shop.Example/cart?x", "shop.example"),
            ("https://user:pw@a.example:8443/", "a.example"),
            ("http://[::1]:8080/x", "[::1]"),
            ("https://b.example", "b.example"),
            ("inline", ""),
            ("", ""),
        ] {
            assert_eq!(url_host(url), host, "{url}");
        }
    }

    #[test]
    fn statuses() {
        for status in ViolationStatus::ALL {
            assert_eq!(status.as_str().parse::<ViolationStatus>(), Ok(status));
        }
        assert_eq!(
            "FIXED".parse::<ViolationStatus>(),
            Ok(ViolationStatus::Fixed)
        );
        assert!("done".parse::<ViolationStatus>().is_err());
    }
}
