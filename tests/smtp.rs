//! The SMTP sink against a real SMTP server on loopback (see `support/smtp_server.rs`).
#![cfg(feature = "smtp")]

#[path = "support/conformance.rs"]
mod conformance;
#[path = "support/smtp_server.rs"]
mod smtp_server;

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use smtp_server::*;
use tokio_rustls::rustls;
use tower::{Layer, ServiceExt};
use tower_csp_reports::dispatch::SinkFailure;
use tower_csp_reports::sink::smtp::lettre;
use tower_csp_reports::sink::smtp::lettre::transport::smtp::client::{Certificate, TlsParameters};
use tower_csp_reports::sink::smtp::{DeliveryError, SmtpMode, SmtpSink, SmtpSinkBuilder};
use tower_csp_reports::{CspReportLayer, Report, ReportBatch, ReportSink, SinkOptions};

// ---------------------------------------------------------------------------------------
// Helpers

fn sink(server_url: &str) -> SmtpSinkBuilder {
    SmtpSink::builder(server_url)
        .from("CSP reports <csp@example.test>")
        .to("security@example.test")
        .subject_prefix("[CSP]")
}

fn report(document: &str, directive: &str, blocked: &str) -> Report {
    Report::csp(document, directive, blocked)
}

fn batch(reports: &[&Report]) -> ReportBatch {
    reports.iter().map(|r| (*r).clone()).collect()
}

/// What the layer's error hook was told, one line per failed call.
type Failures = Arc<Mutex<Vec<String>>>;

/// A layer whose one sink is `sink`, fed with its own options but quick retries, and the
/// failures its error hook is told of.
fn layer_with(sink: &SmtpSink, options: SinkOptions) -> (CspReportLayer, Failures) {
    let failures: Failures = Arc::default();
    let seen = Arc::clone(&failures);
    let layer = CspReportLayer::builder()
        .sink_with(sink.clone(), options)
        .on_sink_error(move |failure: &SinkFailure<'_>| {
            let error = failure.error;
            let delivery = std::error::Error::source(error)
                .and_then(|s| s.downcast_ref::<DeliveryError>())
                .expect("the source is a DeliveryError");
            let status = delivery
                .smtp_error()
                .and_then(|e| e.status())
                .map(|code| code.to_string());
            seen.lock().unwrap().push(format!(
                "transient={} permanent={} will_retry={} status={status:?} message={error}",
                error.is_transient(),
                delivery.is_permanent(),
                failure.will_retry,
            ));
        })
        .build()
        .unwrap();
    (layer, failures)
}

fn layer(sink: &SmtpSink) -> (CspReportLayer, Failures) {
    let options = sink
        .default_options()
        .backoff(Duration::from_millis(50), Duration::from_millis(200));
    layer_with(sink, options)
}

async fn ok(_: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    Ok(Response::new(Full::new(Bytes::new())))
}

/// Posts a report through the layer as a browser would (its raw JSON), expecting a `204`
/// at once.
async fn post(layer: &CspReportLayer, report: &Report) {
    let request = Request::post("/csp-report")
        .header("content-type", "application/csp-report")
        .body(Full::new(Bytes::from(report.raw.to_string())))
        .unwrap();
    let service = layer.layer(tower::service_fn(ok));
    let answer = tokio::time::timeout(Duration::from_secs(2), service.oneshot(request))
        .await
        .expect("the answer does not wait for the mail server")
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
}

