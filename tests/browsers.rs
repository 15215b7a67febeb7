//! End to end with real browsers: headless Chromium and Firefox load the demo site over
//! loopback, break its policy four ways, and the layer must receive each violation exactly
//! once, in the format that browser uses.
//!
//! Needs `chromium`, `firefox-esr` and `certutil` (Debian: `apt-get install chromium
//! firefox-esr libnss3-tools`). Without them these tests fail and say so, unless
//! `CSP_REPORTS_SKIP_BROWSERS=1` is set. One browser runs at a time; each run is bounded and
//! the browser's whole process group is killed at the end.

#[path = "support/browser.rs"]
mod browser;
#[path = "../examples/demo/site.rs"]
mod site;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
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

use browser::{Browser, Running, TempDir, Trust, browser_command, version};
use site::{Delivery, EVAL_CODE, INLINE_SCRIPT, INLINE_STYLE, MANY, Site, Tls, many_style};

/// How long a browser may take to deliver every expected report.
// An upper bound, not a goal: the wait ends as soon as the reports are in. Generous, as a
// browser's start on a loaded 2-core machine can take tens of seconds.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long to keep listening after the last expected report, to catch resent or extra ones.
const AFTER: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy)]
struct Case {
    delivery: Delivery,
    cross_origin: bool,
    report_only: bool,
    /// The page with many violations (`/many`) rather than the demo page.
    many: bool,
}

const REPORT_URI: Case = Case {
    delivery: Delivery::ReportUri,
    cross_origin: false,
    report_only: false,
    many: false,
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
/// The largest batches: a page with 120 violations, reported with `report-to` to the layer
/// with its default limits. Every report must be stored.
const MANY_REPORT_TO: Case = Case {
    many: true,
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
    chromium_report_to_many_violations: Browser::Chromium, MANY_REPORT_TO;
    firefox_report_to_many_violations: Browser::Firefox, MANY_REPORT_TO;
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
    if case.many {
        let mut expected: Vec<Violation> = (0..MANY)
            .map(|i| Violation::new("style-src-attr", "inline", "enforce", &many_style(i)))
            .collect();
        expected.sort();
        return expected;
    }
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
    let Some((binary, certutil)) = browser::programs_or_skip(browser) else {
        return;
    };
    let _one_at_a_time = browser::one_at_a_time().await;

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
    let page = if case.many {
        format!("{page_origin}/many")
    } else {
        format!("{page_origin}/")
    };
    let command = browser_command(
        browser,
        &binary,
        certutil.as_deref(),
        &profile.0,
        tls.as_ref().map(|tls| Trust {
            ca_pem: &tls.ca_pem,
            spki_sha256: &tls.spki_sha256,
        }),
        &page,
    );
    let expected = expected(&site, case);
    let running = Running::spawn(command);
    // The page with many violations gets as many as its browser sends, about a hundred.
    let awaited = if case.many { 100 } else { expected.len() };
    memory.wait_for(awaited as u64, DELIVERY_TIMEOUT).await;
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
    if case.many {
        // Browsers send at most about a hundred reports of one page (Chromium 101, Firefox
        // 100 here): every one they sent must be stored, once.
        let sent: usize = uploads
            .iter()
            .filter(|u| u.method == "POST")
            .filter_map(|u| serde_json::from_str::<Vec<serde_json::Value>>(&u.body).ok())
            .map(|items| items.len())
            .sum();
        assert!(sent >= 100, "{sent} reports sent\n{summary}");
        assert_eq!(
            arrived.len(),
            sent,
            "every report sent is stored\n{summary}"
        );
        let mut distinct = arrived.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), arrived.len(), "none twice\n{summary}");
        assert!(
            arrived.iter().all(|v| expected.contains(v)),
            "only the page's violations\n{summary}"
        );
    } else {
        assert_eq!(
            arrived, expected,
            "each violation must arrive exactly once\n{summary}"
        );
    }
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
            Delivery::ReportTo if case.many => assert!(items >= 1, "{summary}"),
            Delivery::ReportTo => assert!((1..=5).contains(&items), "{summary}"),
        }
    }
    if case.many {
        let largest = posts.iter().map(|post| post.body.len()).max().unwrap_or(0);
        let most = posts
            .iter()
            .filter_map(|post| serde_json::from_str::<Vec<serde_json::Value>>(&post.body).ok())
            .map(|items| items.len())
            .max()
            .unwrap_or(0);
        // For the docs: what the largest batches of real browsers look like.
        println!(
            "{browser:?}: {} uploads, the largest {largest} bytes with {most} reports",
            posts.len()
        );
        // Firefox sends the whole page's reports as one upload; Chromium splits them by
        // timing (three uploads on a quiet machine, the largest over 64 KiB; more and
        // smaller ones under load), so only Firefox's is sure to exceed the old limit.
        if browser == Browser::Firefox {
            assert!(
                largest > 64 * 1024,
                "a batch over the old 64 KiB limit\n{summary}"
            );
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
