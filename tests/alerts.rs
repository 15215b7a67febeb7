//! Alerts decided by the store, delivered by the dispatcher: the webhook sink against a real
//! HTTP server on loopback (including one that answers 500, one that never answers), the
//! SMTP sink's `store_alerts` mode against a real SMTP server, a SQLite store on disk, and a
//! real Postgres that is away when a digest is due.

#[path = "support/postgres.rs"]
mod pg;
#[path = "support/smtp_server.rs"]
mod smtp_server;
#[path = "support/webhook_server.rs"]
mod webhook_server;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio_rustls::rustls;
use tower_csp_reports::alert::{AlertFeed, AlertFeedBuilder, AlertTask};
use tower_csp_reports::dispatch::SinkStats;
use tower_csp_reports::sink::smtp::{SmtpMode, SmtpSink};
use tower_csp_reports::sink::webhook::{WebhookFormat, WebhookSink, WebhookSinkBuilder};
use tower_csp_reports::sqlite::SqliteStore;
use tower_csp_reports::store::{ReportStore, ViolationStatus};
use tower_csp_reports::{
    CspReportHandle, CspReportLayer, Report, ReportBatch, ReportSink, SinkOptions,
};
use webhook_server::{Reply, WebhookServer};

async fn store() -> Arc<dyn ReportStore> {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("csp-alerts-{}-{n}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let store: Arc<dyn ReportStore> = Arc::new(SqliteStore::builder(&path).build().unwrap());
    store.migrate().await.unwrap();
    store
}

fn report(document: &str, blocked: &str) -> Report {
    Report::csp(document, "img-src", blocked)
}

async fn write(store: &Arc<dyn ReportStore>, reports: Vec<Report>) {
    store
        .sink()
        .send(&ReportBatch::from(reports))
        .await
        .unwrap();
}

/// A layer whose only sink is `sink` (fed alerts), and the store's feed started on it.
struct Rig {
    store: Arc<dyn ReportStore>,
    handle: CspReportHandle,
    task: AlertTask,
}

async fn rig<S: ReportSink>(
    sink: S,
    options: SinkOptions,
    feed: impl FnOnce(AlertFeedBuilder) -> AlertFeedBuilder,
) -> Rig {
    let store = store().await;
    let feed = feed(AlertFeed::builder(Arc::clone(&store)))
        .build()
        .unwrap();
    let layer = CspReportLayer::builder()
        .sink_with(sink, options)
        .build()
        .unwrap();
    let handle = layer.handle();
    let task = feed.start(handle.clone());
    Rig {
        store,
        handle,
        task,
    }
}

/// Fast retries, so the tests do not wait.
fn hook(server: &WebhookServer) -> (WebhookSinkBuilder, impl Fn(&WebhookSink) -> SinkOptions) {
    let options = |sink: &WebhookSink| {
        sink.default_options()
            .linger(Duration::from_millis(50))
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
    };
    (WebhookSink::builder(server.url()), options)
}

fn webhook_stats(handle: &CspReportHandle) -> SinkStats {
    handle
        .stats()
        .sinks
        .into_iter()
        .find(|s| s.name == "webhook")
        .unwrap()
}

/// Waits until the webhook sink has seen `n` alerts through (posted, capped or failed).
async fn settled(handle: &CspReportHandle, n: u64) -> SinkStats {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let stats = webhook_stats(handle);
        if stats.delivered + stats.failed >= n || tokio::time::Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_webhook_hears_new_and_regressed_violations_once() {
    let server = WebhookServer::start(&[]).await;
    let (builder, options) = hook(&server);
    let sink = builder.build().unwrap();
    let rig = rig(sink.clone(), options(&sink), |feed| feed).await;

    let first = report(
        "https://shop.example/cart?id=7",
        "https://ads.example/a.png",
    );
    let again = report(
        "https://shop.example/cart?id=8",
        "https://ads.example/b.png",
    );
    let other = report("https://shop.example/", "https://cdn.example/x.js");
    write(&rig.store, vec![first.clone(), again, other]).await;
    let posts = server.wait_for(1).await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    let post = &posts[0];
    assert_eq!(post.path, "/hooks/T000/B000/s3cret");
    assert_eq!(post.headers["content-type"], "application/json");
    let body = post.json();
    assert_eq!(body["source"], "tower-csp-reports");
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2, "one per violation, not per report: {body}");
    let mut blocked: Vec<&str> = alerts
        .iter()
        .map(|a| {
            assert_eq!(
                (a["type"].as_str(), a["kind"].as_str()),
                (Some("violation"), Some("new"))
            );
            a["violation"]["blocked"].as_str().unwrap()
        })
        .collect();
    blocked.sort_unstable();
    assert_eq!(blocked, ["https://ads.example", "https://cdn.example"]);
    assert_eq!(body["missed"]["alerts"], 0);

    // Seen again: nothing. Marked fixed and seen again: a regression.
    write(
        &rig.store,
        vec![report(
            "https://shop.example/cart",
            "https://ads.example/c.png",
        )],
    )
    .await;
    rig.store
        .set_status(&[first.fingerprint], ViolationStatus::Fixed, None)
        .await
        .unwrap();
    write(
        &rig.store,
        vec![report(
            "https://shop.example/cart",
            "https://ads.example/d.png",
        )],
    )
    .await;
    let posts = server.wait_for(2).await;
    assert_eq!(posts.len(), 2);
    let body = posts[1].json();
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "the repeat said nothing: {body}");
    assert_eq!(alerts[0]["kind"], "regressed");
    assert_eq!(alerts[0]["violation"]["blocked"], "https://ads.example");
    assert!(alerts[0]["violation"]["regressed_at"].is_string());

    rig.task.stop().await;
    rig.handle.shutdown().await;
    assert_eq!(sink.stats().posts_sent, 2);
    assert_eq!(sink.stats().alerts_sent, 3);
}

