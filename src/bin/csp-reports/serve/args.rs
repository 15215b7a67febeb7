//! The options of `csp-reports serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args as ClapArgs, ValueEnum};

use crate::db::DbArgs;
use crate::mail::MailArgs;

/// Which filter runs before the sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FilterChoice {
    /// Drop browser-extension, webview and injected-host noise.
    Default,
    /// Keep every report.
    None,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// The address to listen on.
    #[arg(long, env = "CSP_REPORTS_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,

    /// A path that receives reports (repeat, or separate with commas).
    #[arg(
        long = "path",
        env = "CSP_REPORTS_PATHS",
        value_delimiter = ',',
        default_value = "/csp-report"
    )]
    pub(crate) paths: Vec<String>,

    /// An origin whose pages may send cross-origin Reporting API reports (repeat, or
    /// separate with commas); any origin when none is given.
    #[arg(
        long = "cors-origin",
        env = "CSP_REPORTS_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub(crate) cors_origins: Vec<String>,

    /// The largest report body accepted, in bytes (browsers send batches of 100 KB and more).
    #[arg(long, env = "CSP_REPORTS_MAX_BODY_SIZE", default_value_t = 1024 * 1024)]
    pub(crate) max_body_size: usize,

    /// The most reports kept from one request (default: the body limit / 200 bytes).
    #[arg(long, env = "CSP_REPORTS_MAX_REPORTS_PER_REQUEST")]
    pub(crate) max_reports_per_request: Option<usize>,

    /// When the store cannot keep up: reject answers 503 with Retry-After, so a 204 always
    /// means the reports are queued for the store (for the log, with --no-store); drop
    /// answers 204 and drops (and counts) what the queue cannot hold.
    #[arg(long, env = "CSP_REPORTS_OVERLOAD", value_enum, default_value_t = Overload::Reject)]
    pub(crate) overload: Overload,

    /// How long a request waits for room in the store's queue before its 503.
    #[arg(long, env = "CSP_REPORTS_ADMISSION_WAIT", default_value = "250ms", value_parser = parse_duration)]
    pub(crate) admission_wait: Duration,

    /// The filter that runs before the sinks.
    #[arg(long, env = "CSP_REPORTS_FILTER", value_enum, default_value_t = FilterChoice::Default)]
    pub(crate) filter: FilterChoice,

    /// A reverse proxy (address or CIDR range) whose X-Forwarded-For is trusted (repeat, or
    /// separate with commas).
    #[arg(
        long = "trusted-proxy",
        env = "CSP_REPORTS_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub(crate) trusted_proxies: Vec<String>,

    /// PEM certificate chain: serve HTTPS (browsers send Reporting API reports only to
    /// https endpoints).
    #[arg(long, env = "CSP_REPORTS_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "CSP_REPORTS_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) db: DbArgs,

    /// Store nothing: only log (and mail) the reports. Without it, and without
    /// --database-url, reports go to the SQLite file ./csp-reports.db.
    #[arg(long, env = "CSP_REPORTS_NO_STORE", conflicts_with = "database_url")]
    pub(crate) no_store: bool,

    /// Do not create or upgrade the schema on start.
    #[arg(long, env = "CSP_REPORTS_NO_MIGRATE")]
    pub(crate) no_migrate: bool,

    #[command(flatten)]
    pub(crate) mail: MailArgs,

    /// How reports are mailed (when --smtp-url and --smtp-to are given).
    #[arg(long, env = "CSP_REPORTS_SMTP_MODE", value_enum, default_value_t = MailMode::Digest)]
    pub(crate) smtp_mode: MailMode,

    /// The digest window (digest mode).
    #[arg(long, env = "CSP_REPORTS_SMTP_WINDOW", default_value = "5m", value_parser = parse_duration)]
    pub(crate) smtp_window: Duration,

    /// At most this many emails an hour, whatever the mode.
    #[arg(long, env = "CSP_REPORTS_SMTP_MAX_PER_HOUR", default_value_t = 20)]
    pub(crate) smtp_max_per_hour: u32,

    /// How long to wait, on SIGINT or SIGTERM, for open requests and queued reports.
    #[arg(long, env = "CSP_REPORTS_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub(crate) shutdown_timeout: Duration,

    #[command(flatten)]
    pub(crate) connections: ConnectionArgs,

    #[command(flatten)]
    pub(crate) endpoints: EndpointArgs,
}

