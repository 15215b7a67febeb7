//! A store down for longer than a blip, through the real binary over real sockets: four
//! clients post a steady stream of reports to `csp-reports serve --database-url` on a
//! Postgres of the test's own, which is stopped 10 s in (`pg_ctl stop -m fast`) and started
//! again 30 s later. Every report answered 2xx is stored exactly once, what could not be
//! queued is answered 503 (never a 204 that is then lost), memory stays within the queue's
//! bound, and `/readyz` says 503 while Postgres is down and 200 once it is back.
#![cfg(all(feature = "cli", target_os = "linux"))]

#[path = "support/http.rs"]
mod http_client;
#[path = "support/postgres.rs"]
mod pg;
#[path = "support/served.rs"]
mod served;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use http_client::legacy;
use hyper_util::rt::TokioIo;
use served::Served;
use tokio::net::TcpStream;

const CLIENTS: usize = 4;
/// Each client's pace: about 700 requests a second in all while the store keeps up.
const PACE: Duration = Duration::from_micros(5_700);
const BEFORE_OUTAGE: Duration = Duration::from_secs(10);
const OUTAGE: Duration = Duration::from_secs(30);
const AFTER_OUTAGE: Duration = Duration::from_secs(8);
/// What the collector may hold beyond its size at the start: its queue of 10,000 reports,
/// the requests waiting for room, and the allocator's slack.
const RSS_GROWTH_BOUND_KIB: u64 = 128 * 1024;

/// What one client was answered: the documents of the reports answered 2xx and 503.
#[derive(Debug, Default)]
struct Answers {
    stored: Vec<String>,
    refused: Vec<String>,
    refused_without_retry_after: usize,
    other: BTreeMap<String, usize>,
}