#[tokio::test]
async fn a_500_is_retried_and_the_same_body_goes_again() {
    let server = WebhookServer::start(&[Reply::Status(500)]).await;
    let (builder, options) = hook(&server);
    let sink = builder.build().unwrap();
    let rig = rig(sink.clone(), options(&sink), |feed| feed).await;
    write(
        &rig.store,
        vec![report("https://shop.example/", "https://ads.example/")],
    )
    .await;
    let posts = server.wait_for(2).await;
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!(posts[0].reply, Reply::Status(500));
    assert_eq!(posts[1].reply, Reply::Status(200));
    assert_eq!(posts[0].body, posts[1].body);
    let stats = settled(&rig.handle, 1).await;
    assert_eq!((stats.delivered, stats.errors, stats.failed), (1, 1, 0));
    rig.task.stop().await;
}

#[tokio::test]
async fn a_webhook_that_never_answers_times_out_and_the_post_is_retried() {
    let server = WebhookServer::start(&[Reply::Hang]).await;
    let (builder, options) = hook(&server);
    let sink = builder.build().unwrap();
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&failures);
    let store = store().await;
    let feed = AlertFeed::builder(Arc::clone(&store)).build().unwrap();
    let layer = CspReportLayer::builder()
        .sink_with(
            sink.clone(),
            options(&sink).timeout(Duration::from_millis(300)),
        )
        .on_sink_error(move |failure| {
            seen.lock()
                .unwrap()
                .push((failure.error.is_timeout(), failure.will_retry));
        })
        .build()
        .unwrap();
    let handle = layer.handle();
    let task = feed.start(handle.clone());
    write(
        &store,
        vec![report("https://shop.example/", "https://ads.example/")],
    )
    .await;
    let posts = server.wait_for(2).await;
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!(
        (posts[0].reply, posts[1].reply),
        (Reply::Hang, Reply::Status(200))
    );
    let stats = settled(&handle, 1).await;
    assert_eq!((stats.delivered, stats.errors), (1, 1));
    assert_eq!(*failures.lock().unwrap(), [(true, true)]);
    task.stop().await;
}

#[tokio::test]
async fn a_404_is_not_retried() {
    let server = WebhookServer::start(&[Reply::Status(404)]).await;
    let (builder, options) = hook(&server);
    let sink = builder.build().unwrap();
    let rig = rig(sink.clone(), options(&sink), |feed| feed).await;
    write(
        &rig.store,
        vec![report("https://shop.example/", "https://ads.example/")],
    )
    .await;
    let stats = settled(&rig.handle, 1).await;
    assert_eq!((stats.delivered, stats.failed, stats.errors), (0, 1, 1));
    assert_eq!(server.posts().len(), 1);
    rig.task.stop().await;
}

