//! The server that `scripts/loadtest` measures: one hyper server loop, one inner service that
//! reads the body and answers `204`, with or without the layer in front of it.
//!
//! ```sh
//! cargo run --release --all-features --example loadtest_server -- MODE 127.0.0.1:8099 [ARG]
//! ```
//!
//! | mode | what answers |
//! |---|---|
//! | `bare` | the inner service alone: the ceiling |
//! | `json` | no layer; the inner service also checks that the body is JSON (serde_json, nothing kept): a reference for what reading a report's JSON costs at the least |
//! | `null` | the layer (default filter) with a sink that does nothing |
//! | `tracing` | the layer with [`TracingSink`], formatted into the file `ARG` |
//! | `postgres` | the layer with a `PostgresSink` into the table `loadtest_reports` (made afresh for each run) of the database at the URL `ARG` |
//!
//! Every mode serves every path, so a request to another path measures the pass-through. The
//! server stops on `SIGTERM` or `SIGINT`: it stops accepting, drains the sinks (a graceful
//! shutdown loses nothing accepted), prints one line of counters and, in `postgres` mode, the
//! number of rows in the table, then exits.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tower::Layer;
use tower_csp_reports::postgres::PostgresStore;
use tower_csp_reports::sink::{TracingSink, sink_fn};
use tower_csp_reports::{CspReportHandle, CspReportLayer, ReportBatch, SinkOptions};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The table the `postgres` mode writes to.
const TABLE: &str = "loadtest_reports";

/// What the ceiling does too: read the whole body, answer `204`.
async fn inner(request: Request<Incoming>) -> Result<Response<Empty<Bytes>>, hyper::Error> {
    request.into_body().collect().await?;
    let mut response = Response::new(Empty::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// The ceiling, and a check of the body's JSON with nothing kept: `400` when it is not JSON.
async fn json_only(request: Request<Incoming>) -> Result<Response<Empty<Bytes>>, hyper::Error> {
    let body = request.into_body().collect().await?.to_bytes();
    let mut response = Response::new(Empty::new());
    *response.status_mut() = match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    Ok(response)
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: loadtest_server bare|json|null|tracing|postgres ADDR [FILE|URL]";
    let mode = args.next().ok_or(usage)?;
    let addr = args.next().ok_or(usage)?;
    let arg = args.next();
    // `LOADTEST_THREADS` worker threads (default: one per core), so the script can give the
    // load generator a core of its own.
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = std::env::var("LOADTEST_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        runtime.worker_threads(threads);
    }
    runtime
        .enable_all()
        .build()?
        .block_on(run(&mode, &addr, arg))
}

async fn run(mode: &str, addr: &str, arg: Option<String>) -> Result<(), BoxError> {
    // A large queue: the load test measures throughput, and a drop would show as a missing
    // row. Batches are the default size (100) but for Postgres: there a larger COPY pays, and
    // batches of 1000 (`LOADTEST_PG_BATCH`), two at once (`LOADTEST_PG_CONCURRENCY`), let the
    // sink keep up. With batches of 100 the queue grows for the whole run, and the requests
    // answered outrun the rows stored.
    let options = SinkOptions::default().queue_capacity(1_000_000);
    let mut store = None;
    let layer = match mode {
        "bare" | "json" => None,
        "null" => {
            let null = sink_fn(|_: ReportBatch| async { Ok(()) }).named("null");
            Some(CspReportLayer::builder().sink_with(null, options).build()?)
        }
        "tracing" => {
            let path = arg.as_deref().ok_or("tracing mode needs a log file")?;
            let file = std::fs::File::create(path)?;
            tracing_subscriber::fmt()
                .with_writer(std::sync::Mutex::new(std::io::LineWriter::new(file)))
                .with_ansi(false)
                .init();
            Some(
                CspReportLayer::builder()
                    .sink_with(TracingSink::new(), options)
                    .build()?,
            )
        }
        "postgres" => {
            let url = arg.as_deref().ok_or("postgres mode needs a database URL")?;
            // A table of its own, made afresh: the rows counted at the end are this run's.
            let s = PostgresStore::builder_from_url(url).table(TABLE).build()?;
            s.pool()
                .get()
                .await?
                .batch_execute(&format!("DROP TABLE IF EXISTS {TABLE}"))
                .await?;
            s.migrate().await?;
            let setting = |name: &str, default: usize| {
                std::env::var(name)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(default)
            };
            let options = options
                .batch_size(setting("LOADTEST_PG_BATCH", 1000))
                .concurrency(setting("LOADTEST_PG_CONCURRENCY", 2));
            let layer = CspReportLayer::builder()
                .sink_with(s.sink(), options)
                .build()?;
            store = Some(s);
            Some(layer)
        }
        other => return Err(format!("unknown mode {other:?}").into()),
    };
    let handle = layer.as_ref().map(CspReportLayer::handle);

    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => accepted?.0,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        stream.set_nodelay(true)?;
        let io = TokioIo::new(stream);
        match &layer {
            Some(layer) => connections.spawn(serve(io, layer.layer(tower::service_fn(inner)))),
            None if mode == "json" => connections.spawn(serve(io, tower::service_fn(json_only))),
            None => connections.spawn(serve(io, tower::service_fn(inner))),
        };
    }
    // The load generator is done by now; give its last connections a moment, then stop.
    let _ = tokio::time::timeout(Duration::from_secs(2), connections.join_all()).await;
    report(handle, store).await
}

async fn serve<S, B>(io: TokioIo<tokio::net::TcpStream>, service: S)
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    // A client that goes away mid-request is not the server's failure.
    let _ = Builder::new(TokioExecutor::new())
        .serve_connection(io, TowerToHyperService::new(service))
        .await;
}

async fn report(
    handle: Option<CspReportHandle>,
    store: Option<PostgresStore>,
) -> Result<(), BoxError> {
    let Some(handle) = handle else {
        println!("stats accepted=0 delivered=0 dropped=0 failed=0 rows=-");
        return Ok(());
    };
    handle.shutdown().await;
    let stats = handle.stats();
    let sink = &stats.sinks[0];
    let rows = match store {
        Some(store) => {
            let client = store.pool().get().await?;
            let query = format!("SELECT count(*) FROM {}", store.table_name());
            let count: i64 = client.query_one(query.as_str(), &[]).await?.get(0);
            count.to_string()
        }
        None => "-".to_owned(),
    };
    println!(
        "stats accepted={} delivered={} dropped={} failed={} rows={rows}",
        stats.accepted, sink.delivered, sink.dropped, sink.failed
    );
    Ok(())
}
