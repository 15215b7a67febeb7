//! The SMTP sink against a real SMTP server on loopback (see `support/smtp_server.rs`).
#![cfg(feature = "smtp")]

#[path = "support/conformance.rs"]
mod conformance;
#[path = "support/smtp_server.rs"]
mod smtp_server;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smtp_server::*;
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tower_csp_reports::sink::smtp::lettre;
use tower_csp_reports::sink::smtp::lettre::transport::smtp::client::{Certificate, TlsParameters};
use tower_csp_reports::sink::smtp::{DeliveryError, SmtpMode, SmtpSink, SmtpSinkBuilder};
use tower_csp_reports::{Report, ReportBatch, ReportSink, SinkError};

// ---------------------------------------------------------------------------------------
// Helpers

fn sink(server_url: &str) -> SmtpSinkBuilder {
    SmtpSink::builder(server_url)
        .from("CSP reports <csp@example.test>")
        .to("security@example.test")
        .subject_prefix("[CSP]")
        .retry_backoff(Duration::from_millis(50), Duration::from_millis(200))
}

fn report(document: &str, directive: &str, blocked: &str) -> Report {
    Report::csp(document, directive, blocked)
}

fn batch(reports: &[&Report]) -> ReportBatch {
    reports.iter().map(|r| (*r).clone()).collect()
}

/// Collects what the error hook is given.
/// Sends one report and waits for what the error hook is told.
async fn first_error(sink: &SmtpSink, errors: &mut mpsc::UnboundedReceiver<String>) -> String {
    sink.send(&batch(&[&report("https://a.example/", "img-src", "data")]))
        .await
        .unwrap();
    tokio::time::timeout(PATIENCE, errors.recv())
        .await
        .expect("the hook is called")
        .unwrap()
}

fn error_channel() -> (
    impl Fn(&SinkError) + Send + Sync + 'static,
    mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let hook = move |error: &SinkError| {
        let delivery = std::error::Error::source(error)
            .and_then(|s| s.downcast_ref::<DeliveryError>())
            .expect("the source is a DeliveryError");
        let status = delivery
            .smtp_error()
            .and_then(|e| e.status())
            .map(|code| code.to_string());
        let _ = tx.send(format!(
            "transient={} permanent={} attempts={} status={status:?} message={error}",
            error.is_transient(),
            delivery.is_permanent(),
            delivery.attempts(),
        ));
    };
    (hook, rx)
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
    sink.send(&batch(&[&valid, &invalid])).await.unwrap();
    sink.flush().await.unwrap();

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
    sink.send(&batch(&[&inline, &font])).await.unwrap();
    sink.send(&batch(&[&inline_again])).await.unwrap();
    sink.send(&batch(&[&inline])).await.unwrap();
    // send() only files reports: nothing goes out before the window ends.
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
    sink.send(&batch(&[&font])).await.unwrap();
    let mails = server.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1].subject(), "[CSP] Digest: 1 report of 1 violation");
}

#[tokio::test]
async fn shutdown_sends_the_pending_digest() {
    let server = Server::start();
    let sink = sink(&server.url())
        .mode(SmtpMode::digest(Duration::from_secs(3600)))
        .build()
        .unwrap();
    sink.send(&batch(&[&report("https://a.example/", "img-src", "data")]))
        .await
        .unwrap();
    sink.shutdown().await.unwrap();
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
    sink.flush().await.unwrap();
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
    sink.flush().await.unwrap();
    assert_eq!(server.mails().len(), 1);

    sink.send(&batch(&[&a, &c])).await.unwrap();
    sink.flush().await.unwrap();
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
    sink.flush().await.unwrap();
    assert_eq!(server.mails().len(), 2, "two mails, then the cap");
    assert!(!server.mails()[1].text().contains("Note:"));
    let stats = sink.stats();
    assert_eq!(
        (stats.emails_sent, stats.reports_mailed),
        (2, 2),
        "{stats:?}"
    );
    assert_eq!(
        (
            stats.emails_capped,
            stats.reports_capped,
            stats.reports_pending
        ),
        (3, 3, 0),
        "{stats:?}"
    );

    tokio::time::sleep(period + Duration::from_millis(100)).await;
    sink.send(&batch(&[&reports[0]])).await.unwrap();
    sink.flush().await.unwrap();
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
    sink.flush().await.unwrap();
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
    sink.flush().await.unwrap();

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
    let (hook, mut errors) = error_channel();
    let sink = sink(&url)
        .mode(SmtpMode::PerReport)
        .on_error(hook)
        .build()
        .unwrap();

    let first = report("https://a.example/1", "img-src", "data");
    let second = report("https://a.example/2", "img-src", "data");
    // With nobody listening, send() still returns at once: the dispatcher is never held up.
    tokio::time::timeout(Duration::from_secs(2), async {
        sink.send(&batch(&[&first])).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        sink.send(&batch(&[&second])).await.unwrap();
    })
    .await
    .expect("send does not wait for the server");

    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let server = Server::serve(listener, Recorder::default());
    let mails = server.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    assert!(mails[0].subject().ends_with("https://a.example/1"));
    assert!(mails[1].subject().ends_with("https://a.example/2"));
    assert!(errors.try_recv().is_err(), "nothing was given up on");
}

