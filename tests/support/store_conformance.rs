//! The conformance suite every `ReportStore` passes: each case on a fresh, migrated store made
//! by the caller (a SQLite file on disk, a Postgres database), through the trait alone.
//!
//! Many cases check the violation tables against the report rows: the summary read from the
//! violation and hourly tables must equal the one computed by `GROUP BY` over the rows, for
//! ranges that start and end on and off the hour.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::broadcast::error::TryRecvError;
use tower_csp_reports::store::{
    EvidenceQuery, PolicyEvidence, ReportQuery, ReportStore, Seen, SummaryOptions, TimeRange,
    Validity, ViolationEventKind, ViolationQuery, ViolationSort, ViolationStatus,
};
use tower_csp_reports::{Fingerprint, Report, ReportBatch, WireFormat};

use crate::conformance::sample_reports;

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A report as a store gives it back: received to the microsecond, and (Postgres) NUL as
/// U+FFFD in text.
fn stored(store: &dyn ReportStore, report: &Report) -> Report {
    let mut r = report.clone();
    let micros = r.received_at.as_microsecond();
    r.received_at = Timestamp::from_microsecond(micros).unwrap();
    if store.name() == "postgres" {
        let clean = |s: &str| s.replace('\0', "\u{fffd}");
        if !r.raw_is_json() || r.raw.contains("\\u0000") {
            r.raw = clean(&r.raw).into();
        }
        for field in [
            &mut r.user_agent,
            &mut r.url,
            &mut r.document_uri,
            &mut r.referrer,
            &mut r.blocked_uri,
            &mut r.effective_directive,
            &mut r.violated_directive,
            &mut r.original_policy,
            &mut r.disposition,
            &mut r.script_sample,
            &mut r.source_file,
        ] {
            if let Some(value) = field.as_deref() {
                *field = Some(clean(value).into());
            }
        }
        r.invalid_reason = r.invalid_reason.as_deref().map(clean);
    }
    r
}

pub fn report_at(at: Timestamp, document: &str, directive: &str, blocked: &str) -> Report {
    let mut report = Report::csp(document, directive, blocked);
    report.received_at = at;
    report
}

fn invalid_at(at: Timestamp, raw: &str) -> Report {
    let mut report = report_at(at, "https://x.example/", "img-src", "data");
    report.format = WireFormat::Unparsed;
    report.raw = raw.into();
    report.invalid_reason = Some("body is not JSON".to_owned());
    report.document_uri = None;
    report.effective_directive = None;
    report.violated_directive = None;
    report.blocked_uri = None;
    report.fingerprint = Fingerprint::of(&report);
    report
}

/// Every report of a store, newest first, read page by page (pages of `page`).
async fn all_reports(store: &dyn ReportStore, query: ReportQuery, page: u32) -> Vec<Report> {
    let mut reports = Vec::new();
    let mut query = query.limit(page);
    loop {
        let got = store.reports(&query).await.unwrap();
        reports.extend(got.reports);
        match got.next {
            Some(next) => query = query.after(next),
            None => return reports,
        }
    }
}

/// The summary from the violation tables equals the one from the rows, for `range`.
async fn assert_coherent(store: &dyn ReportStore, range: TimeRange) {
    for options in [
        SummaryOptions::new().top(1000),
        SummaryOptions::new().top(1000).include_ignored(true),
        SummaryOptions::new().top(2),
    ] {
        let fast = store.summary(range, &options).await.unwrap();
        let slow = store.summary_from_reports(range, &options).await.unwrap();
        assert_eq!(fast, slow, "{} {range}", store.name());
    }
    let counts = store.counts(range).await.unwrap();
    let summary = store
        .summary_from_reports(range, &SummaryOptions::new().include_ignored(true))
        .await
        .unwrap();
    assert_eq!(
        (counts.total, counts.valid, counts.invalid),
        (summary.total, summary.valid, summary.invalid),
        "{range}"
    );
    let hourly: u64 = store
        .hourly(range)
        .await
        .unwrap()
        .iter()
        .map(|h| h.count)
        .sum();
    assert_eq!(hourly, counts.violation_reports, "{range}");
}

/// Ranges on and off the hour around `day`.
fn ranges(day: Timestamp) -> Vec<TimeRange> {
    let at = |minutes: i64| day + SignedDuration::from_mins(minutes);
    vec![
        TimeRange::all(),
        TimeRange::new(at(0), at(24 * 60)),
        TimeRange::new(at(30), at(200)),
        TimeRange::new(at(61), at(119)),
        TimeRange::new(at(59), at(61)),
        TimeRange::new(at(120), at(120)),
        TimeRange::new(at(-600), at(90)),
        TimeRange::new(at(200), at(30)),
    ]
}