/// Waits until the hook was told of `n` failures.
async fn wait_failures(failures: &Failures, n: usize) -> Vec<String> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let seen = failures.lock().unwrap().clone();
            if seen.len() >= n {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the hook is told")
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn per_report_mails_reach_every_recipient_with_both_bodies() {
    let server = Server::start();
    let sink = sink(&server.url())
        .to("web@example.test")
        .mode(SmtpMode::PerReport)
        .build()
        .unwrap();

    let mut valid = report(
        "https://shop.example/pay?card=1",
        "script-src-elem",
        "https://evil.example/x.js",
    );
    valid.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/149.0".into());
    let mut invalid = report("https://shop.example/", "img-src", "data");
    invalid.invalid_reason = Some("expected a JSON object".to_owned());
    invalid.raw = "{\"csp-report\": truncated".into();
    // Called directly, the sink mails at once.
    sink.send(&batch(&[&valid, &invalid])).await.unwrap();

    let mails = server.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    for mail in &mails {
        assert_eq!(mail.envelope_from, "csp@example.test");
        assert_eq!(
            mail.envelope_to,
            ["security@example.test", "web@example.test"]
        );
        let to = mail.header("To").unwrap();
        assert!(
            to.contains("security@example.test") && to.contains("web@example.test"),
            "{to}"
        );
        assert_eq!(
            mail.header("Auto-Submitted").as_deref(),
            Some("auto-generated")
        );
    }

    let first = &mails[0];
    assert_eq!(
        first.subject(),
        "[CSP] script-src-elem blocked https://evil.example on https://shop.example/pay"
    );
    let text = first.text();
    assert!(text.starts_with("CSP violation report\n"), "{text}");
    assert!(text.contains("Firefox/149.0"), "{text}");
    assert!(text.contains("The report as JSON:\n{"), "{text}");
    assert!(
        text.contains("\"blocked_uri\": \"https://evil.example/x.js\""),
        "{text}"
    );
    let html = first.html();
    assert!(
        html.contains(
            "<th style=\"text-align:left;padding:2px 12px 2px 0;vertical-align:top\">Blocked</th>"
        ),
        "{html}"
    );
    assert!(html.contains("https://evil.example/x.js"), "{html}");

    let second = &mails[1];
    assert_eq!(
        second.subject(),
        "[CSP] invalid report (expected a JSON object)"
    );
    let text = second.text();
    assert!(
        text.starts_with("Invalid CSP report: expected a JSON object\n"),
        "{text}"
    );
    assert!(
        text.contains("The raw text as received:\n{\"csp-report\": truncated"),
        "{text}"
    );
    assert!(second.html().contains("{&quot;csp-report&quot;: truncated"));
}

#[tokio::test]
async fn a_digest_groups_a_window_by_fingerprint() {
    let server = Server::start();
    let window = Duration::from_millis(400);
    let sink = sink(&server.url())
        .mode(SmtpMode::digest(window))
        .build()
        .unwrap();

    let inline = report("https://app.example/a?x=1", "script-src-elem", "inline");
    let inline_again = report("https://app.example/a?x=2", "script-src-elem", "inline");
    let font = report(
        "https://app.example/",
        "font-src",
        "https://fonts.example/f.woff2",
    );
    // The dispatcher gathers the window as one batch: nothing goes out before it ends.
    let (layer, failures) = layer(&sink);
    for report in [&inline, &font, &inline_again, &inline] {
        post(&layer, report).await;
    }
    assert!(server.mails().is_empty());

    let mails = server.wait_for(1).await;
    assert_eq!(mails.len(), 1, "the window's digest");
    let digest = &mails[0];
    assert_eq!(digest.subject(), "[CSP] Digest: 4 reports of 2 violations");
    let text = digest.text();
    assert!(
        text.starts_with("4 reports of 2 distinct violations, received between "),
        "{text}"
    );
    let first = text
        .find("1. script-src-elem blocked inline on https://app.example/a (3 reports)")
        .expect("the most frequent violation first");
    let second = text
        .find("2. font-src blocked https://fonts.example on https://app.example/ (1 report)")
        .expect("then the other");
    assert!(first < second);
    assert_eq!(text.matches("First seen ").count(), 2);
    assert_eq!(text.matches("Example:").count(), 2);
    let html = digest.html();
    assert!(
        html.contains("1. script-src-elem blocked inline on https://app.example/a (3 reports)")
    );

    // No reports, no email: a quiet window sends nothing.
    tokio::time::sleep(window * 3).await;
    assert_eq!(server.mails().len(), 1);

    // The next report opens a new window.
    post(&layer, &font).await;
    let mails = server.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1].subject(), "[CSP] Digest: 1 report of 1 violation");
    assert!(failures.lock().unwrap().is_empty());
    layer.handle().flush().await;
    let stats = layer.handle().stats();
    assert_eq!((stats.sinks[0].delivered, stats.sinks[0].queued), (5, 0));
}

#[tokio::test]
async fn shutdown_sends_the_pending_digest() {
    let server = Server::start();
    let sink = sink(&server.url())
        .mode(SmtpMode::digest(Duration::from_secs(3600)))
        .build()
        .unwrap();
    let (layer, _) = layer(&sink);
    post(&layer, &report("https://a.example/", "img-src", "data")).await;
    assert!(server.mails().is_empty());
    layer.handle().shutdown().await;
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject(), "[CSP] Digest: 1 report of 1 violation");
}