#[tokio::test]
async fn slack_bodies_escape_what_reports_say() {
    let server = WebhookServer::start(&[]).await;
    let (builder, options) = hook(&server);
    let sink = builder.format(WebhookFormat::Slack).build().unwrap();
    let rig = rig(sink.clone(), options(&sink), |feed| feed).await;
    let hostile = report(
        "https://shop.example/<!channel>&<https://evil.example|click>\n*bold*",
        "https://ads.example/",
    );
    write(&rig.store, vec![hostile]).await;
    let posts = server.wait_for(1).await;
    let body = posts[0].json();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("*New violation* (new): img-src blocked https://ads.example on"),
        "{text}"
    );
    assert!(
        text.contains("&lt;!channel&gt;&amp;&lt;https://evil.example|click&gt; *bold*"),
        "{text}"
    );
    assert!(
        !text.contains("<!channel>") && !text.contains("<https://evil"),
        "{text}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1, "only text: {body}");
    rig.task.stop().await;
}

#[tokio::test]
async fn the_cap_holds_posts_back_and_the_next_post_says_so() {
    let server = WebhookServer::start(&[]).await;
    let (builder, options) = hook(&server);
    let sink = builder
        .max_posts(1, Duration::from_secs(2))
        .build()
        .unwrap();
    let rig = rig(sink.clone(), options(&sink), |feed| feed).await;
    write(
        &rig.store,
        vec![report("https://shop.example/", "https://a.example/")],
    )
    .await;
    settled(&rig.handle, 1).await;
    write(
        &rig.store,
        vec![report("https://shop.example/", "https://b.example/")],
    )
    .await;
    settled(&rig.handle, 2).await;
    assert_eq!(server.posts().len(), 1, "the second post is held back");
    assert_eq!(sink.stats().posts_capped, 1);
    // The period passes: the next post goes, and tells of the one held back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    write(
        &rig.store,
        vec![report("https://shop.example/", "https://c.example/")],
    )
    .await;
    let posts = server.wait_for(2).await;
    let body = posts[1].json();
    assert_eq!(body["missed"]["posts"], 1, "{body}");
    assert_eq!(body["missed"]["alerts"], 1, "{body}");
    assert_eq!(
        body["alerts"][0]["violation"]["blocked"],
        "https://c.example"
    );
    // The count is cleared once the post is answered, which the server sees a moment
    // before the sink does.
    let cleared = tokio::time::Instant::now() + Duration::from_secs(5);
    while sink.stats().posts_capped != 0 && tokio::time::Instant::now() < cleared {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sink.stats().posts_capped, 0);
    rig.task.stop().await;
}

#[tokio::test]
async fn a_digest_counts_the_window_and_lists_no_ignored_violation() {
    let server = WebhookServer::start(&[]).await;
    let (builder, options) = hook(&server);
    let sink = builder.build().unwrap();
    let rig = rig(sink.clone(), options(&sink), |feed| {
        feed.violations(false)
            .digest_window(Duration::from_secs(2))
            .digest_delay(Duration::from_millis(500))
    })
    .await;
    let now = Timestamp::now();
    let mut reports = vec![
        report("https://shop.example/", "https://ads.example/1"),
        report("https://shop.example/", "https://ads.example/2"),
        report("https://shop.example/", "https://noise.example/"),
    ];
    for r in &mut reports {
        r.received_at = now;
    }
    let noise = reports[2].fingerprint;
    write(&rig.store, reports).await;
    rig.store
        .set_status(&[noise], ViolationStatus::Ignored, None)
        .await
        .unwrap();
    let posts = server.wait_for(1).await;
    let body = posts[0].json();
    let digest = &body["alerts"][0];
    assert_eq!(digest["type"], "digest", "{body}");
    assert_eq!(
        (digest["total"].as_u64(), digest["ignored"].as_u64()),
        (Some(3), Some(1))
    );
    let top = digest["top_fingerprints"].as_array().unwrap();
    assert_eq!(top.len(), 1, "{digest}");
    assert_eq!(
        (top[0]["blocked"].as_str(), top[0]["count"].as_u64()),
        (Some("https://ads.example"), Some(2))
    );
    let since: Timestamp = digest["since"].as_str().unwrap().parse().unwrap();
    let to: Timestamp = digest["to"].as_str().unwrap().parse().unwrap();
    assert!(since <= now && now < to);
    assert_eq!(since.as_second() % 2, 0, "windows are aligned on the clock");

    // A window with nothing but an ignored violation's report has no digest; the one after
    // it, with a report people care about, has.
    let mut ignored = report("https://shop.example/", "https://noise.example/again");
    ignored.received_at = to;
    let mut cared = report("https://shop.example/", "https://ads.example/3");
    cared.received_at = to + jiff::SignedDuration::from_secs(2);
    write(&rig.store, vec![ignored, cared]).await;
    let posts = server.wait_for(2).await;
    let digest = &posts[1].json()["alerts"][0];
    assert_eq!(
        digest["since"],
        (to + jiff::SignedDuration::from_secs(2)).to_string(),
        "{digest}"
    );
    assert_eq!(
        (digest["total"].as_u64(), digest["ignored"].as_u64()),
        (Some(1), Some(0))
    );
    rig.task.stop().await;
}