#[tokio::test]
async fn a_permanent_refusal_goes_to_the_error_hook_without_retries() {
    let server = Server::start_with(Recorder {
        refuse: Arc::new(vec!["nobody@example.test".to_owned()]),
        ..Recorder::default()
    });
    let (hook, mut errors) = error_channel();
    let sink = SmtpSink::builder(server.url())
        .from("csp@example.test")
        .to("nobody@example.test")
        .mode(SmtpMode::PerReport)
        .on_error(hook)
        .build()
        .unwrap();
    let error = first_error(&sink, &mut errors).await;
    assert!(
        error.starts_with("transient=false permanent=true attempts=1 status=Some(\"550\")"),
        "{error}"
    );
    assert!(
        error.contains("the mail server refused the email about 1 report (550)"),
        "{error}"
    );
    assert!(server.mails().is_empty());
    let stats = sink.stats();
    assert_eq!(
        (stats.emails_failed, stats.reports_failed, stats.emails_sent),
        (1, 1, 0),
        "{stats:?}"
    );

    // A digest goes out only when flushed, so flush() meets the refusal and returns it.
    let digest = SmtpSink::builder(server.url())
        .from("csp@example.test")
        .to("nobody@example.test")
        .mode(SmtpMode::digest(Duration::from_secs(3600)))
        .build()
        .unwrap();
    digest
        .send(&batch(&[&report("https://a.example/", "img-src", "data")]))
        .await
        .unwrap();
    let error = digest.flush().await.unwrap_err();
    assert!(!error.is_transient());
    assert!(
        error.to_string().contains("refused the digest of 1 report"),
        "{error}"
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
    sink.flush().await.unwrap();
    assert_eq!(server.mails().len(), 1);
    assert_eq!(*server.recorder.authenticated.lock().unwrap(), ["csp"]);
}

#[tokio::test]
async fn a_4xx_answer_is_retried_until_the_server_accepts() {
    let server = Server::start_with(Recorder {
        put_off: Arc::new(AtomicUsize::new(2)),
        ..Recorder::default()
    });
    let (hook, mut errors) = error_channel();
    let sink = sink(&server.url())
        .mode(SmtpMode::PerReport)
        .on_error(hook)
        .build()
        .unwrap();
    sink.send(&batch(&[&report("https://a.example/", "img-src", "data")]))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    assert_eq!(server.mails().len(), 1);
    assert_eq!(
        server.recorder.put_off.load(Ordering::SeqCst),
        0,
        "two 451 answers first"
    );
    assert!(errors.try_recv().is_err());
}

#[tokio::test]
async fn a_server_that_stays_down_is_given_up_on_through_the_error_hook() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (hook, mut errors) = error_channel();
    let sink = sink(&format!("smtp://127.0.0.1:{port}"))
        .mode(SmtpMode::PerReport)
        .give_up_after(Duration::from_millis(300))
        .on_error(hook)
        .build()
        .unwrap();
    let error = first_error(&sink, &mut errors).await;
    assert!(
        error.starts_with("transient=true permanent=false attempts="),
        "{error}"
    );
    let attempts: u32 = error["transient=true permanent=false attempts=".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(attempts >= 2, "{error}");
    assert!(
        error.contains("gave up on the email about 1 report after"),
        "{error}"
    );
}

#[tokio::test]
async fn what_does_not_fit_is_counted_and_told() {
    let server = Server::start();
    let sink = sink(&server.url())
        .mode(SmtpMode::digest(Duration::from_secs(3600)))
        .max_pending(1)
        .build()
        .unwrap();
    let a = report("https://a.example/", "img-src", "data");
    let b = report("https://a.example/", "font-src", "data");
    sink.send(&batch(&[&a, &b, &b, &a])).await.unwrap();
    assert_eq!(sink.stats().reports_pending, 4);
    sink.flush().await.unwrap();
    let stats = sink.stats();
    // The digest is one email about all four reports, two of them only counted.
    assert_eq!(
        (
            stats.emails_sent,
            stats.reports_mailed,
            stats.reports_pending
        ),
        (1, 4, 0),
        "{stats:?}"
    );
    let text = server.wait_for(1).await[0].text();
    assert!(
        text.contains("1. img-src blocked data on https://a.example/ (2 reports)"),
        "{text}"
    );
    assert!(
        text.contains("And 2 reports of other violations not listed."),
        "{text}"
    );

    // One new violation fits; the other is left out, and the alert that goes out says so.
    let alerts = sink_with_memory(&server, 1);
    alerts.send(&batch(&[&a, &b])).await.unwrap();
    alerts.flush().await.unwrap();
    alerts
        .send(&batch(&[&report("https://c.example/", "img-src", "data")]))
        .await
        .unwrap();
    alerts.flush().await.unwrap();
    let mails = server.wait_for(3).await;
    assert_eq!(mails.len(), 3);
    assert_eq!(
        mails[1].subject(),
        "[CSP] New: img-src blocked data on https://a.example/"
    );
    let text = mails[1].text();
    assert!(
        text.starts_with(
            "Note: 1 report was left out because too many were waiting to be mailed.\n"
        ),
        "{text}"
    );
    assert!(!mails[2].text().contains("Note:"), "told once");
    let stats = alerts.stats();
    assert_eq!(
        (stats.emails_sent, stats.reports_dropped),
        (2, 1),
        "{stats:?}"
    );
}

fn sink_with_memory(server: &Server, max_pending: usize) -> SmtpSink {
    sink(&server.url())
        .mode(SmtpMode::new_only(100))
        .max_pending(max_pending)
        .build()
        .unwrap()
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
    sink.flush().await.unwrap();
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
    sink.flush().await.unwrap();
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
    sink.send(&batch(&[&report("https://a.example/", "img-src", "data")]))
        .await
        .unwrap();
    let error = sink.flush().await.unwrap_err();
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
            .unwrap();
        sink.flush().await
    };

    // An `smtps://` URL trusts the public authorities only: the handshake is tried, the
    // certificate refused, and nothing is sent.
    let by_url = SmtpSink::builder(format!(
        "smtps://csp:secret@localhost:{}",
        server.addr.port()
    ))
    .from("csp@example.test")
    .to("security@example.test")
    // A digest is sent by the flush, which then returns the failure.
    .mode(SmtpMode::digest(Duration::from_secs(3600)))
    .retry_backoff(Duration::from_millis(10), Duration::from_millis(10))
    .give_up_after(Duration::from_millis(200))
    .build()
    .unwrap();
    let error = send_one(by_url.clone()).await.unwrap_err();
    let stats = by_url.stats();
    assert_eq!(
        (stats.emails_failed, stats.reports_failed, stats.emails_sent),
        (1, 1, 0),
        "{stats:?}"
    );
    let error = tower_csp_reports::error::chain(&error);
    assert!(error.contains("gave up on the digest"), "{error}");
    assert!(error.contains("certificate"), "{error}");
    assert!(server.mails().is_empty());
    let handshakes = server.recorder.handshakes.lock().unwrap().clone();
    assert!(!handshakes.is_empty());
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
