//! `NatsSink` and `NatsConsumer` against a real `nats-server -js` on loopback (see
//! `tests/support/nats.rs`): the sink conformance suite, a round trip of every report shape,
//! retried publishes, the server restarted mid-stream, a consumer killed mid-batch, two
//! collectors and two consumers at once, and the consumer's handling of failures. Every
//! scenario counts reports by id.

#[path = "support/conformance.rs"]
mod conformance;
#[path = "support/load.rs"]
mod load;
#[path = "support/nats.rs"]
mod nats;

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nats::{NatsServer, stream_reports};
use tower_csp_reports::error::chain;
use tower_csp_reports::filter::KeepAll;
use tower_csp_reports::nats::async_nats::jetstream::{self, consumer, stream};
use tower_csp_reports::nats::{
    NatsConsumer, NatsConsumerBuilder, NatsConsumerConfig, NatsError, NatsErrorKind, NatsSink,
    StreamSettings,
};
use tower_csp_reports::sink::{MemorySink, sink_fn};
use tower_csp_reports::{
    CspReportLayer, Fingerprint, Report, ReportBatch, ReportId, ReportSink, SinkError, SinkOptions,
};

const STREAM: &str = "CSP_REPORTS";
const DURABLE: &str = "csp-reports-store";
const REPORTS_JSON: &str = "application/reports+json";

/// The stream of every test: small enough for any disk.
fn settings() -> StreamSettings {
    StreamSettings::new().max_bytes(256 << 20)
}

async fn connect_sink(server: &NatsServer) -> NatsSink {
    NatsSink::builder(server.url())
        .stream(settings())
        .ack_timeout(Duration::from_secs(1))
        .build()
        .expect("valid settings")
        .connect()
        .await
        .expect("connect the sink")
}

/// A consumer quick to notice things, for tests.
fn consumer_for(server: &NatsServer, sink: impl ReportSink) -> NatsConsumerBuilder {
    NatsConsumer::builder(server.url(), sink)
        .stream(settings())
        .batch_size(100)
        .max_wait(Duration::from_millis(200))
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
}

/// `n` distinct reports.
fn numbered(n: usize, tag: &str) -> Vec<Report> {
    (0..n)
        .map(|i| {
            Report::csp(
                &format!("https://app.example/{tag}/{i}?q=1"),
                "img-src",
                &format!("https://cdn{}.example/x.png", i % 7),
            )
        })
        .collect()
}

/// How many times each id occurs.
fn counts<'a>(reports: impl IntoIterator<Item = &'a Report>) -> BTreeMap<ReportId, usize> {
    let mut counts = BTreeMap::new();
    for report in reports {
        *counts.entry(report.id).or_default() += 1;
    }
    counts
}

fn ids<'a>(reports: impl IntoIterator<Item = &'a Report>) -> BTreeSet<ReportId> {
    reports.into_iter().map(|r| r.id).collect()
}

async fn stored(server: &NatsServer) -> Vec<Report> {
    let client = server.client().await;
    stream_reports(&client, STREAM)
        .await
        .into_iter()
        .map(|(_, report)| report)
        .collect()
}

async fn consumer_info(server: &NatsServer) -> consumer::Info {
    jetstream::new(server.client().await)
        .get_stream(STREAM)
        .await
        .expect("the stream")
        .consumer_info(DURABLE)
        .await
        .expect("the durable consumer")
}