/// What one client may hold open, and for how long: the endpoint is public.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Connections")]
pub(crate) struct ConnectionArgs {
    /// How long a client has to send a request's headers, from the moment it connects (TLS
    /// handshake included); past it the connection is closed. HTTP/1 keep-alive connections
    /// get the same time for their next request.
    #[arg(long, env = "CSP_REPORTS_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub(crate) header_read_timeout: Duration,

    /// How long a keep-alive connection (HTTP/1 or HTTP/2) may stay open with no request in
    /// flight before it is closed.
    #[arg(long, env = "CSP_REPORTS_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration)]
    pub(crate) idle_timeout: Duration,

    /// At most this many open connections; past it new ones wait in the listen backlog until
    /// one closes. Lowered, with a warning, to what the open-file limit leaves.
    #[arg(long, env = "CSP_REPORTS_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_connections: u32,

    /// HTTP/2: at most this many requests at once on one connection.
    #[arg(long, env = "CSP_REPORTS_HTTP2_MAX_STREAMS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) http2_max_streams: u32,

    /// HTTP/2: the largest header list a request may send, in bytes (decoded).
    #[arg(long, env = "CSP_REPORTS_HTTP2_MAX_HEADER_LIST_SIZE", default_value_t = 16 * 1024, value_parser = clap::value_parser!(u32).range(1024..))]
    pub(crate) http2_max_header_list_size: u32,

    /// HTTP/2: how often a PING checks that the client is still there.
    #[arg(long, env = "CSP_REPORTS_HTTP2_KEEP_ALIVE_INTERVAL", default_value = "20s", value_parser = parse_positive_duration)]
    pub(crate) http2_keep_alive_interval: Duration,

    /// HTTP/2: how long to wait for the answer to a PING before closing the connection.
    #[arg(long, env = "CSP_REPORTS_HTTP2_KEEP_ALIVE_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub(crate) http2_keep_alive_timeout: Duration,
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let span: jiff::Span = text
        .parse()
        .map_err(|_| format!("cannot read {text:?} as a duration (e.g. 30s, 2m)"))?;
    Duration::try_from(span.abs()).map_err(|e| format!("{text:?}: {e}"))
}

pub(super) fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!("{text:?}: must be longer than zero"));
    }
    Ok(duration)
}

/// What happens when the store's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Overload {
    /// Answer 503 with Retry-After: the browser may send the reports again.
    Reject,
    /// Answer 204 and drop the reports that do not fit (counted as dropped).
    Drop,
}

/// How reports are mailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MailMode {
    /// At most one email per window, grouping reports by violation.
    Digest,
    /// One email per report.
    PerReport,
    /// An email only when a violation not seen before appears.
    NewOnly,
}

/// Health and metrics: where a load balancer and Prometheus ask.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Health and metrics")]
pub(crate) struct EndpointArgs {
    /// Serve Prometheus metrics on /metrics at this address, a listener of their own (health
    /// is answered there too). Without it, or --public-metrics, metrics are not served.
    #[arg(long, env = "CSP_REPORTS_METRICS_LISTEN", value_name = "ADDR")]
    pub(crate) metrics_listen: Option<SocketAddr>,

    /// Also serve /metrics on the public listener (it tells anyone what the collector sees).
    #[arg(long, env = "CSP_REPORTS_PUBLIC_METRICS")]
    pub(crate) public_metrics: bool,

    /// The liveness path: 200 while the process serves.
    #[arg(long, env = "CSP_REPORTS_HEALTHZ_PATH", default_value = "/healthz", value_parser = parse_endpoint_path)]
    pub(crate) healthz_path: String,

    /// The readiness path: 200 while the store answers a ping (asked at most once a second),
    /// 503 while it does not.
    #[arg(long, env = "CSP_REPORTS_READYZ_PATH", default_value = "/readyz", value_parser = parse_endpoint_path)]
    pub(crate) readyz_path: String,
}

fn parse_endpoint_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/') || text.contains(['?', '#']) || text.chars().any(char::is_whitespace)
    {
        return Err(format!(
            "{text:?}: a path starts with / and has no query, fragment or space (e.g. /healthz)"
        ));
    }
    Ok(text.to_owned())
}
