//! End to end with real browsers: headless Chromium and Firefox load the demo site over
//! loopback, break its policy four ways, and the layer must receive each violation exactly
//! once, in the format that browser uses.
//!
//! Needs `chromium`, `firefox-esr` and `certutil` (Debian: `apt-get install chromium
//! firefox-esr libnss3-tools`). Without them these tests fail and say so, unless
//! `CSP_REPORTS_SKIP_BROWSERS=1` is set. One browser runs at a time; each run is bounded and
//! the browser's whole process group is killed at the end.

#[path = "../examples/demo/site.rs"]
mod site;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;
use tower_csp_reports::filter::KeepAll;
use tower_csp_reports::sink::MemorySink;
use tower_csp_reports::{ByteString, CspReportLayer, Dispatch, Report, WireFormat};

use site::{Delivery, EVAL_CODE, INLINE_SCRIPT, INLINE_STYLE, Site, Tls};

/// How long a browser may take to deliver every expected report.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to keep listening after the last expected report, to catch resent or extra ones.
const AFTER: Duration = Duration::from_secs(3);

/// One browser at a time: two cores cannot run two browsers and keep their timing sane.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Browser {
    Chromium,
    Firefox,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    delivery: Delivery,
    cross_origin: bool,
    report_only: bool,
}

const REPORT_URI: Case = Case {
    delivery: Delivery::ReportUri,
    cross_origin: false,
    report_only: false,
};
const REPORT_URI_CROSS_ORIGIN: Case = Case {
    cross_origin: true,
    ..REPORT_URI
};
const REPORT_TO: Case = Case {
    delivery: Delivery::ReportTo,
    ..REPORT_URI
};
const REPORT_TO_CROSS_ORIGIN: Case = Case {
    cross_origin: true,
    ..REPORT_TO
};
const REPORT_ONLY_REPORT_URI: Case = Case {
    report_only: true,
    ..REPORT_URI
};
const REPORT_ONLY_REPORT_TO: Case = Case {
    report_only: true,
    ..REPORT_TO
};

macro_rules! browser_tests {
    ($($name:ident: $browser:expr, $case:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run($browser, $case).await;
        }
    )*};
}

browser_tests! {
    chromium_report_uri: Browser::Chromium, REPORT_URI;
    chromium_report_uri_cross_origin: Browser::Chromium, REPORT_URI_CROSS_ORIGIN;
    chromium_report_to: Browser::Chromium, REPORT_TO;
    chromium_report_to_cross_origin: Browser::Chromium, REPORT_TO_CROSS_ORIGIN;
    chromium_report_only_report_uri: Browser::Chromium, REPORT_ONLY_REPORT_URI;
    chromium_report_only_report_to: Browser::Chromium, REPORT_ONLY_REPORT_TO;
    firefox_report_uri: Browser::Firefox, REPORT_URI;
    firefox_report_uri_cross_origin: Browser::Firefox, REPORT_URI_CROSS_ORIGIN;
    firefox_report_to: Browser::Firefox, REPORT_TO;
    firefox_report_to_cross_origin: Browser::Firefox, REPORT_TO_CROSS_ORIGIN;
    firefox_report_only_report_uri: Browser::Firefox, REPORT_ONLY_REPORT_URI;
    firefox_report_only_report_to: Browser::Firefox, REPORT_ONLY_REPORT_TO;
}

/// A request that reached a report path, as the browser sent it, and the answer.
#[derive(Debug, Clone)]
struct Upload {
    method: String,
    content_type: String,
    origin: String,
    body: String,
    status: u16,
}

#[derive(Debug, Clone, Default)]
struct Uploads(Arc<Mutex<Vec<Upload>>>);