#[tokio::test]
async fn new_only_mails_a_violation_once() {
    let server = Server::start();
    let sink = sink(&server.url())
        .mode(SmtpMode::new_only(100))
        .build()
        .unwrap();
    let a = report("https://a.example/", "img-src", "https://cdn.example/1.png");
    let a_again = report(
        "https://a.example/?page=2",
        "img-src",
        "https://cdn.example/2.png",
    );
    let b = report("https://a.example/", "script-src", "eval");
    let c = report("https://a.example/", "frame-src", "https://ads.example/");

    sink.send(&batch(&[&a, &b, &a_again])).await.unwrap();
    let mails = server.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject(), "[CSP] 2 new violations (3 reports)");
    let text = mails[0].text();
    assert!(
        text.starts_with("2 violations not seen before (3 reports)"),
        "{text}"
    );
    assert!(
        text.contains("1. img-src blocked https://cdn.example on https://a.example/ (2 reports)")
    );

    // Known violations, however often they come back, send nothing.
    for _ in 0..3 {
        sink.send(&batch(&[&a, &b])).await.unwrap();
    }
    assert_eq!(server.mails().len(), 1);

    sink.send(&batch(&[&a, &c])).await.unwrap();
    let mails = server.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    assert_eq!(
        mails[1].subject(),
        "[CSP] New: frame-src blocked https://ads.example on https://a.example/"
    );
}

#[tokio::test]
async fn the_cap_holds_mails_back_and_the_next_mail_says_so() {
    let server = Server::start();
    let period = Duration::from_secs(2);
    let sink = sink(&server.url())
        .mode(SmtpMode::PerReport)
        .max_mails(2, period)
        .build()
        .unwrap();
    let reports: Vec<Report> = (0..5)
        .map(|i| report(&format!("https://a.example/{i}"), "img-src", "data"))
        .collect();
    sink.send(&reports.iter().cloned().collect()).await.unwrap();
    assert_eq!(server.mails().len(), 2, "two mails, then the cap");
    assert!(!server.mails()[1].text().contains("Note:"));
    let stats = sink.stats();
    assert_eq!(
        (stats.emails_sent, stats.reports_mailed),
        (2, 2),
        "{stats:?}"
    );
    assert_eq!(
        (stats.emails_capped, stats.reports_capped),
        (3, 3),
        "{stats:?}"
    );

    tokio::time::sleep(period + Duration::from_millis(100)).await;
    sink.send(&batch(&[&reports[0]])).await.unwrap();
    let mails = server.wait_for(3).await;
    assert_eq!(mails.len(), 3);
    let note =
        "Note: 3 emails about 3 reports were not sent: at most 2 emails go out every 2 seconds.";
    assert!(mails[2].text().starts_with(note), "{}", mails[2].text());
    assert!(
        mails[2]
            .html()
            .contains("<strong>Note:</strong> 3 emails about 3 reports were not sent")
    );

    // Told once, then forgotten.
    tokio::time::sleep(period + Duration::from_millis(100)).await;
    sink.send(&batch(&[&reports[1]])).await.unwrap();
    let mails = server.wait_for(4).await;
    assert!(!mails[3].text().contains("Note:"));
}

