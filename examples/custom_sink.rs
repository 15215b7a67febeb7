//! A sink of your own: count reports per directive and print a line per batch.
//!
//! ```sh
//! cargo run --example custom_sink
//! ```
//! It posts a few reports to itself, then prints what the sink saw.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tower_csp_reports::sink::MemorySink;
use tower_csp_reports::{CspReportLayer, ReportBatch, ReportSink, SinkError, SinkOptions};

/// Counts reports per effective directive.
#[derive(Default)]
struct DirectiveCounter {
    counts: Mutex<BTreeMap<String, u64>>,
}

#[async_trait]
impl ReportSink for DirectiveCounter {
    fn name(&self) -> &str {
        "directive-counter"
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        let mut counts = self
            .counts
            .lock()
            .map_err(|_| SinkError::permanent("poisoned"))?;
        for report in batch.iter() {
            let directive = report
                .effective_directive
                .as_deref()
                .unwrap_or(&report.report_type);
            // A copy, not a clone: a field is a slice of its request body and would keep the
            // whole body alive for as long as the map lives.
            *counts.entry(directive.to_owned()).or_default() += 1;
        }
        println!("batch of {} reports; totals now {counts:?}", batch.len());
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let counter = std::sync::Arc::new(DirectiveCounter::default());
    let memory = MemorySink::new();
    let reports = CspReportLayer::builder()
        .sink_with(
            counter.clone(),
            SinkOptions::default().linger(Duration::from_millis(20)),
        )
        .sink(memory.clone())
        .build()?;
    let handle = reports.handle();
    let app = axum::Router::new().layer(reports);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    for (directive, blocked) in [
        ("img-src", "https://ads.example/a.gif"),
        ("script-src-elem", "inline"),
        ("img-src", "data"),
    ] {
        let body = format!(
            r#"{{"csp-report":{{"document-uri":"https://example.com/","effective-directive":"{directive}","blocked-uri":"{blocked}"}}}}"#
        );
        post(addr, &body).await?;
    }
    handle.shutdown().await;
    let counts = counter.counts.lock().map_err(|_| "poisoned")?.clone();
    println!("final: {counts:?}");
    assert_eq!(counts.get("img-src"), Some(&2));
    assert_eq!(memory.total(), 3);
    Ok(())
}

/// A bare HTTP/1.1 POST, to keep the example free of an HTTP client dependency.
async fn post(addr: std::net::SocketAddr, body: &str) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST /csp-report HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/csp-report\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    Ok(())
}
