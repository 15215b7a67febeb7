//! The policy builder's proof, with real browsers and the shipped binary: a site under
//! `default-src 'none'` (report-only) is visited with headless Chromium and Firefox, their
//! reports go to `csp-reports serve` (storing into a SQLite file), `csp-reports policy`
//! proposes a policy from that file, the site enforces it, and a second visit must load every
//! resource and send no report at all.
//!
//! The site: pages on `127.0.0.1:P` that load scripts and styles from `127.0.0.1:A`, images,
//! a font and a frame from `127.0.0.2:B`, a fetch and a WebSocket from `localhost:C`, and
//! `data:` images. Each page checks its own resources from a script of its own origin,
//! writes the result into its DOM, and sends that text on by navigating to `/next`, which
//! records it and moves the browser to the next page (navigations are not governed by the
//! policy, so the channel cannot hide a blocked resource: a check script that cannot run
//! sends nothing, and the test fails waiting for it).
//!
//! Needs `chromium`, `firefox-esr` and `certutil` (see `tests/support/browser.rs`) and a
//! TrueType font under `/usr/share/fonts`. Without them these tests fail and say so, unless
//! `CSP_REPORTS_SKIP_BROWSERS=1` is set. One browser runs at a time; each visit is bounded
//! and the browser's whole process group is killed at the end.
#![cfg(feature = "cli")]

#[path = "support/browser.rs"]
mod browser;
#[path = "support/http.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use jiff::Timestamp;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower_csp_reports::Report;
use tower_csp_reports::policy::Policy;
use tower_csp_reports::sqlite::SqliteStore;
use tower_csp_reports::store::{ReportQuery, ReportStore, TimeRange};

use browser::{BROWSERS, Browser, Running, TempDir, browser_command, version};
use served::Served;

const BIN: &str = env!("CARGO_BIN_EXE_csp-reports");

/// How long one browser may take to go through every page of a tour.
const TOUR_TIMEOUT: Duration = Duration::from_secs(90);
/// How long to keep listening after the tour, for reports still on their way.
const AFTER: Duration = Duration::from_secs(3);

/// The pages of the closed loop, in the order a tour visits them.
const LOOP_PAGES: &[&str] = &["scripts", "images", "fonts", "frame", "connect"];
/// What each page's check says when everything loaded.
const LOOP_OK: &[(&str, &str)] = &[
    ("scripts", "script=ok style=ok"),
    ("images", "data=ok foreign=ok self=ok"),
    ("fonts", "font=ok"),
    ("frame", "frame=ok"),
    ("connect", "fetch=ok websocket=ok"),
];

// ---------------------------------------------------------------------------------------
// The site and the three other origins

