//! A small axum site whose page breaks its Content-Security-Policy, with the report
//! endpoint on the same server; every report the browser sends is logged in this terminal.
//!
//! ```text
//! cargo run --example demo                  # http://127.0.0.1:3000, report-uri
//! cargo run --example demo -- --https       # https://127.0.0.1:3000, report-to
//! cargo run --example demo -- 0.0.0.0:8080  # another address (or DEMO_ADDR=...)
//! ```
//!
//! Open the printed URL in a browser. The page has an inline script, an inline style
//! attribute, an image from another origin, and an allowed script (`/app.js`) that calls
//! `eval`; the policy allows only `'self'` and asks for `'report-sample'`, so each of the four
//! is reported with the first characters of the code. Scripts are enforced by
//! `Content-Security-Policy`; styles and images are only reported by
//! `Content-Security-Policy-Report-Only`, so both dispositions (`enforce`, `report`) show.
//!
//! Plain http uses `report-uri`: browsers send Reporting API (`report-to`) reports only from
//! an https page to an https endpoint. `--https` (or `DEMO_HTTPS=1`) makes a throwaway
//! certificate authority and certificate at start and serves the page over TLS with
//! `report-to` and a `Reporting-Endpoints` header. Chromium accepts the certificate when
//! started with the printed `--ignore-certificate-errors-spki-list=...`, and sends the
//! reports after about a minute unless also started with `--short-reporting-delay`.
//! Firefox needs the printed CA file imported (Settings, Certificates, Authorities).

#[path = "site.rs"]
mod site;

use std::error::Error;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tower_csp_reports::CspReportLayer;
use tower_csp_reports::sink::TracingSink;
use tracing::Level;

use site::{Delivery, Site, Tls};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        // Colours on a terminal only: piped into a file, the lines stay plain text.
        .with_ansi(std::io::stdout().is_terminal())
        .init();

    let mut https = std::env::var("DEMO_HTTPS").is_ok_and(|v| v == "1");
    let mut addr = std::env::var("DEMO_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--https" => https = true,
            "-h" | "--help" => {
                println!(
                    "usage: demo [--https] [ADDR]   (default 127.0.0.1:3000; env DEMO_ADDR, DEMO_HTTPS=1)"
                );
                return Ok(());
            }
            _ => addr = arg,
        }
    }
    let addr: SocketAddr = addr.parse()?;
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;

    let (scheme, delivery, tls) = if https {
        ("https", Delivery::ReportTo, Some(Tls::generate()?))
    } else {
        ("http", Delivery::ReportUri, None)
    };
    let origin = format!("{scheme}://{addr}");
    let site = Site::new(&format!("{origin}/csp-report"), delivery, true)?;

    let layer = CspReportLayer::builder()
        .path("/csp-report")
        .sink(TracingSink::new().level(Level::INFO))
        .build()?;
    let handle = layer.handle();
    let app = site.router().layer(layer);

    println!("Open {origin}/ in a browser; its CSP reports are logged here.");
    if let Some(tls) = &tls {
        let ca_file = std::env::temp_dir().join("tower-csp-reports-demo-ca.pem");
        std::fs::write(&ca_file, &tls.ca_pem)?;
        println!(
            "Chromium: chromium --ignore-certificate-errors-spki-list={} --short-reporting-delay {origin}/",
            tls.spki_sha256
        );
        println!("Firefox: import {} as an authority.", ca_file.display());
    }
    let server = site::serve(listener, tls.map(|tls| tls.acceptor), app);

    tokio::signal::ctrl_c().await?;
    server.abort();
    // Deliver what is still queued, but do not hang on a stuck sink.
    let _ = tokio::time::timeout(Duration::from_secs(5), handle.shutdown()).await;
    println!("{:?}", handle.stats());
    Ok(())
}