/// A day of reports over several hours: documents with queries, several blocked URLs of
/// one origin, other report types and invalid ones.
pub fn seeded(day: Timestamp) -> Vec<Report> {
    let at = |minutes: i64| day + SignedDuration::from_mins(minutes);
    let mut reports = Vec::new();
    for (m, doc, blocked) in [
        (
            1,
            "https://shop.example/cart?id=1",
            "https://cdn.evil.example/a.js",
        ),
        (
            62,
            "https://shop.example/cart?id=2#x",
            "https://cdn.evil.example/b.js?v=1",
        ),
        (
            119,
            "https://shop.example/cart#top",
            "https://cdn.evil.example/a.js",
        ),
        (121, "https://shop.example/", "inline"),
        (122, "https://shop.example/?utm=1", "inline"),
        (150, "https://Blog.Example:8443/post?p=9", "eval"),
    ] {
        reports.push(report_at(at(m), doc, "script-src-elem", blocked));
    }
    for m in [5, 65, 66, 180, 181, 182] {
        reports.push(report_at(
            at(m),
            "https://shop.example/",
            "img-src",
            "data:image/png;base64,AAAA",
        ));
    }
    let mut deprecation = report_at(at(70), "https://shop.example/old", "img-src", "data");
    deprecation.report_type = "deprecation".into();
    deprecation.fingerprint = Fingerprint::of(&deprecation);
    reports.push(deprecation);
    reports.push(invalid_at(at(3), "garbage one"));
    reports.push(invalid_at(at(130), "[1, 2"));
    reports
}

/// Runs every case, each on a fresh store from `fresh`.
pub async fn check<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn ReportStore>>,
{
    round_trip(fresh().await).await;
    retries_are_idempotent(fresh().await).await;
    summaries(fresh().await).await;
    grouping_and_status(fresh().await).await;
    regressions_and_events(fresh().await).await;
    retention(fresh().await).await;
    hostile_strings(fresh().await).await;
    claims(fresh().await).await;
    policy_evidence(fresh().await).await;
    digests(fresh().await).await;
}

/// Every wire format and every field comes back as it was written; invalid reports come back
/// raw; pages walk the whole store, newest first, with nothing twice.
async fn round_trip(store: Arc<dyn ReportStore>) {
    store.ping().await.unwrap();
    store.migrate().await.expect("a second migrate is fine");
    let mut reports = sample_reports();
    let base = ts("2026-11-20T10:00:00Z");
    for (i, r) in reports.iter_mut().enumerate() {
        r.received_at = base + SignedDuration::from_micros(i as i64 * 1_000_001 + 7);
    }
    let mut full = Report::csp(
        "https://shop.example/cart?id=7#pay",
        "script-src-elem",
        "https://cdn.evil.example/x.js",
    );
    full.received_at = base + SignedDuration::from_nanos(123_456_789);
    full.age_ms = Some(1234);
    full.format = WireFormat::ReportingApi;
    full.user_agent = Some("Mozilla/5.0 Firefox/149.0".into());
    full.client_ip = Some("2001:db8::7".parse().unwrap());
    full.url = Some("https://shop.example/cart?id=7".into());
    full.referrer = Some("https://search.example/?q=shoes".into());
    full.original_policy = Some("default-src 'self'; report-to csp".into());
    full.disposition = Some("enforce".into());
    full.status_code = Some(65535);
    full.script_sample = Some("alert('é ✓')".into());
    full.source_file = Some("https://shop.example/app.js".into());
    full.line_number = Some(u32::MAX);
    full.column_number = Some(17);
    full.fingerprint = Fingerprint(0xfedc_ba98_7654_3210);
    reports.push(full);
    let outcome = store
        .write(&reports.iter().cloned().collect())
        .await
        .unwrap();
    assert_eq!(outcome.inserted, reports.len() as u64);

    for page in [1, 2, 1000] {
        let back = all_reports(&*store, ReportQuery::new(), page).await;
        assert_eq!(back.len(), reports.len(), "page size {page}");
        let ids: BTreeSet<_> = back.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), back.len(), "nothing twice");
        assert!(
            back.windows(2)
                .all(|w| w[0].received_at >= w[1].received_at),
            "newest first"
        );
        let by_id: HashMap<_, _> = back.iter().map(|r| (r.id, r)).collect();
        for r in &reports {
            assert_eq!(*by_id[&r.id], stored(&*store, r), "{}", store.name());
        }
    }
    // Invalid ones, kept raw.
    let invalid = store
        .invalid_reports(TimeRange::all(), None, 100)
        .await
        .unwrap();
    let expected: Vec<_> = reports.iter().filter(|r| !r.is_valid()).collect();
    assert!(!expected.is_empty());
    assert_eq!(invalid.reports.len(), expected.len());
    for r in &invalid.reports {
        assert!(!r.is_valid());
        let original = expected.iter().find(|e| e.id == r.id).unwrap();
        assert_eq!(r.raw, stored(&*store, original).raw);
    }
    let unparsed = reports
        .iter()
        .find(|r| r.format == WireFormat::Unparsed)
        .unwrap();
    let summary = store
        .summary(TimeRange::all(), &SummaryOptions::new().top(100))
        .await
        .unwrap();
    assert!(
        summary
            .invalid_reports
            .iter()
            .any(|i| i.id == unparsed.id.to_string() && *stored(&*store, unparsed).raw == *i.raw)
    );
    // Filters of the report pages.
    let valid = all_reports(&*store, ReportQuery::new().validity(Validity::Valid), 3).await;
    assert_eq!(valid.len(), reports.iter().filter(|r| r.is_valid()).count());
    let of_full = all_reports(
        &*store,
        ReportQuery::new().fingerprint(Fingerprint(0xfedc_ba98_7654_3210)),
        10,
    )
    .await;
    assert_eq!(of_full.len(), 1);
    let by_text = all_reports(&*store, ReportQuery::new().text("FAKE: line"), 10).await;
    assert_eq!(by_text.len(), 1);
    let by_prefix = all_reports(
        &*store,
        ReportQuery::new().document_prefix("https://shop.example/cart"),
        10,
    )
    .await;
    assert_eq!(by_prefix.len(), 1);
    let elem = all_reports(&*store, ReportQuery::new().directive("script-src-elem"), 10).await;
    assert_eq!(
        elem.len(),
        reports
            .iter()
            .filter(|r| r.effective_directive.as_deref() == Some("script-src-elem"))
            .count()
    );
    let ranged = all_reports(
        &*store,
        ReportQuery::new().range(TimeRange::new(base, base + SignedDuration::from_secs(2))),
        10,
    )
    .await;
    assert_eq!(
        ranged.len(),
        reports
            .iter()
            .filter(
                |r| TimeRange::new(base, base + SignedDuration::from_secs(2))
                    .contains(stored(&*store, r).received_at)
            )
            .count()
    );
    assert_coherent(&*store, TimeRange::all()).await;
}

