//! The `csp-reports` binary, driven as a user would: against a real Postgres, a real SMTP
//! server and real HTTP(S) requests; every error path with its exit code.
#![cfg(feature = "cli")]

#[path = "support/http.rs"]
mod http_client;
#[path = "support/postgres.rs"]
mod pg;
#[path = "support/smtp_server.rs"]
mod smtp_server;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use http_client::{legacy, post, reporting_api, request, send};
use pg::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_csp-reports");

/// A directory of its own, for one command's working directory or files.
fn scratch() -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "csp-reports-cli-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary, with no `CSP_REPORTS_*` settings from the environment, in a directory of this
/// test process (so the default database, `./csp-reports.db`, is made there, not in the
/// source tree).
fn command(args: &[&str]) -> Command {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    command_in(DIR.get_or_init(scratch), args)
}

/// The binary in the working directory `dir`.
fn command_in(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("CSP_REPORTS_") {
            command.env_remove(key);
        }
    }
    command
}

fn run(args: &[&str]) -> Output {
    command(args)
        .stdin(Stdio::null())
        .output()
        .expect("run csp-reports")
}

fn run_in(dir: &std::path::Path, args: &[&str]) -> Output {
    command_in(dir, args)
        .stdin(Stdio::null())
        .output()
        .expect("run csp-reports")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_names_every_command_and_setting() {
    let help = run(&["--help"]);
    assert!(help.status.success());
    let out = text(&help.stdout);
    for command in ["serve", "migrate", "summary", "clean"] {
        assert!(out.contains(command), "{out}");
    }
    let serve = text(&run(&["serve", "--help"]).stdout);
    for setting in [
        "CSP_REPORTS_LISTEN",
        "--database-url",
        "--database-ca",
        "CSP_REPORTS_DATABASE_CA",
        "--smtp-url",
        "--tls-cert",
        "--cors-origin",
        "--log-format",
        "--no-store",
        "sqlite://",
    ] {
        assert!(serve.contains(setting), "serve --help lacks {setting}");
    }
    let summary = text(&run(&["summary", "--help"]).stdout);
    assert!(
        summary.contains("7 days ago") && summary.contains("--top") && summary.contains("html")
    );
    assert!(text(&run(&["--version"]).stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn errors_are_clear_with_the_right_exit_code() {
    let unreachable = "postgres://nobody@127.0.0.1:1/none";
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &[
                "summary",
                "--since",
                "banana",
                "--database-url",
                unreachable,
            ],
            2,
            "cannot read \"banana\" as a time",
        ),
        (
            &[
                "clean",
                "--limit",
                "next tuesday",
                "--database-url",
                unreachable,
            ],
            2,
            "7 days ago",
        ),
        (
            &[
                "summary",
                "--since",
                "today",
                "--to",
                "yesterday",
                "--database-url",
                unreachable,
            ],
            2,
            "must be before",
        ),
        (&["summary"], 2, "no database at ./csp-reports.db"),
        (&["clean"], 2, "no database at ./csp-reports.db"),
        (
            &[
                "migrate",
                "--database-url",
                "sqlite:///nonexistent-dir/x/reports.db",
            ],
            2,
            "cannot open the SQLite database /nonexistent-dir/x/reports.db",
        ),
        (
            &["migrate", "--database-url", "sqlite://"],
            2,
            "sqlite:// needs a file",
        ),
        (
            &[
                "migrate",
                "--database-url",
                "sqlite://a.db",
                "--partition-by-day",
            ],
            2,
            "--partition-by-day is for Postgres",
        ),
        (
            &["serve", "--no-store", "--database-url", "sqlite://a.db"],
            2,
            "cannot be used with",
        ),
        (
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                "sqlite:///nonexistent-dir/x/reports.db",
            ],
            2,
            "/nonexistent-dir/x/reports.db",
        ),
        (
            &["clean", "--database-url", unreachable],
            1,
            "cannot reach the database",
        ),
        (
            &["summary", "--database-url", unreachable],
            1,
            "Connection refused",
        ),
        (
            &["migrate", "--database-url", "not a url at all"],
            2,
            "invalid --database-url",
        ),
        (
            &["summary", "--email", "--database-url", unreachable],
            2,
            "email needs --smtp-url",
        ),
        (
            &["summary", "--top", "0", "--database-url", unreachable],
            2,
            "--top",
        ),
        (
            &["serve", "--listen", "127.0.0.1:0", "--path", "no-slash"],
            2,
            "invalid report path",
        ),
        (
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--cors-origin",
                "https://a.example/path",
            ],
            2,
            "invalid CORS origin",
        ),
        (
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--smtp-url",
                "smtp://127.0.0.1:1",
            ],
            2,
            "--smtp-to",
        ),
        (
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                "/nonexistent.pem",
                "--tls-key",
                "/nonexistent.key",
            ],
            2,
            "cannot read the certificate",
        ),
        (
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                unreachable,
            ],
            1,
            "cannot reach the database",
        ),
        (&["serve", "--tls-cert", "/x.pem"], 2, "--tls-key"),
        (&["frobnicate"], 2, "unrecognized subcommand"),
    ];
    for (args, code, message) in cases {
        let output = run(args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(*code), "{args:?}: {stderr}");
        assert!(
            stderr.contains(message),
            "{args:?}: {stderr:?} lacks {message:?}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// A running `csp-reports serve`, its log lines and its address.
struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
    addr: SocketAddr,
}

impl Served {
    /// `csp-reports --log-format json serve --listen 127.0.0.1:0` with more options.
    fn start(options: &[&str]) -> Self {
        Self::start_in(&scratch(), options)
    }

    /// The same in the working directory `dir`.
    fn start_in(dir: &std::path::Path, options: &[&str]) -> Self {
        let args = [
            &["--log-format", "json", "serve", "--listen", "127.0.0.1:0"][..],
            options,
        ]
        .concat();
        Self::spawn(command_in(dir, &args))
    }

    /// A `serve` command made by the caller (with its `--listen 127.0.0.1:0`).
    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start csp-reports serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut served = Self {
            child,
            lines,
            log: Vec::new(),
            addr: ([0, 0, 0, 0], 0).into(),
        };
        let line = served
            .wait_for_line("listening on")
            .expect("serve did not start");
        let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
        served.addr = event["address"].as_str().unwrap().parse().unwrap();
        served
    }

    fn wait_for_line(&mut self, needle: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// SIGTERM, then waits for a clean exit and collects the rest of the log.
    fn stop(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("serve did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(exit.success(), "serve exited with {exit:?}");
        self.log.extend(self.lines.try_iter());
        std::mem::take(&mut self.log)
    }
}

/// A test that fails half-way leaves no collector behind.
impl Drop for Served {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

/// Fails unless `metrics` has each of `lines` as a whole line.
fn assert_has_lines(metrics: &str, lines: &[&str]) {
    for line in lines {
        assert!(has_line(metrics, line), "metrics lack {line}:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_store_summarize_mail_and_clean() {
    let db = TestDb::new().await;
    let url = db.url();
    let mail = smtp_server::Server::start();
    let mail_url = mail.url();

    for _ in 0..2 {
        let migrate = run(&["migrate", "--database-url", &url]);
        assert!(migrate.status.success(), "{}", text(&migrate.stderr));
        assert!(text(&migrate.stdout).contains("up to date"));
    }

    let served = Served::start(&[
        "--public-metrics",
        "--database-url",
        &url,
        "--smtp-url",
        &mail_url,
        "--smtp-to",
        "security@example.test",
        "--smtp-mode",
        "per-report",
        "--path",
        "/csp,/reports",
    ]);
    let addr = served.addr;
    let answers = [
        send(
            addr,
            post(
                "/csp",
                "application/csp-report",
                legacy("https://s.example/a?x=1", "script-src-elem", "inline"),
            ),
        )
        .await,
        send(
            addr,
            post(
                "/reports",
                "application/reports+json",
                reporting_api("https://s.example/b", 2),
            ),
        )
        .await,
        send(addr, post("/csp", "application/csp-report", "garbage <b>")).await,
        send(
            addr,
            post(
                "/csp",
                "application/csp-report",
                legacy("https://s.example/", "script-src", "chrome-extension"),
            ),
        )
        .await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(statuses, [204, 204, 400, 204]);
    let health = send(addr, request("GET", "/healthz")).await;
    assert_eq!(
        (health.status.as_u16(), health.body.as_str()),
        (200, "ok\n")
    );
    let metrics = send(addr, request("GET", "/metrics")).await.body;
    assert_has_lines(
        &metrics,
        &[
            "csp_reports_received_total 5",
            "csp_reports_accepted_total 4",
            "csp_reports_filtered_total 1",
            "csp_reports_invalid_total 1",
        ],
    );
    assert!(metrics.contains("csp_reports_sink_queued{sink=\"postgres\"}"));
    // The mail sink's own counters: four emails reached the server (one per report).
    assert_eq!(mail.wait_for(4).await.len(), 4);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mailed = loop {
        let metrics = send(addr, request("GET", "/metrics")).await.body;
        if has_line(&metrics, "csp_reports_smtp_emails_sent_total 4") || Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_has_lines(
        &mailed,
        &[
            "csp_reports_smtp_emails_sent_total 4",
            "csp_reports_smtp_reports_mailed_total 4",
            "csp_reports_sink_failed_total{sink=\"smtp\"} 0",
            "csp_reports_sink_queued{sink=\"smtp\"} 0",
        ],
    );
    assert_eq!(
        send(addr, request("GET", "/elsewhere"))
            .await
            .status
            .as_u16(),
        404
    );

    let log = served.stop();
    // One JSON object per line, one line per report with its CSP fields.
    let events: Vec<serde_json::Value> = log
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON log line"))
        .collect();
    let reports: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["message"] == "CSP violation report")
        .collect();
    assert_eq!(reports.len(), 4);
    // The query is removed before anything is logged (privacy, on by default).
    assert!(
        reports
            .iter()
            .any(|e| e["blocked_uri"] == "inline" && e["document_uri"] == "https://s.example/a")
    );

    // Shutdown drained every sink: the rows and the mails are there.
    let rows: i64 = db.count("csp_reports").await;
    assert_eq!(rows, 4);
    let mails = mail.wait_for(4).await;
    assert_eq!(mails.len(), 4, "one mail per report");

    let range = [
        "--database-url",
        &url,
        "--since",
        "2000-01-01",
        "--to",
        "2100-01-01",
    ];
    let json = run(&[&["summary", "--format", "json"][..], &range].concat());
    assert!(json.status.success(), "{}", text(&json.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        (
            summary["total"].as_u64(),
            summary["valid"].as_u64(),
            summary["invalid"].as_u64()
        ),
        (Some(4), Some(3), Some(1))
    );
    assert_eq!(summary["top_sources"][0]["value"], "https://s.example/b");
    assert_eq!(summary["top_sources"][0]["count"], 2);
    assert_eq!(summary["invalid_reports"][0]["raw"], "garbage <b>");

    // `--since` alone reads up to now (the README's "1 hour ago"), not up to last midnight.
    let recent = run(&[
        "summary",
        "--format",
        "json",
        "--database-url",
        &url,
        "--since",
        "1 hour ago",
    ]);
    assert!(recent.status.success(), "{}", text(&recent.stderr));
    let recent: serde_json::Value = serde_json::from_slice(&recent.stdout).unwrap();
    assert_eq!(recent["total"].as_u64(), Some(4));

    let plain = text(&run(&[&["summary"][..], &range].concat()).stdout);
    assert!(plain.contains("Total: 4 (valid 3, invalid 1)"), "{plain}");
    assert!(
        plain.contains("https://s.example/a") && !plain.contains("?x=1"),
        "sources are grouped without the query:\n{plain}"
    );
    let html = text(&run(&[&["summary", "--format", "html"][..], &range].concat()).stdout);
    assert!(html.starts_with("<!doctype html>") && html.contains("class=\"bar\""));
    assert!(
        html.contains("garbage &lt;b&gt;") && !html.contains("garbage <b>"),
        "report text is escaped"
    );

    let emailed = run(&[
        &[
            "summary",
            "--email",
            "--smtp-url",
            &mail_url,
            "--smtp-to",
            "boss@example.test",
        ][..],
        &range,
    ]
    .concat());
    assert!(emailed.status.success(), "{}", text(&emailed.stderr));
    let mails = mail.wait_for(5).await;
    let summary_mail = mails.last().unwrap();
    assert_eq!(summary_mail.envelope_to, ["boss@example.test"]);
    assert!(summary_mail.subject().starts_with("CSP reports: 4 from"));
    assert!(summary_mail.text().contains("Total: 4"));
    assert!(summary_mail.html().contains("<h1>"));

    let dry = run(&[
        "clean",
        "--database-url",
        &url,
        "--limit",
        "now",
        "--dry-run",
    ]);
    assert_eq!(
        text(&dry.stdout).trim(),
        "4 reports would be deleted (dry run)"
    );
    let none = run(&["clean", "--database-url", &url, "--limit", "2000-01-01"]);
    assert_eq!(text(&none.stdout).trim(), "0 reports deleted");
    let clean = run(&["clean", "--database-url", &url, "--limit", "now"]);
    assert!(clean.status.success());
    assert_eq!(text(&clean.stdout).trim(), "4 reports deleted");
    assert!(
        text(&clean.stderr).contains("deleting 4 reports"),
        "a clean says what it is doing"
    );
    let after = run(&[&["summary", "--format", "json"][..], &range].concat());
    let summary: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(summary["total"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_over_tls() {
    use tokio_rustls::rustls;

    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("csp-reports-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    let served = Served::start(&[
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(served.addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .expect("TLS handshake with the collector");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let answer = sender
        .send_request(post(
            "/csp-report",
            "application/csp-report",
            legacy("https://s.example/", "img-src", "data"),
        ))
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 204);
    drop(sender);
    let log = served.stop();
    assert!(log.iter().any(|l| l.contains("listening on https://")));
    assert!(
        log.iter()
            .any(|l| l.contains("CSP violation report") && l.contains("\"blocked_uri\":\"data\""))
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A certificate authority of its own and a certificate for `127.0.0.1` it signed, as PEM:
/// (authority, certificate, key).
fn signed_certificate() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "csp-reports test authority");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_pem, cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread")]
async fn database_over_tls_with_its_certificate_verified() {
    let (ca, cert, key) = signed_certificate();
    let (other_ca, _, _) = signed_certificate();
    let server = pg::Server::tls_only(&cert, &key);
    let dir = std::env::temp_dir().join(format!("csp-reports-pgtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (ca, other_ca, not_pem) = (
        write("ca.pem", &ca),
        write("other-ca.pem", &other_ca),
        write("not.pem", "not a certificate\n"),
    );
    let clear = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port());
    let tls = format!("{clear}?sslmode=require");

    // The server takes TLS only, so every command that works here went over TLS.
    let migrate = run(&["migrate", "--database-url", &tls, "--database-ca", &ca]);
    assert!(migrate.status.success(), "{}", text(&migrate.stderr));
    assert!(text(&migrate.stdout).contains("up to date"));

    // The collector stores over TLS (binary COPY through the sink), and a summary reads it.
    let served = Served::start(&["--database-url", &tls, "--database-ca", &ca]);
    let answer = send(
        served.addr,
        post(
            "/csp-report",
            "application/csp-report",
            legacy(
                "https://tls.example/page",
                "img-src",
                "https://cdn.example/a.png",
            ),
        ),
    )
    .await;
    assert_eq!(answer.status.as_u16(), 204);
    served.stop();
    let summary = run(&[
        "summary",
        "--format",
        "json",
        "--since",
        "2000-01-01",
        "--to",
        "2100-01-01",
        "--database-url",
        &tls,
        "--database-ca",
        &ca,
    ]);
    assert!(summary.status.success(), "{}", text(&summary.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&summary.stdout).unwrap();
    assert_eq!(summary["total"], 1);
    assert_eq!(
        summary["top_sources"][0]["value"],
        "https://tls.example/page"
    );

    // What fails says why, with exit 1 for the connection and 2 for the settings.
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--database-url", &clear], 1, "no encryption"),
        (&["--database-url", &tls], 1, "UnknownIssuer"),
        (
            &["--database-url", &tls, "--database-ca", &other_ca],
            1,
            "invalid peer certificate",
        ),
        (
            &["--database-url", &clear, "--database-ca", &ca],
            2,
            "add sslmode=require",
        ),
        (
            &["--database-url", &tls, "--database-ca", &not_pem],
            2,
            "cannot read the database CA",
        ),
    ];
    for (args, code, says) in cases {
        let out = run(&[&["migrate"][..], args].concat());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} should say {says:?}: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// With nothing else installed: `serve` stores into `./csp-reports.db` by default, `summary`
/// reads it back, `clean` prunes it; bad files get clear errors with the right exit code.
#[tokio::test(flavor = "multi_thread")]
async fn serve_into_sqlite_then_summarize_and_clean() {
    let dir = scratch();
    let served = Served::start_in(&dir, &["--public-metrics"]);
    assert!(
        served
            .log
            .iter()
            .any(|l| l.contains("storing reports in SQLite file ./csp-reports.db")),
        "{:?}",
        served.log
    );
    let addr = served.addr;
    for body in [
        legacy("https://s.example/a?x=1", "script-src-elem", "inline"),
        legacy("https://s.example/a?x=2", "script-src-elem", "inline"),
        legacy(
            "https://s.example/b",
            "img-src",
            "https://ads.example/p.png",
        ),
    ] {
        let answer = send(addr, post("/csp-report", "application/csp-report", body)).await;
        assert_eq!(answer.status.as_u16(), 204);
    }
    let bad = send(
        addr,
        post("/csp-report", "application/csp-report", "garbage ' <b>"),
    )
    .await;
    assert_eq!(bad.status.as_u16(), 400);
    let metrics = send(addr, request("GET", "/metrics")).await.body;
    assert!(
        metrics.contains("csp_reports_sink_queued{sink=\"sqlite\"}"),
        "{metrics}"
    );
    served.stop();
    assert!(dir.join("csp-reports.db").is_file());

    let range = ["--since", "2000-01-01", "--to", "2100-01-01"];
    let json = run_in(
        &dir,
        &[&["summary", "--format", "json"][..], &range].concat(),
    );
    assert!(json.status.success(), "{}", text(&json.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        (summary["total"].as_u64(), summary["invalid"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(summary["top_sources"][0]["value"], "https://s.example/a");
    assert_eq!(summary["top_sources"][0]["count"], 2);
    assert_eq!(summary["top_blocked"][0]["value"], "inline");
    assert_eq!(summary["top_blocked"][1]["value"], "https://ads.example");
    assert_eq!(summary["invalid_reports"][0]["raw"], "garbage ' <b>");
    let plain = text(&run_in(&dir, &[&["summary"][..], &range].concat()).stdout);
    assert!(plain.contains("Total: 4 (valid 3, invalid 1)"), "{plain}");

    // The same file named explicitly, from another directory.
    let url = format!("sqlite://{}", dir.join("csp-reports.db").display());
    let migrate = run(&["migrate", "--database-url", &url]);
    assert!(migrate.status.success(), "{}", text(&migrate.stderr));
    assert!(text(&migrate.stdout).contains("up to date"));
    let dry = run(&[
        "clean",
        "--database-url",
        &url,
        "--limit",
        "now",
        "--dry-run",
    ]);
    assert_eq!(
        text(&dry.stdout).trim(),
        "4 reports would be deleted (dry run)"
    );
    let clean = run(&["clean", "--database-url", &url, "--limit", "now"]);
    assert_eq!(
        text(&clean.stdout).trim(),
        "4 reports deleted",
        "{}",
        text(&clean.stderr)
    );
    let after = run(&[
        "summary",
        "--format",
        "json",
        "--database-url",
        &url,
        range[0],
        range[1],
        range[2],
        range[3],
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(summary["total"], 0);

    // Storing nothing.
    let none = scratch();
    let served = Served::start_in(&none, &["--no-store"]);
    let answer = send(
        served.addr,
        post(
            "/csp-report",
            "application/csp-report",
            legacy("https://s.example/", "img-src", "data"),
        ),
    )
    .await;
    assert_eq!(answer.status.as_u16(), 204);
    let log = served.stop();
    assert!(
        !log.iter().any(|l| l.contains("storing reports")),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.contains("CSP violation report")));
    assert!(
        !none.join("csp-reports.db").exists(),
        "--no-store made a database"
    );

    // Bad files: not a database (exit 2), a schema from a newer version (exit 1).
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "just some notes, not a database ".repeat(100)).unwrap();
    let url = format!("sqlite://{}", notes.display());
    for command in ["migrate", "summary"] {
        let out = run(&[command, "--database-url", &url]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("notes.txt is not a SQLite database"),
            "{stderr}"
        );
    }
    let newer = dir.join("newer.db");
    let url = format!("sqlite://{}", newer.display());
    assert!(run(&["migrate", "--database-url", &url]).status.success());
    tower_csp_reports::sqlite::rusqlite::Connection::open(&newer)
        .unwrap()
        .execute(
            "INSERT INTO tower_csp_reports_migrations VALUES ('csp_reports', 7, 0)",
            [],
        )
        .unwrap();
    for command in ["migrate", "summary", "clean"] {
        let out = run(&[command, "--database-url", &url]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains("schema version 7")
                && stderr.contains("up to 1")
                && stderr.contains("newer.db"),
            "{command}: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&none);
}

/// Every stored report of a SQLite file: each URL field, the raw text, the client's address.
fn stored_rows(db: &std::path::Path) -> Vec<[Option<String>; 8]> {
    let connection = tower_csp_reports::sqlite::rusqlite::Connection::open(db).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT url, document_uri, referrer, blocked_uri, source_file, raw_json, raw_text, \
             client_ip FROM csp_reports ORDER BY seq",
        )
        .unwrap();
    statement
        .query_map([], |row| {
            Ok(std::array::from_fn(|i| {
                row.get::<_, Option<String>>(i).unwrap()
            }))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn fingerprints(db: &std::path::Path) -> Vec<i64> {
    let connection = tower_csp_reports::sqlite::rusqlite::Connection::open(db).unwrap();
    let mut statement = connection
        .prepare("SELECT fingerprint FROM csp_reports ORDER BY seq")
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_reports_keep_no_query_and_a_truncated_address_unless_asked() {
    // Each secret in a URL field, as Chromium and Firefox send them; then a body that is not
    // JSON, cut short in its document URL.
    let api = r#"[{"type":"csp-violation","age":1,"url":"https://s.example/reset?token=SECRET1#SECRET2","user_agent":"Mozilla/5.0","body":{"documentURL":"https://s.example/reset?token=SECRET1#SECRET2","referrer":"https://mail.example/inbox?u=SECRET3","blockedURL":"https://cdn.example/x.js?key=SECRET4","sourceFile":"https://s.example/app.js?v=SECRET5","effectiveDirective":"script-src-elem","disposition":"enforce","statusCode":200}}]"#;
    let legacy_body = legacy(
        "https://me:SECRET6@s.example/a?q=SECRET7",
        "img-src",
        "data:image/png;base64,SECRET8",
    );
    let broken =
        r#"{"csp-report": {"document-uri": "https://s.example/p?session=SECRET9", "blocked"#;
    let secrets: Vec<String> = (1..=9).map(|i| format!("SECRET{i}")).collect();
    let bodies = [
        ("application/reports+json", api.to_owned(), 204),
        ("application/csp-report", legacy_body, 204),
        ("application/csp-report", broken.to_owned(), 400),
    ];
    let send_all = |addr: SocketAddr| {
        let bodies = bodies.clone();
        async move {
            for (content_type, body, status) in bodies {
                let answer = send(addr, post("/csp-report", content_type, body)).await;
                assert_eq!(answer.status.as_u16(), status, "{answer:?}");
            }
        }
    };

    // The defaults.
    let dir = scratch();
    let served = Served::start_in(&dir, &[]);
    send_all(served.addr).await;
    let log = served.stop().join("\n");
    let rows = stored_rows(&dir.join("csp-reports.db"));
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        for value in row.iter().flatten() {
            assert!(!secrets.iter().any(|s| value.contains(s)), "{value}");
        }
        assert_eq!(row[7].as_deref(), Some("127.0.0.0"), "{row:?}");
    }
    for secret in &secrets {
        assert!(!log.contains(secret), "the log holds {secret}: {log}");
    }
    let [url, document, referrer, blocked, source, raw, _, _] = &rows[0];
    assert_eq!(url.as_deref(), Some("https://s.example/reset"));
    assert_eq!(document.as_deref(), Some("https://s.example/reset"));
    assert_eq!(referrer.as_deref(), Some("https://mail.example/inbox"));
    assert_eq!(blocked.as_deref(), Some("https://cdn.example/x.js"));
    assert_eq!(source.as_deref(), Some("https://s.example/app.js"));
    // The raw JSON is still the item as sent, less what was removed.
    let raw: serde_json::Value = serde_json::from_str(raw.as_deref().unwrap()).unwrap();
    assert_eq!(raw["body"]["sourceFile"], "https://s.example/app.js");
    assert_eq!(raw["body"]["statusCode"], 200);
    assert_eq!(rows[1][1].as_deref(), Some("https://s.example/a"));
    assert_eq!(rows[1][3].as_deref(), Some("data"));
    assert_eq!(
        rows[2][6].as_deref(),
        Some(r#"{"csp-report": {"document-uri": "https://s.example/p", "blocked"#)
    );

    // Asked to keep the queries, and no address at all.
    let kept = scratch();
    let served = Served::start_in(&kept, &["--keep-query", "--client-ip", "off"]);
    send_all(served.addr).await;
    served.stop();
    let rows = stored_rows(&kept.join("csp-reports.db"));
    let everything: String = rows.iter().flatten().flatten().cloned().collect();
    for secret in &secrets {
        assert!(
            everything.contains(secret),
            "{secret} was removed: {rows:?}"
        );
    }
    assert!(rows.iter().all(|row| row[7].is_none()), "{rows:?}");
    // Grouping is the same whatever is kept.
    assert_eq!(
        fingerprints(&kept.join("csp-reports.db")),
        fingerprints(&dir.join("csp-reports.db"))
    );

    // The whole address, from the environment.
    let full = scratch();
    let mut command = command_in(
        &full,
        &["--log-format", "json", "serve", "--listen", "127.0.0.1:0"],
    );
    command.env("CSP_REPORTS_CLIENT_IP", "full");
    let served = Served::spawn(command);
    send_all(served.addr).await;
    served.stop();
    let rows = stored_rows(&full.join("csp-reports.db"));
    assert!(
        rows.iter()
            .all(|row| row[7].as_deref() == Some("127.0.0.1")),
        "{rows:?}"
    );

    // A value that means nothing.
    let bad = run(&["serve", "--listen", "127.0.0.1:0", "--client-ip", "half"]);
    let stderr = text(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("half") && stderr.contains("off, truncated, full"),
        "{stderr}"
    );
    for dir in [dir, kept, full] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