fn nats_error(error: &SinkError) -> &NatsError {
    error
        .source()
        .and_then(|e| e.downcast_ref::<NatsError>())
        .unwrap_or_else(|| panic!("not a NATS error: {error:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_sink_passes_the_conformance_suite() {
    let server = NatsServer::start_new();
    let sink = connect_sink(&server).await;
    let client = server.client().await;
    conformance::check(&sink, || async {
        stream_reports(&client, STREAM)
            .await
            .into_iter()
            .map(|(_, report)| report.id.to_string())
            .collect()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_report_shape_comes_back_exactly_through_the_stream() {
    let server = NatsServer::start_new();
    let sink = connect_sink(&server).await;
    let mut reports = conformance::sample_reports();
    // Hostile report types: none may make a subject of its own or reach the JetStream API.
    for report_type in [
        "x.*.>",
        "",
        "a b\r\nc",
        "$JS.API.STREAM.DELETE.CSP_REPORTS",
        "\u{c9}t\u{e9}",
    ] {
        let mut report = Report::csp("https://app.example/", "img-src", "data");
        report.report_type = report_type.into();
        report.fingerprint = Fingerprint::of(&report);
        reports.push(report);
    }
    sink.send(&ReportBatch::from(reports.clone()))
        .await
        .unwrap();

    let client = server.client().await;
    let in_stream = stream_reports(&client, STREAM).await;
    assert_eq!(in_stream.len(), reports.len());
    for ((subject, got), sent) in in_stream.iter().zip(&reports) {
        assert_eq!(got, sent, "the stream holds the report exactly");
        assert_eq!(*subject, settings().subject_for(&sent.report_type));
        assert_eq!(subject.split('.').count(), 3, "{subject:?}");
    }
    assert_eq!(
        in_stream.last().unwrap().0,
        "csp.reports.\u{5f}t\u{5f}",
        "one `_` per character that is not ASCII"
    );

    let target = MemorySink::new();
    let consumer = consumer_for(&server, target.clone())
        .build()
        .unwrap()
        .connect()
        .await
        .unwrap();
    let n = reports.len() as u64;
    let waiting = target.clone();
    consumer
        .run(async move {
            waiting.wait_for(n, Duration::from_secs(20)).await;
        })
        .await;
    let mut got = target.reports();
    got.sort_by_key(|r| r.id);
    reports.sort_by_key(|r| r.id);
    assert_eq!(
        got, reports,
        "the consumer rebuilds every report exactly, once"
    );
    let stats = consumer.stats();
    assert_eq!(
        (
            stats.fetched,
            stats.delivered,
            stats.redelivered,
            stats.failed
        ),
        (n, n, 0, 0)
    );
    let info = consumer_info(&server).await;
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));
}

/// Passes a batch to the NATS sink, then says its acknowledgement was lost, once: the
/// dispatcher must publish the same batch again.
struct LosesFirstAck {
    inner: NatsSink,
    lost: AtomicUsize,
}

#[async_trait]
impl ReportSink for LosesFirstAck {
    fn name(&self) -> &str {
        "nats"
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        self.inner.send(batch).await?;
        if self.lost.fetch_add(1, Ordering::Relaxed) == 0 {
            return Err(SinkError::transient(std::io::Error::other(
                "the acknowledgement was lost",
            )));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_batch_is_not_duplicated_in_the_stream() {
    let server = NatsServer::start_new();
    let sink = connect_sink(&server).await;

    // The same batch, and one half made of it, sent again directly.
    let first = ReportBatch::from(numbered(200, "direct"));
    sink.send(&first).await.unwrap();
    sink.send(&first).await.unwrap();
    let overlap: ReportBatch = first
        .iter()
        .skip(100)
        .cloned()
        .chain(numbered(50, "more"))
        .collect();
    sink.send(&overlap).await.unwrap();
    let stats = sink.stats();
    assert_eq!((stats.published, stats.duplicates), (250, 300));

    // A batch retried by the dispatcher after a lost acknowledgement, through HTTP.
    let layer = CspReportLayer::builder()
        .filter(KeepAll)
        .sink_with(
            LosesFirstAck {
                inner: sink.clone(),
                lost: AtomicUsize::new(0),
            },
            SinkOptions::default()
                .batch_size(1000)
                .linger(Duration::from_millis(200))
                .backoff(Duration::from_millis(10), Duration::from_millis(10)),
        )
        .build()
        .unwrap();
    let handle = layer.handle();
    let http = load::Server::start(layer).await;
    let outcome = load::run(http.addr, 10, 1, Duration::ZERO, |i| {
        (load::batch(i, 10, None, None), REPORTS_JSON, 10)
    })
    .await;
    http.stop_accepting();
    handle.shutdown().await;
    assert_eq!(outcome.reports_answered_204, 100);
    let dispatched = &handle.stats().sinks[0];
    assert_eq!((dispatched.delivered, dispatched.errors), (100, 1));

    let stats = sink.stats();
    assert!(
        stats.duplicates > 300,
        "the retry was deduplicated: {stats:?}"
    );
    assert_eq!(stats.published, 350);
    let in_stream = stored(&server).await;
    assert_eq!(in_stream.len(), 350);
    assert!(counts(&in_stream).values().all(|&n| n == 1));
    assert!(ids(&in_stream).is_superset(&ids(first.iter())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_a_transient_error_and_the_retry_lands_once() {
    let server = NatsServer::start_new();
    let sink = connect_sink(&server).await;
    let batch = ReportBatch::from(numbered(50, "outage"));

    server.stop();
    let error = sink.send(&batch).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    let nats = nats_error(&error);
    assert_eq!(nats.kind(), NatsErrorKind::Publish);
    assert!(
        chain(&error).contains("of 50 reports not acknowledged by stream CSP_REPORTS"),
        "{}",
        chain(&error)
    );

    server.start();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while let Err(error) = sink.send(&batch).await {
        assert!(error.is_transient(), "{error:?}");
        assert!(tokio::time::Instant::now() < deadline, "{}", chain(&error));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let in_stream = stored(&server).await;
    assert_eq!(counts(&in_stream), counts(batch.iter()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_with_other_subjects_is_a_clear_error() {
    let server = NatsServer::start_new();
    let js = jetstream::new(server.client().await);
    js.create_stream(stream::Config {
        name: STREAM.to_owned(),
        subjects: vec!["other.>".to_owned()],
        ..Default::default()
    })
    .await
    .unwrap();

    let error = NatsSink::builder(server.url())
        .build()
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), NatsErrorKind::StreamSubjects);
    assert!(!error.is_transient());
    assert_eq!(
        error.to_string(),
        "stream CSP_REPORTS exists with subjects [\"other.>\"], which do not include \
         csp.reports.>: give another stream name or subject prefix, or add csp.reports.> to \
         the stream"
    );
    let error = NatsConsumer::builder(server.url(), MemorySink::new())
        .build()
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), NatsErrorKind::StreamSubjects);

    // A stream made by hand for our subjects, with its own limits, is used as it is.
    js.create_stream(stream::Config {
        name: "BY_HAND".to_owned(),
        subjects: vec!["csp.reports.>".to_owned()],
        max_age: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .unwrap();
    let by_hand = NatsSink::builder(server.url())
        .stream(StreamSettings::new().name("BY_HAND"))
        .build()
        .unwrap()
        .connect()
        .await
        .expect("an existing stream with other limits is fine");
    by_hand
        .send(&ReportBatch::from(numbered(3, "by-hand")))
        .await
        .unwrap();
    let info = js
        .get_stream("BY_HAND")
        .await
        .unwrap()
        .cached_info()
        .clone();
    assert_eq!(info.state.messages, 3);
    assert_eq!(
        info.config.max_age,
        Duration::from_secs(3600),
        "its limits are kept"
    );

    // A new stream whose subjects another stream holds: the server's refusal, passed on.
    let error = NatsSink::builder(server.url())
        .stream(StreamSettings::new().name("FRESH"))
        .build()
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), NatsErrorKind::JetStream);
    assert!(!error.is_transient(), "{error:?}");
    assert!(chain(&error).contains("overlap"), "{}", chain(&error));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_too_large_for_the_server_fails_alone() {
    let server = NatsServer::with_config("max_payload: 16384");
    let sink = connect_sink(&server).await;
    let mut reports = numbered(8, "small");
    let mut large = Report::csp("https://app.example/large", "img-src", "data");
    large.raw = "x".repeat(20_000).into();
    reports.insert(5, large.clone());

    let error = sink
        .send(&ReportBatch::from(reports.clone()))
        .await
        .unwrap_err();
    assert!(!error.is_transient(), "{error:?}");
    assert_eq!(nats_error(&error).kind(), NatsErrorKind::TooLarge);
    assert!(
        chain(&error).contains("1 of 9 reports cannot be published"),
        "{}",
        chain(&error)
    );
    assert_eq!(sink.stats().rejected, 1);
    let in_stream = stored(&server).await;
    reports.retain(|r| r.id != large.id);
    assert_eq!(counts(&in_stream), counts(&reports));
}

/// Passes batches to the NATS sink and records the ids of those it acknowledged.
struct Recording {
    inner: NatsSink,
    acked: Arc<Mutex<Vec<ReportId>>>,
}

#[async_trait]
impl ReportSink for Recording {
    fn name(&self) -> &str {
        "nats"
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        self.inner.send(batch).await?;
        self.acked
            .lock()
            .unwrap()
            .extend(batch.iter().map(|r| r.id));
        Ok(())
    }
}

/// Patient options: a restart must cost retries, never reports.
fn patient() -> SinkOptions {
    SinkOptions::default()
        .queue_capacity(1_000_000)
        .batch_size(200)
        .linger(Duration::from_millis(20))
        .timeout(Duration::from_secs(3))
        .retries(200)
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_restarted_mid_stream_loses_and_duplicates_nothing() {
    let server = Arc::new(NatsServer::start_new());
    let sink = connect_sink(&server).await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&errors);
    let layer = CspReportLayer::builder()
        .filter(KeepAll)
        .sink_with(
            Recording {
                inner: sink.clone(),
                acked: Arc::clone(&acked),
            },
            patient(),
        )
        .on_sink_error(move |failure| {
            assert!(failure.will_retry, "given up: {}", chain(failure.error));
            assert!(failure.error.is_transient(), "{}", chain(failure.error));
            seen.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    let handle = layer.handle();
    let http = load::Server::start(layer).await;

    let restarter = {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            tokio::task::spawn_blocking(move || {
                server.stop();
                std::thread::sleep(Duration::from_millis(1000));
                server.start();
            })
            .await
            .unwrap();
        })
    };
    // Paced so the stream runs on both sides of the restart (about 3 s in all).
    let outcome = load::run(http.addr, 600, 2, Duration::from_millis(8), |i| {
        (load::batch(i, 10, None, None), REPORTS_JSON, 10)
    })
    .await;
    restarter.await.unwrap();
    http.stop_accepting();
    tokio::time::timeout(Duration::from_secs(60), handle.shutdown())
        .await
        .expect("the queue drains once the server is back");

    assert_eq!(outcome.statuses.get(&204), Some(&600), "{outcome:?}");
    assert!(
        errors.load(Ordering::Relaxed) > 0,
        "the restart happened while no batch was in flight"
    );
    let dispatched = &handle.stats().sinks[0];
    assert_eq!(
        (dispatched.dropped, dispatched.failed, dispatched.queued),
        (0, 0, 0)
    );
    assert_eq!(dispatched.delivered, 6000);

    let in_stream = stored(&server).await;
    let in_stream_counts = counts(&in_stream);
    assert!(
        in_stream_counts.values().all(|&n| n == 1),
        "a report is in the stream twice"
    );
    let acked: BTreeSet<ReportId> = acked.lock().unwrap().iter().copied().collect();
    assert_eq!(acked.len(), outcome.reports_answered_204);
    assert_eq!(
        acked,
        in_stream_counts.keys().copied().collect(),
        "the stream holds exactly the reports the sink acknowledged"
    );

    // And a consumer reads each of them once.
    let target = MemorySink::with_capacity(100_000);
    let consumer = consumer_for(&server, target.clone())
        .batch_size(500)
        .build()
        .unwrap()
        .connect()
        .await
        .unwrap();
    let waiting = target.clone();
    consumer
        .run(async move {
            waiting.wait_for(6000, Duration::from_secs(30)).await;
        })
        .await;
    let delivered = target.reports();
    assert_eq!(delivered.len(), 6000);
    assert_eq!(ids(&delivered), acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_batch_loses_nothing() {
    let server = NatsServer::start_new();
    let sink = connect_sink(&server).await;
    let reports = numbered(300, "kill");
    sink.send(&ReportBatch::from(reports.clone()))
        .await
        .unwrap();
    // What a store would hold: every write, a report written twice kept once by its id.
    let target = MemorySink::with_capacity(10_000);
    fn config(server: &NatsServer, sink: impl ReportSink) -> NatsConsumerConfig {
        consumer_for(server, sink)
            .ack_wait(Duration::from_secs(3))
            .timeout(Duration::from_millis(2900))
            .build()
            .unwrap()
    }

    // The first process writes its second batch (the store committed it) and is killed
    // before it acknowledges it.
    let (entered, entered_rx) = std::sync::mpsc::channel::<(usize, usize)>();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let victim_sink = {
        let target = target.clone();
        sink_fn(move |batch: ReportBatch| {
            let (target, calls, entered) = (target.clone(), Arc::clone(&calls), entered.clone());
            async move {
                target.send(&batch).await?;
                let second = {
                    let mut calls = calls.lock().unwrap();
                    calls.push(batch.len());
                    (calls.len() == 2).then(|| (calls[0], calls[1]))
                };
                if let Some(batches) = second {
                    entered.send(batches).unwrap();
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
        })
    };
    let victim = config(&server, victim_sink);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.spawn(async move {
        let consumer = victim.connect().await.unwrap();
        consumer.run(std::future::pending()).await;
    });
    let (acked_by_victim, in_hand) = tokio::task::spawn_blocking(move || {
        let batches = entered_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the first consumer reached its second batch");
        // Killed: its tasks and its connection are gone at once.
        runtime.shutdown_background();
        batches
    })
    .await
    .unwrap();
    assert_eq!(target.total() as usize, acked_by_victim + in_hand);

    // The second process gets what the first never acknowledged, after ack_wait.
    let survivor = config(&server, target.clone()).connect().await.unwrap();
    let waiting = target.clone();
    let expected_writes = (reports.len() + in_hand) as u64;
    survivor
        .run(async move {
            waiting
                .wait_for(expected_writes, Duration::from_secs(30))
                .await;
        })
        .await;

    let written = target.reports();
    assert_eq!(
        written.len() as u64,
        expected_writes,
        "one write per delivery"
    );
    assert_eq!(
        ids(&written),
        ids(&reports),
        "every report is in the store exactly once by id"
    );
    let twice: Vec<_> = counts(&written).into_values().filter(|&n| n > 1).collect();
    assert_eq!(twice, vec![2; in_hand], "only the batch in hand came twice");
    let stats = survivor.stats();
    assert_eq!(stats.fetched as usize, reports.len() - acked_by_victim);
    assert_eq!(stats.redelivered as usize, in_hand);
    assert_eq!(stats.delivered, stats.fetched);
    let info = consumer_info(&server).await;
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_and_two_consumers_lose_and_duplicate_nothing() {
    let server = NatsServer::start_new();
    let targets = [
        MemorySink::with_capacity(100_000),
        MemorySink::with_capacity(100_000),
    ];
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut consumers = Vec::new();
    for target in &targets {
        let consumer = consumer_for(&server, target.clone())
            .build()
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut stopped = stopped.clone();
        consumers.push(tokio::spawn(async move {
            consumer
                .run(async move {
                    let _ = stopped.wait_for(|&stop| stop).await;
                })
                .await;
            consumer.stats()
        }));
    }

    let mut collectors = Vec::new();
    for _ in 0..2 {
        let sink = connect_sink(&server).await;
        let layer = CspReportLayer::builder()
            .filter(KeepAll)
            .sink_with(sink.clone(), patient())
            .build()
            .unwrap();
        let handle = layer.handle();
        let http = load::Server::start(layer).await;
        collectors.push(tokio::spawn(async move {
            let outcome = load::run(http.addr, 300, 2, Duration::from_millis(2), |i| {
                (load::batch(i, 10, None, None), REPORTS_JSON, 10)
            })
            .await;
            http.stop_accepting();
            handle.shutdown().await;
            (outcome, handle.stats(), sink.stats())
        }));
    }
    let mut answered = 0;
    for collector in collectors {
        let (outcome, stats, nats) = collector.await.unwrap();
        answered += outcome.reports_answered_204;
        assert_eq!(stats.sinks[0].delivered, 3000);
        assert_eq!((stats.sinks[0].failed, stats.sinks[0].dropped), (0, 0));
        assert_eq!(nats.published, 3000);
    }
    assert_eq!(answered, 6000);

    let in_stream = ids(&stored(&server).await);
    assert_eq!(in_stream.len(), 6000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while targets.iter().map(MemorySink::total).sum::<u64>() < 6000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the consumers fell behind"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    let mut shares = Vec::new();
    for consumer in consumers {
        let stats = consumer.await.unwrap();
        assert_eq!(stats.delivered, stats.fetched);
        assert_eq!((stats.redelivered, stats.failed), (0, 0));
        shares.push(stats.delivered);
    }
    let written: Vec<Report> = targets.iter().flat_map(MemorySink::reports).collect();
    assert_eq!(written.len(), 6000, "no report written twice");
    assert_eq!(ids(&written), in_stream, "none lost");
    assert_eq!(shares.iter().sum::<u64>(), 6000);
    assert!(
        shares.iter().all(|&n| n > 0),
        "both consumers took part: {shares:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_the_sink_refuses_and_messages_that_are_not_reports_are_terminated() {
    let server = NatsServer::start_new();
    let sink = connect_sink(&server).await;
    let mut reports = numbered(20, "refuse");
    let refused = Report::csp(
        "https://app.example/",
        "img-src",
        "https://refused.example/",
    );
    reports.insert(7, refused.clone());
    sink.send(&ReportBatch::from(reports.clone()))
        .await
        .unwrap();
    let js = jetstream::new(server.client().await);
    js.publish("csp.reports.junk", "{\"not\": \"a report\"}".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let target = MemorySink::new();
    let store = {
        let target = target.clone();
        sink_fn(move |batch: ReportBatch| {
            let target = target.clone();
            async move {
                if batch
                    .iter()
                    .any(|r| r.blocked_uri.as_deref() == Some("https://refused.example/"))
                {
                    return Err(SinkError::permanent(std::io::Error::other(
                        "a value the store refuses",
                    )));
                }
                target.send(&batch).await
            }
        })
        .named("store")
    };
    let failures = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&failures);
    let consumer = consumer_for(&server, store)
        .ack_wait(Duration::from_secs(1))
        .timeout(Duration::from_millis(500))
        .on_error(move |failure| {
            seen.lock().unwrap().push((
                failure.sink.to_owned(),
                failure.reports,
                failure.will_retry,
                chain(failure.error),
            ));
        })
        .build()
        .unwrap()
        .connect()
        .await
        .unwrap();
    let waiting = target.clone();
    consumer
        .run(async move {
            waiting.wait_for(20, Duration::from_secs(20)).await;
            // Longer than ack_wait: a message left unacknowledged would come back.
            tokio::time::sleep(Duration::from_millis(1500)).await;
        })
        .await;

    reports.retain(|r| r.id != refused.id);
    assert_eq!(counts(&target.reports()), counts(&reports));
    let stats = consumer.stats();
    assert_eq!(
        (
            stats.fetched,
            stats.delivered,
            stats.failed,
            stats.redelivered,
            stats.retried
        ),
        (22, 20, 2, 0, 0)
    );
    let failures = failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures
            .iter()
            .all(|(sink, n, retry, _)| sink == "store" && *n == 1 && !retry)
    );
    let said = |text: &str| failures.iter().filter(|f| f.3.contains(text)).count();
    assert_eq!(
        said("on \"csp.reports.junk\" is not a report"),
        1,
        "{failures:?}"
    );
    assert_eq!(said("a value the store refuses"), 1, "{failures:?}");
    let info = consumer_info(&server).await;
    assert_eq!(
        (info.num_ack_pending, info.num_pending, info.num_redelivered),
        (0, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_sink_failures_hand_the_batch_back_until_it_lands() {
    let server = NatsServer::start_new();
    let sink = connect_sink(&server).await;
    let reports = numbered(50, "transient");
    sink.send(&ReportBatch::from(reports.clone()))
        .await
        .unwrap();

    let target = MemorySink::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let store = {
        let (target, calls) = (target.clone(), Arc::clone(&calls));
        sink_fn(move |batch: ReportBatch| {
            let (target, calls) = (target.clone(), Arc::clone(&calls));
            async move {
                if calls.fetch_add(1, Ordering::Relaxed) < 2 {
                    return Err(SinkError::transient(std::io::Error::other(
                        "store restarting",
                    )));
                }
                target.send(&batch).await
            }
        })
    };
    let retries = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&retries);
    let consumer = consumer_for(&server, store)
        .on_error(move |failure| {
            seen.lock()
                .unwrap()
                .push((failure.will_retry, failure.error.is_transient()));
        })
        .build()
        .unwrap()
        .connect()
        .await
        .unwrap();
    let waiting = target.clone();
    consumer
        .run(async move {
            waiting.wait_for(50, Duration::from_secs(20)).await;
        })
        .await;

    assert_eq!(counts(&target.reports()), counts(&reports));
    assert_eq!(*retries.lock().unwrap(), vec![(true, true); 2]);
    let stats = consumer.stats();
    assert_eq!((stats.delivered, stats.failed), (50, 0));
    assert!(stats.retried >= 50, "{stats:?}");
    assert_eq!(
        stats.redelivered, stats.retried,
        "each one handed back came back"
    );
    assert_eq!(stats.fetched, stats.delivered + stats.retried);
    let info = consumer_info(&server).await;
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_during_a_batch_finishes_it_first() {
    let server = NatsServer::start_new();
    let sink = connect_sink(&server).await;
    let reports = numbered(30, "shutdown");
    sink.send(&ReportBatch::from(reports.clone()))
        .await
        .unwrap();

    let target = MemorySink::new();
    let (entered, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let entered = Arc::new(Mutex::new(Some(entered)));
    let release = Arc::new(tokio::sync::Notify::new());
    let store = {
        let (target, release) = (target.clone(), Arc::clone(&release));
        sink_fn(move |batch: ReportBatch| {
            let (target, release, entered) =
                (target.clone(), Arc::clone(&release), Arc::clone(&entered));
            async move {
                let first = entered.lock().unwrap().take();
                if let Some(entered) = first {
                    let released = release.notified();
                    entered.send(()).unwrap();
                    released.await;
                }
                target.send(&batch).await
            }
        })
    };
    let consumer = consumer_for(&server, store)
        .build()
        .unwrap()
        .connect()
        .await
        .unwrap();
    let running = {
        let consumer = consumer.clone();
        tokio::spawn(async move {
            // The signal fires while the sink holds the batch.
            consumer
                .run(async move {
                    entered_rx.await.unwrap();
                })
                .await;
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!running.is_finished(), "run waits for the batch in hand");
    assert_eq!(target.total(), 0);
    release.notify_one();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("run returns once the batch is done")
        .unwrap();

    assert_eq!(counts(&target.reports()), counts(&reports));
    let stats = consumer.stats();
    assert_eq!((stats.fetched, stats.delivered), (30, 30));
    let info = consumer_info(&server).await;
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_stream_refuses_new_reports_visibly_and_keeps_the_old() {
    let server = NatsServer::start_new();
    let sink = NatsSink::builder(server.url())
        .stream(settings().max_bytes(1 << 20))
        .ack_timeout(Duration::from_secs(1))
        .build()
        .unwrap()
        .connect()
        .await
        .unwrap();
    let first = numbered(100, "before");
    sink.send(&ReportBatch::from(first.clone())).await.unwrap();
    let mut large = numbered(2000, "flood");
    for report in &mut large {
        report.raw = "x".repeat(1000).into();
    }
    let error = sink.send(&ReportBatch::from(large)).await.unwrap_err();
    assert!(error.is_transient(), "the dispatcher retries: {error:?}");
    assert_eq!(nats_error(&error).kind(), NatsErrorKind::Publish);
    assert!(
        chain(&error).contains("maximum bytes exceeded"),
        "{}",
        chain(&error)
    );
    let in_stream = stored(&server).await;
    assert!(
        ids(&in_stream).is_superset(&ids(&first)),
        "the oldest reports are kept"
    );
    assert!(counts(&in_stream).values().all(|&n| n == 1));
}
