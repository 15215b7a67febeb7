//! Alerts through the real `csp-reports` binary: two `serve` processes on one real Postgres,
//! one real SMTP server and one real webhook receiver on loopback. Each new violation is
//! announced once, and each digest window once, counting the reports of both.

#[path = "support/http.rs"]
mod http_client;
#[path = "support/postgres.rs"]
mod pg;
#[path = "support/served.rs"]
mod served;
#[path = "support/smtp_server.rs"]
mod smtp_server;
#[path = "support/webhook_server.rs"]
mod webhook_server;

use std::process::{Command, Stdio};
use std::time::Duration;

use http_client::{legacy, post, send};
use pg::TestDb;
use served::Served;
use webhook_server::WebhookServer;

const BIN: &str = env!("CARGO_BIN_EXE_csp-reports");

/// Two collectors with the same options, started side by side.
async fn two(options: Vec<String>) -> (Served, Served) {
    let start = |options: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let options: Vec<&str> = options.iter().map(String::as_str).collect();
            Served::start(&options)
        })
    };
    let (a, b) = tokio::join!(start(options.clone()), start(options));
    (a.unwrap(), b.unwrap())
}

async fn stop(served: Served) {
    tokio::task::spawn_blocking(move || served.stop())
        .await
        .unwrap();
}

async fn report(to: &Served, document: &str, blocked: &str) {
    let body = legacy(document, "img-src", blocked);
    let answer = send(to.addr, post("/csp-report", "application/csp-report", body)).await;
    assert_eq!(answer.status, 204, "{}", answer.body);
}

