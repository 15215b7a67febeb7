//! Hostile requests over real sockets: each one gets its expected answer and leaves no trace
//! beyond it (the counters and the sink show exactly what the answer says), and the server
//! keeps answering normal reports afterwards.
//!
//! Then what reaches a log and an email: CR, LF and terminal escapes sent in every field
//! must never come out raw.

#[path = "support/connection.rs"]
mod connection;
#[path = "support/http.rs"]
mod http_client;
#[path = "support/log_buffer.rs"]
mod log_buffer;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use http_client::{legacy, send};
use serde_json::json;
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};
use tower_csp_reports::filter::KeepAll;
use tower_csp_reports::sink::{MemorySink, TracingSink};
use tower_csp_reports::{
    CspReportHandle, CspReportLayer, CspReportLayerBuilder, Dispatch, Report, WireFormat,
};

type Body = BoxBody<Bytes, Infallible>;

/// The default body limit, and the most the layer allows.
const DEFAULT_LIMIT: usize = 1024 * 1024;
const BIG_LIMIT: usize = 16 * 1024 * 1024;
const TEN_MB: usize = 10 * 1024 * 1024;

/// The limits a case runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    Default,
    Big,
}

fn layer(limit: Limit) -> CspReportLayerBuilder {
    let layer = CspReportLayer::builder()
        .filter(KeepAll)
        .dispatch(Dispatch::Inline)
        .body_timeout(Duration::from_millis(500))
        // The cases below count on 100 reports per request, not the default derived from
        // the body limit (which has its own case).
        .max_reports_per_request(100);
    match limit {
        Limit::Default => layer,
        Limit::Big => layer.max_body_size(BIG_LIMIT),
    }
}

/// Serves `layer` over plain hyper (HTTP/1 and HTTP/2), telling it each peer's address.
async fn serve(layer: CspReportLayer) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let service = layer.layer(tower::service_fn(
                |_: Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"app"))))
                },
            ));
            let service = tower::service_fn(move |mut request: Request<_>| {
                request.extensions_mut().insert(peer);
                service.clone().oneshot(request)
            });
            tokio::spawn(connection::serve(stream, service));
        }
    });
    addr
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

fn post(content_type: &str, body: Body) -> Request<Body> {
    Request::post("/csp-report")
        .header("host", "127.0.0.1")
        .header("content-type", content_type)
        .body(body)
        .unwrap()
}

fn csp(body: impl Into<Bytes>) -> Request<Body> {
    post("application/csp-report", full(body))
}

fn reports_json(body: impl Into<Bytes>) -> Request<Body> {
    post("application/reports+json", full(body))
}

/// A body that trickles in: one byte, then nothing for longer than the body timeout.
fn trickle() -> Body {
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
    tokio::spawn(async move {
        let _ = tx.send_data(Bytes::from_static(b"{")).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = tx.send_data(Bytes::from_static(b"}")).await;
    });
    body.boxed()
}

