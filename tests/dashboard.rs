//! The dashboard through the real binary, over real sockets: `serve --admin-listen` refuses
//! to start without a password; unauthenticated requests to every page get the login page
//! (401) and no data; login, CSRF refusals, status changes, notes, exports, logout.
#![cfg(feature = "cli")]

#[path = "support/dashboard.rs"]
mod dashboard;
#[path = "support/http.rs"]
mod http_client;
#[path = "support/served.rs"]
mod served;

use std::process::{Command, Stdio};

use dashboard::{form, get, login, login_form, scratch, start_with_dashboard};
use http::StatusCode;
use http_client::{Answer, legacy, post, send};

const BIN: &str = env!("CARGO_BIN_EXE_csp-reports");

/// The CSRF token in a page's forms.
fn csrf(page: &Answer) -> String {
    let at = page
        .body
        .find("name=\"csrf\" value=\"")
        .expect("a CSRF field")
        + 19;
    page.body[at..at + 64].to_owned()
}

#[test]
fn admin_listen_without_a_password_is_refused() {
    let dir = scratch("nopassword");
    let run = |extra: &[&str]| {
        let mut command = Command::new(BIN);
        for (key, _) in std::env::vars() {
            if key.starts_with("CSP_REPORTS_") {
                command.env_remove(key);
            }
        }
        command
            .current_dir(&dir)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("CSP_REPORTS_ADMIN_PASSWORD"), "{stderr}");
    assert!(stderr.contains("--admin-password-file"), "{stderr}");
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let out = run(&["--admin-password-file", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["--admin-password-file", "/nonexistent/password"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/password"));
    let out = run(&[
        "--no-store",
        "--admin-password-file",
        dir.join("empty").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_behind_the_login_and_triage_works() {
    let dir = scratch("triage");
    let (served, admin) = start_with_dashboard(&dir);
    let secret = "SEEDED-SECRET-DOCUMENT";
    for blocked in ["https://ads.example/x.png", "https://cdn.example/lib.js"] {
        let body = legacy(
            &format!("https://shop.example/{secret}?q=1"),
            "img-src",
            blocked,
        );
        let answer = send(
            served.addr,
            post("/csp-report", "application/csp-report", body),
        )
        .await;
        assert!(answer.status.is_success(), "{answer:?}");
    }
    let invalid = send(
        served.addr,
        post("/csp-report", "application/csp-report", "{not json"),
    )
    .await;
    assert!(invalid.status.is_success() || invalid.status == StatusCode::BAD_REQUEST);

    // The dashboard is not on the public listener.
    let public = send(served.addr, get("/violations", None)).await;
    assert!(
        !public.body.contains(secret) && !public.body.contains("Log in"),
        "{public:?}"
    );

    // Wait until the store has them: the overview (logged in) shows both violations.
    let cookie = login(admin).await;
    let mut tries = 0;
    let list = loop {
        let list = send(admin, get("/violations", Some(&cookie))).await;
        if list.body.matches(secret).count() >= 2 || tries > 100 {
            break list;
        }
        tries += 1;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains("cdn.example") && list.body.contains("ads.example"),
        "{}",
        list.body
    );
    let fingerprint = {
        let at = list.body.find("name=\"fp\" value=\"").unwrap() + 17;
        list.body[at..at + 16].to_owned()
    };

    // Without a session: every page is the login page, with no data.
    let pages = [
        "/".to_owned(),
        "/violations".to_owned(),
        format!("/violations/{fingerprint}"),
        "/reports".to_owned(),
        "/invalid".to_owned(),
        "/export/reports.csv".to_owned(),
        "/export/reports.json".to_owned(),
        "/export/violations.csv".to_owned(),
        "/export/violations.json".to_owned(),
    ];
    for cookie in [None, Some("csp_reports_session=00ff"), Some("other=1")] {
        for path in &pages {
            let answer = send(admin, get(path, cookie)).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path} {cookie:?}");
            assert!(answer.body.contains("Log in"), "{path}");
            assert!(
                !answer.body.contains(secret) && !answer.body.contains("ads.example"),
                "{path}"
            );
        }
    }
    let refused = send(
        admin,
        form(
            "/violations/status",
            None,
            &format!("fp={fingerprint}&status=ignored"),
        ),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    // Wrong passwords: 401; the sixth attempt from one address waits (429).
    for attempt in 0..6 {
        let answer = send(admin, form("/login", None, "password=guess")).await;
        let expected = if attempt < 4 {
            StatusCode::UNAUTHORIZED
        } else {
            answer.status
        };
        assert_eq!(answer.status, expected);
        assert!(answer.headers.get("set-cookie").is_none());
    }
    let limited = send(admin, login_form()).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.contains_key("retry-after"));

    // Logged in: every page answers, with the headers of a locked-down page.
    for path in &pages {
        let answer = send(admin, get(path, Some(&cookie))).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
        let policy = answer.headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("default-src 'none'") && policy.contains("report-uri /csp-report"),
            "{policy}"
        );
        assert_eq!(answer.headers["x-frame-options"], "DENY");
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
    }
    let css = send(admin, get("/style.css", None)).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );

    // CSRF: no token, a wrong one, or a cross-site origin are refused; nothing changes.
    let page = send(admin, get("/violations", Some(&cookie))).await;
    let token = csrf(&page);
    for (body, origin) in [
        (format!("fp={fingerprint}&status=acknowledged"), None),
        (
            format!(
                "fp={fingerprint}&status=acknowledged&csrf={}",
                "0".repeat(64)
            ),
            None,
        ),
        (
            format!("fp={fingerprint}&status=acknowledged&csrf={token}"),
            Some("http://evil.example"),
        ),
    ] {
        let mut request = form("/violations/status", Some(&cookie), &body);
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        let answer = send(admin, request).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{body} {origin:?}");
    }
    let still = send(
        admin,
        get(&format!("/violations/{fingerprint}"), Some(&cookie)),
    )
    .await;
    assert!(
        still.body.contains("class=\"status new\""),
        "{}",
        still.body
    );

    // With the token: acknowledged, with a note, back to the list with its filters.
    let answer = send(
        admin,
        form(
            "/violations/status",
            Some(&cookie),
            &format!("fp={fingerprint}&status=acknowledged&note=looking+%3Cinto%3E&q=range%3D7d&csrf={token}"),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.headers["location"], "/violations?range=7d");
    let detail = send(
        admin,
        get(&format!("/violations/{fingerprint}"), Some(&cookie)),
    )
    .await;
    assert!(
        detail.body.contains("class=\"status acknowledged\""),
        "{}",
        detail.body
    );
    assert!(
        detail.body.contains("looking &lt;into&gt;"),
        "{}",
        detail.body
    );
    let filtered = send(admin, get("/violations?status=acknowledged", Some(&cookie))).await;
    assert_eq!(
        filtered.body.matches("name=\"fp\"").count(),
        1,
        "{}",
        filtered.body
    );
    let note = send(
        admin,
        form(
            &format!("/violations/{fingerprint}/note"),
            Some(&cookie),
            &format!("note=second&csrf={token}"),
        ),
    )
    .await;
    assert_eq!(note.status, StatusCode::SEE_OTHER);
    let detail = send(
        admin,
        get(&format!("/violations/{fingerprint}"), Some(&cookie)),
    )
    .await;
    assert!(
        detail.body.contains(">second</textarea>"),
        "{}",
        detail.body
    );

    // Exports: the CSV has a header and one row per report, the JSON is an array.
    let csv = send(
        admin,
        get("/export/reports.csv?validity=valid", Some(&cookie)),
    )
    .await;
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(
        lines[0].starts_with("id,received_at,format"),
        "{}",
        csv.body
    );
    assert_eq!(lines.len(), 3, "{}", csv.body);
    assert!(lines.iter().skip(1).all(|l| l.contains(secret)));
    let json = send(admin, get("/export/violations.json", Some(&cookie))).await;
    let violations: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(violations.as_array().unwrap().len(), 2);

    // Logout ends the session.
    let out = send(
        admin,
        form("/logout", Some(&cookie), &format!("csrf={token}")),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = send(admin, get("/violations", Some(&cookie))).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    served.stop();
}
