//! Dispatch: slow, hanging, failing and panicking sinks never block the answer or each
//! other; full queues drop and count; shutdown drains.

#[path = "support/log_buffer.rs"]
mod log_buffer;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::sync::Semaphore;
use tower::{Layer, Service, ServiceExt};
use tower_csp_reports::dispatch::SinkFailure;
use tower_csp_reports::sink::MemorySink;
use tower_csp_reports::{
    CspReportLayer, CspReportLayerBuilder, ReportBatch, ReportSink, SinkError, SinkOptions,
};

/// What a [`Scripted`] sink does on each call.
#[derive(Clone, Copy)]
enum Act {
    Accept,
    /// Waits for a permit from the gate, then accepts.
    Gate,
    Hang,
    Panic,
    Transient,
    Permanent,
}

struct Scripted {
    name: &'static str,
    script: Mutex<Vec<Act>>,
    gate: Arc<Semaphore>,
    entered: Arc<Semaphore>,
    delivered: AtomicU32,
    shut_down: AtomicU32,
}

impl Scripted {
    /// Plays `script` call by call, then accepts every call.
    fn new(name: &'static str, script: &[Act]) -> Arc<Self> {
        Arc::new(Self {
            name,
            script: Mutex::new(script.iter().rev().copied().collect()),
            gate: Arc::new(Semaphore::new(0)),
            entered: Arc::new(Semaphore::new(0)),
            delivered: AtomicU32::new(0),
            shut_down: AtomicU32::new(0),
        })
    }
}

