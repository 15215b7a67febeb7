//! The query strings of the pages: ranges, filters, sorting and pages, read leniently (a
//! value that makes no sense falls back to the default, with a note on the page) and written
//! back into links with every value encoded.

use jiff::{SignedDuration, Timestamp, civil, tz::TimeZone};
use serde::Deserialize;

use super::escape::query_value;
use crate::Fingerprint;
use crate::store::{ReportCursor, TimeRange, Validity, ViolationSort, ViolationStatus};

/// The ranges the pages offer.
pub(crate) const RANGES: [(&str, &str); 4] = [
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("custom", "Custom"),
];

/// Every filter any page reads; each page uses the ones it shows.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Filters {
    pub(crate) range: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) text: Option<String>,
    pub(crate) directive: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) document: Option<String>,
    pub(crate) fingerprint: Option<String>,
    pub(crate) validity: Option<String>,
    pub(crate) sort: Option<String>,
    pub(crate) page: Option<String>,
    pub(crate) after: Option<String>,
}

/// A range as the pages read it: the time range and what was asked for.
#[derive(Debug, Clone)]
pub(crate) struct Range {
    pub(crate) range: TimeRange,
    /// `24h`, `7d`, `30d` or `custom`.
    pub(crate) choice: &'static str,
    /// Why a custom range was not understood.
    pub(crate) problem: Option<String>,
}

impl Filters {
    /// The range (last 24 hours unless told otherwise).
    pub(crate) fn range(&self) -> Range {
        self.range_at(Timestamp::now())
    }

    fn range_at(&self, now: Timestamp) -> Range {
        let last = |hours: i64, choice| Range {
            range: TimeRange::new(now - SignedDuration::from_hours(hours), now),
            choice,
            problem: None,
        };
        match self.range.as_deref().map(str::trim) {
            Some("7d") => last(24 * 7, "7d"),
            Some("30d") => last(24 * 30, "30d"),
            Some("custom") => {
                let since = self.since.as_deref().map(parse_time).transpose();
                let to = self.to.as_deref().map(parse_time).transpose();
                match (since, to) {
                    (Ok(since), Ok(to)) => {
                        let to = to.unwrap_or(now);
                        let since = since.unwrap_or(to - SignedDuration::from_hours(24));
                        if since >= to {
                            return Range {
                                problem: Some("the start must come before the end".into()),
                                ..last(24, "24h")
                            };
                        }
                        Range {
                            range: TimeRange::new(since, to),
                            choice: "custom",
                            problem: None,
                        }
                    }
                    (Err(problem), _) | (_, Err(problem)) => Range {
                        problem: Some(problem),
                        ..last(24, "24h")
                    },
                }
            }
            _ => last(24, "24h"),
        }
    }

    pub(crate) fn text(&self) -> &str {
        self.text.as_deref().map_or("", str::trim)
    }

    pub(crate) fn directive(&self) -> &str {
        self.directive.as_deref().map_or("", str::trim)
    }

    pub(crate) fn host(&self) -> &str {
        self.host.as_deref().map_or("", str::trim)
    }

    pub(crate) fn document(&self) -> &str {
        self.document.as_deref().map_or("", str::trim)
    }

    /// The status filter; `None` is any status.
    pub(crate) fn status(&self) -> Option<ViolationStatus> {
        ViolationStatus::from_name(self.status.as_deref()?.trim())
    }

    pub(crate) fn sort(&self) -> ViolationSort {
        match self.sort.as_deref() {
            Some("last") => ViolationSort::LastSeen,
            Some("first") => ViolationSort::FirstSeen,
            _ => ViolationSort::Count,
        }
    }

