//! `csp-reports serve --nats-url` and `csp-reports consume`, the real binaries between a real
//! `nats-server -js` and a real Postgres, reports sent over real HTTP: the NATS server
//! restarted mid-stream, a consumer killed mid-batch then restarted, two collectors and two
//! consumers at once. In every case the rows are exactly the reports answered 2xx: each
//! report (one unique document URL per report) stored once, under one id, none lost.
#![cfg(feature = "cli")]

#[path = "support/http.rs"]
mod http_client;
#[path = "support/nats.rs"]
mod nats;
#[path = "support/postgres.rs"]
mod pg;
#[path = "support/served.rs"]
mod served;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_client::{legacy, post, send};
use nats::NatsServer;
use pg::TestDb;
use served::Served;
use tower_csp_reports::nats::async_nats::jetstream;

const BIN: &str = env!("CARGO_BIN_EXE_csp-reports");
const DURABLE: &str = "csp-reports-store";

/// The stream's limits, small enough for any disk.
const STREAM_FLAGS: [&str; 4] = ["--nats-max-bytes", "64MiB", "--nats-max-age", "2d"];

fn collector(server: &NatsServer) -> Served {
    let url = server.url();
    let mut options = vec!["--nats-url", &url, "--filter", "none"];
    options.extend(STREAM_FLAGS);
    Served::start(&options)
}

/// A consumer quick to notice things: small batches, short waits, and a 2 s `ack_wait`, so
/// that what a killed consumer held is delivered again within the test.
fn consumer(server: &NatsServer, db: &TestDb) -> Served {
    let (url, db_url) = (server.url(), db.url());
    let mut options = vec![
        "--nats-url",
        &url,
        "--database-url",
        &db_url,
        "--batch",
        "50",
        "--max-wait",
        "200ms",
        "--ack-wait",
        "2s",
    ];
    options.extend(STREAM_FLAGS);
    Served::consume(&options)
}

fn document(tag: &str, i: usize) -> String {
    format!("https://app.example/{tag}/{i}")
}

/// Sends report `i` of `tag` and says whether it was answered 2xx.
async fn report(collector: std::net::SocketAddr, tag: &str, i: usize) -> bool {
    let body = legacy(&document(tag, i), "img-src", "https://cdn.example/x.png");
    let answer = send(
        collector,
        post("/csp-report", "application/csp-report", body),
    )
    .await;
    answer.status.is_success()
}

/// Each stored document URL, with how many rows and how many distinct ids it has.
async fn stored(db: &TestDb) -> BTreeMap<String, (i64, i64)> {
    db.client()
        .await
        .query(
            "SELECT document_uri, count(*), count(DISTINCT id) FROM csp_reports GROUP BY 1",
            &[],
        )
        .await
        .expect("read the reports")
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect()
}

/// Waits until the table has `expected` rows (or 45 s passed), then checks that the stored
/// reports are exactly the documents in `answered`, each once.
async fn assert_exactly(db: &TestDb, answered: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(45);
    let expected = answered.len() as i64;
    loop {
        let rows = db.count("csp_reports").await;
        if rows >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Anything more that was on its way would be a duplicate: give it a moment to land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored = stored(db).await;
    let lost: Vec<&String> = answered
        .iter()
        .filter(|d| !stored.contains_key(*d))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} reports answered 2xx are not stored: {lost:?}",
        lost.len(),
        answered.len()
    );
    let doubled: Vec<_> = stored.iter().filter(|(_, n)| **n != (1, 1)).collect();
    assert!(doubled.is_empty(), "stored more than once: {doubled:?}");
    let unanswered: Vec<&String> = stored.keys().filter(|d| !answered.contains(d)).collect();
    assert!(
        unanswered.is_empty(),
        "stored, never answered 2xx: {unanswered:?}"
    );
    assert_eq!(db.count("csp_reports").await, expected);
}