#[async_trait]
impl ReportSink for Scripted {
    fn name(&self) -> &str {
        self.name
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        self.entered.add_permits(1);
        let act = self.script.lock().unwrap().pop().unwrap_or(Act::Accept);
        match act {
            Act::Accept => {}
            Act::Gate => self.gate.acquire().await.unwrap().forget(),
            Act::Hang => std::future::pending::<()>().await,
            Act::Panic => panic!("sink exploded"),
            Act::Transient => return Err(SinkError::transient("connection reset")),
            Act::Permanent => return Err(SinkError::permanent("rejected")),
        }
        self.delivered
            .fetch_add(batch.len() as u32, Ordering::SeqCst);
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), SinkError> {
        self.shut_down.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn report(i: usize) -> Request<Full<Bytes>> {
    let body = format!(
        r#"{{"csp-report":{{"document-uri":"https://s.example/{i}","effective-directive":"img-src","blocked-uri":"data"}}}}"#
    );
    Request::post("/csp-report")
        .header("content-type", "application/csp-report")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn ok(_: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    Ok(Response::new(Full::new(Bytes::new())))
}

/// Posts a report through the layer, failing (not hanging) if the answer takes too long.
async fn post(layer: &CspReportLayer, i: usize) -> StatusCode {
    let service = layer.layer(tower::service_fn(ok));
    let answer = tokio::time::timeout(Duration::from_secs(10), service.oneshot(report(i)))
        .await
        .expect("the answer must not wait for a sink")
        .unwrap();
    answer.status()
}

fn fast(options: SinkOptions) -> SinkOptions {
    options
        .batch_size(1)
        .linger(Duration::from_millis(1))
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
}

type Failures = Arc<Mutex<Vec<(String, bool, bool, bool)>>>;

fn recording(layer: CspReportLayerBuilder) -> (CspReportLayer, Failures) {
    let failures: Failures = Arc::default();
    let seen = Arc::clone(&failures);
    let layer = layer.on_sink_error(move |f: &SinkFailure<'_>| {
        seen.lock().unwrap().push((
            f.sink.to_owned(),
            f.will_retry,
            f.error.is_timeout(),
            f.error.is_panic(),
        ));
    });
    (layer.build().unwrap(), failures)
}

#[tokio::test]
async fn a_blocked_sink_holds_up_neither_the_answer_nor_another_sink() {
    let blocked = Scripted::new("blocked", &[Act::Gate]);
    let memory = MemorySink::new();
    let layer = CspReportLayer::builder()
        .sink_with(Arc::clone(&blocked), fast(SinkOptions::default()))
        .sink(memory.clone())
        .build()
        .unwrap();
    let handle = layer.handle();
    assert_eq!(post(&layer, 1).await, StatusCode::NO_CONTENT);
    // The other sink gets the report while the first is still stuck.
    assert_eq!(memory.wait_for(1, Duration::from_secs(10)).await.len(), 1);
    blocked.entered.acquire().await.unwrap().forget();
    assert_eq!(blocked.delivered.load(Ordering::SeqCst), 0);
    blocked.gate.add_permits(1);
    handle.flush().await;
    assert_eq!(blocked.delivered.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn panics_hangs_and_errors_are_isolated_counted_and_reported() {
    let panicky = Scripted::new("panicky", &[Act::Panic]);
    let hanging = Scripted::new("hanging", &[Act::Hang, Act::Hang]);
    let failing = Scripted::new("failing", &[Act::Permanent]);
    let flaky = Scripted::new("flaky", &[Act::Transient, Act::Transient]);
    let memory = MemorySink::new();
    let options = fast(SinkOptions::default())
        .timeout(Duration::from_millis(100))
        .retries(1);
    let (layer, failures) = recording(
        CspReportLayer::builder()
            .sink_with(Arc::clone(&panicky), options)
            .sink_with(Arc::clone(&hanging), options)
            .sink_with(Arc::clone(&failing), options)
            .sink_with(Arc::clone(&flaky), fast(SinkOptions::default()).retries(5))
            .sink(memory.clone()),
    );
    let handle = layer.handle();
    assert_eq!(post(&layer, 1).await, StatusCode::NO_CONTENT);
    handle.flush().await;
    assert_eq!(post(&layer, 2).await, StatusCode::NO_CONTENT);
    handle.flush().await;

    let stats = handle.stats();
    let by_name = |name: &str| stats.sinks.iter().find(|s| s.name == name).unwrap().clone();
    // The panic lost the first report for that sink only; the worker lived on.
    assert_eq!(
        (by_name("panicky").failed, by_name("panicky").delivered),
        (1, 1)
    );
    assert_eq!(panicky.delivered.load(Ordering::SeqCst), 1);
    // Two timeouts (one try and one retry), then the next report went through.
    assert_eq!(
        (
            by_name("hanging").errors,
            by_name("hanging").failed,
            by_name("hanging").delivered
        ),
        (2, 1, 1)
    );
    // A permanent error is not retried.
    assert_eq!(
        (
            by_name("failing").errors,
            by_name("failing").failed,
            by_name("failing").delivered
        ),
        (1, 1, 1)
    );
    // Transient errors are retried until the sink takes the report.
    assert_eq!(
        (
            by_name("flaky").errors,
            by_name("flaky").failed,
            by_name("flaky").delivered
        ),
        (2, 0, 2)
    );
    assert_eq!(memory.total(), 2);

    let failures = failures.lock().unwrap().clone();
    let of = |name: &str| {
        failures
            .iter()
            .filter(|f| f.0 == name)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(of("panicky"), vec![("panicky".into(), false, false, true)]);
    assert_eq!(
        of("hanging"),
        vec![
            ("hanging".into(), true, true, false),
            ("hanging".into(), false, true, false)
        ]
    );
    assert_eq!(of("failing"), vec![("failing".into(), false, false, false)]);
    assert_eq!(of("flaky").len(), 2);
    assert!(
        of("flaky").iter().all(|f| f.1),
        "both flaky failures were retried"
    );
}

#[tokio::test]
async fn a_full_queue_drops_for_that_sink_only_and_counts() {
    let blocked = Scripted::new("blocked", &[Act::Gate]);
    let memory = MemorySink::new();
    let layer = CspReportLayer::builder()
        .sink_with(
            Arc::clone(&blocked),
            fast(SinkOptions::default()).queue_capacity(2),
        )
        .sink(memory.clone())
        .build()
        .unwrap();
    let handle = layer.handle();
    post(&layer, 0).await;
    // The worker holds report 0 in a call; the queue then has room for two more.
    blocked.entered.acquire().await.unwrap().forget();
    for i in 1..=4 {
        assert_eq!(post(&layer, i).await, StatusCode::NO_CONTENT);
    }
    let stats = handle.stats();
    let blocked_stats = stats.sinks.iter().find(|s| s.name == "blocked").unwrap();
    assert_eq!((blocked_stats.dropped, blocked_stats.queued), (2, 2));
    blocked.gate.add_permits(1);
    handle.flush().await;
    assert_eq!(blocked.delivered.load(Ordering::SeqCst), 3);
    assert_eq!(memory.total(), 5, "the other sink lost nothing");
    assert_eq!(handle.stats().sinks[1].dropped, 0);
}

#[tokio::test]
async fn shutdown_drains_every_queue_then_refuses() {
    let recorder = Scripted::new("recorder", &[]);
    let memory = MemorySink::new();
    let slow_batches = SinkOptions::default()
        .batch_size(1000)
        .linger(Duration::from_secs(3600));
    let layer = CspReportLayer::builder()
        .sink_with(Arc::clone(&recorder), slow_batches)
        .sink_with(memory.clone(), slow_batches)
        .build()
        .unwrap();
    let handle = layer.handle();
    for i in 0..25 {
        post(&layer, i).await;
    }
    assert_eq!(memory.total(), 0, "still waiting for a full batch");
    handle.shutdown().await;
    assert_eq!(memory.total(), 25);
    assert_eq!(recorder.delivered.load(Ordering::SeqCst), 25);
    assert_eq!(recorder.shut_down.load(Ordering::SeqCst), 1);

    assert_eq!(post(&layer, 99).await, StatusCode::NO_CONTENT);
    let stats = handle.stats();
    assert_eq!(
        stats.sinks[0].dropped, 1,
        "after shutdown, reports are counted as dropped"
    );
    assert_eq!(stats.accepted, 26);
}

#[tokio::test]
async fn concurrent_requests_lose_nothing() {
    let memory = MemorySink::with_capacity(100_000);
    let layer = CspReportLayer::builder()
        .sink(memory.clone())
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(tower::service_fn(ok));
    let mut tasks = Vec::new();
    for i in 0..2000 {
        let call = service.ready().await.unwrap().call(report(i));
        tasks.push(tokio::spawn(call));
    }
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap().status(),
            StatusCode::NO_CONTENT
        );
    }
    handle.shutdown().await;
    assert_eq!(memory.total(), 2000);
    let mut seen: Vec<_> = memory
        .reports()
        .iter()
        .map(|r| r.document_uri.clone().unwrap())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 2000, "each report exactly once");
}

#[tokio::test]
async fn up_to_concurrency_batches_are_with_the_sink_at_once() {
    let sink = Scripted::new("pipelined", &[Act::Gate; 5]);
    let options = fast(SinkOptions::default()).concurrency(3);
    let layer = CspReportLayer::builder()
        .sink_with(Arc::clone(&sink), options)
        .build()
        .unwrap();
    let handle = layer.handle();
    for i in 0..5 {
        assert_eq!(post(&layer, i).await, StatusCode::NO_CONTENT);
    }
    let entered = |n| {
        let entered = Arc::clone(&sink.entered);
        async move {
            tokio::time::timeout(Duration::from_secs(10), entered.acquire_many(n))
                .await
                .expect("batches reach the sink")
                .unwrap()
                .forget();
        }
    };
    entered(3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        sink.entered.available_permits(),
        0,
        "a fourth batch waits while three are with the sink"
    );

    sink.gate.add_permits(1);
    entered(1).await;
    let shutdown = tokio::spawn({
        let handle = handle.clone();
        async move { handle.shutdown().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the batches still with the sink"
    );
    assert_eq!(sink.shut_down.load(Ordering::SeqCst), 0);

    sink.gate.add_permits(4);
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown ends once the sink is done")
        .unwrap();
    assert_eq!(sink.delivered.load(Ordering::SeqCst), 5);
    assert_eq!(sink.shut_down.load(Ordering::SeqCst), 1);
    let stats = handle.stats();
    assert_eq!((stats.sinks[0].delivered, stats.sinks[0].queued), (5, 0));
}

#[test]
fn sink_options_out_of_range_are_refused() {
    let bad = [
        ("queue_capacity", SinkOptions::default().queue_capacity(0)),
        ("batch_size", SinkOptions::default().batch_size(0)),
        ("concurrency", SinkOptions::default().concurrency(0)),
        ("concurrency", SinkOptions::default().concurrency(1001)),
    ];
    for (setting, options) in bad {
        let err = CspReportLayer::builder()
            .sink_with(MemorySink::new(), options)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains(setting), "{setting}: {err}");
    }
    assert!(
        CspReportLayer::builder()
            .sink_with(MemorySink::new(), SinkOptions::default().concurrency(8))
            .build()
            .is_ok()
    );
}

/// A failure whose cause is only in its source, as many library errors are.
#[derive(Debug)]
struct WriteFailed(std::io::Error);

impl std::fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("could not write the batch")
    }
}

impl std::error::Error for WriteFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

// Current-thread: the subscriber is this thread's default, and the worker runs here too.
#[tokio::test]
async fn the_default_hook_logs_the_cause() {
    let buffer = log_buffer::Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let failing = tower_csp_reports::sink::sink_fn(|_: ReportBatch| async {
        let full = std::io::Error::other("no space left on device");
        Err(SinkError::permanent(WriteFailed(full)))
    })
    .named("disk");
    let layer = CspReportLayer::builder()
        .sink_with(failing, fast(SinkOptions::default()))
        .build()
        .unwrap();
    let handle = layer.handle();
    assert_eq!(post(&layer, 1).await, StatusCode::NO_CONTENT);
    handle.flush().await;

    let log = buffer.text();
    assert!(log.contains("CSP report sink failed"), "{log}");
    assert!(log.contains("sink=\"disk\""), "{log}");
    assert!(
        log.contains("could not write the batch: no space left on device"),
        "{log}"
    );
}
