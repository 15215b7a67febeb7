//! `csp-reports serve` against clients that hold connections: requests whose headers never
//! end, idle keep-alive connections (HTTP/1 and HTTP/2), more connections than the cap, more
//! than the open-file limit, HTTP/2 streams past their limit. Over real sockets, through the
//! real binary; the server's open files are read from `/proc`, so these run on Linux.
#![cfg(all(feature = "cli", target_os = "linux"))]

#[path = "support/http.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use http_client::{legacy, post, request, send};
use hyper_util::rt::{TokioExecutor, TokioIo};
use served::Served;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// The start of a request whose headers never end.
const PARTIAL: &[u8] = b"POST /csp-report HTTP/1.1\r\nHost: x\r\n";

/// Raises this process's soft open-file limit to at least `files` (the servers these tests
/// start inherit it), or fails saying what to change.
fn open_files_at_least(files: u64) {
    let limit = rlimit::increase_nofile_limit(files).expect("read and raise RLIMIT_NOFILE");
    assert!(
        limit >= files,
        "this test needs {files} open files but the hard limit allows {limit}: raise it \
         (`ulimit -Hn {files}` as root, or LimitNOFILE= under systemd)"
    );
}

/// Opens a connection and sends the start of a request that never ends.
async fn half_open(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(PARTIAL)
        .await
        .expect("send the partial request");
    stream
}

