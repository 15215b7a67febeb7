//! A batch's reports grouped the way the violation tables store them: one row per
//! violation, one per violation and hour, one per hour of totals. Both stores upsert these,
//! in this order and sorted by key, so that two writers lock rows in the same order and never
//! deadlock.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::range::{day_floor, from_micros, hour_floor, micros};
use super::violation::url_host;
use crate::Report;
use crate::report::{blocked_origin, strip_query};

/// A violation's share of a batch.
#[derive(Debug)]
pub(crate) struct BatchViolation<'a> {
    /// The fingerprint's 64 bits, as stored (signed).
    pub(crate) fingerprint: i64,
    pub(crate) directive: &'a str,
    pub(crate) blocked: &'a str,
    pub(crate) document: &'a str,
    pub(crate) document_host: String,
    pub(crate) first_seen: Timestamp,
    pub(crate) last_seen: Timestamp,
    pub(crate) count: i64,
    /// Its first report in the batch.
    pub(crate) example: &'a Report,
}

/// The totals of one hour of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HourTotals {
    pub(crate) hour: Timestamp,
    pub(crate) total: i64,
    pub(crate) invalid: i64,
    pub(crate) violations: i64,
}

/// A batch grouped for the violation tables.
#[derive(Debug, Default)]
pub(crate) struct BatchGroups<'a> {
    /// Sorted by fingerprint (as stored, signed).
    pub(crate) violations: Vec<BatchViolation<'a>>,
    /// (fingerprint, hour, count), sorted by fingerprint then hour.
    pub(crate) hours: Vec<(i64, Timestamp, i64)>,
    /// (fingerprint, day, count), sorted by fingerprint then day.
    pub(crate) days: Vec<(i64, Timestamp, i64)>,
    /// Sorted by hour.
    pub(crate) totals: Vec<HourTotals>,
}

/// Whether a report belongs to a violation group: a valid CSP violation.
pub(crate) fn is_grouped(report: &Report) -> bool {
    report.is_valid() && report.is_csp_violation()
}

/// The directive of a report as grouped.
pub(crate) fn directive(report: &Report) -> &str {
    report
        .effective_directive
        .as_deref()
        .or(report.violated_directive.as_deref())
        .unwrap_or_default()
}

/// A report's time as stored, to the microsecond.
pub(crate) fn stored_time(at: Timestamp) -> Timestamp {
    from_micros(micros(at))
}

/// Groups the reports that were stored (those already stored must be left out by the caller).
pub(crate) fn group<'a>(reports: impl IntoIterator<Item = &'a Report>) -> BatchGroups<'a> {
    let mut violations: BTreeMap<i64, BatchViolation<'a>> = BTreeMap::new();
    let mut hours: BTreeMap<(i64, Timestamp), i64> = BTreeMap::new();
    let mut days: BTreeMap<(i64, Timestamp), i64> = BTreeMap::new();
    let mut totals: BTreeMap<Timestamp, HourTotals> = BTreeMap::new();
    for report in reports {
        let at = stored_time(report.received_at);
        let hour = hour_floor(at);
        let total = totals.entry(hour).or_insert(HourTotals {
            hour,
            total: 0,
            invalid: 0,
            violations: 0,
        });
        total.total += 1;
        if !report.is_valid() {
            total.invalid += 1;
        }
        if !is_grouped(report) {
            continue;
        }
        total.violations += 1;
        // Stored as the same 64 bits, read back with `as u64`.
        let fingerprint = report.fingerprint.0 as i64;
        *hours.entry((fingerprint, hour)).or_default() += 1;
        *days.entry((fingerprint, day_floor(at))).or_default() += 1;
        violations
            .entry(fingerprint)
            .and_modify(|v| {
                v.count += 1;
                if at < v.first_seen {
                    v.first_seen = at;
                    v.example = report;
                }
                v.last_seen = v.last_seen.max(at);
            })
            .or_insert_with(|| {
                let document = report.document().map(strip_query).unwrap_or_default();
                BatchViolation {
                    fingerprint,
                    directive: directive(report),
                    blocked: report
                        .blocked_uri
                        .as_deref()
                        .map(blocked_origin)
                        .unwrap_or_default(),
                    document,
                    document_host: url_host(document),
                    first_seen: at,
                    last_seen: at,
                    count: 1,
                    example: report,
                }
            });
    }
    BatchGroups {
        violations: violations.into_values().collect(),
        hours: hours.into_iter().map(|((f, h), n)| (f, h, n)).collect(),
        days: days.into_iter().map(|((f, d), n)| (f, d, n)).collect(),
        totals: totals.into_values().collect(),
    }
}

/// A UUID in its text form (any case, hyphens anywhere) as a report id.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn parse_uuid(text: &str) -> Option<crate::ReportId> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok().map(crate::ReportId)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    #[test]
    fn groups_a_batch() {
        let at: Timestamp = "2026-11-22T10:59:59Z".parse().unwrap();
        let mut reports = Vec::new();
        for (offset, doc, blocked) in [
            (0, "https://a.example/p?x=1", "https://cdn.example/a.js"),
            (2, "https://a.example/p#f", "https://cdn.example/b.js"),
            (1, "https://a.example/q", "inline"),
        ] {
            let mut r = Report::csp(doc, "script-src-elem", blocked);
            r.received_at = at + SignedDuration::from_secs(offset);
            reports.push(r);
        }
        let mut invalid = Report::csp("https://a.example/", "img-src", "data");
        invalid.invalid_reason = Some("bad".into());
        invalid.received_at = at;
        reports.push(invalid);
        let mut other = Report::csp("https://a.example/", "img-src", "data");
        other.report_type = "deprecation".into();
        other.received_at = at;
        reports.push(other);

        let groups = group(&reports);
        assert_eq!(groups.violations.len(), 2);
        let cdn = groups
            .violations
            .iter()
            .find(|v| v.blocked == "https://cdn.example")
            .unwrap();
        assert_eq!((cdn.count, cdn.document), (2, "https://a.example/p"));
        assert_eq!(cdn.document_host, "a.example");
        assert_eq!(cdn.first_seen, at);
        assert_eq!(cdn.last_seen, at + SignedDuration::from_secs(2));
        assert!(
            groups
                .violations
                .windows(2)
                .all(|w| w[0].fingerprint < w[1].fingerprint)
        );
        // Two hours: 10:00 and 11:00.
        assert_eq!(groups.totals.len(), 2);
        assert_eq!(
            (
                groups.totals[0].total,
                groups.totals[0].invalid,
                groups.totals[0].violations
            ),
            (3, 1, 1)
        );
        assert_eq!(groups.hours.len(), 3);
        assert!(
            groups
                .hours
                .windows(2)
                .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
        );
    }
}
