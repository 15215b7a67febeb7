//! Mails a few CSP reports through a local SMTP server.
//!
//! Start a server that prints what it receives, for example Python's aiosmtpd:
//!
//! ```text
//! pip install aiosmtpd
//! python3 -m aiosmtpd -n -l 127.0.0.1:2525
//! ```
//!
//! then, in another terminal:
//!
//! ```text
//! cargo run --example smtp --features smtp              # a digest
//! cargo run --example smtp --features smtp -- per-report
//! cargo run --example smtp --features smtp -- new-only
//! SMTP_URL=smtp://user:pass@mail.example.com?tls=required cargo run --example smtp --features smtp
//! ```

use std::time::Duration;

use tower_csp_reports::sink::smtp::{SmtpMode, SmtpSink};
use tower_csp_reports::{Report, ReportBatch, ReportSink};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let url = std::env::var("SMTP_URL").unwrap_or_else(|_| "smtp://127.0.0.1:2525".to_owned());
    let mode = match std::env::args().nth(1).as_deref() {
        Some("per-report") => SmtpMode::PerReport,
        Some("new-only") => SmtpMode::new_only(10_000),
        _ => SmtpMode::digest(Duration::from_secs(2)),
    };

    let sink = SmtpSink::builder(url)
        .from("CSP reports <csp@example.com>")
        .to("security@example.com")
        .subject_prefix("[example.com CSP]")
        .mode(mode)
        .max_per_hour(10)
        .build()?;

    let mut inline = Report::csp(
        "https://example.com/pay?step=2",
        "script-src-elem",
        "inline",
    );
    inline.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64; rv:149.0) Firefox/149.0".into());
    let pixel = Report::csp(
        "https://example.com/",
        "img-src",
        "https://tracker.example/p.gif",
    );
    let batch = ReportBatch::from(vec![inline.clone(), pixel, inline]);

    // Called directly, the sink mails the batch at once: per report, one digest, or an alert
    // on the violations it has not mailed before. Behind a layer, the dispatcher gathers a
    // digest's window into one batch and retries what the server could not take.
    sink.send(&batch).await?;
    let stats = sink.stats();
    println!(
        "{} emails about {} reports in {mode:?} mode",
        stats.emails_sent, stats.reports_mailed
    );
    Ok(())
}