/// A retried batch (the same report ids) stores and counts nothing twice, even when half of
/// it is new.
async fn retries_are_idempotent(store: Arc<dyn ReportStore>) {
    let day = ts("2026-11-22T00:00:00Z");
    let reports = seeded(day);
    let batch: ReportBatch = reports.iter().cloned().collect();
    let sink = store.sink();
    sink.send(&batch).await.unwrap();
    let first = store
        .violations(&ViolationQuery::new().page(1, 100))
        .await
        .unwrap();
    assert_eq!(store.write(&batch).await.unwrap().inserted, 0);
    sink.send(&batch).await.unwrap();
    let again = store
        .violations(&ViolationQuery::new().page(1, 100))
        .await
        .unwrap();
    assert_eq!(first, again, "counts unchanged by retries");
    let overlapping: ReportBatch = reports
        .iter()
        .skip(5)
        .cloned()
        .chain((0..5).map(|i| {
            report_at(
                day + SignedDuration::from_mins(i),
                "https://shop.example/",
                "img-src",
                "data",
            )
        }))
        .collect();
    assert_eq!(store.write(&overlapping).await.unwrap().inserted, 5);
    let total = store.counts(TimeRange::all()).await.unwrap().total;
    assert_eq!(total, reports.len() as u64 + 5);
    for range in ranges(day) {
        assert_coherent(&*store, range).await;
    }
}

/// Summaries by hand count, and the same from the violation tables as from the rows.
async fn summaries(store: Arc<dyn ReportStore>) {
    let day = ts("2026-11-22T00:00:00Z");
    let mut reports = seeded(day);
    reports.push(report_at(
        day - SignedDuration::from_secs(1),
        "https://x.example/",
        "img-src",
        "data",
    ));
    reports.push(report_at(
        day + SignedDuration::from_hours(24),
        "https://x.example/",
        "img-src",
        "data",
    ));
    store
        .sink()
        .send(&reports.iter().cloned().collect())
        .await
        .unwrap();
    let summary = store
        .summary(
            TimeRange::new(day, day + SignedDuration::from_hours(24)),
            &SummaryOptions::new(),
        )
        .await
        .unwrap();
    let pairs = |list: &[tower_csp_reports::store::Count]| -> Vec<(String, u64)> {
        list.iter().map(|c| (c.value.clone(), c.count)).collect()
    };
    let want = |list: &[(&str, u64)]| -> Vec<(String, u64)> {
        list.iter().map(|(v, c)| ((*v).to_owned(), *c)).collect()
    };
    assert_eq!((summary.total, summary.valid, summary.invalid), (15, 13, 2));
    assert_eq!(
        pairs(&summary.top_sources),
        want(&[
            ("https://shop.example/", 8),
            ("https://shop.example/cart", 3),
            ("https://Blog.Example:8443/post", 1)
        ])
    );
    assert_eq!(
        pairs(&summary.top_blocked),
        want(&[
            ("data", 6),
            ("https://cdn.evil.example", 3),
            ("inline", 2),
            ("eval", 1)
        ])
    );
    assert_eq!(
        pairs(&summary.top_directives),
        want(&[("img-src", 6), ("script-src-elem", 6)])
    );
    assert_eq!(summary.top_fingerprints[0].count, 6);
    assert_eq!(
        summary.top_fingerprints[1].source,
        "https://shop.example/cart"
    );
    let invalid: Vec<&str> = summary
        .invalid_reports
        .iter()
        .map(|r| r.raw.as_str())
        .collect();
    assert_eq!(invalid, ["garbage one", "[1, 2"]);
    let short = store
        .summary(
            TimeRange::new(day, day + SignedDuration::from_hours(24)),
            &SummaryOptions::new().top(1),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            short.top_sources.len(),
            short.invalid_reports.len(),
            short.total
        ),
        (1, 1, 15)
    );
    // Partial hours: 00:30 to 02:05 holds minutes 62, 65, 66, 119, 121, 122 (+ 70, 130).
    let part = store
        .summary(
            TimeRange::new(
                day + SignedDuration::from_mins(30),
                day + SignedDuration::from_mins(125),
            ),
            &SummaryOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!((part.total, part.invalid), (7, 0));
    for range in ranges(day) {
        assert_coherent(&*store, range).await;
    }
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["since"], "2026-11-22T00:00:00Z");
    assert_eq!(json["top_fingerprints"][0]["status"], "new");
}