/// Serves `app` on `listener`, with HTTP upgrades (for the WebSocket), until aborted.
fn serve(listener: TcpListener, app: Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let service = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                // A browser closing a connection is not worth a message.
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn bind(host: &str) -> (TcpListener, u16) {
    let listener = TcpListener::bind((host, 0))
        .await
        .unwrap_or_else(|e| panic!("bind {host}: {e}"));
    let port = listener.local_addr().expect("local address").port();
    (listener, port)
}

/// A small image, the same wherever it is served from.
const SVG: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4" fill="teal"/></svg>"#;
/// The same image as a `data:` URL.
const SVG_DATA_URL: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='4' height='4'%3E%3Crect width='4' height='4' fill='teal'/%3E%3C/svg%3E";

/// Each page's check, from the page's own origin: it runs on `load`, writes one
/// `name=ok|FAILED` per resource into `#result`, and passes the text on to `/next`.
const CHECK_JS: &str = r#"(function () {
  var framed = new Promise(function (resolve) {
    window.addEventListener("message", function (e) { if (e.data === "framed") resolve(true); });
  });
  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function bounded(p) { return Promise.race([p.catch(function () { return false; }), wait(5000).then(function () { return false; })]); }
  async function check(page, body) {
    var r = {};
    if (page === "scripts") {
      r.script = window.libLoaded === true;
      r.style = getComputedStyle(document.getElementById("probe")).width === "42px";
    } else if (page === "images") {
      for (var img of document.images) r[img.id] = img.complete && img.naturalWidth > 0;
    } else if (page === "fonts") {
      r.font = await bounded(document.fonts.load("16px ProbeFont").then(function (faces) {
        return faces.length > 0 && faces.every(function (f) { return f.status === "loaded"; });
      }));
    } else if (page === "frame") {
      r.frame = await bounded(framed);
    } else if (page === "connect") {
      r.fetch = await bounded(fetch(body.dataset.fetch).then(function (res) { return res.json(); })
        .then(function (json) { return json.ok === true; }));
      r.websocket = await bounded(new Promise(function (resolve) {
        var ws = new WebSocket(body.dataset.ws);
        ws.onmessage = function (e) { resolve(e.data === "hello"); ws.close(); };
        ws.onerror = function () { resolve(false); };
      }));
    } else if (page === "inline") {
      r.inline = window.inlineRan === true;
      try { eval("window.evalRan = true"); } catch (e) {}
      r.eval = window.evalRan === true;
    }
    return Object.keys(r).sort().map(function (k) { return k + "=" + (r[k] ? "ok" : "FAILED"); }).join(" ");
  }
  window.addEventListener("load", async function () {
    var body = document.body, page = body.dataset.page, out = document.getElementById("result");
    out.textContent = await check(page, body);
    // Reports of this page go out before the browser leaves it.
    await wait(500);
    location.replace("/next?page=" + encodeURIComponent(page) + "&result=" + encodeURIComponent(out.textContent));
  });
})();
"#;

/// The headers every page of the site is served with; the test changes them between visits.
#[derive(Debug, Clone, Default)]
struct PageHeaders(Arc<RwLock<Vec<(HeaderName, HeaderValue)>>>);

impl PageHeaders {
    fn set(&self, headers: Vec<(HeaderName, HeaderValue)>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = headers;
    }