    pub(crate) fn sort_name(&self) -> &'static str {
        match self.sort() {
            ViolationSort::LastSeen => "last",
            ViolationSort::FirstSeen => "first",
            _ => "count",
        }
    }

    /// The page number, from 1.
    pub(crate) fn page(&self) -> u64 {
        self.page
            .as_deref()
            .and_then(|p| p.trim().parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }

    pub(crate) fn fingerprint(&self) -> Option<Fingerprint> {
        parse_fingerprint(self.fingerprint.as_deref()?)
    }

    pub(crate) fn validity(&self) -> Validity {
        match self.validity.as_deref() {
            Some("valid") => Validity::Valid,
            Some("invalid") => Validity::Invalid,
            _ => Validity::Any,
        }
    }

    pub(crate) fn after(&self) -> Option<ReportCursor> {
        self.after.as_deref()?.parse().ok()
    }

    /// The filters as a query string, without `page` and `after`, for links that keep them.
    pub(crate) fn query(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        let range = self.range();
        pairs.push(("range", range.choice.to_owned()));
        if range.choice == "custom" {
            pairs.push(("since", range.range.since().to_string()));
            pairs.push(("to", range.range.to().to_string()));
        }
        for (name, value) in [
            ("text", self.text()),
            ("directive", self.directive()),
            ("host", self.host()),
            ("document", self.document()),
        ] {
            if !value.is_empty() {
                pairs.push((name, value.to_owned()));
            }
        }
        if let Some(status) = self.status() {
            pairs.push(("status", status.as_str().to_owned()));
        }
        if let Some(fingerprint) = self.fingerprint() {
            pairs.push(("fingerprint", fingerprint.to_string()));
        }
        match self.validity() {
            Validity::Valid => pairs.push(("validity", "valid".to_owned())),
            Validity::Invalid => pairs.push(("validity", "invalid".to_owned())),
            _ => {}
        }
        if self.sort() != ViolationSort::Count {
            pairs.push(("sort", self.sort_name().to_owned()));
        }
        pairs
            .iter()
            .map(|(name, value)| format!("{name}={}", query_value(value)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// 16 hexadecimal digits, as fingerprints are written.
pub(crate) fn parse_fingerprint(text: &str) -> Option<Fingerprint> {
    let text = text.trim();
    (text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(text, 16).ok().map(Fingerprint))
        .flatten()
}

/// An RFC 3339 time, or a date and time of a `datetime-local` field (taken as UTC), or a date.
fn parse_time(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    if let Ok(time) = text.parse::<Timestamp>() {
        return Ok(time);
    }
    let civil = text.parse::<civil::DateTime>().or_else(|_| {
        text.parse::<civil::Date>()
            .map(|d| d.to_datetime(civil::Time::midnight()))
    });
    civil
        .and_then(|c| c.to_zoned(TimeZone::UTC))
        .map(|z| z.timestamp())
        .map_err(|_| "the custom range's times are not of the form 2026-11-30T14:00".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(range: &str, since: Option<&str>, to: Option<&str>) -> Filters {
        Filters {
            range: Some(range.to_owned()),
            since: since.map(str::to_owned),
            to: to.map(str::to_owned),
            ..Filters::default()
        }
    }

    #[test]
    fn ranges() {
        let now: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let hours = |f: &Filters| {
            let r = f.range_at(now);
            r.range.to().duration_since(r.range.since()).as_hours()
        };
        assert_eq!(hours(&filters("24h", None, None)), 24);
        assert_eq!(hours(&filters("7d", None, None)), 168);
        assert_eq!(hours(&filters("30d", None, None)), 720);
        assert_eq!(hours(&filters("<script>", None, None)), 24);
        let custom = filters("custom", Some("2026-11-01T00:00"), Some("2026-11-02"));
        let r = custom.range_at(now);
        assert_eq!((r.choice, hours(&custom)), ("custom", 24));
        assert_eq!(r.range.since().to_string(), "2026-11-01T00:00:00Z");
        let bad = filters("custom", Some("yesterday\"><b>"), None).range_at(now);
        assert_eq!(bad.choice, "24h");
        assert!(bad.problem.is_some());
        let backwards = filters("custom", Some("2026-11-02"), Some("2026-11-01")).range_at(now);
        assert!(backwards.problem.is_some());
    }

    #[test]
    fn queries_are_encoded() {
        let filters = Filters {
            text: Some("a&b=<c>".to_owned()),
            status: Some("fixed".to_owned()),
            page: Some("3".to_owned()),
            ..Filters::default()
        };
        assert_eq!(
            filters.query(),
            "range=24h&text=a%26b%3D%3Cc%3E&status=fixed"
        );
        assert_eq!(filters.page(), 3);
        assert_eq!(Filters::default().page(), 1);
        assert_eq!(
            parse_fingerprint("00000000000000ff"),
            Some(Fingerprint(255))
        );
        assert_eq!(parse_fingerprint("+0000000000000ff"), None);
    }
}
