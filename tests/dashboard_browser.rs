//! The dashboard in a real headless Chromium, over real sockets, against reports whose
//! fields are attacks: `<script>`, attribute breakouts, `javascript:` URLs, SVG and CSS
//! payloads, a meta refresh. Each would make the browser fetch a canary URL on a loopback
//! server if it ran. After every page has been loaded the canary has heard nothing, the DOM
//! holds none of the payloads as markup, and the dashboard's own CSP reported nothing —
//! while a control page shows the canary and the report path do work.
//!
//! Logging in: the test logs in over HTTP (`POST /login`), then points the browser at a
//! small loopback proxy that adds the session cookie to every request it forwards to the
//! dashboard (a browser started from the command line cannot be given a cookie otherwise).
//! Screenshots of the pages go to `target/dashboard-screenshots/`.
#![cfg(feature = "cli")]

#[path = "support/browser.rs"]
mod browser;
#[path = "support/dashboard.rs"]
mod dashboard;
#[path = "support/http.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use browser::{Browser, Running, TempDir, browser_command, programs_or_skip};
use bytes::Bytes;
use dashboard::{get, login, scratch, start_with_dashboard};
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use http_client::{post, send};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// Every path the canary was asked for.
type Heard = Arc<Mutex<Vec<String>>>;

/// A loopback server that records every request. `/control` is a page that fetches one
/// canary URL and violates its own CSP (reported to `report_to`), to show both paths work.
async fn canary(report_to: SocketAddr) -> (SocketAddr, Heard) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heard: Heard = Arc::default();
    let log = heard.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let path = request.uri().path().to_owned();
                    log.lock().unwrap().push(path.clone());
                    async move {
                        let mut response = Response::new(Full::new(Bytes::new()));
                        if path == "/control" {
                            *response.body_mut() = Full::new(Bytes::from(format!(
                                "<!doctype html><title>control</title>\
                                 <img src=\"/hit/control\"><img src=\"http://localhost:{}/blocked.png\">",
                                addr.port()
                            )));
                            let policy =
                                format!("img-src 'self'; report-uri http://{report_to}/csp-report");
                            response.headers_mut().insert(
                                "content-security-policy",
                                HeaderValue::try_from(policy).unwrap(),
                            );
                            response
                                .headers_mut()
                                .insert("content-type", HeaderValue::from_static("text/html"));
                        }
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, heard)
}

/// A loopback proxy to the dashboard that adds the session cookie to every request.
async fn cookie_proxy(dashboard: SocketAddr, cookie: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cookie = HeaderValue::try_from(cookie).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let cookie = cookie.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                    request.headers_mut().insert("cookie", cookie.clone());
                    async move {
                        let upstream = TcpStream::connect(dashboard).await?;
                        let (mut sender, connection) =
                            hyper::client::conn::http1::handshake(TokioIo::new(upstream))
                                .await
                                .map_err(std::io::Error::other)?;
                        tokio::spawn(connection);
                        sender
                            .send_request(request)
                            .await
                            .map_err(std::io::Error::other)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The hostile reports: each field carries a payload that would fetch `/hit/N` on the
/// canary if the page let it run or load.
fn hostile_reports(canary: SocketAddr) -> Vec<(String, String)> {
    let c = format!("http://{canary}");
    let report = |document: String, directive: String, blocked: String, extra: String| {
        format!(
            r#"{{"csp-report":{{"document-uri":{},"violated-directive":{},"effective-directive":{},"blocked-uri":{},"original-policy":{},"disposition":"enforce"{extra}}}}}"#,
            serde_json::to_string(&document).unwrap(),
            serde_json::to_string(&directive).unwrap(),
            serde_json::to_string(&directive).unwrap(),
            serde_json::to_string(&blocked).unwrap(),
            serde_json::to_string(&format!(
                "default-src 'self'; {directive} 'none'; style-src</pre><style>@import url({c}/hit/policy-css);</style><link rel=stylesheet href={c}/hit/policy-link>"
            ))
            .unwrap(),
        )
    };
    let ua = |n: &str| {
        format!("<img src={c}/hit/ua-{n}> \"><script src={c}/hit/ua-script-{n}></script>")
    };
    vec![
        (report(
            format!("https://shop.example/\"><script src=\"{c}/hit/document-script\"></script>"),
            "script-src-elem".into(),
            format!("javascript:fetch('{c}/hit/javascript-fetch')"),
            String::new(),
        ), ua("1")),
        (report(
            "https://shop.example/cart".into(),
            format!("img-src'><img src={c}/hit/directive-img>"),
            format!("https://cdn.example/\"><img src={c}/hit/blocked-breakout>"),
            format!(r#","script-sample":{}"#, serde_json::to_string(&format!(
                "</pre><svg onload=\"fetch('{c}/hit/svg-onload')\"><image href=\"{c}/hit/svg-image\"/></svg>"
            )).unwrap()),
        ), ua("2")),
        (report(
            format!("https://shop.example/<meta http-equiv=refresh content=\"0;url={c}/hit/meta-refresh\">"),
            "style-src-attr".into(),
            "inline".into(),
            format!(r#","source-file":{}"#, serde_json::to_string(&format!(
                "\" style=\"background:url({c}/hit/style-attr)\" x=\""
            )).unwrap()),
        ), ua("3")),
        (report(
            "https://shop.example/".into(),
            "frame-src".into(),
            format!("JaVaScRiPt:location='{c}/hit/javascript-location'"),
            String::new(),
        ), ua("4")),
    ]
}