/// The `stopped` line's counter `name`.
fn counter(log: &[String], name: &str) -> u64 {
    let line = log
        .iter()
        .rfind(|line| line.contains("\"stopped\""))
        .unwrap_or_else(|| panic!("no stopped line in {log:?}"));
    let event: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    event[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

async fn durable_info(server: &NatsServer) -> jetstream::consumer::Info {
    jetstream::new(server.client().await)
        .get_stream("CSP_REPORTS")
        .await
        .expect("the stream")
        .consumer_info(DURABLE)
        .await
        .expect("the durable consumer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_server_restarted_mid_stream_loses_and_duplicates_nothing() {
    let server = Arc::new(NatsServer::start_new());
    let db = TestDb::new().await;
    let serve = collector(&server);
    let consume = consumer(&server, &db);

    // The stream was made by the collector with the limits of the flags.
    let js = jetstream::new(server.client().await);
    let mut stream = js.get_stream("CSP_REPORTS").await.expect("the stream");
    let config = stream.info().await.expect("stream info").config.clone();
    assert_eq!(config.max_bytes, 64 << 20);
    assert_eq!(config.max_age, Duration::from_secs(2 * 24 * 3600));
    assert_eq!(config.subjects, ["csp.reports.>"]);

    // Reports keep coming, paced, while the server stops and starts again.
    const REPORTS: usize = 500;
    let sent = Arc::new(AtomicUsize::new(0));
    let addr = serve.addr;
    let counted = sent.clone();
    let sender = tokio::spawn(async move {
        let mut answered = Vec::new();
        for i in 0..REPORTS {
            if report(addr, "restart", i).await {
                answered.push(document("restart", i));
            }
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        answered
    });
    while sent.load(Ordering::SeqCst) < 50 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let restarting = server.clone();
    let counted = sent.clone();
    let (stopped_at, restarted_at) = tokio::task::spawn_blocking(move || {
        restarting.stop();
        let stopped_at = counted.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(800));
        let restarted_at = counted.load(Ordering::SeqCst);
        restarting.start();
        (stopped_at, restarted_at)
    })
    .await
    .unwrap();
    let answered = sender.await.unwrap();
    assert!(
        stopped_at < restarted_at && restarted_at < REPORTS,
        "reports were not sent before, during and after the outage: \
         stopped after {stopped_at}, restarted after {restarted_at}"
    );
    // The collector queues what it cannot publish yet: the outage costs no 503.
    assert_eq!(answered.len(), REPORTS);
    assert_exactly(&db, &answered).await;
    serve.stop();
    let log = consume.stop();
    assert!(counter(&log, "delivered") >= REPORTS as u64, "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_batch_then_restarted_loses_and_duplicates_nothing() {
    let server = NatsServer::start_new();
    let db = TestDb::new().await;
    let serve = collector(&server);
    let first = consumer(&server, &db);

    // A store that does not answer: the consumer has a batch in hand, not committed, not
    // acknowledged, when it is killed.
    let locker = db.client().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE csp_reports IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock the table");
    let mut answered = Vec::new();
    for i in 0..400 {
        if report(serve.addr, "killed", i).await {
            answered.push(document("killed", i));
        }
    }
    assert_eq!(answered.len(), 400);
    let deadline = Instant::now() + Duration::from_secs(20);
    while durable_info(&server).await.num_ack_pending == 0 {
        assert!(Instant::now() < deadline, "the consumer took no batch");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill();
    assert!(durable_info(&server).await.num_ack_pending > 0);
    locker
        .batch_execute("ROLLBACK")
        .await
        .expect("unlock the table");
    drop(locker);
    assert_eq!(db.count("csp_reports").await, 0);

    let second = consumer(&server, &db);
    assert_exactly(&db, &answered).await;
    let log = second.stop();
    assert!(
        counter(&log, "redelivered") > 0,
        "nothing was delivered again: {log:?}"
    );
    assert_eq!(durable_info(&server).await.num_ack_pending, 0);
    serve.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_and_two_consumers_lose_and_duplicate_nothing() {
    let server = NatsServer::start_new();
    let db = TestDb::new().await;
    let collectors = [collector(&server), collector(&server)];
    let consumers = [consumer(&server, &db), consumer(&server, &db)];

    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..4 {
        let addr = collectors[sender % 2].addr;
        senders.spawn(async move {
            let tag = format!("pair{sender}");
            let mut answered = Vec::new();
            for i in 0..200 {
                if report(addr, &tag, i).await {
                    answered.push(document(&tag, i));
                }
            }
            answered
        });
    }
    let mut answered = Vec::new();
    while let Some(part) = senders.join_next().await {
        answered.extend(part.unwrap());
    }
    assert_eq!(answered.len(), 800);
    assert_exactly(&db, &answered).await;

    for collector in collectors {
        collector.stop();
    }
    let delivered: Vec<u64> = consumers
        .into_iter()
        .map(|c| counter(&c.stop(), "delivered"))
        .collect();
    assert!(
        delivered.iter().all(|&n| n > 0),
        "one consumer did all the work: {delivered:?}"
    );
    assert!(delivered.iter().sum::<u64>() >= 800, "{delivered:?}");
}

/// The binary, run to its end in a directory of this test process (a default SQLite file
/// is made there, not in the source tree).
fn run(args: &[&str]) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("csp-reports-nats-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a working directory");
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("CSP_REPORTS_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run csp-reports")
}

#[test]
fn help_names_the_nats_settings() {
    let help = |command| String::from_utf8_lossy(&run(&[command, "--help"]).stdout).into_owned();
    let serve = help("serve");
    for setting in [
        "--nats-url",
        "CSP_REPORTS_NATS_URL",
        "--nats-max-age",
        "--nats-max-bytes",
    ] {
        assert!(serve.contains(setting), "serve --help lacks {setting}");
    }
    let consume = help("consume");
    for setting in [
        "--nats-url",
        "--database-url",
        "--durable",
        "--batch",
        "CSP_REPORTS_NATS_ACK_WAIT",
    ] {
        assert!(consume.contains(setting), "consume --help lacks {setting}");
    }
}

#[test]
fn bad_nats_settings_exit_2_and_an_unreachable_server_exits_1() {
    let usage: &[&[&str]] = &[
        &["consume", "--database-url", "sqlite://x.db"],
        &["serve", "--nats-url", "nats://127.0.0.1:1", "--no-store"],
        &[
            "serve",
            "--nats-url",
            "nats://127.0.0.1:1",
            "--database-url",
            "sqlite://x.db",
        ],
        &["serve", "--nats-url", "http://127.0.0.1:4222"],
        &["serve", "--nats-url", "nats://h", "--nats-stream", "a.b"],
        &[
            "serve",
            "--nats-url",
            "nats://h",
            "--nats-max-bytes",
            "12XB",
        ],
        &[
            "serve",
            "--nats-url",
            "nats://h",
            "--nats-max-bytes",
            "1KiB",
        ],
        &["serve", "--nats-url", "nats://h", "--nats-max-age", "soon"],
        &["serve", "--nats-url", "nats://h", "--nats-replicas", "7"],
        &["consume", "--nats-url", "nats://h", "--batch", "0"],
        &["consume", "--nats-url", "nats://h", "--durable", "a b"],
    ];
    for args in usage {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
    }
    // A password in the URL never reaches the message.
    let out = run(&["serve", "--nats-url", "ftp://u:s3cret@h:4222"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cret"));

    for args in [
        &["serve", "--nats-url", "nats://127.0.0.1:1"][..],
        &[
            "consume",
            "--nats-url",
            "nats://127.0.0.1:1",
            "--database-url",
            "sqlite://nats-unreachable.db",
        ],
    ] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("NATS"), "{args:?}: {stderr}");
    }
}