impl Uploads {
    fn all(&self) -> Vec<Upload> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Keeps a copy of every request to `/csp-report` (before the layer reads it), so the tests
/// can say what went over the wire: content type, batching, preflights.
async fn record(State(uploads): State<Uploads>, request: Request, next: Next) -> Response {
    if request.uri().path() != "/csp-report" {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let text = |name| {
        parts
            .headers
            .get(name)
            .map(|v: &header::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    };
    let mut upload = Upload {
        method: parts.method.to_string(),
        content_type: text(header::CONTENT_TYPE),
        origin: text(header::ORIGIN),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
    };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    upload.status = response.status().as_u16();
    uploads
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(upload);
    response
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "csp-reports-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A browser started in its own process group; dropping it kills the whole group (the
/// Debian `chromium` wrapper script, the browser and its helper processes).
struct Running {
    child: Child,
}

impl Running {
    fn spawn(mut command: Command) -> Self {
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        Self { child }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The group's id is the child's id (process_group(0)).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// The programs a browser run needs, or why they are missing.
fn find_programs(browser: Browser) -> Result<(PathBuf, Option<PathBuf>), String> {
    const INSTALL: &str = "install them with `apt-get install chromium firefox-esr libnss3-tools` \
                           (or set CSP_REPORTS_SKIP_BROWSERS=1 to skip these tests)";
    let names: &[&str] = match browser {
        Browser::Chromium => &["chromium", "chromium-browser"],
        Browser::Firefox => &["firefox-esr", "firefox"],
    };
    let binary = names
        .iter()
        .find_map(|name| which(name))
        .ok_or_else(|| format!("{browser:?} not found (looked for {names:?}); {INSTALL}"))?;
    let certutil = match browser {
        Browser::Chromium => None,
        Browser::Firefox => Some(
            which("certutil")
                .ok_or_else(|| format!("certutil (libnss3-tools) not found; {INSTALL}"))?,
        ),
    };
    Ok((binary, certutil))
}

fn version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Prefs for a fresh Firefox profile: no first-run pages, no background traffic.
const FIREFOX_PREFS: &str = r#"
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.aboutwelcome.enabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.disabledForTesting", true);
user_pref("app.normandy.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("browser.region.network.url", "");
"#;

fn browser_command(
    browser: Browser,
    binary: &Path,
    certutil: Option<&Path>,
    profile: &Path,
    tls: Option<&Tls>,
    url: &str,
) -> Command {
    let mut command = Command::new(binary);
    match browser {
        Browser::Chromium => {
            command.args([
                "--headless",
                // Root in a container has no user namespaces for the sandbox.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                // Otherwise Reporting API reports wait about a minute before upload.
                "--short-reporting-delay",
            ]);
            command.arg(format!("--user-data-dir={}", profile.display()));
            if let Some(tls) = tls {
                command.arg(format!(
                    "--ignore-certificate-errors-spki-list={}",
                    tls.spki_sha256
                ));
            }
        }
        Browser::Firefox => {
            std::fs::write(profile.join("user.js"), FIREFOX_PREFS).expect("write user.js");
            if let (Some(tls), Some(certutil)) = (tls, certutil) {
                let ca = profile.join("ca.pem");
                std::fs::write(&ca, &tls.ca_pem).expect("write the CA");
                let db = format!("sql:{}", profile.display());
                let run = |args: &[&str]| {
                    let out = Command::new(certutil)
                        .args(args)
                        .output()
                        .expect("run certutil");
                    assert!(out.status.success(), "certutil {args:?}: {out:?}");
                };
                run(&["-N", "-d", &db, "--empty-password"]);
                let ca = ca.to_str().expect("a UTF-8 temporary path");
                run(&[
                    "-A",
                    "-d",
                    &db,
                    "-n",
                    "csp-reports-test-ca",
                    "-t",
                    "C,,",
                    "-i",
                    ca,
                ]);
            }
            command.args(["--headless", "--no-remote", "--profile"]);
            command.arg(profile);
        }
    }
    command.arg(url);
    command
}

/// What a violation report says, without what differs between runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    directive: String,
    blocked: String,
    disposition: String,
    sample: String,
}

impl Violation {
    fn new(directive: &str, blocked: &str, disposition: &str, sample: &str) -> Self {
        Self {
            directive: directive.to_owned(),
            blocked: blocked.to_owned(),
            disposition: disposition.to_owned(),
            sample: sample.to_owned(),
        }
    }

    fn of(report: &Report) -> Self {
        let text = |field: &Option<ByteString>| field.as_deref().unwrap_or_default().to_owned();
        Self {
            directive: text(&report.effective_directive),
            blocked: text(&report.blocked_uri),
            disposition: text(&report.disposition),
            sample: text(&report.script_sample),
        }
    }
}

fn expected(site: &Site, case: Case) -> Vec<Violation> {
    let styles_images = if case.report_only {
        "report"
    } else {
        "enforce"
    };
    let mut expected = vec![
        Violation::new("script-src-elem", "inline", "enforce", INLINE_SCRIPT),
        Violation::new("script-src", "eval", "enforce", EVAL_CODE),
        Violation::new("style-src-attr", "inline", styles_images, INLINE_STYLE),
        Violation::new("img-src", &site.image_url, styles_images, ""),
    ];
    expected.sort();
    expected
}

async fn bind() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let port = listener.local_addr().expect("local address").port();
    (listener, port)
}

async fn run(browser: Browser, case: Case) {
    let programs = find_programs(browser);
    let (binary, certutil) = match programs {
        Ok(programs) => programs,
        Err(why) if std::env::var("CSP_REPORTS_SKIP_BROWSERS").is_ok_and(|v| v == "1") => {
            eprintln!("SKIPPED (CSP_REPORTS_SKIP_BROWSERS=1): {why}");
            return;
        }
        Err(why) => panic!("{why}"),
    };
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;

    let https = case.delivery == Delivery::ReportTo;
    let tls = https.then(|| Tls::generate().expect("make a throwaway certificate"));
    let acceptor = tls.as_ref().map(|tls| tls.acceptor.clone());
    let scheme = if https { "https" } else { "http" };

    let memory = MemorySink::new();
    let layer = CspReportLayer::builder()
        .path("/csp-report")
        .filter(KeepAll)
        .dispatch(Dispatch::Inline)
        .sink(memory.clone())
        .build()
        .unwrap();
    let handle = layer.handle();
    let uploads = Uploads::default();
    let recorder = middleware::from_fn_with_state(uploads.clone(), record);

    let (page_listener, page_port) = bind().await;
    let page_origin = format!("{scheme}://127.0.0.1:{page_port}");
    let mut servers = Vec::new();
    let collector_origin = if case.cross_origin {
        let (listener, port) = bind().await;
        let collector = Router::new().layer(layer.clone()).layer(recorder.clone());
        servers.push(site::serve(listener, acceptor.clone(), collector));
        format!("{scheme}://127.0.0.1:{port}")
    } else {
        page_origin.clone()
    };
    let site = Site::new(
        &format!("{collector_origin}/csp-report"),
        case.delivery,
        case.report_only,
    )
    .expect("a valid endpoint");
    let mut pages = site.router();
    if !case.cross_origin {
        pages = pages.layer(layer);
    }
    servers.push(site::serve(page_listener, acceptor, pages.layer(recorder)));

    let profile = TempDir::new(&format!("{browser:?}").to_lowercase());
    let page = format!("{page_origin}/");
    let command = browser_command(
        browser,
        &binary,
        certutil.as_deref(),
        &profile.0,
        tls.as_ref(),
        &page,
    );
    let expected = expected(&site, case);
    let running = Running::spawn(command);
    memory
        .wait_for(expected.len() as u64, DELIVERY_TIMEOUT)
        .await;
    tokio::time::sleep(AFTER).await;
    drop(running);
    for server in &servers {
        server.abort();
    }

    let reports = memory.reports();
    let uploads = uploads.all();
    let summary = describe(browser, &binary, case, &reports, &uploads);
    println!("{summary}");

    let mut arrived: Vec<Violation> = reports.iter().map(Violation::of).collect();
    arrived.sort();
    assert_eq!(
        arrived, expected,
        "each violation must arrive exactly once\n{summary}"
    );
    let stats = handle.stats();
    assert_eq!(stats.invalid, 0, "{summary}");
    assert_eq!(stats.rejected, 0, "{summary}");

    let format = match case.delivery {
        Delivery::ReportUri => WireFormat::Legacy,
        Delivery::ReportTo => WireFormat::ReportingApi,
    };
    for report in &reports {
        assert_eq!(report.format, format, "{summary}");
        assert!(report.is_valid(), "{summary}");
        assert!(report.is_csp_violation(), "{summary}");
        assert_eq!(report.document(), Some(page.as_str()), "{summary}");
        let user_agent = report.user_agent.as_deref().unwrap_or_default();
        let product = match browser {
            Browser::Chromium => "Chrome/",
            Browser::Firefox => "Firefox/",
        };
        assert!(user_agent.contains(product), "{summary}");
    }

    let posts: Vec<&Upload> = uploads.iter().filter(|u| u.method == "POST").collect();
    let content_type = match case.delivery {
        Delivery::ReportUri => "application/csp-report",
        Delivery::ReportTo => "application/reports+json",
    };
    for post in &posts {
        assert!(
            post.content_type.starts_with(content_type),
            "{content_type} expected\n{summary}"
        );
        assert!((200..300).contains(&post.status), "{summary}");
        let items = match serde_json::from_str::<serde_json::Value>(&post.body) {
            Ok(serde_json::Value::Array(items)) => items.len(),
            Ok(_) => 1,
            Err(e) => panic!("a browser sent a body that is not JSON ({e})\n{summary}"),
        };
        match case.delivery {
            // report-uri: one report per request.
            Delivery::ReportUri => assert_eq!(items, 1, "{summary}"),
            Delivery::ReportTo => assert!((1..=5).contains(&items), "{summary}"),
        }
    }
    if case.cross_origin && case.delivery == Delivery::ReportTo {
        let preflights: Vec<_> = uploads.iter().filter(|u| u.method == "OPTIONS").collect();
        assert!(
            !preflights.is_empty(),
            "a cross-origin upload is preceded by a preflight\n{summary}"
        );
        for preflight in preflights {
            assert_eq!(preflight.origin, page_origin, "{summary}");
            assert_eq!(preflight.status, 204, "{summary}");
        }
    }
}

/// What arrived, for the test log and for failure messages.
fn describe(
    browser: Browser,
    binary: &Path,
    case: Case,
    reports: &[Report],
    uploads: &[Upload],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "== {} / {case:?}", version(binary));
    let mut methods = BTreeMap::<&str, usize>::new();
    for upload in uploads {
        *methods.entry(upload.method.as_str()).or_default() += 1;
    }
    let _ = writeln!(out, "requests to the report path: {methods:?}");
    for upload in uploads {
        let body: String = upload.body.chars().take(4000).collect();
        let _ = writeln!(
            out,
            "-- {} {} type={:?} origin={:?}\n{body}",
            upload.method, upload.status, upload.content_type, upload.origin
        );
    }
    let _ = writeln!(out, "{} reports at the sink ({browser:?}):", reports.len());
    for report in reports {
        let _ = writeln!(
            out,
            "  {} {:?} blocked={:?} disposition={:?} sample={:?} line={:?} document={:?}",
            report.format,
            report.effective_directive,
            report.blocked_uri,
            report.disposition,
            report.script_sample,
            report.line_number,
            report.document(),
        );
    }
    out
}
