//! A data set for the store benchmarks: `n` reports spread evenly over the 30 days before
//! `end`, grouped into 2,000 violations whose sizes follow a Zipf law (a few loud violations,
//! a long tail), with 1% invalid reports. The same arguments give the same reports, ids
//! aside. Used by `scripts/seed-store` and `benches/store_summary.rs`.

#![allow(dead_code, unreachable_pub)]

use jiff::{SignedDuration, Timestamp};
use tower_csp_reports::{Fingerprint, Report, ReportBatch, WireFormat};

/// How many violations the data set has.
pub const VIOLATIONS: usize = 2_000;
/// How many days it spans.
pub const DAYS: i64 = 30;

const DIRECTIVES: [&str; 8] = [
    "script-src-elem",
    "img-src",
    "style-src-elem",
    "connect-src",
    "font-src",
    "frame-src",
    "media-src",
    "worker-src",
];
const BLOCKED: [&str; 6] = [
    "https://cdn{}.tracker.example/pixel.js",
    "inline",
    "https://fonts{}.example/a.woff2",
    "data:image/png;base64,AAAA",
    "eval",
    "wss://live{}.example/socket",
];

/// A deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Cumulative Zipf weights of the violations, for sampling.
fn zipf() -> Vec<f64> {
    let mut total = 0.0;
    let cumulative: Vec<f64> = (1..=VIOLATIONS)
        .map(|k| {
            total += 1.0 / k as f64;
            total
        })
        .collect();
    cumulative.into_iter().map(|c| c / total).collect()
}

/// The `i`-th violation's document, directive and blocked URI.
fn violation(i: usize) -> (String, &'static str, String) {
    let site = i % 40;
    let document = format!("https://site{site}.example/page/{i}?session=abc&n={i}");
    let directive = DIRECTIVES[i % DIRECTIVES.len()];
    let blocked =
        BLOCKED[(i / DIRECTIVES.len()) % BLOCKED.len()].replace("{}", &(i % 17).to_string());
    (document, directive, blocked)
}

/// The reports of the data set, in batches of `batch` in time order, handed to `each`.
pub fn generate(n: u64, end: Timestamp, batch: usize, mut each: impl FnMut(ReportBatch)) {
    let weights = zipf();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let span = SignedDuration::from_hours(24 * DAYS).as_micros() as f64;
    let start = end - SignedDuration::from_hours(24 * DAYS);
    let mut reports = Vec::with_capacity(batch);
    for k in 0..n {
        let at = start + SignedDuration::from_micros((span * k as f64 / n as f64) as i64);
        let roll = (rng.next() % 1_000_000) as f64 / 1_000_000.0;
        let i = weights.partition_point(|w| *w < roll).min(VIOLATIONS - 1);
        let (document, directive, blocked) = violation(i);
        let mut r = Report::csp(&document, directive, &blocked);
        r.received_at = at;
        r.format = WireFormat::ReportingApi;
        r.user_agent = Some(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Safari/537.36"
                .into(),
        );
        r.original_policy = Some(
            "default-src 'self'; script-src 'self' https://cdn.shop.example; img-src 'self' \
             data:; report-to csp-endpoint"
                .into(),
        );
        r.disposition = Some(if k % 3 == 0 { "report" } else { "enforce" }.into());
        r.status_code = Some(200);
        r.raw = format!(
            r#"{{"type":"csp-violation","age":12,"url":"{document}","body":{{"documentURL":"{document}","blockedURL":"{blocked}","effectiveDirective":"{directive}","disposition":"enforce","statusCode":200}}}}"#
        )
        .into();
        if k % 100 == 99 {
            r.format = WireFormat::Unparsed;
            r.raw = format!("not json {k}").into();
            r.invalid_reason = Some("body is not JSON".to_owned());
            r.fingerprint = Fingerprint::of(&r);
        }
        reports.push(r);
        if reports.len() == batch {
            each(std::mem::take(&mut reports).into());
        }
    }
    if !reports.is_empty() {
        each(reports.into());
    }
}