fn alerts_of(posts: &[webhook_server::Post], kind: &str) -> Vec<serde_json::Value> {
    posts
        .iter()
        .flat_map(|post| post.json()["alerts"].as_array().unwrap().clone())
        .filter(|alert| alert["type"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_announce_a_new_violation_once() {
    let db = TestDb::new().await;
    let smtp = smtp_server::Server::start();
    let hook = WebhookServer::start(&[]).await;
    let options: Vec<String> = [
        "--database-url",
        &db.url(),
        "--smtp-url",
        &smtp.url(),
        "--smtp-to",
        "security@example.com",
        "--smtp-mode",
        "new-only",
        "--webhook-url",
        &hook.url(),
    ]
    .map(str::to_owned)
    .to_vec();
    let (a, b) = two(options).await;

    // The same new violation, to both at once, a few times over.
    for i in 0..3 {
        let document = format!("https://shop.example/cart?try={i}");
        tokio::join!(
            report(&a, &document, "https://ads.example/a.png"),
            report(&b, &document, "https://ads.example/b.png"),
        );
    }
    smtp.wait_for(1).await;
    hook.wait_for(1).await;
    // A graceful stop delivers every alert still queued: what was not sent by now never is.
    tokio::join!(stop(a), stop(b));

    let mails = smtp.mails();
    let subjects: Vec<String> = mails.iter().map(|m| m.subject()).collect();
    assert_eq!(
        subjects,
        ["[CSP] New violation: img-src blocked https://ads.example on https://shop.example/cart"],
        "exactly one email"
    );
    let posts = hook.posts();
    let violations = alerts_of(&posts, "violation");
    assert_eq!(violations.len(), 1, "exactly one webhook alert: {posts:?}");
    assert_eq!(violations[0]["kind"], "new");
    assert_eq!(violations[0]["violation"]["blocked"], "https://ads.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_send_one_digest_that_counts_both() {
    let db = TestDb::new().await;
    let smtp = smtp_server::Server::start();
    let hook = WebhookServer::start(&[]).await;
    let window = 4;
    let options: Vec<String> = [
        "--database-url",
        &db.url(),
        "--smtp-url",
        &smtp.url(),
        "--smtp-to",
        "security@example.com",
        "--smtp-mode",
        "digest",
        "--smtp-window",
        &format!("{window}s"),
        "--webhook-url",
        &hook.url(),
        "--webhook-format",
        "generic",
    ]
    .map(str::to_owned)
    .to_vec();
    let (a, b) = two(options).await;

    // Early in a window, so that every report falls in the same one.
    let now = jiff::Timestamp::now();
    let into = now.as_millisecond().rem_euclid(window * 1000);
    tokio::time::sleep(Duration::from_millis((window * 1000 - into + 200) as u64)).await;
    tokio::join!(
        report(&a, "https://shop.example/", "https://ads.example/1"),
        report(&b, "https://shop.example/", "https://ads.example/2"),
        report(&a, "https://shop.example/", "https://cdn.example/x.js"),
    );
    tokio::join!(
        report(&b, "https://shop.example/", "https://cdn.example/y.js"),
        report(&b, "https://blog.example/", "https://ads.example/3"),
    );
    smtp.wait_for(1).await;
    let digests = |posts: &[webhook_server::Post]| alerts_of(posts, "digest");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while digests(&hook.posts()).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::join!(stop(a), stop(b));

    let mails = smtp.mails();
    assert_eq!(
        mails.len(),
        1,
        "one digest: {:?}",
        mails.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );
    let subject = mails[0].subject();
    assert!(
        subject.starts_with("[CSP] Digest: 5 reports from "),
        "{subject}"
    );
    let text = mails[0].text();
    assert!(
        text.contains(
            "img-src blocked https://ads.example on https://shop.example/ (2 reports, new)"
        ),
        "{text}"
    );
    let posts = hook.posts();
    let digests = digests(&posts);
    assert_eq!(digests.len(), 1, "one digest posted: {posts:?}");
    assert_eq!(digests[0]["total"], 5);
    // The webhook hears each new violation once too: three, between the two collectors.
    let violations = alerts_of(&posts, "violation");
    assert_eq!(violations.len(), 3, "{posts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_webhook_is_retried_after_a_500_and_escapes_reports() {
    let hook = WebhookServer::start(&[webhook_server::Reply::Status(500)]).await;
    let file = std::env::temp_dir().join(format!("csp-cli-alerts-slack-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let options: Vec<String> = [
        "--database-url",
        &format!("sqlite://{}", file.display()),
        "--webhook-url",
        &hook.url(),
        "--webhook-format",
        "slack",
    ]
    .map(str::to_owned)
    .to_vec();
    let served = tokio::task::spawn_blocking(move || {
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        Served::start(&options)
    })
    .await
    .unwrap();
    report(
        &served,
        "https://shop.example/<!here>",
        "https://ads.example/x.png",
    )
    .await;
    let posts = hook.wait_for(2).await;
    stop(served).await;
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!(posts[0].reply, webhook_server::Reply::Status(500));
    assert_eq!(posts[0].body, posts[1].body, "the same post, again");
    let body = posts[1].json();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("*New violation* (new): img-src blocked https://ads.example"),
        "{text}"
    );
    assert!(
        text.contains("https://shop.example/&lt;!here&gt;"),
        "{text}"
    );
    assert!(!text.contains("<!here>"), "{text}");
    let _ = std::fs::remove_file(&file);
}

/// The binary in a scratch directory, with no `CSP_REPORTS_*` settings.
fn command(args: &[&str]) -> Command {
    let dir = std::env::temp_dir().join(format!("csp-reports-cli-alerts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(BIN);
    command.args(args).current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("CSP_REPORTS_") {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn bad_alert_settings_exit_2_and_say_why() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["serve", "--webhook-url", "ftp://hooks.example/s3cret"],
            "invalid webhook url: the scheme must be http or https",
        ),
        (
            &[
                "serve",
                "--webhook-url",
                "http://hooks.example/",
                "--webhook-format",
                "teams",
            ],
            "invalid value 'teams' for '--webhook-format",
        ),
        (
            &[
                "serve",
                "--no-store",
                "--webhook-url",
                "http://hooks.example/",
            ],
            "--webhook-url posts what the store decides: it cannot go with --no-store",
        ),
        (
            &[
                "serve",
                "--webhook-url",
                "http://hooks.example/",
                "--digest-window",
                "1500ms",
            ],
            "invalid digest_window: must be whole seconds",
        ),
        (
            &[
                "serve",
                "--webhook-url",
                "http://hooks.example/",
                "--webhook-timeout",
                "0s",
            ],
            "must be longer than zero",
        ),
        (
            &[
                "serve",
                "--webhook-url",
                "http://hooks.example/",
                "--webhook-max-per-hour",
                "0",
            ],
            "webhook max_posts must be between 1 and",
        ),
    ];
    for (args, expected) in cases {
        let output = command(args).stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
}