/// Reports are grouped into violations, listed with filters, sorts and pages; statuses and
/// notes are set on one or several; the detail holds the reports and hours.
async fn grouping_and_status(store: Arc<dyn ReportStore>) {
    let day = ts("2026-11-22T00:00:00Z");
    let reports = seeded(day);
    store
        .sink()
        .send(&reports.iter().cloned().collect())
        .await
        .unwrap();
    let page = store
        .violations(&ViolationQuery::new().page(1, 100))
        .await
        .unwrap();
    assert_eq!(page.total, 4, "{:?}", page.violations);
    let all = &page.violations;
    assert!(
        all.windows(2).all(|w| w[0].count >= w[1].count),
        "most reports first"
    );
    let cart = all
        .iter()
        .find(|v| v.document == "https://shop.example/cart")
        .unwrap();
    assert_eq!(
        (cart.count, cart.blocked.as_str(), cart.directive.as_str()),
        (3, "https://cdn.evil.example", "script-src-elem")
    );
    assert_eq!(cart.first_seen, day + SignedDuration::from_mins(1));
    assert_eq!(cart.last_seen, day + SignedDuration::from_mins(119));
    assert_eq!(cart.status, ViolationStatus::New);
    assert_eq!(
        cart.example.blocked_uri.as_deref(),
        Some("https://cdn.evil.example/a.js")
    );
    assert_eq!(cart.example.report_id, reports[0].id);
    let blog = all.iter().find(|v| v.blocked == "eval").unwrap();
    assert_eq!(
        (blog.document_host.as_str(), blog.document.as_str()),
        ("blog.example", "https://Blog.Example:8443/post")
    );
    // Every report of a violation is one of its fingerprint.
    let total: u64 = all.iter().map(|v| v.count).sum();
    assert_eq!(
        total,
        reports
            .iter()
            .filter(|r| r.is_valid() && r.is_csp_violation())
            .count() as u64
    );

    let count = |query: ViolationQuery| {
        let store = store.clone();
        async move { store.violations(&query).await.unwrap().total }
    };
    assert_eq!(count(ViolationQuery::new().text("CDN.EVIL")).await, 1);
    assert_eq!(
        count(ViolationQuery::new().text("%")).await,
        0,
        "no LIKE wildcards"
    );
    assert_eq!(count(ViolationQuery::new().text("_")).await, 0);
    assert_eq!(count(ViolationQuery::new().directive("img-src")).await, 1);
    assert_eq!(
        count(ViolationQuery::new().document_host("BLOG.example")).await,
        1
    );
    assert_eq!(
        count(ViolationQuery::new().document_host("shop.example")).await,
        3
    );
    assert_eq!(
        count(ViolationQuery::new().document_prefix("https://shop.example/c")).await,
        1
    );
    assert_eq!(
        count(ViolationQuery::new().fingerprints([cart.fingerprint, blog.fingerprint])).await,
        2
    );
    let early = TimeRange::new(day, day + SignedDuration::from_mins(61));
    let in_early = store
        .violations(&ViolationQuery::new().range(early))
        .await
        .unwrap();
    assert_eq!(in_early.total, 2);
    assert!(in_early.violations.iter().all(|v| v.in_range == 1));
    let firsts = store
        .violations(&ViolationQuery::new().range(early).seen(Seen::FirstInRange))
        .await
        .unwrap();
    assert_eq!(firsts.total, 2);
    let by_last = store
        .violations(&ViolationQuery::new().sort(ViolationSort::LastSeen))
        .await
        .unwrap();
    assert!(
        by_last
            .violations
            .windows(2)
            .all(|w| w[0].last_seen >= w[1].last_seen)
    );
    let by_first = store
        .violations(&ViolationQuery::new().sort(ViolationSort::FirstSeen))
        .await
        .unwrap();
    assert!(
        by_first
            .violations
            .windows(2)
            .all(|w| w[0].first_seen >= w[1].first_seen)
    );
    // Pages: all of them, once each.
    let mut paged = Vec::new();
    for number in 1..=3 {
        let page = store
            .violations(&ViolationQuery::new().page(number, 3))
            .await
            .unwrap();
        assert_eq!(page.total, 4);
        paged.extend(page.violations.into_iter().map(|v| v.fingerprint));
    }
    assert_eq!(paged, all.iter().map(|v| v.fingerprint).collect::<Vec<_>>());
    let past = store
        .violations(&ViolationQuery::new().page(9, 2))
        .await
        .unwrap();
    assert_eq!((past.violations.len(), past.total), (0, 4));

    // Statuses and notes.
    let two = [cart.fingerprint, blog.fingerprint];
    assert_eq!(
        store
            .set_status(&two, ViolationStatus::Acknowledged, Some("on it"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .set_status(&[Fingerprint(1)], ViolationStatus::Fixed, None)
            .await
            .unwrap(),
        0
    );
    let acknowledged = store
        .violations(&ViolationQuery::new().statuses([ViolationStatus::Acknowledged]))
        .await
        .unwrap();
    assert_eq!(acknowledged.total, 2);
    assert!(
        acknowledged
            .violations
            .iter()
            .all(|v| v.note.as_deref() == Some("on it") && v.status_changed_at.is_some())
    );
    assert!(
        store
            .set_note(cart.fingerprint, Some("vendor script"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_note(Fingerprint(1), Some("nothing"))
            .await
            .unwrap()
    );
    assert_eq!(
        count(ViolationQuery::new().text("VENDOR")).await,
        1,
        "the note is searched"
    );
    store
        .set_status(&[blog.fingerprint], ViolationStatus::Ignored, Some(""))
        .await
        .unwrap();
    let detail = store
        .violation(blog.fingerprint, TimeRange::all(), 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (detail.violation.status, detail.violation.note.as_deref()),
        (ViolationStatus::Ignored, None)
    );
    let summary = store
        .summary(TimeRange::all(), &SummaryOptions::new())
        .await
        .unwrap();
    assert_eq!(summary.ignored, 1);
    assert!(summary.top_blocked.iter().all(|c| c.value != "eval"));

    // The detail.
    let detail = store
        .violation(cart.fingerprint, TimeRange::all(), 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.violation.note.as_deref(), Some("vendor script"));
    assert_eq!(detail.violation.in_range, 3);
    assert_eq!(detail.recent.len(), 2);
    assert_eq!(detail.recent[0].id, reports[2].id, "newest first");
    let hours: Vec<u64> = detail.hourly.iter().map(|h| h.count).collect();
    // Minute 1 in the first hour, minutes 62 and 119 in the second.
    assert_eq!(hours, [1, 2]);
    assert_eq!(detail.hourly[1].hour, day + SignedDuration::from_hours(1));
    assert_eq!(detail.documents.len(), 3, "{:?}", detail.documents);
    assert_eq!(detail.dispositions.len(), 1);
    assert!(
        store
            .violation(Fingerprint(1), TimeRange::all(), 5)
            .await
            .unwrap()
            .is_none()
    );
}

/// New violations are announced once; a fixed one seen again comes back as `new`, marked as
/// a regression, and is announced again; an ignored one stays ignored and silent.
async fn regressions_and_events(store: Arc<dyn ReportStore>) {
    let mut events = store.subscribe();
    let day = ts("2026-11-22T00:00:00Z");
    let at = |m: i64| day + SignedDuration::from_mins(m);
    let first = report_at(
        at(0),
        "https://a.example/",
        "img-src",
        "https://ads.example/1.png",
    );
    let second = report_at(
        at(1),
        "https://a.example/?x",
        "img-src",
        "https://ads.example/2.png",
    );
    let other = report_at(at(2), "https://a.example/", "script-src-elem", "inline");
    let outcome = store
        .write(&vec![first.clone(), second, other.clone()].into())
        .await
        .unwrap();
    assert_eq!(
        outcome.events.len(),
        2,
        "two violations, each announced once"
    );
    assert!(
        outcome
            .events
            .iter()
            .all(|e| e.kind == ViolationEventKind::New)
    );
    let mut received = Vec::new();
    while let Ok(event) = events.try_recv() {
        received.push(event);
    }
    assert_eq!(
        received, outcome.events,
        "subscribers hear what the write returned"
    );
    let ads = outcome
        .events
        .iter()
        .find(|e| e.violation.blocked == "https://ads.example")
        .unwrap();
    assert_eq!(ads.violation.count, 2);
    let again = store
        .write(
            &vec![report_at(
                at(3),
                "https://a.example/",
                "img-src",
                "https://ads.example/3.png",
            )]
            .into(),
        )
        .await
        .unwrap();
    assert!(again.events.is_empty(), "a known violation is not new");

    store
        .set_status(
            &[first.fingerprint],
            ViolationStatus::Fixed,
            Some("removed the ads"),
        )
        .await
        .unwrap();
    store
        .set_status(&[other.fingerprint], ViolationStatus::Ignored, None)
        .await
        .unwrap();
    let back = store
        .write(
            &vec![
                report_at(
                    at(90),
                    "https://a.example/",
                    "img-src",
                    "https://ads.example/4.png",
                ),
                report_at(
                    at(91),
                    "https://a.example/",
                    "img-src",
                    "https://ads.example/5.png",
                ),
                report_at(at(92), "https://a.example/", "script-src-elem", "inline"),
            ]
            .into(),
        )
        .await
        .unwrap();
    assert_eq!(back.events.len(), 1, "{:?}", back.events);
    let regressed = &back.events[0];
    assert_eq!(regressed.kind, ViolationEventKind::Regressed);
    assert_eq!(regressed.violation.fingerprint, first.fingerprint);
    assert_eq!(regressed.violation.status, ViolationStatus::New);
    assert_eq!(regressed.violation.regressed_at, Some(at(90)));
    assert!(regressed.violation.is_regression());
    assert_eq!(regressed.violation.note.as_deref(), Some("removed the ads"));
    assert_eq!(regressed.violation.count, 5);
    assert_eq!(
        events.try_recv().unwrap().kind,
        ViolationEventKind::Regressed
    );
    assert!(matches!(events.try_recv(), Err(TryRecvError::Empty)));
    let ignored = store
        .violation(other.fingerprint, TimeRange::all(), 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ignored.violation.status, ignored.violation.count),
        (ViolationStatus::Ignored, 2)
    );
    let regressions = store
        .violations(
            &ViolationQuery::new()
                .range(TimeRange::new(at(60), at(120)))
                .seen(Seen::RegressedInRange),
        )
        .await
        .unwrap();
    assert_eq!(regressions.total, 1);
    let counts = store.counts(TimeRange::new(at(60), at(120))).await.unwrap();
    assert_eq!((counts.regressed_violations, counts.new_violations), (1, 0));
    assert_eq!(
        store
            .counts(TimeRange::new(day, at(10)))
            .await
            .unwrap()
            .new_violations,
        2
    );
}

/// Retention deletes the old reports, keeps the violation tables coherent with what is left,
/// and keeps each violation's status and history.
async fn retention(store: Arc<dyn ReportStore>) {
    let day = ts("2026-11-22T00:00:00Z");
    let reports = seeded(day);
    store
        .sink()
        .send(&reports.iter().cloned().collect())
        .await
        .unwrap();
    let all = store
        .violations(&ViolationQuery::new().page(1, 100))
        .await
        .unwrap()
        .violations;
    let cart = all
        .iter()
        .find(|v| v.document == "https://shop.example/cart")
        .unwrap()
        .clone();
    store
        .set_status(&[cart.fingerprint], ViolationStatus::Ignored, Some("old"))
        .await
        .unwrap();
    let limit = day + SignedDuration::from_mins(66);
    let older = reports.iter().filter(|r| r.received_at < limit).count() as u64;
    assert_eq!(store.delete_older_than(limit, true).await.unwrap(), older);
    assert_eq!(
        store.counts(TimeRange::all()).await.unwrap().total,
        reports.len() as u64,
        "a dry run deletes nothing"
    );
    assert_eq!(store.delete_older_than(limit, false).await.unwrap(), older);
    assert_eq!(store.delete_older_than(limit, false).await.unwrap(), 0);
    let left = all_reports(&*store, ReportQuery::new(), 100).await;
    assert_eq!(left.len(), reports.len() - older as usize);
    assert!(left.iter().all(|r| r.received_at >= limit));
    for range in ranges(day) {
        assert_coherent(&*store, range).await;
    }
    // Each violation's count is its reports still stored.
    let mut per: BTreeMap<Fingerprint, u64> = BTreeMap::new();
    for r in left.iter().filter(|r| r.is_valid() && r.is_csp_violation()) {
        *per.entry(r.fingerprint).or_default() += 1;
    }
    let after = store
        .violations(&ViolationQuery::new().page(1, 100))
        .await
        .unwrap()
        .violations;
    let counted: BTreeMap<Fingerprint, u64> =
        after.iter().map(|v| (v.fingerprint, v.count)).collect();
    assert_eq!(counted, per);
    // The cart violation kept one report (minute 119), its status, note and first seen.
    let kept = store
        .violation(cart.fingerprint, TimeRange::all(), 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.violation.count, 1);
    assert_eq!(
        (kept.violation.status, kept.violation.note.as_deref()),
        (ViolationStatus::Ignored, Some("old"))
    );
    assert_eq!(kept.violation.first_seen, cart.first_seen);
    // Back again after retention: still ignored, and counted from there.
    store
        .write(
            &vec![report_at(
                day + SignedDuration::from_hours(30),
                "https://shop.example/cart?z",
                "script-src-elem",
                "https://cdn.evil.example/c.js",
            )]
            .into(),
        )
        .await
        .unwrap();
    let back = store
        .violation(cart.fingerprint, TimeRange::all(), 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (back.violation.count, back.violation.status),
        (2, ViolationStatus::Ignored)
    );
    store
        .delete_older_than(day + SignedDuration::from_hours(48), false)
        .await
        .unwrap();
    assert_eq!(store.counts(TimeRange::all()).await.unwrap().total, 0);
    assert_eq!(
        store
            .violations(&ViolationQuery::new())
            .await
            .unwrap()
            .total,
        0
    );
    assert_coherent(&*store, TimeRange::all()).await;
}

/// Every field is hostile: SQL metacharacters, NUL, control characters, huge values. They
/// are stored and read back as data, in fields and in filters alike.
async fn hostile_strings(store: Arc<dyn ReportStore>) {
    let at = ts("2026-11-22T12:00:00Z");
    let sql = "x'); DROP TABLE csp_reports; --\" % _ \\ ? $1 ?1";
    let mut hostile = report_at(
        at,
        &format!("https://evil.example/{sql}"),
        sql,
        &format!("https://{sql}/x"),
    );
    hostile.raw = format!(
        "{{\"csp-report\":{{\"blocked-uri\":\"a\\u0000b\",\"x\":\"{}\"}}}}",
        sql.replace('"', "\\\"")
    )
    .into();
    hostile.user_agent = Some(format!("Mozilla\0NUL {sql}").into());
    hostile.original_policy = Some("script-src 'self' ".repeat(60_000).into());
    hostile.script_sample = Some("\u{1b}[2J<script>alert(1)</script>\r\nX-Header: y".into());
    let mut unparsed = invalid_at(
        at + SignedDuration::from_secs(1),
        "\0\0 binary\u{fffd} garbage ' OR 1=1 --",
    );
    unparsed.user_agent = Some(sql.into());
    let batch: ReportBatch = vec![hostile.clone(), unparsed.clone()].into();
    assert_eq!(store.write(&batch).await.unwrap().inserted, 2);
    let back = all_reports(&*store, ReportQuery::new(), 10).await;
    let by_id: HashMap<_, _> = back.iter().map(|r| (r.id, r)).collect();
    assert_eq!(*by_id[&hostile.id], stored(&*store, &hostile));
    assert_eq!(*by_id[&unparsed.id], stored(&*store, &unparsed));
    let page = store
        .violations(&ViolationQuery::new().text(sql))
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.violations[0].directive, sql);
    assert_eq!(
        store
            .violations(&ViolationQuery::new().directive(sql))
            .await
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        store
            .violations(&ViolationQuery::new().text("' OR '1'='1"))
            .await
            .unwrap()
            .total,
        0
    );
    let found = all_reports(
        &*store,
        ReportQuery::new().text("DROP TABLE csp_reports"),
        10,
    )
    .await;
    assert_eq!(found.len(), 1);
    store
        .set_status(
            &[hostile.fingerprint],
            ViolationStatus::Acknowledged,
            Some(sql),
        )
        .await
        .unwrap();
    let detail = store
        .violation(hostile.fingerprint, TimeRange::all(), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.violation.note.as_deref(), Some(sql));
    assert_eq!(
        detail
            .violation
            .example
            .original_policy
            .as_deref()
            .map(str::len),
        hostile.original_policy.as_deref().map(str::len)
    );
    assert!(store.claim_window(sql, at).await.unwrap());
    assert_coherent(&*store, TimeRange::all()).await;
    store.ping().await.unwrap();
}

/// A window is claimed once, whoever asks.
async fn claims(store: Arc<dyn ReportStore>) {
    let start = ts("2026-11-22T12:00:00Z");
    assert!(store.claim_window("digest", start).await.unwrap());
    assert!(!store.claim_window("digest", start).await.unwrap());
    assert!(
        store
            .claim_window("digest", start + SignedDuration::from_mins(5))
            .await
            .unwrap()
    );
    assert!(store.claim_window("weekly", start).await.unwrap());
    let tries = futures_all(&store, "race", start + SignedDuration::from_hours(1)).await;
    assert_eq!(tries.iter().filter(|t| **t).count(), 1, "{tries:?}");
    // Retention forgets old claims.
    store
        .delete_older_than(start + SignedDuration::from_mins(1), false)
        .await
        .unwrap();
    assert!(store.claim_window("digest", start).await.unwrap());
}

/// A digest window goes to one caller, with the window's summary; ignored violations are
/// counted but left out of its lists.
async fn digests(store: Arc<dyn ReportStore>) {
    let start = ts("2026-11-22T12:00:00Z");
    let at = |s: i64| start + SignedDuration::from_secs(s);
    let reports = vec![
        report_at(
            at(-1),
            "https://a.example/",
            "img-src",
            "https://before.example/",
        ),
        report_at(
            at(0),
            "https://a.example/",
            "img-src",
            "https://ads.example/1",
        ),
        report_at(
            at(10),
            "https://a.example/",
            "img-src",
            "https://ads.example/2",
        ),
        report_at(
            at(20),
            "https://b.example/",
            "script-src",
            "https://noise.example/",
        ),
        report_at(
            at(299),
            "https://a.example/",
            "img-src",
            "https://ads.example/3",
        ),
        report_at(
            at(300),
            "https://a.example/",
            "img-src",
            "https://after.example/",
        ),
    ];
    let noise = reports[3].fingerprint;
    store.write(&ReportBatch::from(reports)).await.unwrap();
    store
        .set_status(&[noise], ViolationStatus::Ignored, None)
        .await
        .unwrap();
    let window = TimeRange::new(start, at(300));
    let options = SummaryOptions::new().top(5);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_digest(window, &options).await.unwrap() })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        won.extend(task.await.unwrap());
    }
    assert_eq!(won.len(), 1, "one caller wins the window");
    let digest = &won[0];
    assert_eq!((digest.since, digest.to), (start, at(300)));
    assert_eq!((digest.total, digest.ignored), (4, 1));
    assert_eq!(digest.top_fingerprints.len(), 1);
    assert_eq!(digest.top_fingerprints[0].count, 3);
    assert_eq!(digest.top_fingerprints[0].blocked, "https://ads.example");
    assert!(
        store
            .claim_digest(window, &options)
            .await
            .unwrap()
            .is_none(),
        "claimed for good"
    );
    // Another length of window is another digest.
    let longer = TimeRange::new(start, at(600));
    let digest = store.claim_digest(longer, &options).await.unwrap().unwrap();
    assert_eq!(digest.total, 5);
}