#[tokio::test]
async fn email_in_store_alerts_mode_mails_new_violations_and_digests() {
    let smtp = smtp_server::Server::start();
    let sink = SmtpSink::builder(smtp.url())
        .from("csp@example.com")
        .to("security@example.com")
        .subject_prefix("[CSP]")
        .mode(SmtpMode::store_alerts())
        .build()
        .unwrap();
    let options = sink
        .default_options()
        .linger(Duration::from_millis(50))
        .backoff(Duration::from_millis(10), Duration::from_millis(50));
    let rig = rig(sink.clone(), options, |feed| {
        feed.digest_window(Duration::from_secs(2))
            .digest_delay(Duration::from_millis(300))
    })
    .await;
    write(
        &rig.store,
        vec![report(
            "https://shop.example/?token=1",
            "https://ads.example/<b>x</b>",
        )],
    )
    .await;
    let mails = smtp.wait_for(2).await;
    assert_eq!(
        mails.len(),
        2,
        "{:?}",
        mails.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );
    let subjects: Vec<String> = mails.iter().map(|m| m.subject()).collect();
    assert_eq!(
        subjects[0],
        "[CSP] New violation: img-src blocked https://ads.example on https://shop.example/"
    );
    assert!(
        subjects[1].starts_with("[CSP] Digest: 1 report from "),
        "{subjects:?}"
    );
    let html = mails[0].html();
    assert!(
        html.contains("https://ads.example/&lt;b&gt;x&lt;/b&gt;"),
        "{html}"
    );
    assert!(!html.contains("<b>x</b>"));
    assert!(mails[1].text().contains(
        "1. img-src blocked https://ads.example on https://shop.example/ (1 report, new)"
    ));
    rig.task.stop().await;
}

#[tokio::test]
async fn feed_settings_are_checked() {
    let store = store().await;
    let fractional = AlertFeed::builder(Arc::clone(&store))
        .digest_window(Duration::from_millis(1500))
        .build()
        .unwrap_err();
    assert_eq!(
        fractional.to_string(),
        "invalid digest_window: must be whole seconds, not 1.5s"
    );
    let zero = AlertFeed::builder(Arc::clone(&store))
        .digest_window(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(
        zero.to_string(),
        "invalid digest_window: must be longer than zero"
    );
    let refused = WebhookSink::builder("http://user:pw@hooks.example/")
        .build()
        .unwrap_err();
    assert!(!refused.to_string().contains("pw"), "{refused}");
}

/// A certificate for `localhost`, the server's TLS settings, and a client that trusts it.
fn certified() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let provider = || Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.into())
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

#[tokio::test]
async fn https_webhooks_verify_the_server() {
    let (server_tls, client_tls) = certified();
    let server = WebhookServer::start_tls(&[], server_tls).await;
    let options = |sink: &WebhookSink| {
        sink.default_options()
            .linger(Duration::from_millis(50))
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
    };
    // Trusted: posted over TLS.
    let sink = WebhookSink::builder(server.https_url())
        .tls_config(client_tls)
        .build()
        .unwrap();
    let rig = rig(sink.clone(), options(&sink), |feed| feed).await;
    write(
        &rig.store,
        vec![report("https://shop.example/", "https://ads.example/")],
    )
    .await;
    let posts = server.wait_for(1).await;
    assert_eq!(posts[0].json()["alerts"][0]["kind"], "new");
    rig.task.stop().await;

    // With the public authorities only, the self-signed certificate is refused: no post.
    let sink = WebhookSink::builder(server.https_url()).build().unwrap();
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&errors);
    let store = store().await;
    let feed = AlertFeed::builder(Arc::clone(&store)).build().unwrap();
    let layer = CspReportLayer::builder()
        .sink_with(sink.clone(), options(&sink).retries(1))
        .on_sink_error(move |failure| seen.lock().unwrap().push(failure.error.to_string()))
        .build()
        .unwrap();
    let task = feed.start(layer.handle());
    write(
        &store,
        vec![report("https://shop.example/", "https://ads.example/")],
    )
    .await;
    let stats = settled(&layer.handle(), 1).await;
    assert_eq!((stats.delivered, stats.failed), (0, 1));
    assert_eq!(server.posts().len(), 1, "nothing more reached the server");
    let errors = errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("TLS with the webhook at https://localhost:"),
        "{errors:?}"
    );
    assert!(!errors[0].contains("s3cret"));
    task.stop().await;
}