#[tokio::test]
async fn report_content_cannot_inject_headers_or_markup() {
    let server = Server::start();
    let sink = sink(&server.url())
        .mode(SmtpMode::PerReport)
        .build()
        .unwrap();
    let mut hostile = report(
        "https://a.example/\r\nBcc: victim@evil.example\r\nX-Injected: 1",
        "script-src\r\nBcc: other@evil.example",
        "https://x.example/<script>alert(1)</script>",
    );
    hostile.user_agent = Some("<img src=x onerror=alert(1)>\r\n\r\n<b>body</b>".into());
    hostile.script_sample = Some("\"><iframe src=javascript:alert(1)>".into());
    sink.send(&batch(&[&hostile])).await.unwrap();

    let mails = server.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.envelope_to, ["security@example.test"]);
    let parsed = mail.parsed();
    let names: Vec<String> = parsed
        .headers
        .iter()
        .map(|h| h.get_key().to_ascii_lowercase())
        .collect();
    assert!(
        !names.iter().any(|n| n == "bcc" || n == "x-injected"),
        "{names:?}"
    );
    let subject = mail.subject();
    assert!(!subject.contains(['\r', '\n']), "{subject:?}");
    assert!(
        subject.starts_with("[CSP] script-src Bcc: other@evil.example blocked"),
        "{subject}"
    );

    let html = mail.html();
    for raw in ["<script>", "<img src=x", "<iframe", "<b>body</b>"] {
        assert!(!html.contains(raw), "{raw} in {html}");
    }
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("&quot;&gt;&lt;iframe src=javascript:alert(1)&gt;"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[tokio::test]
async fn mails_wait_for_a_server_that_is_down_and_arrive_when_it_is_back() {
    // Reserve a port, then leave it closed: connections are refused until the server starts.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("smtp://127.0.0.1:{port}");
    let sink = sink(&url).mode(SmtpMode::PerReport).build().unwrap();
    let (layer, failures) = layer(&sink);

    let first = report("https://a.example/1", "img-src", "data");
    let second = report("https://a.example/2", "img-src", "data");
    // With nobody listening, the answers still come at once.
    post(&layer, &first).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    post(&layer, &second).await;
    let refused = wait_failures(&failures, 2).await;
    assert!(
        refused
            .iter()
            .all(|f| f.starts_with("transient=true permanent=false will_retry=true")),
        "{refused:?}"
    );

    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let server = Server::serve(listener, Recorder::default());
    let mails = server.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    assert!(mails[0].subject().ends_with("https://a.example/1"));
    assert!(mails[1].subject().ends_with("https://a.example/2"));
    layer.handle().flush().await;
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.iter().all(|f| f.contains("will_retry=true")),
        "nothing was given up on: {failures:?}"
    );
    let stats = layer.handle().stats();
    let smtp = &stats.sinks[0];
    assert_eq!((smtp.delivered, smtp.failed), (2, 0), "{smtp:?}");
    assert_eq!(
        smtp.errors,
        failures.len() as u64,
        "every failed call is counted"
    );
}

#[tokio::test]
async fn a_permanent_refusal_goes_to_the_error_hook_without_retries() {
    let server = Server::start_with(Recorder {
        refuse: Arc::new(vec!["nobody@example.test".to_owned()]),
        ..Recorder::default()
    });
    let sink = SmtpSink::builder(server.url())
        .from("csp@example.test")
        .to("nobody@example.test")
        .mode(SmtpMode::PerReport)
        .build()
        .unwrap();
    let (per_report, failures) = layer(&sink);
    post(
        &per_report,
        &report("https://a.example/", "img-src", "data"),
    )
    .await;
    per_report.handle().flush().await;
    let told = failures.lock().unwrap().clone();
    assert_eq!(told.len(), 1, "no retries: {told:?}");
    assert!(
        told[0].starts_with("transient=false permanent=true will_retry=false status=Some(\"550\")"),
        "{}",
        told[0]
    );
    assert!(
        told[0].contains("the mail server refused the email about 1 report (550)"),
        "{}",
        told[0]
    );
    assert!(server.mails().is_empty());
    assert_eq!(sink.stats().emails_sent, 0);
    let stats = per_report.handle().stats();
    let smtp = &stats.sinks[0];
    assert_eq!(
        (smtp.delivered, smtp.failed, smtp.errors),
        (0, 1, 1),
        "the failure shows in the layer's counters: {smtp:?}"
    );

    // A digest goes out when flushed, and meets the same refusal.
    let digest = SmtpSink::builder(server.url())
        .from("csp@example.test")
        .to("nobody@example.test")
        .mode(SmtpMode::digest(Duration::from_secs(3600)))
        .build()
        .unwrap();
    let (layer, failures) = layer(&digest);
    post(&layer, &report("https://a.example/", "img-src", "data")).await;
    layer.handle().flush().await;
    let told = failures.lock().unwrap().clone();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].starts_with("transient=false"), "{}", told[0]);
    assert!(
        told[0].contains("refused the digest of 1 report"),
        "{}",
        told[0]
    );
}

#[tokio::test]
async fn credentials_in_the_url_are_percent_decoded() {
    let server = Server::start_with(Recorder {
        login: Some(("csp".to_owned(), "p@ss:word".to_owned())),
        ..Recorder::default()
    });
    let url = format!("smtp://csp:p%40ss%3Aword@{}", server.addr);
    let sink = sink(&url).mode(SmtpMode::PerReport).build().unwrap();
    sink.send(&batch(&[&report("https://a.example/", "img-src", "data")]))
        .await
        .unwrap();
    assert_eq!(server.mails().len(), 1);
    assert_eq!(*server.recorder.authenticated.lock().unwrap(), ["csp"]);
}

