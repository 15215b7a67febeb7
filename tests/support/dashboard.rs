//! `csp-reports serve` with its dashboard, and logging in to it over HTTP, for the
//! integration tests.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;

use crate::http_client::{post, request, send};
use crate::served::Served;

pub const PASSWORD: &str = "correct horse battery staple";

/// A scratch directory of its own for each test.
pub fn scratch(label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("csp-dashboard-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `serve` with the dashboard on a loopback port of its own, its address read from the log.
pub fn start_with_dashboard(dir: &std::path::Path) -> (Served, SocketAddr) {
    let password_file = dir.join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\nignored second line\n")).unwrap();
    let database = format!("sqlite://{}", dir.join("reports.db").display());
    let mut served = Served::start(&[
        "--database-url",
        &database,
        "--filter",
        "none",
        "--admin-listen",
        "127.0.0.1:0",
        "--admin-password-file",
        password_file.to_str().unwrap(),
    ]);
    let line = served
        .wait_for_line("dashboard on")
        .expect("the dashboard's log line");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    let admin = event["address"].as_str().unwrap().parse().unwrap();
    (served, admin)
}

pub fn get(path: &str, cookie: Option<&str>) -> Request<Full<Bytes>> {
    let mut request = request("GET", path);
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
    }
    request
}

pub fn form(path: &str, cookie: Option<&str>, body: &str) -> Request<Full<Bytes>> {
    let mut request = post(path, "application/x-www-form-urlencoded", body.to_owned());
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
    }
    request
}

/// The login form, posted with the right password.
pub fn login_form() -> Request<Full<Bytes>> {
    form(
        "/login",
        None,
        &format!("password={}", PASSWORD.replace(' ', "+")),
    )
}

/// Logs in over HTTP and returns the `name=value` of the session cookie.
pub async fn login(admin: SocketAddr) -> String {
    let answer = send(admin, login_form()).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let cookie = answer.headers["set-cookie"].to_str().unwrap().to_owned();
    cookie.split(';').next().unwrap().to_owned()
}