#[tokio::test]
async fn reports_and_alerts_go_only_to_the_sinks_fed_them() {
    use tower::{Layer, ServiceExt};
    use tower_csp_reports::dispatch::Feed;
    use tower_csp_reports::sink::{MemorySink, sink_fn};

    let store = store().await;
    let feed = AlertFeed::builder(Arc::clone(&store)).build().unwrap();
    let memory = MemorySink::new();
    let heard = Arc::new(std::sync::Mutex::new((0usize, 0usize)));
    let tally = Arc::clone(&heard);
    let alerts = sink_fn(move |batch: ReportBatch| {
        let tally = Arc::clone(&tally);
        async move {
            let mut tally = tally.lock().unwrap();
            tally.0 += batch.len();
            tally.1 += batch.alerts().len();
            Ok(())
        }
    })
    .named("alerts");
    let layer = CspReportLayer::builder()
        .sink(store.sink())
        .sink(memory.clone())
        .sink_with(
            alerts,
            SinkOptions::default()
                .feed(Feed::Alerts)
                .required(true)
                .linger(Duration::from_millis(10)),
        )
        .build()
        .unwrap();
    let handle = layer.handle();
    let task = feed.start(handle.clone());
    let service = layer.layer(tower::service_fn(|_: http::Request<_>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(
            http_body_util::Full::<bytes::Bytes>::default(),
        ))
    }));
    let body = r#"{"csp-report":{"document-uri":"https://shop.example/","effective-directive":"img-src","blocked-uri":"https://ads.example/x.png"}}"#;
    let request = http::Request::post("/csp-report")
        .header("content-type", "application/csp-report")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let answer = service.oneshot(request).await.unwrap();
    assert_eq!(answer.status(), 204);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while heard.lock().unwrap().1 == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.flush().await;
    assert_eq!(*heard.lock().unwrap(), (0, 1), "no report, one alert");
    assert_eq!(memory.reports().len(), 1, "the report sink got the report");
    let stats = handle.stats();
    let alert_sink = stats.sinks.iter().find(|s| s.name == "alerts").unwrap();
    assert!(
        !alert_sink.required,
        "an alert sink never holds up an answer"
    );
    assert_eq!(alert_sink.delivered, 1);
    task.stop().await;
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_waits_for_a_store_that_is_away_when_its_window_ends() {
    let (server, _db, pool) = pg::restartable().await;
    let store: Arc<dyn ReportStore> =
        Arc::new(tower_csp_reports::postgres::PostgresStore::new(pool));
    store.migrate().await.unwrap();
    let hook_server = WebhookServer::start(&[]).await;
    let (builder, options) = hook(&hook_server);
    let sink = builder.build().unwrap();
    let window = 4_i64;
    let feed = AlertFeed::builder(Arc::clone(&store))
        .violations(false)
        .digest_window(Duration::from_secs(window as u64))
        .digest_delay(Duration::from_millis(200))
        .build()
        .unwrap();
    let layer = CspReportLayer::builder()
        .sink_with(sink.clone(), options(&sink))
        .build()
        .unwrap();
    let task = feed.start(layer.handle());

    // Early in a window: the report is in it, and the store goes away before it ends.
    let into = Timestamp::now().as_millisecond().rem_euclid(window * 1000);
    tokio::time::sleep(Duration::from_millis((window * 1000 - into + 100) as u64)).await;
    write(
        &store,
        vec![report("https://shop.example/", "https://ads.example/")],
    )
    .await;
    let stopping = Arc::clone(&server);
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .unwrap();
    // Past the window's end and its first claims, which fail.
    let into = Timestamp::now().as_millisecond().rem_euclid(window * 1000);
    tokio::time::sleep(Duration::from_millis((window * 1000 - into + 1200) as u64)).await;
    assert!(hook_server.posts().is_empty());
    let starting = Arc::clone(&server);
    tokio::task::spawn_blocking(move || starting.start())
        .await
        .unwrap();

    let posts = hook_server.wait_for(1).await;
    assert_eq!(posts.len(), 1, "the digest came once the store was back");
    let digest = &posts[0].json()["alerts"][0];
    assert_eq!(
        (digest["type"].as_str(), digest["total"].as_u64()),
        (Some("digest"), Some(1))
    );
    task.stop().await;
}