#[tokio::test]
async fn a_4xx_answer_is_retried_until_the_server_accepts() {
    let server = Server::start_with(Recorder {
        put_off: Arc::new(AtomicUsize::new(2)),
        ..Recorder::default()
    });
    let sink = sink(&server.url())
        .mode(SmtpMode::PerReport)
        .build()
        .unwrap();
    let (layer, failures) = layer(&sink);
    post(&layer, &report("https://a.example/", "img-src", "data")).await;
    layer.handle().flush().await;
    assert_eq!(server.mails().len(), 1);
    assert_eq!(
        server.recorder.put_off.load(Ordering::SeqCst),
        0,
        "two 451 answers first"
    );
    let told = failures.lock().unwrap().clone();
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(
        told.iter().all(|f| f
            .starts_with("transient=true permanent=false will_retry=true status=Some(\"451\")")),
        "{told:?}"
    );
    let stats = layer.handle().stats();
    assert_eq!((stats.sinks[0].delivered, stats.sinks[0].errors), (1, 2));
}

#[tokio::test]
async fn a_server_that_stays_down_is_given_up_on_through_the_error_hook() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = sink(&format!("smtp://127.0.0.1:{port}"))
        .mode(SmtpMode::PerReport)
        .build()
        .unwrap();
    let options = sink
        .default_options()
        .retries(2)
        .backoff(Duration::from_millis(10), Duration::from_millis(20));
    let (layer, failures) = layer_with(&sink, options);
    post(&layer, &report("https://a.example/", "img-src", "data")).await;
    layer.handle().flush().await;
    let told = failures.lock().unwrap().clone();
    assert_eq!(told.len(), 3, "the first attempt and two retries: {told:?}");
    assert!(
        told[..2].iter().all(|f| f.contains("will_retry=true")),
        "{told:?}"
    );
    assert!(
        told[2].starts_with("transient=true permanent=false will_retry=false"),
        "{}",
        told[2]
    );
    assert!(
        told[2].contains("the mail server could not take the email about 1 report now"),
        "{}",
        told[2]
    );
    let stats = layer.handle().stats();
    assert_eq!((stats.sinks[0].failed, stats.sinks[0].errors), (1, 3));
}

#[tokio::test]
async fn what_does_not_fit_is_counted_and_told() {
    let server = Server::start();
    let sink = sink(&server.url())
        .mode(SmtpMode::digest(Duration::from_secs(3600)))
        .max_pending(2)
        .build()
        .unwrap();
    let (layer, _) = layer(&sink);
    let a = report("https://a.example/", "img-src", "data");
    let b = report("https://a.example/", "font-src", "data");
    for report in [&a, &b, &b, &a] {
        post(&layer, report).await;
    }
    let stats = layer.handle().stats();
    assert_eq!((stats.sinks[0].queued, stats.sinks[0].dropped), (2, 2));
    layer.handle().flush().await;
    assert_eq!(sink.stats().reports_mailed, 2);
    let text = server.wait_for(1).await[0].text();
    assert!(
        text.starts_with(
            "Note: 2 reports were left out because too many were waiting to be mailed.\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("2 reports of 2 distinct violations"),
        "{text}"
    );

    post(&layer, &a).await;
    layer.handle().flush().await;
    let mails = server.wait_for(2).await;
    assert!(!mails[1].text().contains("Note:"), "told once");
}

#[tokio::test]
async fn non_ascii_subjects_arrive_intact() {
    let server = Server::start();
    let sink = sink(&server.url())
        .mode(SmtpMode::PerReport)
        .build()
        .unwrap();
    sink.send(&batch(&[&report(
        "https://例え.jp/ページ",
        "img-src",
        "data",
    )]))
    .await
    .unwrap();
    let mails = server.wait_for(1).await;
    assert_eq!(
        mails[0].subject(),
        "[CSP] img-src blocked data on https://例え.jp/ページ"
    );
    assert!(
        mails[0]
            .text()
            .contains("Document:    https://例え.jp/ページ")
    );
}

/// A mail server for `localhost` with a self-signed certificate that takes `csp`/`secret`
/// (STARTTLS, or TLS from the first byte when `implicit`), and client settings that trust it.
fn tls_server(implicit: bool) -> (Server, TlsParameters) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der = certified.cert.der().clone();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert_der.clone()], key.into())
    .unwrap();
    let server = Server::start_with(Recorder {
        tls: Some(Arc::new(config)),
        implicit_tls: implicit,
        login: Some(("csp".to_owned(), "secret".to_owned())),
        ..Recorder::default()
    });
    let tls = TlsParameters::builder("localhost".to_owned())
        .add_root_certificate(Certificate::from_der(cert_der.to_vec()).unwrap())
        .build_rustls()
        .unwrap();
    (server, tls)
}