    fn get(&self) -> Vec<(HeaderName, HeaderValue)> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What the pages of a tour said, and when the tour ended.
#[derive(Debug, Default)]
struct Tour {
    pages: Vec<&'static str>,
    results: Mutex<Vec<(String, String)>>,
    ended: Notify,
}

impl Tour {
    fn results(&self) -> Vec<(String, String)> {
        self.results
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn clear(&self) {
        self.results
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[derive(Clone)]
struct SiteState {
    headers: PageHeaders,
    tour: Arc<Tour>,
    a: String,
    b: String,
    c: String,
    c_ws: String,
}

fn page_html(state: &SiteState, name: &str) -> Option<String> {
    let SiteState { a, b, c, c_ws, .. } = state;
    let (head, attributes, body) = match name {
        "scripts" => (
            format!(
                r#"<link rel="stylesheet" href="{a}/style.css"><script src="{a}/lib.js"></script>"#
            ),
            String::new(),
            r#"<div id="probe"></div>"#.to_owned(),
        ),
        "images" => (
            String::new(),
            String::new(),
            format!(
                r#"<img id="foreign" src="{b}/pic.svg" alt=""><img id="data" src="{SVG_DATA_URL}" alt=""><img id="self" src="/self.svg" alt="">"#
            ),
        ),
        "fonts" => (
            r#"<link rel="stylesheet" href="/fonts.css">"#.to_owned(),
            String::new(),
            "<p>Text in the probe font.</p>".to_owned(),
        ),
        "frame" => (
            String::new(),
            String::new(),
            format!(r#"<iframe src="{b}/frame.html" title="frame"></iframe>"#),
        ),
        "connect" => (
            String::new(),
            format!(r#" data-fetch="{c}/data.json" data-ws="{c_ws}/ws""#),
            String::new(),
        ),
        "inline" => (
            String::new(),
            String::new(),
            "<script>window.inlineRan = true;</script>".to_owned(),
        ),
        _ => return None,
    };
    Some(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{name}</title>
<script src="/check.js"></script>
{head}
</head>
<body data-page="{name}"{attributes}>
<h1>{name}</h1>
<output id="result">pending</output>
{body}
</body>
</html>
"#
    ))
}

async fn page(State(state): State<SiteState>, UrlPath(name): UrlPath<String>) -> Response {
    let Some(html) = page_html(&state, &name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = Html(html).into_response();
    response.headers_mut().extend(state.headers.get());
    response
}

async fn next(
    State(state): State<SiteState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let page = query.get("page").cloned().unwrap_or_default();
    let result = query.get("result").cloned().unwrap_or_default();
    state
        .tour
        .results
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((page.clone(), result));
    let at = state.tour.pages.iter().position(|p| *p == page);
    match at.and_then(|at| state.tour.pages.get(at + 1)) {
        Some(next) => Redirect::to(&format!("/page/{next}")).into_response(),
        None => {
            state.tour.ended.notify_one();
            Html("<!doctype html><title>end</title><p>done</p>").into_response()
        }
    }
}

fn typed(content_type: &'static str, body: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body.into()).into_response()
}

fn cors(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// The origin of scripts and styles.
fn origin_a() -> Router {
    Router::new()
        .route(
            "/lib.js",
            get(|| async { typed("text/javascript", "window.libLoaded = true;\n") }),
        )
        .route(
            "/style.css",
            get(|| async { typed("text/css", "#probe { width: 42px; height: 1px; }\n") }),
        )
}

/// The origin of images, the font and the frame.
fn origin_b(font: Arc<Vec<u8>>) -> Router {
    Router::new()
        .route("/pic.svg", get(|| async { typed("image/svg+xml", SVG) }))
        .route(
            "/font.ttf",
            get(move || {
                let font = font.clone();
                async move { cors(typed("font/ttf", font.as_ref().clone())) }
            }),
        )
        .route(
            "/frame.html",
            get(|| async {
                Html("<!doctype html><title>frame</title><p>framed</p><script>parent.postMessage(\"framed\", \"*\");</script>")
            }),
        )
}

/// The origin of the fetch and the WebSocket.
fn origin_c() -> Router {
    Router::new()
        .route(
            "/data.json",
            get(|| async { cors(typed("application/json", r#"{"ok":true}"#)) }),
        )
        .route("/ws", get(websocket))
}

/// A WebSocket endpoint that says `hello` and waits for the browser to close.
async fn websocket(mut request: Request) -> Response {
    use base64::Engine as _;
    let Some(key) = request.headers().get("sec-websocket-key").cloned() else {
        return (StatusCode::BAD_REQUEST, "a WebSocket handshake is expected").into_response();
    };
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return (StatusCode::BAD_REQUEST, "the connection cannot be upgraded").into_response();
    };
    let mut input = key.as_bytes().to_vec();
    input.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    let accept = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
        // One unmasked text frame: FIN + text opcode, length 5, "hello".
        if io.write_all(b"\x81\x05hello").await.is_err() {
            return;
        }
        let mut buffer = [0u8; 256];
        let _ = tokio::time::timeout(Duration::from_secs(10), io.read(&mut buffer)).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header("sec-websocket-accept", accept)
        .body(Body::empty())
        .expect("a valid response")
}

/// A TrueType font from the system, for the font the site loads.
fn system_font() -> Vec<u8> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "ttf") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(Path::new("/usr/share/fonts"), &mut found);
    found.sort();
    let path = found.first().unwrap_or_else(|| {
        panic!("no TrueType font under /usr/share/fonts; install one with `apt-get install fonts-dejavu-core`")
    });
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The site, the collector (`csp-reports serve` into a SQLite file) and the three other
/// origins, all on loopback.
struct World {
    site: String,
    a: String,
    b: String,
    c: String,
    c_ws: String,
    headers: PageHeaders,
    tour: Arc<Tour>,
    collector: Served,
    database: String,
    store: SqliteStore,
    _dir: TempDir,
    servers: Vec<JoinHandle<()>>,
}

impl World {
    async fn start(pages: &[&'static str]) -> Self {
        let (site_listener, site_port) = bind("127.0.0.1").await;
        let (a_listener, a_port) = bind("127.0.0.1").await;
        let (b_listener, b_port) = bind("127.0.0.2").await;
        let (c_listener, c_port) = bind("127.0.0.1").await;
        let site = format!("http://127.0.0.1:{site_port}");
        let a = format!("http://127.0.0.1:{a_port}");
        let b = format!("http://127.0.0.2:{b_port}");
        let c = format!("http://localhost:{c_port}");
        let c_ws = format!("ws://localhost:{c_port}");

        let dir = TempDir::new("policy-loop-store");
        let file = dir.0.join("reports.db");
        let database = format!("sqlite://{}", file.display());
        let collector = Served::start(&["--database-url", &database, "--public-metrics"]);
        let store = SqliteStore::builder(&file)
            .build()
            .expect("the collector's file");

        let headers = PageHeaders::default();
        let tour = Arc::new(Tour {
            pages: pages.to_vec(),
            ..Tour::default()
        });
        let state = SiteState {
            headers: headers.clone(),
            tour: tour.clone(),
            a: a.clone(),
            b: b.clone(),
            c: c.clone(),
            c_ws: c_ws.clone(),
        };
        let fonts_css = format!(
            "@font-face {{ font-family: ProbeFont; src: url(\"{b}/font.ttf\") format(\"truetype\"); }}\n\
             body {{ font-family: ProbeFont, sans-serif; }}\n"
        );
        let site_app = Router::new()
            .route("/page/{name}", get(page))
            .route("/next", get(next))
            .route(
                "/check.js",
                get(|| async { typed("text/javascript", CHECK_JS) }),
            )
            .route("/self.svg", get(|| async { typed("image/svg+xml", SVG) }))
            .route(
                "/fonts.css",
                get(move || {
                    let css = fonts_css.clone();
                    async move { typed("text/css", css) }
                }),
            )
            .route(
                "/favicon.ico",
                get(|| async { typed("image/svg+xml", SVG) }),
            )
            .with_state(state);
        let font = Arc::new(system_font());
        let servers = vec![
            serve(site_listener, site_app),
            serve(a_listener, origin_a()),
            serve(b_listener, origin_b(font)),
            serve(c_listener, origin_c()),
        ];
        Self {
            site,
            a,
            b,
            c,
            c_ws,
            headers,
            tour,
            collector,
            database,
            store,
            _dir: dir,
            servers,
        }
    }

    fn report_uri(&self) -> String {
        format!("http://{}/csp-report", self.collector.addr)
    }

    /// Serves `enforced` as `Content-Security-Policy` (when given) and `report_only` as
    /// `Content-Security-Policy-Report-Only`.
    fn serve_policies(&self, enforced: Option<&str>, report_only: &str) {
        let value = |v: &str| HeaderValue::from_str(v).expect("a policy is a valid header value");
        let mut headers = vec![(
            header::CONTENT_SECURITY_POLICY_REPORT_ONLY,
            value(report_only),
        )];
        if let Some(enforced) = enforced {
            headers.push((header::CONTENT_SECURITY_POLICY, value(enforced)));
        }
        self.headers.set(headers);
    }

    /// Has `browser` go through every page; returns what each page said, in order, once
    /// every report the collector accepted is in its store.
    async fn tour(
        &self,
        browser: Browser,
        binary: &Path,
        certutil: Option<&Path>,
    ) -> Vec<(String, String)> {
        self.tour.clear();
        let started = Timestamp::now();
        let profile = TempDir::new(&format!("policy-{browser:?}").to_lowercase());
        let first = format!("{}/page/{}", self.site, self.tour.pages[0]);
        let command = browser_command(browser, binary, certutil, &profile.0, None, &first);
        let running = Running::spawn(command);
        let ended = tokio::time::timeout(TOUR_TIMEOUT, self.tour.ended.notified()).await;
        tokio::time::sleep(AFTER).await;
        drop(running);
        self.settle().await;
        let results = self.tour.results();
        assert!(
            ended.is_ok(),
            "{browser:?} did not get through the pages in {TOUR_TIMEOUT:?} (a check script \
             that did not run?); the pages said {results:?}\n{}",
            self.describe(started).await
        );
        results
    }

    /// The collector's counters, from its `/metrics`.
    async fn counter(&self, line_start: &str) -> u64 {
        let metrics =
            http_client::send(self.collector.addr, http_client::request("GET", "/metrics"))
                .await
                .body;
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(line_start))
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in the metrics:\n{metrics}"))
    }

    /// Waits until the store has every report the collector accepted.
    async fn settle(&self) {
        for _ in 0..600 {
            let accepted = self.counter("csp_reports_accepted_total ").await;
            let stored = self
                .counter("csp_reports_sink_delivered_total{sink=\"sqlite\"} ")
                .await;
            if stored >= accepted {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the collector did not store the reports it accepted");
    }

    /// The reports stored since `since`, oldest first.
    async fn reports_since(&self, since: Timestamp) -> Vec<Report> {
        let range = TimeRange::new(since, Timestamp::MAX);
        let mut reports = self
            .store
            .reports(&ReportQuery::new().range(range).limit(10_000))
            .await
            .expect("read the collector's store")
            .reports;
        reports.reverse();
        reports
    }

    /// The reports stored since `since`, one line each, for failure messages and the log.
    async fn describe(&self, since: Timestamp) -> String {
        describe(&self.reports_since(since).await)
    }

    /// `csp-reports policy` on the collector's store for the reports since `since`, with
    /// `options`: its output, the JSON proposal or the text.
    fn policy(&self, since: Timestamp, to: Timestamp, options: &[&str]) -> String {
        let (since, to) = (since.to_string(), to.to_string());
        let output = std::process::Command::new(BIN)
            .args(["policy", "--database-url", &self.database])
            .args(["--since", &since, "--to", &to])
            .args(options)
            .env_remove("CSP_REPORTS_BASE_POLICY")
            .env_remove("CSP_REPORTS_DOCUMENT_PREFIX")
            .output()
            .expect("run csp-reports policy");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "csp-reports policy {options:?} failed: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// The JSON proposal of `csp-reports policy --format json` with `options`.
    fn proposal(&self, since: Timestamp, to: Timestamp, options: &[&str]) -> Value {
        let options = [&["--format", "json"][..], options].concat();
        let text = self.policy(since, to, &options);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

/// The reports, one line each, for failure messages and the test log.
fn describe(reports: &[Report]) -> String {
    let mut out = format!("{} reports:\n", reports.len());
    for report in reports {
        let _ = writeln!(
            out,
            "  {:?} blocked={:?} disposition={:?} document={:?} line={:?} ua={:?}",
            report.effective_directive.as_deref(),
            report.blocked_uri.as_deref(),
            report.disposition.as_deref(),
            report.document(),
            report.line_number,
            report
                .user_agent
                .as_deref()
                .map(|ua| ua.split(' ').next_back().unwrap_or_default()),
        );
    }
    out
}

/// The header of a JSON proposal.
fn header(proposal: &Value) -> String {
    proposal["header"]
        .as_str()
        .unwrap_or_else(|| panic!("no header in {proposal:#}"))
        .to_owned()
}

/// The programs of both browsers, or `None` when they are missing and the tests may skip.
fn programs() -> Option<Vec<(Browser, PathBuf, Option<PathBuf>)>> {
    BROWSERS
        .iter()
        .map(|&b| browser::programs_or_skip(b).map(|(binary, certutil)| (b, binary, certutil)))
        .collect()
}

/// Each directive of a header with its sources, order aside.
fn directives(header: &str) -> BTreeMap<String, BTreeSet<String>> {
    let policy =
        Policy::parse(header).unwrap_or_else(|e| panic!("{header:?} is not a valid policy: {e}"));
    policy
        .directives()
        .iter()
        .map(|d| (d.name().to_owned(), d.values().iter().cloned().collect()))
        .collect()
}

fn set(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proposed_policy_loads_everything_and_reports_nothing() {
    let Some(browsers) = programs() else {
        return;
    };
    let _one_at_a_time = browser::one_at_a_time().await;
    let world = World::start(LOOP_PAGES).await;
    let ok: Vec<(String, String)> = LOOP_OK
        .iter()
        .map(|(p, r)| ((*p).to_owned(), (*r).to_owned()))
        .collect();

    // 1. Report-only, nothing allowed: every resource loads and is reported.
    let first = Timestamp::now();
    let start = format!("default-src 'none'; report-uri {}", world.report_uri());
    world.serve_policies(None, &start);
    for (browser, binary, certutil) in &browsers {
        let results = world.tour(*browser, binary, certutil.as_deref()).await;
        assert_eq!(results, ok, "{} under report-only", version(binary));
    }
    let reports = world.reports_since(first).await;
    assert!(
        reports.iter().all(Report::is_valid),
        "{}",
        describe(&reports)
    );
    assert_eq!(
        world.counter("csp_reports_filtered_total ").await,
        0,
        "the collector's filter dropped some of them\n{}",
        describe(&reports)
    );
    for (browser, _, _) in &browsers {
        let product = match browser {
            Browser::Chromium => "Chrome/",
            Browser::Firefox => "Firefox/",
        };
        assert!(
            reports.iter().any(|r| r
                .user_agent
                .as_deref()
                .is_some_and(|ua| ua.contains(product))),
            "{browser:?} sent no report\n{}",
            describe(&reports)
        );
    }

    // 2. `csp-reports policy` proposes, from the stored reports alone.
    let first_end = Timestamp::now();
    let proposal = world.proposal(first, first_end, &[]);
    let text = world.policy(first, first_end, &["--format", "text"]);
    println!("{}\n{text}", describe(&reports));
    let proposed = header(&proposal);
    let expected: BTreeMap<String, BTreeSet<String>> = [
        ("default-src", set(&["'none'"])),
        ("script-src", set(&["'self'", &world.a])),
        ("style-src", set(&["'self'", &world.a])),
        ("img-src", set(&["'self'", "data:", &world.b])),
        ("font-src", set(&[&world.b])),
        ("connect-src", set(&[&world.c, &world.c_ws])),
        ("frame-src", set(&[&world.b])),
        ("report-uri", set(&[&world.report_uri()])),
    ]
    .into_iter()
    .map(|(name, values)| (name.to_owned(), values))
    .collect();
    assert_eq!(directives(&proposed), expected, "{text}");
    assert_eq!(proposal["needs_nonce"], serde_json::json!([]), "{text}");
    assert_eq!(proposal["current"]["header"], start, "{text}");
    for change in proposal["changes"].as_array().expect("changes") {
        for added in change["added"].as_array().expect("added sources") {
            assert!(
                added["reports"].as_u64() >= Some(2),
                "both browsers load {}: {text}",
                added["source"]
            );
        }
    }
    assert!(text.contains(&proposed), "{text}");

    // 3. The proposal enforced, and report-only again to catch what it would still block.
    let second = Timestamp::now();
    world.serve_policies(Some(&proposed), &proposed);
    for (browser, binary, certutil) in &browsers {
        let results = world.tour(*browser, binary, certutil.as_deref()).await;
        assert_eq!(results, ok, "{} under {proposed}", version(binary));
    }
    // 4. Zero reports.
    let after = world.reports_since(second).await;
    assert!(after.is_empty(), "{}\nunder {proposed}", describe(&after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_code_needs_a_nonce_unless_unsafe_inline_is_asked_for() {
    let Some(browsers) = programs() else {
        return;
    };
    let _one_at_a_time = browser::one_at_a_time().await;
    let world = World::start(&["inline"]).await;
    let page = format!("{}/page/inline", world.site);
    let said = |results: Vec<(String, String)>| {
        assert_eq!(results.len(), 1, "{results:?}");
        results[0].1.clone()
    };

    // Report-only: the inline script and the eval run, and are reported.
    let first = Timestamp::now();
    world.serve_policies(
        None,
        &format!("default-src 'none'; report-uri {}", world.report_uri()),
    );
    for (browser, binary, certutil) in &browsers {
        let results = world.tour(*browser, binary, certutil.as_deref()).await;
        assert_eq!(said(results), "eval=ok inline=ok", "{}", version(binary));
    }
    let first_end = Timestamp::now();

    // By default: listed as needing a nonce or a hash, with the page; the policy is not
    // weakened.
    let strict = world.proposal(first, first_end, &[]);
    let text = world.policy(first, first_end, &[]);
    println!("{}\n{text}", world.describe(first).await);
    let strict_header = header(&strict);
    assert!(!strict_header.contains("unsafe"), "{text}");
    assert_eq!(
        directives(&strict_header)["script-src"],
        set(&["'self'"]),
        "{text}"
    );
    let needs = strict["needs_nonce"].as_array().expect("needs_nonce");
    let listed: BTreeSet<(&str, &str)> = needs
        .iter()
        .map(|n| {
            (
                n["directive"].as_str().unwrap_or_default(),
                n["code"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        BTreeSet::from([("script-src", "eval"), ("script-src-elem", "inline")]),
        "{text}"
    );
    for item in needs {
        assert_eq!(item["allowed_unsafely"], false, "{text}");
        assert_eq!(item["pages"], serde_json::json!([page]), "{text}");
    }
    let inline = needs
        .iter()
        .find(|n| n["code"] == "inline")
        .expect("listed");
    assert!(
        inline["line"].as_u64().is_some(),
        "the inline script's line is reported: {text}"
    );
    assert!(text.contains("Needs a nonce or a hash"), "{text}");

    // Enforced, that proposal blocks both, and the browsers say so.
    let second = Timestamp::now();
    world.serve_policies(Some(&strict_header), &strict_header);
    for (browser, binary, certutil) in &browsers {
        let results = world.tour(*browser, binary, certutil.as_deref()).await;
        assert_eq!(
            said(results),
            "eval=FAILED inline=FAILED",
            "{}",
            version(binary)
        );
    }
    let blocked: BTreeSet<String> = world
        .reports_since(second)
        .await
        .iter()
        .filter_map(|r| r.blocked_uri.as_deref().map(str::to_owned))
        .collect();
    assert_eq!(blocked, set(&["eval", "inline"]));

    // With --allow-unsafe-inline: the inline script runs, eval is still blocked.
    let inline_only = header(&world.proposal(first, first_end, &["--allow-unsafe-inline"]));
    println!("{inline_only}");
    assert!(inline_only.contains("'unsafe-inline'"), "{inline_only}");
    assert!(!inline_only.contains("'unsafe-eval'"), "{inline_only}");
    let third = Timestamp::now();
    world.serve_policies(Some(&inline_only), &inline_only);
    for (browser, binary, certutil) in &browsers {
        let results = world.tour(*browser, binary, certutil.as_deref()).await;
        assert_eq!(
            said(results),
            "eval=FAILED inline=ok",
            "{}",
            version(binary)
        );
    }
    let reports_now = world.reports_since(third).await;
    assert!(
        reports_now
            .iter()
            .all(|r| r.blocked_uri.as_deref() == Some("eval")),
        "{}",
        describe(&reports_now)
    );

    // With both asked for: the page runs whole, and nothing is reported.
    let both = header(&world.proposal(
        first,
        first_end,
        &["--allow-unsafe-inline", "--allow-unsafe-eval"],
    ));
    let fourth = Timestamp::now();
    world.serve_policies(Some(&both), &both);
    for (browser, binary, certutil) in &browsers {
        let results = world.tour(*browser, binary, certutil.as_deref()).await;
        assert_eq!(
            said(results),
            "eval=ok inline=ok",
            "{} under {both}",
            version(binary)
        );
    }
    let after = world.reports_since(fourth).await;
    assert!(after.is_empty(), "{}\nunder {both}", describe(&after));
}