/// Ordinary reports, so the charts and lists have something to show.
fn ordinary_reports() -> Vec<String> {
    let mut bodies = Vec::new();
    for (i, (directive, blocked)) in [
        ("img-src", "https://ads.example/pixel.gif"),
        ("script-src-elem", "https://cdn.example/lib.js"),
        ("style-src-elem", "https://fonts.example/css"),
        ("connect-src", "https://api.example/track"),
    ]
    .into_iter()
    .enumerate()
    {
        for n in 0..=(3 * i) {
            bodies.push(http_client::legacy(
                &format!("https://shop.example/page?session={n}"),
                directive,
                blocked,
            ));
        }
    }
    bodies
}

/// Loads `url` and returns its DOM (Chromium's `--dump-dom`).
async fn dump_dom(binary: &Path, url: &str) -> String {
    let profile = TempDir::new("dashboard-dom");
    let out = profile.0.join("dom.html");
    let mut command = browser_command(Browser::Chromium, binary, None, &profile.0, None, url);
    command
        .arg("--dump-dom")
        .stdout(Stdio::from(std::fs::File::create(&out).unwrap()));
    let _running = Running::spawn(command);
    wait_for_file(&out, "</html>").await
}

/// Saves a screenshot of `url` as `path`.
async fn screenshot(binary: &Path, url: &str, path: &Path) {
    let profile = TempDir::new("dashboard-shot");
    let mut command = browser_command(Browser::Chromium, binary, None, &profile.0, None, url);
    command
        .arg(format!("--screenshot={}", path.display()))
        .arg("--window-size=1280,1000")
        .arg("--hide-scrollbars")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _ = std::fs::remove_file(path);
    let _running = Running::spawn(command);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if size > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == size {
                return;
            }
        }
        assert!(Instant::now() < deadline, "no screenshot of {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_file(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the browser wrote no DOM to {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tags of a serialized DOM, each without its `<` and `>` (text nodes serialize `<` and
/// `>` as entities, so every `<` starts a tag).
fn tags(dom: &str) -> Vec<String> {
    dom.split('<')
        .skip(1)
        .map(|rest| rest[..rest.find('>').unwrap_or(rest.len())].to_owned())
        .collect()
}

/// Whether a tag is one the dashboard writes itself and can do nothing: no script, frame,
/// image, SVG, style or refresh; no event handler or inline style; no link to a script
/// scheme; a stylesheet only from the dashboard.
fn inert(tag: &str) -> bool {
    let lower = tag.to_ascii_lowercase();
    let name = lower
        .trim_start_matches('/')
        .split([' ', '\n', '\t', '/'])
        .next()
        .unwrap_or_default();
    let forbidden = [
        "script", "img", "image", "style", "iframe", "frame", "object", "embed", "base", "video",
        "audio", "source",
    ];
    if forbidden.contains(&name) {
        return false;
    }
    if name == "meta" && lower.contains("http-equiv") {
        return false;
    }
    if name == "link" && !lower.contains("href=\"/style.css\"") {
        return false;
    }
    let attributes: Vec<&str> = lower
        .split_whitespace()
        .skip(1)
        .filter_map(|a| a.split('=').next())
        .collect();
    !attributes
        .iter()
        .any(|a| a.starts_with("on") || *a == "style" || *a == "srcdoc")
        && !lower.contains("href=\"javascript:")
        && !lower.contains("href=\"data:")
        && !lower.contains("action=\"javascript:")
}

/// The reports stored for documents under `prefix`, read through the dashboard's export.
async fn reports_from(proxy: SocketAddr, prefix: &str) -> usize {
    let path = format!(
        "/export/reports.json?range=24h&document={}",
        urlencode(prefix)
    );
    let answer = send(proxy, get(&path, None)).await;
    let reports: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    reports.as_array().unwrap().len()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_reports_stay_inert_in_chromium() {
    let Some((binary, _)) = programs_or_skip(Browser::Chromium) else {
        return;
    };
    let _turn = browser::one_at_a_time().await;
    let dir = scratch("browser");
    let (served, admin) = start_with_dashboard(&dir);
    let cookie = login(admin).await;
    let proxy = cookie_proxy(admin, cookie).await;
    let (canary, heard) = canary(proxy).await;

    let hostile = hostile_reports(canary);
    for (body, agent) in &hostile {
        let mut request = post("/csp-report", "application/csp-report", body.clone());
        request
            .headers_mut()
            .insert("user-agent", HeaderValue::try_from(agent.as_str()).unwrap());
        let answer = send(served.addr, request).await;
        assert!(answer.status.is_success(), "{answer:?}");
    }
    let invalid = format!("<script src=http://{canary}/hit/invalid-raw></script>");
    send(
        served.addr,
        post("/csp-report", "application/csp-report", invalid),
    )
    .await;
    for body in ordinary_reports() {
        send(
            served.addr,
            post("/csp-report", "application/csp-report", body),
        )
        .await;
    }
    // Until the store has them all.
    let expected = hostile.len() + ordinary_reports().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reports_from(proxy, "https://shop.example/").await < expected {
        assert!(Instant::now() < deadline, "the reports were not stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let list = send(proxy, get("/violations?range=24h", None)).await;
    let fingerprints: Vec<String> = list
        .body
        .match_indices("name=\"fp\" value=\"")
        .map(|(at, m)| list.body[at + m.len()..at + m.len() + 16].to_owned())
        .collect();
    assert_eq!(fingerprints.len(), hostile.len() + 4, "{}", list.body);
    let mut pages: Vec<(String, String)> = vec![
        ("overview".into(), "/".into()),
        ("violations".into(), "/violations".into()),
        (
            "violations-filtered".into(),
            "/violations?text=example&sort=last&range=7d".into(),
        ),
        ("reports".into(), "/reports".into()),
        ("invalid".into(), "/invalid".into()),
        ("login".into(), "/login".into()),
    ];
    for (i, fingerprint) in fingerprints.iter().enumerate() {
        pages.push((
            format!("violation-{i}"),
            format!("/violations/{fingerprint}"),
        ));
        pages.push((
            format!("violation-{i}-reports"),
            format!("/reports?fingerprint={fingerprint}"),
        ));
    }

    let shots = artifacts();
    for (name, path) in &pages {
        let url = format!("http://{proxy}{path}");
        let dom = dump_dom(&binary, &url).await;
        assert!(
            dom.contains("CSP reports"),
            "{name}: not the dashboard: {dom}"
        );
        for tag in tags(&dom) {
            assert!(
                inert(&tag),
                "{name}: a live tag from a report: <{tag}>\n{dom}"
            );
        }
        if name.starts_with("violation-") && !name.ends_with("reports") {
            assert!(dom.contains("Latest reports"), "{name}: {dom}");
        }
        if name == "violations" {
            // The payloads are there, as text.
            assert!(dom.contains("javascript:fetch("), "{dom}");
            assert!(dom.contains("&lt;img src="), "{dom}");
        }
        if matches!(
            name.as_str(),
            "overview" | "violations" | "violation-0" | "reports" | "invalid" | "login"
        ) {
            screenshot(&binary, &url, &shots.join(format!("{name}.png"))).await;
        }
    }

    // The control page, loaded the same way: its canary fetch and its CSP report arrive,
    // so silence from the dashboard's pages means something.
    let control = format!("http://{canary}/control");
    dump_dom(&binary, &control).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while reports_from(proxy, &control).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the control page's CSP report never arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let heard = heard.lock().unwrap().clone();
    assert!(
        heard.iter().any(|p| p == "/hit/control"),
        "the control fetch: {heard:?}"
    );
    let hits: Vec<&String> = heard
        .iter()
        .filter(|p| p.starts_with("/hit/") && *p != "/hit/control")
        .collect();
    assert!(hits.is_empty(), "a payload ran: the canary heard {hits:?}");
    assert_eq!(
        reports_from(proxy, &format!("http://{proxy}")).await,
        0,
        "the dashboard violated its own CSP"
    );
    assert_eq!(reports_from(proxy, &format!("http://{admin}")).await, 0);
    served.stop();
}