/// The start of a body, then nothing: what a client sends before it learns the answer.
fn stalled(start: &str) -> Body {
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
    let start = Bytes::copy_from_slice(start.as_bytes());
    tokio::spawn(async move {
        let _ = tx.send_data(start).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    body.boxed()
}

/// `len` bytes sent chunked, with no Content-Length.
fn chunked(len: usize) -> Body {
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(4);
    tokio::spawn(async move {
        for _ in 0..len / 1024 {
            if tx.send_data(Bytes::from(vec![b' '; 1024])).await.is_err() {
                return;
            }
        }
    });
    body.boxed()
}

/// A field value that tries to start a new log or header line and to drive a terminal.
const NASTY: &str = "https://evil.example/\r\nX-Injected: yes\u{1b}[31mred\u{1b}[0m\u{7}\u{1b}]0;title\u{7}\u{2028}\u{202e}";

/// A legacy report with `NASTY` (plus its name) in every string field.
fn nasty_legacy() -> String {
    let field = |name: &str| format!("{name}:{NASTY}");
    json!({"csp-report": {
        "document-uri": field("document-uri"),
        "referrer": field("referrer"),
        "blocked-uri": field("blocked-uri"),
        "effective-directive": field("effective-directive"),
        "violated-directive": field("violated-directive"),
        "original-policy": field("original-policy"),
        "disposition": field("disposition"),
        "script-sample": field("script-sample"),
        "source-file": field("source-file"),
        "user-agent": field("user-agent"),
    }})
    .to_string()
}

/// A Reporting API batch with `NASTY` in every field, the type included.
fn nasty_reporting_api() -> String {
    let field = |name: &str| format!("{name}:{NASTY}");
    json!([
        {"type": "csp-violation", "age": 1, "url": field("url"), "user_agent": field("user_agent"),
         "body": {"documentURL": field("documentURL"), "referrer": field("referrer"),
                  "blockedURL": field("blockedURL"), "effectiveDirective": field("effectiveDirective"),
                  "originalPolicy": field("originalPolicy"), "disposition": field("disposition"),
                  "sample": field("sample"), "sourceFile": field("sourceFile"),
                  "lineNumber": 1, "columnNumber": 2, "statusCode": 200}},
        {"type": field("type"), "url": field("url"), "body": {"x": field("x")}},
    ])
    .to_string()
}

/// Every string of a report but its raw text.
fn texts(report: &Report) -> Vec<(&'static str, &str)> {
    let fields = [
        ("report_type", Some(&*report.report_type)),
        ("invalid_reason", report.invalid_reason.as_deref()),
        ("user_agent", report.user_agent.as_deref()),
        ("url", report.url.as_deref()),
        ("document_uri", report.document_uri.as_deref()),
        ("referrer", report.referrer.as_deref()),
        ("blocked_uri", report.blocked_uri.as_deref()),
        ("effective_directive", report.effective_directive.as_deref()),
        ("violated_directive", report.violated_directive.as_deref()),
        ("original_policy", report.original_policy.as_deref()),
        ("disposition", report.disposition.as_deref()),
        ("script_sample", report.script_sample.as_deref()),
        ("source_file", report.source_file.as_deref()),
    ];
    fields
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect()
}

fn assert_safe(report: &Report) {
    for (name, text) in texts(report) {
        assert!(
            !text.contains(['\r', '\n', '\u{1b}', '\u{7}', '\u{2028}', '\u{202e}']),
            "{name} holds a raw control character: {text:?}"
        );
    }
}

/// What a request must leave behind.
struct Case {
    name: &'static str,
    limit: Limit,
    request: fn() -> Request<Body>,
    status: StatusCode,
    /// Reports handed to the sink.
    stored: usize,
    /// Of those, the invalid ones.
    invalid: usize,
    /// Reports counted as truncated.
    truncated: u64,
    check: fn(&[Report]),
}

impl Case {
    fn new(name: &'static str, request: fn() -> Request<Body>, status: StatusCode) -> Self {
        Self {
            name,
            limit: Limit::Default,
            request,
            status,
            stored: 0,
            invalid: 0,
            truncated: 0,
            check: |_| {},
        }
    }

    fn big(mut self) -> Self {
        self.limit = Limit::Big;
        self
    }

    fn stored(mut self, stored: usize, invalid: usize) -> Self {
        self.stored = stored;
        self.invalid = invalid;
        self
    }

    fn truncated(mut self, truncated: u64) -> Self {
        self.truncated = truncated;
        self
    }

    fn check(mut self, check: fn(&[Report])) -> Self {
        self.check = check;
        self
    }
}

fn cases() -> Vec<Case> {
    use StatusCode as S;
    vec![
        Case::new(
            "over the limit, with Content-Length",
            || csp(vec![b' '; DEFAULT_LIMIT + 1]),
            S::PAYLOAD_TOO_LARGE,
        ),
        Case::new(
            "over the limit, chunked without Content-Length",
            || post("application/csp-report", chunked(DEFAULT_LIMIT + 8 * 1024)),
            S::PAYLOAD_TOO_LARGE,
        ),
        Case::new(
            "exactly at the limit is read",
            || {
                let report = legacy("https://a.example/", "img-src", "data");
                let mut body = report.into_bytes();
                body.resize(DEFAULT_LIMIT, b' ');
                csp(body)
            },
            S::NO_CONTENT,
        )
        .stored(1, 0),
        Case::new(
            "a body that trickles in",
            || post("application/csp-report", trickle()),
            S::REQUEST_TIMEOUT,
        ),
        Case::new(
            "30,000 nested arrays as the report",
            || {
                let depth = 30_000;
                csp(format!(
                    r#"{{"csp-report":{}{}}}"#,
                    "[".repeat(depth),
                    "]".repeat(depth)
                ))
            },
            S::NO_CONTENT,
        )
        .stored(1, 1),
        Case::new(
            "10,000 nested objects in an unknown field",
            || {
                let depth = 10_000;
                csp(format!(
                    r#"{{"csp-report":{{"document-uri":"https://a.example/","effective-directive":"img-src","x":{}1{}}}}}"#,
                    r#"{"a":"#.repeat(depth),
                    "}".repeat(depth)
                ))
            },
            S::NO_CONTENT,
        )
        .stored(1, 0),
        Case::new(
            "30,000 nested arrays as a whole body",
            || reports_json(format!("{}{}", "[".repeat(30_000), "]".repeat(30_000))),
            S::NO_CONTENT,
        )
        .stored(1, 1),
        Case::new(
            "100,000 items: capped at 100 reports, the rest counted as truncated",
            || {
                let item = r#"{"document-uri":"https://a.example/","violated-directive":"img-src"}"#;
                reports_json(format!("[{}]", vec![item; 100_000].join(",")))
            },
            S::NO_CONTENT,
        )
        .big()
        .stored(100, 0)
        .truncated(99_900)
        .check(|reports| assert!(reports.iter().all(Report::is_valid))),
        Case::new(
            "an empty batch (found by fuzzing)",
            || reports_json("[\n \n ]"),
            S::NO_CONTENT,
        ),
        Case::new(
            "a 10 MB string, default limit: refused on its Content-Length",
            || {
                let body = legacy(&"a".repeat(TEN_MB), "img-src", "data");
                let mut request = post("application/csp-report", stalled(&body[..DEFAULT_LIMIT]));
                request.headers_mut().insert("content-length", body.len().into());
                request
            },
            S::PAYLOAD_TOO_LARGE,
        ),
        Case::new(
            "a 10 MB document-uri, 16 MiB limit: the field is capped",
            || {
                let document = format!("https://a.example/{}", "a".repeat(TEN_MB));
                csp(legacy(&document, "img-src", "data"))
            },
            S::NO_CONTENT,
        )
        .big()
        .stored(1, 0)
        .check(|reports| {
            let document = reports[0].document_uri.as_deref().unwrap();
            assert!(document.len() <= 4096 + 3, "{} bytes", document.len());
            assert!(document.ends_with('…'));
            assert!(reports[0].raw.len() > TEN_MB, "the raw item is kept whole");
        }),
        Case::new(
            "a 10 MB string as a batch item, 16 MiB limit: the reason is capped",
            || reports_json(format!(r#"["{}\n"]"#, "a".repeat(TEN_MB))),
            S::NO_CONTENT,
        )
        .big()
        .stored(1, 1)
        .check(|reports| {
            let reason = reports[0].invalid_reason.as_deref().unwrap();
            assert!(reason.len() <= 256 + 3, "a reason of {} bytes", reason.len());
            assert_eq!(reason, "invalid type: string, expected a JSON object");
        }),
        Case::new(
            "invalid UTF-8: 400, kept raw as invalid",
            || csp(&b"{\"csp-report\":{\"document-uri\":\"\xff\xfe\xc3\x28\"}}"[..]),
            S::BAD_REQUEST,
        )
        .stored(1, 1)
        .check(|reports| {
            assert_eq!(reports[0].format, WireFormat::Unparsed);
            assert!(reports[0].raw.contains('\u{fffd}'));
        }),
        Case::new(
            "not JSON: 400, kept raw as invalid",
            || csp("<script>alert(1)</script>\r\n\u{1b}[2J"),
            S::BAD_REQUEST,
        )
        .stored(1, 1),
        Case::new("an empty body: 400", || csp(""), S::BAD_REQUEST).stored(1, 1),
        Case::new("JSON null: 400", || csp("null"), S::BAD_REQUEST).stored(1, 1),
        Case::new(
            "text/plain",
            || post("text/plain", full(legacy("https://a.example/", "img-src", "data"))),
            S::UNSUPPORTED_MEDIA_TYPE,
        ),
        Case::new(
            "a form post",
            || post("application/x-www-form-urlencoded", full("a=b")),
            S::UNSUPPORTED_MEDIA_TYPE,
        ),
        Case::new(
            "a content type that is not ASCII",
            || {
                let mut request = csp(legacy("https://a.example/", "img-src", "data"));
                request.headers_mut().insert(
                    "content-type",
                    HeaderValue::from_bytes(b"application/csp-report\xff").unwrap(),
                );
                request
            },
            S::UNSUPPORTED_MEDIA_TYPE,
        ),
        Case::new(
            "no content type",
            || {
                let mut request = csp(legacy("https://a.example/", "img-src", "data"));
                request.headers_mut().remove("content-type");
                request
            },
            S::UNSUPPORTED_MEDIA_TYPE,
        ),
        Case::new(
            "GET",
            || {
                Request::get("/csp-report")
                    .header("host", "127.0.0.1")
                    .body(full(""))
                    .unwrap()
            },
            S::METHOD_NOT_ALLOWED,
        ),
        Case::new(
            "duplicate keys: the last one wins",
            || {
                csp(r#"{"csp-report":{"document-uri":"https://first.example/","document-uri":"https://last.example/","effective-directive":"img-src","effective-directive":"script-src"},"csp-report":{"document-uri":"https://other.example/","effective-directive":"style-src"}}"#)
            },
            S::NO_CONTENT,
        )
        .stored(1, 0)
        .check(|reports| {
            assert_eq!(reports[0].document_uri.as_deref(), Some("https://other.example/"));
            assert_eq!(reports[0].effective_directive.as_deref(), Some("style-src"));
        }),
        Case::new(
            "numbers out of range: each item invalid, none lost",
            || {
                let item = |field: &str, value: &str| {
                    format!(
                        r#"{{"type":"csp-violation","url":"https://a.example/","body":{{"documentURL":"https://a.example/","effectiveDirective":"img-src","{field}":{value}}}}}"#
                    )
                };
                let items = [
                    item("lineNumber", "4294967296"),
                    item("lineNumber", "-1"),
                    item("columnNumber", "1e400"),
                    item("columnNumber", "1.5"),
                    item("statusCode", "1000"),
                    item("statusCode", "18446744073709551616"),
                    item("lineNumber", "\"99999999999999999999999\""),
                    r#"{"type":"csp-violation","age":1e30,"url":"https://a.example/","body":{"documentURL":"https://a.example/","effectiveDirective":"img-src"}}"#.to_owned(),
                    item("lineNumber", "4294967295"),
                ];
                reports_json(format!("[{}]", items.join(",")))
            },
            S::NO_CONTENT,
        )
        .stored(9, 8)
        .check(|reports| {
            assert_eq!(reports[8].line_number, Some(u32::MAX), "the largest line is kept");
            for report in &reports[..8] {
                let reason = report.invalid_reason.as_deref().unwrap();
                assert!(reason.contains("out of range") || reason.contains("not a number"), "{reason}");
            }
        }),
        Case::new(
            "CR, LF and terminal escapes in every legacy field",
            || csp(nasty_legacy()),
            S::NO_CONTENT,
        )
        .stored(1, 0)
        .check(|reports| {
            let document = reports[0].document_uri.as_deref().unwrap();
            assert!(document.starts_with(r"document-uri:https://evil.example/\r\nX-Injected: yes\u{1b}[31m"), "{document}");
        }),
        Case::new(
            "CR, LF and terminal escapes in every Reporting API field",
            || reports_json(nasty_reporting_api()),
            S::NO_CONTENT,
        )
        .stored(2, 0),
        Case::new(
            "a User-Agent that is not ASCII",
            || {
                let mut request = csp(legacy("https://a.example/", "img-src", "data"));
                request.headers_mut().insert(
                    "user-agent",
                    HeaderValue::from_bytes(b"Mozilla/5.0 (\xc3\xa9t\xc3\xa9; \xff\x80\xfe)").unwrap(),
                );
                request
            },
            S::NO_CONTENT,
        )
        .stored(1, 0)
        .check(|reports| {
            assert_eq!(
                reports[0].user_agent.as_deref(),
                Some("Mozilla/5.0 (été; \u{fffd}\u{fffd}\u{fffd})")
            );
        }),
        Case::new(
            "an Origin that is not ASCII",
            || {
                let mut request = reports_json(nasty_reporting_api());
                request
                    .headers_mut()
                    .insert("origin", HeaderValue::from_bytes(b"https://\xe2\x80\xaeevil.example").unwrap());
                request
            },
            S::NO_CONTENT,
        )
        .stored(2, 0),
    ]
}

async fn check(case: &Case) {
    let memory = MemorySink::new();
    let layer = layer(case.limit).sink(memory.clone()).build().unwrap();
    let handle = layer.handle();
    let addr = serve(layer).await;
    let name = case.name;

    let answer = send(addr, (case.request)()).await;
    assert_eq!(answer.status, case.status, "{name}: {answer:?}");
    assert!(answer.body.len() < 200, "{name}: a short answer");
    if case.status.is_client_error() {
        assert!(!answer.body.trim().is_empty(), "{name}: a 4xx says why");
    }

    // Inline dispatch: the sink has everything before the answer.
    let reports = memory.reports();
    assert_eq!(reports.len(), case.stored, "{name}: reports at the sink");
    let invalid = reports.iter().filter(|r| !r.is_valid()).count();
    assert_eq!(invalid, case.invalid, "{name}: invalid reports");
    for report in &reports {
        assert_safe(report);
        // The client's address, truncated to its network by default.
        assert_eq!(report.client_ip, Some([127, 0, 0, 0].into()), "{name}");
    }
    (case.check)(&reports);
    let stats = handle.stats();
    assert_eq!(stats.requests, 1, "{name}");
    assert_eq!(
        stats.rejected,
        u64::from(case.status.is_client_error()),
        "{name}"
    );
    assert_eq!(stats.received, case.stored as u64, "{name}");
    assert_eq!(stats.accepted, case.stored as u64, "{name}");
    assert_eq!(stats.invalid, case.invalid as u64, "{name}");
    assert_eq!(stats.truncated, case.truncated, "{name}");
    assert_eq!(stats.sinks[0].delivered, case.stored as u64, "{name}");

    // And the next browser is served as usual.
    let answer = send(addr, csp(legacy("https://ok.example/", "img-src", "data"))).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{name}: afterwards");
    assert_eq!(memory.total(), case.stored as u64 + 1, "{name}: afterwards");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_gets_its_answer_and_nothing_else() {
    let cases = cases();
    let names: std::collections::HashSet<_> = cases.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    for case in &cases {
        check(case).await;
    }
}

// ---------------------------------------------------------------------------------------
// What reaches a log

/// Every field of every `csp_reports` event, as the subscriber is given it (no escaping).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Event>>>);

/// One event's fields: names and values.
type Event = Vec<(String, String)>;

struct Fields(Event);

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "csp_reports" {
            let mut fields = Fields(Vec::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
    }
}

/// The hostile bodies whose reports reach the sinks.
fn hostile_requests() -> Vec<Request<Body>> {
    let mut odd_agent = csp(legacy("https://agent.example/", "img-src", "data"));
    odd_agent.headers_mut().insert(
        "user-agent",
        HeaderValue::from_bytes(b"Mozilla/5.0 \xff\x80 \xe2\x80\xae").unwrap(),
    );
    vec![
        csp(nasty_legacy()),
        reports_json(nasty_reporting_api()),
        csp(format!("not json\r\nX-Injected: yes\u{1b}[2J{NASTY}")),
        reports_json(json!([format!("item\r\nX-Injected: yes{NASTY}")]).to_string()),
        odd_agent,
    ]
}

// Current-thread: the subscriber is this thread's default, and every task runs here.
#[tokio::test]
async fn nothing_reaches_a_log_line_raw() {
    let capture = Capture::default();
    let buffer = log_buffer::Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::layer::SubscriberExt::with(
        tracing_subscriber::registry(),
        capture.clone(),
    );
    let subscriber = tracing_subscriber::layer::SubscriberExt::with(
        subscriber,
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone()),
    );
    let _default = tracing::subscriber::set_default(subscriber);

    let layer = layer(Limit::Default)
        .sink(TracingSink::new())
        .build()
        .unwrap();
    let addr = serve(layer).await;
    let requests = hostile_requests();
    for request in requests {
        let status = send(addr, request).await.status;
        assert!(matches!(status.as_u16(), 204 | 400), "{status}");
    }

    let events = capture.0.lock().unwrap().clone();
    assert_eq!(events.len(), 6, "one event per report");
    let mut nasty_fields = 0;
    for event in &events {
        for (name, value) in event {
            assert!(
                !value.contains(['\r', '\n', '\u{1b}', '\u{7}', '\u{2028}', '\u{202e}']),
                "{name} = {value:?}"
            );
            nasty_fields += usize::from(value.contains(r"X-Injected: yes\u{1b}[31m"));
        }
    }
    // Every field of the two nasty reports, plus the raw text of the invalid ones.
    assert!(
        nasty_fields >= 20,
        "{nasty_fields} fields carried the payload"
    );

    let log = buffer.text();
    assert!(log.contains("X-Injected"), "the log has the reports");
    assert!(!log.contains(['\r', '\u{1b}', '\u{7}']), "{log}");
    for line in log.lines() {
        assert!(!line.starts_with("X-Injected"), "a forged line: {line}");
    }
    assert_eq!(log.lines().count(), events.len(), "one line per event");
}

// ---------------------------------------------------------------------------------------
// What reaches an email

#[cfg(feature = "smtp")]
#[path = "support/smtp_server.rs"]
mod smtp_server;

#[cfg(feature = "smtp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_reaches_an_email_raw() {
    use mailparse::MailHeaderMap;
    use tower_csp_reports::sink::smtp::{SmtpMode, SmtpSink};

    let server = smtp_server::Server::start();
    let sink = SmtpSink::builder(server.url())
        .from("CSP reports <csp@example.test>")
        .to("security@example.test")
        .subject_prefix("[CSP]")
        .mode(SmtpMode::PerReport)
        .build()
        .unwrap();
    let layer = layer(Limit::Default).sink(sink).build().unwrap();
    let handle: CspReportHandle = layer.handle();
    let addr = serve(layer).await;
    for request in hostile_requests() {
        let status = send(addr, request).await.status;
        assert!(matches!(status.as_u16(), 204 | 400), "{status}");
    }
    handle.shutdown().await;

    let mails = server.wait_for(6).await;
    assert_eq!(mails.len(), 6, "one mail per report");
    let mut carried = 0;
    for mail in &mails {
        assert!(!mail.data.contains(&0x1b), "an escape in the raw mail");
        let parsed = mail.parsed();
        for header in &parsed.headers {
            let key = header.get_key();
            assert!(!key.eq_ignore_ascii_case("X-Injected"), "a forged header");
            assert!(
                !header.get_value().contains(['\r', '\n', '\u{1b}']),
                "{key}"
            );
        }
        let subject = parsed.headers.get_first_value("Subject").unwrap();
        assert!(!subject.chars().any(char::is_control), "{subject:?}");
        let text = mail.text();
        let html = mail.html();
        for body in [&text, &html] {
            assert!(!body.contains(['\r', '\u{1b}', '\u{7}']), "{body}");
        }
        // The field list is one line per field; only the raw text of an invalid report,
        // shown as a block, keeps its line breaks.
        let fields = text.split("\n\nThe ").next().unwrap();
        for line in fields.lines() {
            assert!(!line.starts_with("X-Injected"), "a forged line: {line}");
        }
        carried += usize::from(text.contains("X-Injected"));
    }
    assert!(carried >= 4, "the payload reached the mails, made safe");
}