/// A transport to `server` that logs in as `csp`, with these TLS settings.
fn transport(
    server: &Server,
    tls: lettre::transport::smtp::client::Tls,
) -> lettre::AsyncSmtpTransport<lettre::Tokio1Executor> {
    lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.addr.port())
        .tls(tls)
        .credentials(("csp", "secret").into())
        .build()
}

#[tokio::test]
async fn starttls_with_a_transport_of_your_own() {
    use lettre::transport::smtp::client::Tls;

    let (server, tls) = tls_server(false);

    let transport = transport(&server, Tls::Required(tls));
    let sink = SmtpSink::with_transport(transport)
        .from("csp@example.test")
        .to("security@example.test")
        .mode(SmtpMode::PerReport)
        .build()
        .unwrap();
    sink.send(&batch(&[&report("https://a.example/", "img-src", "data")]))
        .await
        .unwrap();
    assert_eq!(server.mails().len(), 1);
    // The server takes AUTH only once the session is encrypted.
    assert_eq!(*server.recorder.authenticated.lock().unwrap(), ["csp"]);

    // A server without STARTTLS is refused when TLS is required, and nothing is sent in clear.
    let plain = Server::start();
    let sink = SmtpSink::builder(format!("smtp://{}?tls=required", plain.addr))
        .from("csp@example.test")
        .to("security@example.test")
        .mode(SmtpMode::digest(Duration::from_secs(3600)))
        .build()
        .unwrap();
    let error = sink
        .send(&batch(&[&report("https://a.example/", "img-src", "data")]))
        .await
        .unwrap_err();
    assert!(!error.is_transient(), "{error}");
    assert!(plain.mails().is_empty());
}

#[tokio::test]
async fn smtps_speaks_tls_from_the_first_byte() {
    use lettre::transport::smtp::client::Tls;

    let (server, tls) = tls_server(true);
    let send_one = |sink: SmtpSink| async move {
        sink.send(&batch(&[&report("https://a.example/", "img-src", "data")]))
            .await
    };

    // An `smtps://` URL trusts the public authorities only: the handshake is tried, the
    // certificate refused, and nothing is sent.
    let by_url = SmtpSink::builder(format!(
        "smtps://csp:secret@localhost:{}",
        server.addr.port()
    ))
    .from("csp@example.test")
    .to("security@example.test")
    .mode(SmtpMode::digest(Duration::from_secs(3600)))
    .build()
    .unwrap();
    let error = send_one(by_url.clone()).await.unwrap_err();
    assert_eq!(by_url.stats().emails_sent, 0);
    let error = tower_csp_reports::error::chain(&error);
    assert!(error.contains("the digest of 1 report"), "{error}");
    assert!(error.contains("certificate"), "{error}");
    assert!(server.mails().is_empty());
    // The server sees the refused handshake end a moment after the client gave up.
    let handshakes = tokio::time::timeout(PATIENCE, async {
        loop {
            let handshakes = server.recorder.handshakes.lock().unwrap().clone();
            if !handshakes.is_empty() {
                return handshakes;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the handshake was tried");
    for handshake in &handshakes {
        let refused = handshake.as_ref().unwrap_err();
        assert!(refused.contains("alert"), "{refused}");
    }

    // With the server's certificate trusted, the mail goes through, logged in inside TLS.
    let transport = transport(&server, Tls::Wrapper(tls));
    let trusted = SmtpSink::with_transport(transport)
        .from("csp@example.test")
        .to("security@example.test")
        .mode(SmtpMode::PerReport)
        .build()
        .unwrap();
    send_one(trusted).await.unwrap();
    assert_eq!(server.mails().len(), 1);
    assert_eq!(*server.recorder.authenticated.lock().unwrap(), ["csp"]);
    assert_eq!(
        server.recorder.handshakes.lock().unwrap().last(),
        Some(&Ok(()))
    );
}

#[tokio::test]
async fn the_sink_passes_the_conformance_suite() {
    let server = Server::start();
    let sink = sink(&server.url())
        .mode(SmtpMode::PerReport)
        .max_per_hour(1000)
        .build()
        .unwrap();
    // Each per-report mail names its report's id.
    let ids = || async {
        server
            .mails()
            .iter()
            .flat_map(|mail| {
                let text = mail.text();
                text.lines()
                    .filter_map(|line| line.strip_prefix("Report id:"))
                    .map(|id| id.trim().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    conformance::check(&sink, ids).await;
}