/// Posts one legacy report per request on a keep-alive connection (a new one when the
/// server closes it), each with a document of its own, until `stop`.
async fn client(addr: SocketAddr, id: usize, stop: Arc<AtomicBool>) -> Answers {
    let mut answers = Answers::default();
    let mut sender = None;
    let mut every = tokio::time::interval(PACE);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        every.tick().await;
        if sender.is_none() {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let (s, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(connection);
            sender = Some(s);
        }
        let Some(s) = sender.as_mut() else { continue };
        let document = format!("https://app.example/c{id}/r{i}");
        let body = legacy(&document, "img-src", "https://img.example/x.png");
        let request = Request::post("/csp-report")
            .header("host", "127.0.0.1")
            .header("content-type", "application/csp-report")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = match s.send_request(request).await {
            Ok(response) => response,
            Err(error) => {
                *answers.other.entry(format!("error: {error}")).or_default() += 1;
                sender = None;
                continue;
            }
        };
        let status = response.status();
        let retry_after = response.headers().contains_key("retry-after");
        let closes = response
            .headers()
            .get("connection")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let _ = response.into_body().collect().await;
        if status.is_success() {
            answers.stored.push(document);
        } else if status == 503 {
            answers.refused.push(document);
            answers.refused_without_retry_after += usize::from(!retry_after);
        } else {
            *answers.other.entry(status.to_string()).or_default() += 1;
        }
        if closes {
            sender = None;
        }
    }
    answers
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let answer = http_client::send(addr, http_client::request("GET", path)).await;
    (answer.status.as_u16(), answer.body)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// `/readyz` as a load balancer sees it: (seconds since the start, status), every 250 ms.
async fn probe_readiness(
    addr: SocketAddr,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<(f64, u16)> {
    let mut seen = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let (status, _) = get(addr, "/readyz").await;
        seen.push((start.elapsed().as_secs_f64(), status));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_for_30_s_loses_no_report_answered_2xx() {
    let server = Arc::new(
        tokio::task::spawn_blocking(pg::Server::dedicated)
            .await
            .unwrap(),
    );
    let db = pg::TestDb::on(server.config("postgres")).await;
    let dbname = db.config.get_dbname().unwrap().to_owned();
    let url = format!("postgres://postgres@127.0.0.1:{}/{dbname}", server.port());
    let mut served = Served::start(&[
        "--database-url",
        &url,
        "--filter",
        "none",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let addr = served.addr;
    let metrics_line = served.wait_for_line("metrics on http://").unwrap();
    let metrics: SocketAddr =
        serde_json::from_str::<serde_json::Value>(&metrics_line).unwrap()["metrics_address"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    assert_eq!(get(addr, "/readyz").await.0, 200, "ready before the outage");
    let pid = served.pid();
    let rss_at_start = rss_kib(pid);

    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(addr, id, Arc::clone(&stop))))
        .collect();
    let prober = tokio::spawn(probe_readiness(addr, start, Arc::clone(&stop)));
    let rss_peak = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            peak
        })
    };

    tokio::time::sleep(BEFORE_OUTAGE).await;
    let outage = {
        let server = Arc::clone(&server);
        tokio::task::spawn_blocking(move || {
            server.stop();
            let down = start.elapsed().as_secs_f64();
            std::thread::sleep(OUTAGE);
            server.start();
            (down, start.elapsed().as_secs_f64())
        })
        .await
        .unwrap()
    };
    let (down_at, up_at) = outage;
    tokio::time::sleep(AFTER_OUTAGE).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = Answers::default();
    for client in clients {
        let one = client.await.unwrap();
        answers.stored.extend(one.stored);
        answers.refused.extend(one.refused);
        answers.refused_without_retry_after += one.refused_without_retry_after;
        for (what, n) in one.other {
            *answers.other.entry(what).or_default() += n;
        }
    }
    let readiness = prober.await.unwrap();
    let rss_peak = rss_peak.await.unwrap();

    // The queue drains once Postgres is back.
    let deadline = Instant::now() + Duration::from_secs(30);
    let queued = loop {
        let (_, text) = get(metrics, "/metrics").await;
        let queued = text
            .lines()
            .find_map(|l| l.strip_prefix("csp_reports_sink_queued{sink=\"postgres\"} "))
            .and_then(|v| v.parse::<f64>().ok());
        if queued == Some(0.0) || Instant::now() > deadline {
            break queued;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ready_after = get(addr, "/readyz").await.0;
    let log = served.stop();

    let client = db.client().await;
    let rows = client
        .query(
            "SELECT document_uri, count(*), count(DISTINCT id) FROM csp_reports GROUP BY 1",
            &[],
        )
        .await
        .unwrap();
    let mut stored_rows = HashSet::new();
    let mut duplicated = Vec::new();
    for row in &rows {
        let document: String = row.get(0);
        let (n, ids): (i64, i64) = (row.get(1), row.get(2));
        if n != 1 || ids != 1 {
            duplicated.push((document.clone(), n, ids));
        }
        stored_rows.insert(document);
    }
    let answered_2xx: HashSet<String> = answers.stored.iter().cloned().collect();
    let refused: HashSet<String> = answers.refused.iter().cloned().collect();
    let lost: Vec<_> = answered_2xx.difference(&stored_rows).take(5).collect();
    let refused_but_stored: Vec<_> = refused.intersection(&stored_rows).take(5).collect();
    let down_probes: Vec<_> = readiness
        .iter()
        .filter(|(at, _)| *at > down_at + 2.0 && *at < up_at - 0.5)
        .collect();
    let up_probes_before: Vec<_> = readiness.iter().filter(|(at, _)| *at < down_at).collect();

    eprintln!(
        "outage: {} answered 2xx, {} answered 503, {} rows, peak RSS {} KiB (start {} KiB), \
         Postgres down {down_at:.1} s to {up_at:.1} s, {} readiness probes while down",
        answers.stored.len(),
        answers.refused.len(),
        rows.len(),
        rss_peak,
        rss_at_start,
        down_probes.len(),
    );

    assert!(
        answers.other.is_empty(),
        "other answers: {:?}",
        answers.other
    );
    assert!(lost.is_empty(), "answered 2xx but not stored: {lost:?}");
    assert!(
        duplicated.is_empty(),
        "stored more than once: {duplicated:?}"
    );
    assert_eq!(
        rows.len(),
        answered_2xx.len(),
        "rows == reports answered 2xx"
    );
    assert!(
        refused_but_stored.is_empty(),
        "answered 503 yet stored: {refused_but_stored:?}"
    );
    assert!(
        !answers.refused.is_empty(),
        "the queue never filled: the outage was too short to test admission"
    );
    assert_eq!(
        answers.refused_without_retry_after, 0,
        "503 without Retry-After"
    );
    assert_eq!(
        queued,
        Some(0.0),
        "the queue did not drain after the outage"
    );
    assert!(
        rss_peak < rss_at_start + RSS_GROWTH_BOUND_KIB,
        "RSS grew from {rss_at_start} KiB to {rss_peak} KiB"
    );
    assert!(
        up_probes_before.iter().all(|(_, status)| *status == 200),
        "not ready before the outage: {up_probes_before:?}"
    );
    assert!(
        !down_probes.is_empty() && down_probes.iter().all(|(_, status)| *status == 503),
        "/readyz while Postgres was down: {down_probes:?}"
    );
    assert_eq!(ready_after, 200, "/readyz once Postgres is back");
    assert!(
        !log.iter().any(|line| line.contains("\"level\":\"ERROR\"")),
        "errors in the log"
    );
}
