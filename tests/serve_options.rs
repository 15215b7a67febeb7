//! `csp-reports serve`'s rate limit, sampling, filters and report log, and the config file,
//! through the real binary over real sockets; every bad value with its message and exit code.
#![cfg(feature = "cli")]

#[path = "support/http.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use http_client::{legacy, post, send};
use served::Served;

const BIN: &str = env!("CARGO_BIN_EXE_csp-reports");

/// A directory of its own, for one test's files.
fn scratch() -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "csp-reports-options-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the binary to its end in `dir`, with these and no other `CSP_REPORTS_*` variables.
fn run_in(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("CSP_REPORTS_") {
            command.env_remove(key);
        }
    }
    command
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run csp-reports")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The per-report log events among log lines.
fn report_events(log: &[String]) -> Vec<serde_json::Value> {
    log.iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["message"] == "CSP violation report")
        .collect()
}

async fn post_legacy(served: &Served, document: &str, blocked: &str) -> u16 {
    send(
        served.addr,
        post(
            "/csp-report",
            "application/csp-report",
            legacy(document, "script-src-elem", blocked),
        ),
    )
    .await
    .status
    .as_u16()
}

#[tokio::test]
async fn the_rate_limit_answers_429_past_the_burst() {
    let dir = scratch();
    let db = format!("sqlite://{}/reports.db", dir.display());
    let served = Served::start(&["--database-url", &db, "--rate-limit", "2/1h"]);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(post_legacy(&served, "https://example.com/", "inline").await);
    }
    assert_eq!(statuses, [204, 204, 429]);
    let refused = send(
        served.addr,
        post(
            "/csp-report",
            "application/csp-report",
            legacy("https://example.com/", "img-src", "data"),
        ),
    )
    .await;
    assert_eq!(refused.status.as_u16(), 429);
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1800).contains(&retry), "Retry-After: {retry}");
    // The log line is on by default, at WARN with the target csp_reports.
    let log = served.stop();
    let events = report_events(&log);
    assert_eq!(events.len(), 2, "{log:#?}");
    assert!(
        events
            .iter()
            .all(|e| e["target"] == "csp_reports" && e["level"] == "WARN")
    );
}

#[tokio::test]
async fn filters_sampling_and_the_report_log_target() {
    let dir = scratch();
    let filters = dir.join("drop.txt");
    std::fs::write(
        &filters,
        "# known noise\nms-appx-web:\nads.example   # and subdomains\nhttps://cdn.example/ads/\n",
    )
    .unwrap();
    let served = Served::start(&[
        "--no-store",
        "--log",
        "info",
        "--filter-file",
        filters.to_str().unwrap(),
        "--allow-host",
        "example.com,example.org",
        "--sampling",
        "2,3",
        "--report-log",
        "INFO",
        "--report-log-target",
        "security::csp",
    ]);
    // Each dropped by one filter: the file's host, scheme and prefix, then --allow-host, then
    // the default filter (an extension).
    for (document, blocked) in [
        ("https://example.com/", "https://px.ads.example/p.gif"),
        ("https://example.com/", "ms-appx-web://app/x.js"),
        ("https://example.com/", "https://cdn.example/ads/a.js"),
        (
            "https://example.com.evil.test/",
            "https://cdn.example/lib.js",
        ),
        ("https://stranger.test/", "https://cdn.example/lib.js"),
        ("https://example.com/", "chrome-extension://abc/x.js"),
    ] {
        assert_eq!(post_legacy(&served, document, blocked).await, 204);
    }
    // One violation ten times: the first 2, then one in 3 (indexes 2, 5 and 8).
    for _ in 0..10 {
        let status = post_legacy(
            &served,
            "https://shop.example.com/a",
            "https://cdn.example/lib.js",
        );
        assert_eq!(status.await, 204);
    }
    // Another host allowed, another violation: kept.
    assert_eq!(
        post_legacy(
            &served,
            "https://www.example.org/",
            "https://cdn.example/ads2/x.js"
        )
        .await,
        204
    );
    let log = served.stop();
    let events = report_events(&log);
    let blocked: Vec<&str> = events
        .iter()
        .map(|e| e["blocked_uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        blocked
            .iter()
            .filter(|b| **b == "https://cdn.example/lib.js")
            .count(),
        5,
        "{blocked:?}"
    );
    assert_eq!(blocked.len(), 6, "{blocked:?}");
    assert!(blocked.contains(&"https://cdn.example/ads2/x.js"));
    for event in &events {
        assert_eq!(event["target"], "security::csp", "{event}");
        assert_eq!(event["level"], "INFO", "{event}");
        assert!(
            event["document_uri"]
                .as_str()
                .unwrap()
                .contains(".example.")
        );
    }
}

#[tokio::test]
async fn the_report_log_can_be_off_when_the_store_keeps_the_reports() {
    let dir = scratch();
    let db = format!("sqlite://{}/reports.db", dir.display());
    let served = Served::start(&["--database-url", &db, "--report-log", "off"]);
    assert_eq!(
        post_legacy(&served, "https://example.com/", "inline").await,
        204
    );
    let log = served.stop();
    assert!(report_events(&log).is_empty(), "{log:#?}");
    let summary = run_in(
        &dir,
        &[],
        &[
            "summary",
            "--database-url",
            &db,
            "--since",
            "1 hour ago",
            "--to",
            "now",
        ],
    );
    assert!(summary.status.success(), "{}", text(&summary.stderr));
    assert!(
        text(&summary.stdout).contains("inline"),
        "{}",
        text(&summary.stdout)
    );
}

#[test]
fn bad_values_are_usage_errors_that_say_why() {
    let dir = scratch();
    std::fs::write(dir.join("bad.txt"), "ads.example\n\nnot a host\n").unwrap();
    std::fs::write(dir.join("bad-url.txt"), "# x\nhttps:///ads/\n").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--rate-limit", "fast"],
            "cannot read \"fast\" as a rate (e.g. 20/1m",
        ),
        (&["--rate-limit", "0/1m"], "at least one request"),
        (&["--rate-limit", "20/0s"], "must be longer than zero"),
        (&["--sampling", "10"], "cannot read \"10\" as K,N"),
        (&["--sampling", "10,0"], "one_in must be at least 1"),
        (
            &["--sampling", "1,1", "--sampling-period", "0s"],
            "must be longer than zero",
        ),
        (
            &["--filter-file", "missing.txt"],
            "cannot read the filter file missing.txt",
        ),
        (
            &["--filter-file", "bad.txt"],
            "filter file bad.txt, line 3: \"not a host\" is not a scheme",
        ),
        (
            &["--filter-file", "bad-url.txt"],
            "filter file bad-url.txt, line 2",
        ),
        (
            &["--allow-host", "https://example.com/"],
            "--allow-host: invalid allowed hosts",
        ),
        (
            &["--report-log", "loud"],
            "invalid value 'loud' for '--report-log",
        ),
        (&["--report-log-target", "a b"], "a target is letters"),
        (
            &["--report-log", "off"],
            "--report-log off with --no-store would keep no record",
        ),
    ];
    for (options, message) in cases {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--no-store"];
        args.extend_from_slice(options);
        let out = run_in(&dir, &[], &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{options:?}: {stderr}");
        assert!(stderr.contains(message), "{options:?}: {stderr}");
    }
}