/// Eight claims of the same window at once.
async fn futures_all(store: &Arc<dyn ReportStore>, name: &str, start: Timestamp) -> Vec<bool> {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let name = name.to_owned();
            tokio::spawn(async move { store.claim_window(&name, start).await.unwrap() })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// Each directive with its reports, and each blocked value with its reports, pages and line.
type EvidenceShape<'a> = Vec<(&'a str, u64, Vec<(&'a str, u64, u64, Option<u32>)>)>;

fn evidence_shape(evidence: &PolicyEvidence) -> EvidenceShape<'_> {
    evidence
        .directives
        .iter()
        .map(|d| {
            let blocked = d.blocked.iter();
            let blocked = blocked.map(|b| (b.blocked.as_str(), b.reports, b.pages, b.line));
            (d.directive.as_str(), d.reports, blocked.collect())
        })
        .collect()
}

/// The policy builder's read: per directive and blocked value, the reports and pages of a
/// range, code kept apart by its place, the policies carried, a document prefix, ignored
/// violations left out; and for any range, the reports of the violation list.
async fn policy_evidence(store: Arc<dyn ReportStore>) {
    let day = ts("2026-11-22T00:00:00Z");
    let at = |minutes: i64| day + SignedDuration::from_mins(minutes);
    let strict = "default-src 'none'; report-uri /r";
    let mut reports = Vec::new();
    let mut add = |minutes, document: &str, directive, blocked, policy: &str, line| {
        let mut report = report_at(at(minutes), document, directive, blocked);
        report.original_policy = Some(policy.into());
        report.line_number = line;
        if blocked == "inline" {
            report.script_sample = Some("window.x = 1".into());
            report.source_file = Some(document.into());
        }
        reports.push(report);
    };
    add(
        10,
        "https://shop.example/a?x=1",
        "img-src",
        "https://cdn.example/1.png",
        strict,
        None,
    );
    add(
        70,
        "https://shop.example/a?x=2",
        "img-src",
        "https://cdn.example/2.png",
        strict,
        None,
    );
    add(
        71,
        "https://shop.example/b",
        "img-src",
        "https://cdn.example/1.png",
        strict,
        None,
    );
    add(
        72,
        "https://shop.example/b",
        "img-src",
        "data:image/png;base64,AA",
        "img-src 'self'",
        None,
    );
    add(
        130,
        "https://shop.example/a",
        "script-src-elem",
        "inline",
        strict,
        Some(3),
    );
    add(
        131,
        "https://shop.example/b",
        "script-src-elem",
        "inline",
        strict,
        Some(9),
    );
    add(
        132,
        "https://shop.example/b",
        "script-src-elem",
        "inline",
        strict,
        Some(9),
    );
    add(
        140,
        "https://blog.example/p",
        "img-src",
        "https://ads.example/x.png",
        strict,
        None,
    );
    add(
        1500,
        "https://shop.example/late",
        "font-src",
        "https://fonts.example/f.woff",
        strict,
        None,
    );
    let mut other = report_at(at(20), "https://shop.example/a", "img-src", "data");
    other.report_type = "deprecation".into();
    other.fingerprint = Fingerprint::of(&other);
    reports.push(other);
    reports.push(invalid_at(at(21), "not json"));
    store
        .sink()
        .send(&reports.iter().cloned().collect())
        .await
        .unwrap();
    let ads = store
        .violations(&ViolationQuery::new().text("ads.example"))
        .await
        .unwrap()
        .violations[0]
        .fingerprint;
    store
        .set_status(&[ads], ViolationStatus::Ignored, None)
        .await
        .unwrap();

    let day_range = TimeRange::new(at(0), at(24 * 60));
    let evidence = store
        .policy_evidence(&EvidenceQuery::new(day_range))
        .await
        .unwrap();
    assert_eq!((evidence.since, evidence.to), (at(0), at(24 * 60)));
    assert_eq!(evidence.reports, 7, "{evidence:?}");
    let expected: EvidenceShape<'_> = vec![
        (
            "img-src",
            4,
            vec![("https://cdn.example", 3, 2, None), ("data", 1, 1, None)],
        ),
        (
            "script-src-elem",
            3,
            vec![("inline", 2, 1, Some(9)), ("inline", 1, 1, Some(3))],
        ),
    ];
    assert_eq!(
        evidence_shape(&evidence),
        expected,
        "{} {evidence:?}",
        store.name()
    );
    let cdn = &evidence.directives[0].blocked[0];
    let documents: Vec<(&str, u64)> = cdn
        .documents
        .iter()
        .map(|c| (c.value.as_str(), c.count))
        .collect();
    assert_eq!(
        documents,
        [("https://shop.example/a", 2), ("https://shop.example/b", 1)]
    );
    let inline = &evidence.directives[1].blocked[0];
    assert_eq!(inline.sample.as_deref(), Some("window.x = 1"));
    assert_eq!(
        inline.source_file.as_deref(),
        Some("https://shop.example/b")
    );
    let policies: Vec<(&str, u64)> = evidence
        .policies
        .iter()
        .map(|c| (c.value.as_str(), c.count))
        .collect();
    assert_eq!(policies, [(strict, 6), ("img-src 'self'", 1)]);

    // A range off the hours, a prefix, ignored ones asked for.
    let part = store
        .policy_evidence(
            &EvidenceQuery::new(TimeRange::new(at(65), at(131)))
                .document_prefix("https://shop.example/b"),
        )
        .await
        .unwrap();
    let blocked: Vec<(&str, &str, u64)> = part
        .directives
        .iter()
        .flat_map(|d| {
            d.blocked
                .iter()
                .map(|b| (d.directive.as_str(), b.blocked.as_str(), b.reports))
        })
        .collect();
    assert_eq!(
        blocked,
        [
            ("img-src", "data", 1),
            ("img-src", "https://cdn.example", 1)
        ]
    );
    let with_ignored = store
        .policy_evidence(&EvidenceQuery::new(day_range).include_ignored(true))
        .await
        .unwrap();
    assert_eq!(with_ignored.reports, 8);
    let empty = store
        .policy_evidence(&EvidenceQuery::new(TimeRange::new(at(-60), at(0))))
        .await
        .unwrap();
    assert!(empty.is_empty() && empty.reports == 0 && empty.policies.is_empty());

    // For any range: the reports of the non-ignored violations the list counts.
    let mut more = seeded(day);
    for report in &mut more {
        report.received_at += SignedDuration::from_hours(30);
    }
    store
        .sink()
        .send(&more.into_iter().collect())
        .await
        .unwrap();
    for range in ranges(day + SignedDuration::from_hours(30))
        .into_iter()
        .chain(ranges(day))
    {
        let listed: u64 = store
            .violations(
                &ViolationQuery::new()
                    .range(range)
                    .statuses([
                        ViolationStatus::New,
                        ViolationStatus::Acknowledged,
                        ViolationStatus::Fixed,
                    ])
                    .page(1, 1000),
            )
            .await
            .unwrap()
            .violations
            .iter()
            .map(|v| v.in_range)
            .sum();
        let evidence = store
            .policy_evidence(&EvidenceQuery::new(range))
            .await
            .unwrap();
        assert_eq!(evidence.reports, listed, "{} {range}", store.name());
        let summed: u64 = evidence.directives.iter().map(|d| d.reports).sum();
        assert_eq!(summed, listed, "{range}");
    }
}