/// When the server closed `stream` (the read ends or is reset), or `None` if it is still
/// open at `deadline`. Whatever the server answers before closing is skipped.
async fn closed_by_server(mut stream: TcpStream, deadline: Instant) -> Option<Instant> {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(Instant::now()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Waits until `check` holds, for at most 10 s; says whether it did.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

fn json_line(line: &str) -> serde_json::Value {
    serde_json::from_str(line).expect("a JSON log line")
}

fn a_report() -> Request<Full<Bytes>> {
    post(
        "/csp-report",
        "application/csp-report",
        legacy("https://s.example/", "img-src", "https://img.example/x.png"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_closed_while_clients_are_served() {
    const HALF_OPEN: usize = 2_000;
    const TIMEOUT: Duration = Duration::from_secs(2);
    open_files_at_least(HALF_OPEN as u64 + 1_000);
    let served = Served::start(&["--header-read-timeout", "2s"]);
    let (addr, pid) = (served.addr, served.pid());
    let before = served.open_files();

    // A normal client, one report and one health check at a time, and a watch on the
    // server's open files, both until every half-open connection is closed.
    let done = Arc::new(AtomicBool::new(false));
    let client = tokio::spawn({
        let done = done.clone();
        async move {
            let mut answers = Vec::new();
            while !done.load(Ordering::Relaxed) {
                answers.push(("report", send(addr, a_report()).await.status));
                answers.push((
                    "health",
                    send(addr, request("GET", "/healthz")).await.status,
                ));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            answers
        }
    });
    let peak = Arc::new(AtomicUsize::new(0));
    let watch = tokio::spawn({
        let (done, peak) = (done.clone(), peak.clone());
        async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(served::open_files(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });

    let mut connections = JoinSet::new();
    for _ in 0..HALF_OPEN {
        connections.spawn(async move {
            // Before the connect: the server's timer cannot start earlier.
            let start = Instant::now();
            let stream = half_open(addr).await;
            let closed = closed_by_server(stream, start + TIMEOUT + Duration::from_secs(20)).await;
            (start, closed)
        });
    }
    let mut open_at_the_end = 0;
    let mut early = Vec::new();
    let mut latest = Duration::ZERO;
    while let Some(outcome) = connections.join_next().await {
        let (start, closed) = outcome.expect("a half-open connection's task");
        match closed {
            None => open_at_the_end += 1,
            Some(closed) if closed - start < TIMEOUT => early.push(closed - start),
            Some(closed) => latest = latest.max(closed - start),
        }
    }
    done.store(true, Ordering::Relaxed);
    let answers = client.await.expect("the normal client");
    watch.await.unwrap();

    assert_eq!(
        open_at_the_end, 0,
        "half-open connections still open 20 s past the timeout"
    );
    assert!(early.is_empty(), "closed before the timeout: {early:?}");
    let peak = peak.load(Ordering::Relaxed);
    assert!(
        peak >= before + HALF_OPEN,
        "the server never held the {HALF_OPEN} connections at once (peak {peak} open files, \
         {before} before)"
    );
    let reports = answers.iter().filter(|(what, _)| *what == "report").count();
    eprintln!(
        "{HALF_OPEN} half-open connections closed {TIMEOUT:?} to {latest:?} after their \
         connect; the server held {peak} open files at most ({before} before); {reports} \
         reports and as many health checks answered meanwhile"
    );
    assert!(reports >= 5, "only {reports} reports sent meanwhile");
    for (what, status) in &answers {
        let expected = if *what == "report" {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::OK
        };
        assert_eq!(*status, expected, "{what}: {answers:?}");
    }
    assert!(
        eventually(|| served::open_files(pid) <= before + 2).await,
        "the server kept files open: {} now, {before} before",
        served::open_files(pid)
    );
    let log = served.stop();
    assert!(
        !log.iter().any(|line| line.contains("accept failed")),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_others_close() {
    const CAP: usize = 20;
    open_files_at_least(1_024);
    let mut served = Served::start(&["--max-connections", "20", "--header-read-timeout", "60s"]);
    let listening = json_line(&served.wait_for_line("listening on").unwrap());
    assert_eq!(listening["max_connections"], 20);
    let (addr, pid) = (served.addr, served.pid());
    let before = served.open_files();

    let mut held = Vec::new();
    for _ in 0..CAP {
        held.push(half_open(addr).await);
    }
    assert!(
        eventually(|| served::open_files(pid) == before + CAP).await,
        "the server did not accept {CAP} connections"
    );
    // One more: the kernel completes its handshake (the listen backlog), the server does not
    // take it.
    let waiting = tokio::spawn(send(addr, request("GET", "/healthz")));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        !waiting.is_finished(),
        "a connection past the cap was served"
    );
    assert_eq!(served::open_files(pid), before + CAP);

    // Five leave: the waiting one is let in and answered.
    held.drain(..5);
    let answer = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiting connection was not served once others closed")
        .expect("the waiting request");
    assert_eq!(answer.status, StatusCode::OK);
    assert!(served::open_files(pid) <= before + CAP);
    drop(held);
    assert!(eventually(|| served::open_files(pid) <= before + 1).await);
    served.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_never_runs_out_of_files() {
    const FILES: u64 = 200;
    const CLIENTS: usize = 300;
    open_files_at_least(1_024);
    // The default cap, 10,000, does not fit in 200 files: lowered, with a warning.
    let mut served = Served::start_with_file_limit(FILES, &["--header-read-timeout", "60s"]);
    let warning = json_line(
        &served
            .wait_for_line("lowered to fit the open-file limit")
            .expect("no warning that the cap was lowered"),
    );
    assert_eq!(warning["open_file_limit"], FILES);
    let cap = warning["max_connections"].as_u64().unwrap() as usize;
    assert_eq!(cap, 100, "200 files, half of them kept in reserve");
    let (addr, pid) = (served.addr, served.pid());
    let before = served.open_files();

    // More clients than the cap, and than the open-file limit: the kernel's backlog holds
    // the rest.
    let mut held = Vec::new();
    for _ in 0..CLIENTS {
        held.push(half_open(addr).await);
    }
    assert!(
        eventually(|| served::open_files(pid) == before + cap).await,
        "{} open files, expected {before} + {cap}",
        served::open_files(pid)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open = served::open_files(pid);
    assert!(
        open == before + cap && open as u64 <= FILES,
        "{open} open files"
    );

    // Once they leave, the collector serves as before.
    drop(held);
    assert!(eventually(|| served::open_files(pid) <= before + 1).await);
    assert_eq!(send(addr, a_report()).await.status, StatusCode::NO_CONTENT);
    let log = served.stop();
    for line in &log {
        assert!(
            !line.contains("accept failed") && !line.contains("Too many open files"),
            "{line}"
        );
    }
}

/// Waits for the server to close a client connection whose driver task is `connection`;
/// returns how long after `since` it did.
async fn closed_after(
    connection: tokio::task::JoinHandle<Result<(), hyper::Error>>,
    since: Instant,
) -> Duration {
    tokio::time::timeout(Duration::from_secs(20), connection)
        .await
        .expect("the idle connection was not closed")
        .expect("the connection task")
        .expect("the connection ended cleanly");
    since.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let served = Served::start(&["--idle-timeout", "1s", "--header-read-timeout", "30s"]);
    let addr = served.addr;

    // HTTP/1.1 keep-alive.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let answer = sender
        .send_request(request("GET", "/healthz"))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    answer.into_body().collect().await.unwrap();
    let idle = closed_after(connection, Instant::now()).await;
    assert!(
        idle >= Duration::from_millis(900),
        "HTTP/1 closed after {idle:?}"
    );

    // HTTP/2 (prior knowledge): no header-read timeout of hyper's applies; the idle one does,
    // with a GOAWAY.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let answer = sender.send_request(a_report()).await.unwrap();
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    let idle = closed_after(connection, Instant::now()).await;
    assert!(
        idle >= Duration::from_millis(900),
        "HTTP/2 closed after {idle:?}"
    );
    served.stop();
}

type AnyBody =
    http_body_util::combinators::UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// One body type for every request of an HTTP/2 client.
fn boxed<B>(request: Request<B>) -> Request<AnyBody>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    request.map(|body| body.map_err(Into::into).boxed_unsync())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_limits_hold() {
    let served = Served::start(&[
        "--http2-max-streams",
        "2",
        "--http2-max-header-list-size",
        "4096",
    ]);
    let stream = TcpStream::connect(served.addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);

    // Two reports whose bodies are still coming take both streams.
    let mut bodies = Vec::new();
    let mut slow = Vec::new();
    for _ in 0..2 {
        let (tx, body) = http_body_util::channel::Channel::<Bytes, hyper::Error>::new(1);
        let request = Request::post("/csp-report")
            .header("content-type", "application/csp-report")
            .body(body)
            .unwrap();
        let mut sender = sender.clone();
        slow.push(tokio::spawn(async move {
            sender.send_request(boxed(request)).await
        }));
        bodies.push(tx);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A third waits for one of them.
    let third = tokio::spawn({
        let mut sender = sender.clone();
        async move { sender.send_request(boxed(request("GET", "/healthz"))).await }
    });
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(!third.is_finished(), "a third stream was served at once");
    let mut first = bodies.remove(0);
    first
        .send_data(Bytes::from(legacy(
            "https://s.example/",
            "img-src",
            "https://img.example/x.png",
        )))
        .await
        .unwrap();
    drop(first);
    let answer = tokio::time::timeout(Duration::from_secs(10), slow.remove(0))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    let answer = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("the third stream was not served once one was free")
        .unwrap()
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    drop(bodies);

    // A header list over 4 KiB is refused, and the connection goes on.
    let mut sender = sender.clone();
    let big = request("GET", "/healthz");
    let (mut parts, body) = big.into_parts();
    parts
        .headers
        .insert("x-padding", "a".repeat(8 * 1024).parse().unwrap());
    match sender
        .send_request(boxed(Request::from_parts(parts, body)))
        .await
    {
        Ok(answer) => assert_eq!(answer.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(error) => assert!(!error.is_closed(), "{error}"),
    }
    let answer = sender
        .send_request(boxed(request("GET", "/healthz")))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    served.stop();
}
