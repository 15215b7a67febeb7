//! `csp-reports serve`'s health, readiness and metrics, through the real binary over real
//! sockets: metrics on their own listener (and on the public one only when asked), the
//! Prometheus text of the library's counters and histograms, configurable health paths, and
//! the flags' errors.
#![cfg(feature = "cli")]

#[path = "support/http.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http_client::{legacy, post, request, send};
use served::Served;

const BIN: &str = env!("CARGO_BIN_EXE_csp-reports");

/// The address the metrics listener logged.
fn metrics_address(served: &mut Served) -> SocketAddr {
    let line = served
        .wait_for_line("metrics on http://")
        .expect("serve logged no metrics address");
    let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    event["metrics_address"]
        .as_str()
        .expect("a metrics_address field")
        .parse()
        .expect("an address")
}

/// The value of the sample named exactly `name` (labels included), if there is one.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_served_on_their_own_listener_and_not_on_the_public_one() {
    let mut served = Served::start(&["--no-store", "--metrics-listen", "127.0.0.1:0"]);
    let public = served.addr;
    let private = metrics_address(&mut served);
    assert_ne!(public, private);

    for i in 0..3 {
        let body = legacy(
            &format!("https://s.example/p{i}"),
            "img-src",
            "https://x.example/a.png",
        );
        let answer = send(public, post("/csp-report", "application/csp-report", body)).await;
        assert_eq!(answer.status.as_u16(), 204, "{}", answer.body);
    }
    let garbage = send(public, post("/csp-report", "application/csp-report", "{")).await;
    assert_eq!(garbage.status.as_u16(), 400);

    let hidden = send(public, request("GET", "/metrics")).await;
    assert_eq!(hidden.status.as_u16(), 404, "metrics on the public port");

    // The log sink's calls are timed once its worker has them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let answer = send(private, request("GET", "/metrics")).await;
        assert_eq!(answer.status.as_u16(), 200);
        assert_eq!(
            answer.headers["content-type"], "text/plain; version=0.0.4",
            "{:?}",
            answer.headers
        );
        let delivered = sample(
            &answer.body,
            "csp_reports_sink_delivered_total{sink=\"tracing\"}",
        );
        if delivered == Some(4.0) || Instant::now() > deadline {
            break answer.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let expected = [
        ("csp_reports_requests_total", 4.0),
        ("csp_reports_received_total", 4.0),
        ("csp_reports_invalid_total", 1.0),
        ("csp_reports_accepted_total", 4.0),
        ("csp_reports_rejected_overload_total", 0.0),
        ("csp_reports_request_duration_seconds_count", 4.0),
        ("csp_reports_sink_delivered_total{sink=\"tracing\"}", 4.0),
        ("csp_reports_sink_dropped_total{sink=\"tracing\"}", 0.0),
        ("csp_reports_sink_queued{sink=\"tracing\"}", 0.0),
    ];
    for (name, value) in expected {
        assert_eq!(sample(&metrics, name), Some(value), "{name} in:\n{metrics}");
    }
    let calls = sample(
        &metrics,
        "csp_reports_sink_delivery_duration_seconds_count{sink=\"tracing\"}",
    )
    .unwrap_or(0.0);
    assert!(calls >= 1.0, "no timed call to the log sink:\n{metrics}");
    for line in [
        "# HELP csp_reports_requests_total The number of requests to a report path.",
        "# TYPE csp_reports_requests_total counter",
        "# TYPE csp_reports_sink_queued gauge",
        "# TYPE csp_reports_request_duration_seconds histogram",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in:\n{metrics}"
        );
    }
    // Every request took less than the largest bucket, so the last one holds all four.
    assert_eq!(
        sample(
            &metrics,
            "csp_reports_request_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        Some(4.0),
        "{metrics}"
    );

    for addr in [public, private] {
        let health = send(addr, request("GET", "/healthz")).await;
        assert_eq!(
            (health.status.as_u16(), health.body.as_str()),
            (200, "ok\n")
        );
        let nosniff = health.headers.get("x-content-type-options");
        assert_eq!(nosniff.map(|v| v.as_bytes()), Some(&b"nosniff"[..]));
        // Nothing to reach with --no-store: ready.
        let ready = send(addr, request("GET", "/readyz")).await;
        assert_eq!(ready.status.as_u16(), 200, "{}", ready.body);
    }
    served.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn public_metrics_and_health_paths_are_configurable() {
    // The default store: a SQLite file in the server's own directory.
    let served = Served::start(&[
        "--public-metrics",
        "--healthz-path",
        "/live",
        "--readyz-path",
        "/ready",
    ]);
    let addr = served.addr;
    let cases = [
        ("/live", 200, "ok\n"),
        ("/ready", 200, "ready\n"),
        ("/healthz", 404, "not found\n"),
        ("/readyz", 404, "not found\n"),
    ];
    for (path, status, body) in cases {
        let answer = send(addr, request("GET", path)).await;
        assert_eq!(
            (answer.status.as_u16(), answer.body.as_str()),
            (status, body),
            "{path}"
        );
    }
    let metrics = send(addr, request("GET", "/metrics")).await;
    assert_eq!(metrics.status.as_u16(), 200);
    assert_eq!(
        sample(&metrics.body, "csp_reports_sink_queued{sink=\"sqlite\"}"),
        Some(0.0),
        "{}",
        metrics.body
    );
    served.stop();
}

/// Runs `csp-reports serve` with `options`, which must make it fail; returns its exit code
/// and standard error. A server that starts after all is killed, and the test fails.
fn serve_fails(options: &[&str]) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("csp-reports-health-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("CSP_REPORTS_") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .current_dir(&dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--no-store"])
        .args(options)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start csp-reports");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{options:?}: serve started");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_health_and_metrics_flags_are_refused() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--metrics-listen", "localhost"], 2, "--metrics-listen"),
        (&["--healthz-path", "healthz"], 2, "a path starts with /"),
        (&["--readyz-path", "/ready?x"], 2, "no query"),
        (&["--readyz-path", "/csp-report"], 2, "already taken"),
        (&["--healthz-path", "/metrics"], 2, "already taken"),
        (
            &["--healthz-path", "/h", "--readyz-path", "/h"],
            2,
            "are both /h",
        ),
        (&["--metrics-listen", &taken], 1, "cannot listen on"),
    ];
    for (options, code, says) in cases {
        let (exit, stderr) = serve_fails(options);
        assert_eq!(exit, Some(*code), "{options:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{options:?} should say {says:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{options:?}: {stderr}");
    }
}
