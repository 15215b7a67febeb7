//! `csp-reports health`: asks a running collector whether it is alive, for container health
//! checks in images that have no HTTP client of their own.

use std::time::Duration;

use clap::Args as ClapArgs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Failure;

/// How much of the answer is read: its status line is all that counts.
const MAX_ANSWER: u64 = 64 * 1024;

#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Args {
    /// The health URL (plain http, e.g. on loopback inside a container).
    #[arg(
        long,
        env = "CSP_REPORTS_HEALTH_URL",
        default_value = "http://127.0.0.1:8080/healthz"
    )]
    pub(crate) url: String,

    /// How long to wait for the answer.
    #[arg(long, env = "CSP_REPORTS_HEALTH_TIMEOUT", default_value = "5s", value_parser = crate::serve::parse_positive_duration)]
    pub(crate) timeout: Duration,
}

/// Exits 0 when the URL answers `200`, 1 when it answers anything else or nothing.
pub(crate) async fn run(args: &Args) -> Result<(), Failure> {
    let (authority, path) = split(&args.url)?;
    let answer = tokio::time::timeout(args.timeout, get(authority, path))
        .await
        .map_err(|_| {
            Failure::runtime(format!("{}: no answer within {:?}", args.url, args.timeout))
        })?
        .map_err(|e| Failure::runtime(format!("{}: {e}", args.url)))?;
    let status_line = answer.lines().next().unwrap_or_default();
    match status_line.split_whitespace().nth(1) {
        Some("200") => {
            println!("{}: {status_line}", args.url);
            Ok(())
        }
        _ => Err(Failure::runtime(format!(
            "{}: answered {status_line:?}",
            args.url
        ))),
    }
}

/// `http://host:port/path` as the authority and the path.
fn split(url: &str) -> Result<(&str, &str), Failure> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        Failure::usage(format!(
            "invalid --url {url:?}: a plain http:// URL, e.g. http://127.0.0.1:8080/healthz"
        ))
    })?;
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    if authority.is_empty() || url.contains(char::is_whitespace) {
        return Err(Failure::usage(format!("invalid --url {url:?}: no host")));
    }
    Ok((authority, path))
}

async fn get(authority: &str, path: &str) -> std::io::Result<String> {
    let address = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream = TcpStream::connect(address).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let cases = [
            (
                "http://127.0.0.1:8080/healthz",
                Some(("127.0.0.1:8080", "/healthz")),
            ),
            ("http://localhost", Some(("localhost", "/"))),
            ("http://[::1]:9/h?x=1", Some(("[::1]:9", "/h?x=1"))),
            ("https://127.0.0.1/healthz", None),
            ("http:///healthz", None),
            ("http://a b/", None),
            ("127.0.0.1:8080", None),
        ];
        for (url, expected) in cases {
            assert_eq!(split(url).ok(), expected, "{url}");
        }
    }
}
