//! `csp-reports serve`: a standalone collector.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args as ClapArgs, ValueEnum};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Notify, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tower_csp_reports::filter::KeepAll;
use tower_csp_reports::sink::TracingSink;
use tower_csp_reports::{Cors, CspReportHandle, CspReportLayer, CspReportLayerBuilder, ReportSink};
use tower_layer::Layer;
use tower_service::Service;

use crate::Failure;
use crate::db::{DbArgs, failed};
use crate::mail::MailArgs;
use crate::metrics;
use tower_csp_reports::sink::SmtpSink;
use tower_csp_reports::sink::smtp::SmtpMode;

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
    listen: SocketAddr,

    /// A path that receives reports (repeat, or separate with commas).
    #[arg(
        long = "path",
        env = "CSP_REPORTS_PATHS",
        value_delimiter = ',',
        default_value = "/csp-report"
    )]
    paths: Vec<String>,

    /// An origin whose pages may send cross-origin Reporting API reports (repeat, or
    /// separate with commas); any origin when none is given.
    #[arg(
        long = "cors-origin",
        env = "CSP_REPORTS_CORS_ORIGINS",
        value_delimiter = ','
    )]
    cors_origins: Vec<String>,

    /// The largest report body accepted, in bytes (browsers send batches of 100 KB and more).
    #[arg(long, env = "CSP_REPORTS_MAX_BODY_SIZE", default_value_t = 1024 * 1024)]
    max_body_size: usize,

    /// The most reports kept from one request (default: the body limit / 200 bytes).
    #[arg(long, env = "CSP_REPORTS_MAX_REPORTS_PER_REQUEST")]
    max_reports_per_request: Option<usize>,

    /// When the store cannot keep up: reject answers 503 with Retry-After, so a 204 always
    /// means the reports are queued for the store; drop answers 204 and drops (and counts)
    /// what the store's queue cannot hold.
    #[arg(long, env = "CSP_REPORTS_OVERLOAD", value_enum, default_value_t = Overload::Reject)]
    overload: Overload,

    /// How long a request waits for room in the store's queue before its 503.
    #[arg(long, env = "CSP_REPORTS_ADMISSION_WAIT", default_value = "250ms", value_parser = parse_duration)]
    admission_wait: Duration,

    /// The filter that runs before the sinks.
    #[arg(long, env = "CSP_REPORTS_FILTER", value_enum, default_value_t = FilterChoice::Default)]
    filter: FilterChoice,

    /// A reverse proxy (address or CIDR range) whose X-Forwarded-For is trusted (repeat, or
    /// separate with commas).
    #[arg(
        long = "trusted-proxy",
        env = "CSP_REPORTS_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,

    /// PEM certificate chain: serve HTTPS (browsers send Reporting API reports only to
    /// https endpoints).
    #[arg(long, env = "CSP_REPORTS_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "CSP_REPORTS_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    #[command(flatten)]
    db: DbArgs,

    /// Store nothing: only log (and mail) the reports. Without it, and without
    /// --database-url, reports go to the SQLite file ./csp-reports.db.
    #[arg(long, env = "CSP_REPORTS_NO_STORE", conflicts_with = "database_url")]
    no_store: bool,

    /// Do not create or upgrade the schema on start.
    #[arg(long, env = "CSP_REPORTS_NO_MIGRATE")]
    no_migrate: bool,

    #[command(flatten)]
    mail: MailArgs,

    /// How reports are mailed (when --smtp-url and --smtp-to are given).
    #[arg(long, env = "CSP_REPORTS_SMTP_MODE", value_enum, default_value_t = MailMode::Digest)]
    smtp_mode: MailMode,

    /// The digest window (digest mode).
    #[arg(long, env = "CSP_REPORTS_SMTP_WINDOW", default_value = "5m", value_parser = parse_duration)]
    smtp_window: Duration,

    /// At most this many emails an hour, whatever the mode.
    #[arg(long, env = "CSP_REPORTS_SMTP_MAX_PER_HOUR", default_value_t = 20)]
    smtp_max_per_hour: u32,

    /// How long to wait, on SIGINT or SIGTERM, for open requests and queued reports.
    #[arg(long, env = "CSP_REPORTS_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    shutdown_timeout: Duration,

    #[command(flatten)]
    connections: ConnectionArgs,
}

/// What one client may hold open, and for how long: the endpoint is public.
#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Connections")]
pub(crate) struct ConnectionArgs {
    /// How long a client has to send a request's headers, from the moment it connects (TLS
    /// handshake included); past it the connection is closed. HTTP/1 keep-alive connections
    /// get the same time for their next request.
    #[arg(long, env = "CSP_REPORTS_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    header_read_timeout: Duration,

    /// How long a keep-alive connection (HTTP/1 or HTTP/2) may stay open with no request in
    /// flight before it is closed.
    #[arg(long, env = "CSP_REPORTS_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration)]
    idle_timeout: Duration,

    /// At most this many open connections; past it new ones wait in the listen backlog until
    /// one closes. Lowered, with a warning, to what the open-file limit leaves.
    #[arg(long, env = "CSP_REPORTS_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,

    /// HTTP/2: at most this many requests at once on one connection.
    #[arg(long, env = "CSP_REPORTS_HTTP2_MAX_STREAMS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    http2_max_streams: u32,

    /// HTTP/2: the largest header list a request may send, in bytes (decoded).
    #[arg(long, env = "CSP_REPORTS_HTTP2_MAX_HEADER_LIST_SIZE", default_value_t = 16 * 1024, value_parser = clap::value_parser!(u32).range(1024..))]
    http2_max_header_list_size: u32,

    /// HTTP/2: how often a PING checks that the client is still there.
    #[arg(long, env = "CSP_REPORTS_HTTP2_KEEP_ALIVE_INTERVAL", default_value = "20s", value_parser = parse_positive_duration)]
    http2_keep_alive_interval: Duration,

    /// HTTP/2: how long to wait for the answer to a PING before closing the connection.
    #[arg(long, env = "CSP_REPORTS_HTTP2_KEEP_ALIVE_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    http2_keep_alive_timeout: Duration,
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let span: jiff::Span = text
        .parse()
        .map_err(|_| format!("cannot read {text:?} as a duration (e.g. 30s, 2m)"))?;
    Duration::try_from(span.abs()).map_err(|e| format!("{text:?}: {e}"))
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
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

/// Builds the collector from the options and serves.
pub(crate) async fn serve(args: &Args) -> Result<(), Failure> {
    let mut layer = layer(args)?;
    if !args.no_store {
        let opened = args.db.open().await?;
        let store = &opened.store;
        if args.no_migrate {
            store
                .ping()
                .await
                .map_err(failed("cannot use the database"))?;
        } else {
            store
                .migrate()
                .await
                .map_err(failed("cannot migrate the database"))?;
        }
        tracing::info!(target: "csp_reports", store = store.name(), "storing reports in {}", opened.description);
        let sink = store.sink();
        let options = sink
            .default_options()
            .required(args.overload == Overload::Reject);
        layer = layer.sink_with(sink, options);
    }
    let mut mail = None;
    if args.mail.configured() {
        let mode = match args.smtp_mode {
            MailMode::Digest => SmtpMode::digest(args.smtp_window),
            MailMode::PerReport => SmtpMode::PerReport,
            MailMode::NewOnly => SmtpMode::new_only(10_000),
        };
        let mut builder = SmtpSink::builder(args.mail.smtp_url.as_deref().unwrap_or_default())
            .from(&args.mail.smtp_from)
            .mode(mode)
            .max_per_hour(args.smtp_max_per_hour);
        for to in &args.mail.smtp_to {
            builder = builder.to(to);
        }
        let sink = builder.build()?;
        layer = layer.sink(sink.clone());
        mail = Some(sink);
        tracing::info!(target: "csp_reports", to = ?args.mail.smtp_to, mode = ?args.smtp_mode, "mailing reports");
    } else if args.mail.smtp_url.is_some() {
        return Err(Failure::usage("--smtp-url needs at least one --smtp-to"));
    }
    run(args, layer.build()?, mail).await
}

/// Configures the layer from the options, with the log sink; other sinks are added by the
/// caller, which builds it.
pub(crate) fn layer(args: &Args) -> Result<CspReportLayerBuilder, Failure> {
    let mut layer = CspReportLayer::builder()
        .paths(args.paths.iter().cloned())
        .max_body_size(args.max_body_size)
        .admission_wait(args.admission_wait)
        .sink(TracingSink::new());
    if let Some(max) = args.max_reports_per_request {
        layer = layer.max_reports_per_request(max);
    }
    if !args.cors_origins.is_empty() {
        layer = layer.cors(Cors::origins(&args.cors_origins)?);
    }
    if args.filter == FilterChoice::None {
        layer = layer.filter(KeepAll);
    }
    if !args.trusted_proxies.is_empty() {
        layer = layer.client_ip(tower_csp_reports::client_ip::forwarded_for(
            &args.trusted_proxies,
        )?);
    }
    Ok(layer)
}

/// Health and metrics, beside the report paths.
#[derive(Clone)]
struct Endpoints {
    handle: CspReportHandle,
    /// The mail sink, whose own counters say what reached the mail server.
    mail: Option<SmtpSink>,
}

impl Service<Request<Incoming>> for Endpoints {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let (status, content_type, body) = match request.uri().path() {
            "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
            "/metrics" => (
                StatusCode::OK,
                "text/plain; version=0.0.4",
                metrics::render(
                    &self.handle.stats(),
                    self.mail.as_ref().map(SmtpSink::stats),
                ),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found\n".to_owned(),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        std::future::ready(Ok(response))
    }
}

fn tls_acceptor(cert: &PathBuf, key: &PathBuf) -> Result<TlsAcceptor, Failure> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            Failure::usage(format!(
                "cannot read the certificate {}: {e}",
                cert.display()
            ))
        })?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        Failure::usage(format!(
            "cannot read the private key {}: {e}",
            key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::usage(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Failure::usage(format!("TLS: the certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The collector's service: the report layer in front of health and metrics.
type Collector = tower_csp_reports::CspReport<Endpoints>;

/// Serves until SIGINT or SIGTERM, then drains open connections and every sink's queue.
pub(crate) async fn run(
    args: &Args,
    layer: CspReportLayer,
    mail: Option<SmtpSink>,
) -> Result<(), Failure> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let handle = layer.handle();
    let listener = listen(args.listen)
        .map_err(|e| Failure::runtime(format!("cannot listen on {}: {e}", args.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| Failure::runtime(e.to_string()))?;
    let limits = &args.connections;
    let cap = connection_cap(limits.max_connections);
    if cap.max < limits.max_connections {
        tracing::warn!(
            target: "csp_reports",
            requested = limits.max_connections,
            max_connections = cap.max,
            open_file_limit = cap.open_file_limit,
            "--max-connections lowered to fit the open-file limit"
        );
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(target: "csp_reports", address = %address, paths = ?args.paths, max_connections = cap.max, "listening on {scheme}://{address}");

    let service = layer.layer(Endpoints {
        handle: handle.clone(),
        mail,
    });
    let builder = Arc::new(http_builder(limits));
    let timeouts = Timeouts {
        header_read: limits.header_read_timeout,
        idle: limits.idle_timeout,
    };
    // `Semaphore::MAX_PERMITS` is below `u32::MAX` on 32-bit targets.
    let permits = (cap.max as usize).min(Semaphore::MAX_PERMITS);
    let open = Arc::new(Semaphore::new(permits));
    let (stop, stopped) = watch::channel(());
    let mut backoff = AcceptBackoff::default();
    let mut shutdown = pin!(shutdown_signal());
    loop {
        // The permit comes before the accept: past the cap, connections wait in the kernel's
        // listen backlog, costing this process no file descriptor.
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff.succeeded();
                    accepted
                }
                Err(error) if is_connection_error(&error) => {
                    tracing::debug!(target: "csp_reports", %error, "a connection was gone before it was accepted");
                    continue;
                }
                Err(error) => {
                    let pause = backoff.failed(Instant::now());
                    if let Some(errors) = pause.log {
                        tracing::warn!(target: "csp_reports", %error, errors, retry_in = ?pause.delay, "accept failed");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(pause.delay) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let connection = Connection {
            peer,
            accepted: Instant::now(),
            service: service.clone(),
            builder: builder.clone(),
            timeouts,
            stopped: stopped.clone(),
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => connection.serve(TokioIo::new(stream)).await,
                Some(tls) => {
                    match tokio::time::timeout(timeouts.header_read, tls.accept(stream)).await {
                        Ok(Ok(stream)) => connection.serve(TokioIo::new(stream)).await,
                        Ok(Err(error)) => {
                            tracing::debug!(target: "csp_reports", %peer, %error, "TLS handshake failed");
                        }
                        Err(_) => {
                            tracing::debug!(target: "csp_reports", %peer, "TLS handshake not done within the header-read timeout");
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    tracing::info!(target: "csp_reports", "shutting down: finishing open requests");
    stop.send_replace(());
    // Every connection holds a permit until it ends: all of them back means all closed.
    let all_closed = open.acquire_many(permits as u32);
    if tokio::time::timeout(args.shutdown_timeout, all_closed)
        .await
        .is_err()
    {
        tracing::warn!(target: "csp_reports", "open connections did not finish in time");
    }
    tracing::info!(target: "csp_reports", "delivering queued reports");
    if tokio::time::timeout(args.shutdown_timeout, handle.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(target: "csp_reports", "some queued reports were not delivered in time");
    }
    let stats = handle.stats();
    tracing::info!(
        target: "csp_reports",
        received = stats.received,
        accepted = stats.accepted,
        filtered = stats.filtered,
        "stopped"
    );
    Ok(())
}

/// How many connections the kernel holds for the collector before it accepts them: those
/// past the connection cap wait there (the kernel lowers it to `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 1024;

fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restart need not wait for the old connections to time out.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// HTTP/1 and HTTP/2 on one port, with hyper's own limits set for a public endpoint.
fn http_builder(limits: &ConnectionArgs) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    // Without a timer hyper's header-read timeout never fires.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams)
        .max_header_list_size(limits.http2_max_header_list_size)
        .keep_alive_interval(limits.http2_keep_alive_interval)
        .keep_alive_timeout(limits.http2_keep_alive_timeout);
    builder
}

/// How long a connection may go without a request.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    /// From the accept to the first request's headers.
    header_read: Duration,
    /// From the end of the last request, with none in flight.
    idle: Duration,
}

/// One accepted connection and what it needs to serve.
struct Connection {
    peer: SocketAddr,
    accepted: Instant,
    service: Collector,
    builder: Arc<Builder<TokioExecutor>>,
    timeouts: Timeouts,
    stopped: watch::Receiver<()>,
}

impl Connection {
    /// Serves requests until the client leaves, the connection sends no request in time or
    /// sits idle, or the server stops.
    ///
    /// hyper's header-read timeout covers an HTTP/1 request once hyper has seen that the
    /// connection is HTTP/1; before that (a client that sends nothing, or part of the HTTP/2
    /// preface) and for HTTP/2, which has no such timeout, the deadlines are kept here.
    async fn serve<I>(mut self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::new(self.accepted));
        let hyper_service = {
            let activity = activity.clone();
            let (peer, service) = (self.peer, self.service);
            hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(peer);
                let mut service = service.clone();
                let busy = Activity::begin(&activity);
                async move {
                    let _busy = busy;
                    std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
                    service.call(request).await
                }
            })
        };
        let conn = self.builder.serve_connection(io, hyper_service);
        let mut conn = pin!(conn);
        // Once closing, the connection has this long to finish; `None`: until the server's
        // own shutdown timeout.
        let mut closing: Option<Option<Instant>> = None;
        loop {
            let deadline = match closing {
                Some(give_up) => give_up,
                None => Some(activity.deadline(self.timeouts)),
            };
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(target: "csp_reports", peer = %self.peer, %error, "connection ended with an error");
                    }
                    return;
                }
                // A request ended: the deadline moves.
                () = activity.ended.notified(), if closing.is_none() => {}
                _ = self.stopped.changed(), if closing.is_none() => {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(None);
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    if closing.is_some() {
                        return;
                    }
                    let now = Instant::now();
                    match activity.idle(now, self.timeouts) {
                        Idle::No => {}
                        Idle::NeverAsked => {
                            tracing::debug!(target: "csp_reports", peer = %self.peer, "no request within the header-read timeout: closed");
                            return;
                        }
                        Idle::Yes => {
                            conn.as_mut().graceful_shutdown();
                            closing = Some(Some(now + self.timeouts.header_read));
                        }
                    }
                }
            }
        }
    }
}

/// Sleeps until `deadline`; forever when there is none (the branch is disabled then).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// What a connection's requests have been doing, as its deadlines need to know.
#[derive(Debug)]
struct Activity {
    state: Mutex<ActivityState>,
    /// Told when a request ends, so that the deadline is computed again.
    ended: Notify,
}

#[derive(Debug, Clone, Copy)]
struct ActivityState {
    in_flight: usize,
    /// Whether any request has begun.
    asked: bool,
    /// The accept, then the end of the last request.
    since: Instant,
}

/// Whether a connection has gone too long without a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Idle {
    No,
    /// No request at all within the header-read timeout.
    NeverAsked,
    /// No request in flight for the idle timeout.
    Yes,
}

impl Activity {
    fn new(accepted: Instant) -> Self {
        Self {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                asked: false,
                since: accepted,
            }),
            ended: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks a request as begun until the guard is dropped (answered, or given up).
    fn begin(this: &Arc<Self>) -> Busy {
        let mut state = this.state();
        state.in_flight += 1;
        state.asked = true;
        Busy(this.clone())
    }

    /// When to look again.
    fn deadline(&self, timeouts: Timeouts) -> Instant {
        let state = *self.state();
        if state.in_flight > 0 {
            Instant::now() + timeouts.idle
        } else if state.asked {
            state.since + timeouts.idle
        } else {
            state.since + timeouts.header_read
        }
    }

    fn idle(&self, now: Instant, timeouts: Timeouts) -> Idle {
        let state = *self.state();
        let quiet = now.saturating_duration_since(state.since);
        if state.in_flight > 0 {
            Idle::No
        } else if !state.asked {
            if quiet >= timeouts.header_read {
                Idle::NeverAsked
            } else {
                Idle::No
            }
        } else if quiet >= timeouts.idle {
            Idle::Yes
        } else {
            Idle::No
        }
    }
}

/// A request in flight on a connection.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        {
            let mut state = self.0.state();
            state.in_flight -= 1;
            state.since = Instant::now();
        }
        self.0.ended.notify_one();
    }
}

/// Files the collector needs besides its connections: standard streams, the runtime's
/// poller, the listener, the database pool, the mail server, the certificate files.
const RESERVED_FILES: u64 = 128;

/// The connection cap in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnectionCap {
    max: u32,
    /// The soft open-file limit, when the platform has one.
    open_file_limit: Option<u64>,
}

/// `--max-connections`, lowered to what the open-file limit leaves once the reserve is set
/// aside; the soft limit is raised first, as far as the hard limit allows.
fn connection_cap(wanted: u32) -> ConnectionCap {
    let open_file_limit = open_file_limit(u64::from(wanted) + RESERVED_FILES);
    ConnectionCap {
        max: cap_within(wanted, open_file_limit),
        open_file_limit,
    }
}

fn cap_within(wanted: u32, open_file_limit: Option<u64>) -> u32 {
    let Some(limit) = open_file_limit else {
        return wanted;
    };
    let room = limit.saturating_sub(RESERVED_FILES.min(limit / 2)).max(1);
    u32::try_from(room).map_or(wanted, |room| wanted.min(room))
}

/// The soft `RLIMIT_NOFILE`, raised towards `wanted` when the hard limit allows.
#[cfg(unix)]
fn open_file_limit(wanted: u64) -> Option<u64> {
    match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(target: "csp_reports", %error, "cannot raise the open-file limit");
            rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
        }
    }
}

#[cfg(not(unix))]
fn open_file_limit(_wanted: u64) -> Option<u64> {
    None
}

/// Errors of `accept` that concern one connection, gone before it was taken: the next
/// one can be accepted at once.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    )
}

/// Pauses after failed accepts (out of file descriptors, of memory for buffers), so that
/// a listener that cannot accept does not spin: 10 ms, doubling up to 1 s, back to the start
/// after an accept succeeds. Logs at most once a second, with the count of failures since.
#[derive(Debug, Default)]
struct AcceptBackoff {
    delay: Option<Duration>,
    failures: u64,
    logged: Option<Instant>,
}

/// What to do after a failed accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AcceptPause {
    delay: Duration,
    /// When it is time to log: the failures since the last line, this one included.
    log: Option<u64>,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);
    const LOG_EVERY: Duration = Duration::from_secs(1);

    fn failed(&mut self, now: Instant) -> AcceptPause {
        let delay = self
            .delay
            .map_or(Self::FIRST, |delay| (delay * 2).min(Self::MAX));
        self.delay = Some(delay);
        self.failures += 1;
        let due = self
            .logged
            .is_none_or(|at| now.saturating_duration_since(at) >= Self::LOG_EVERY);
        let log = due.then(|| {
            self.logged = Some(now);
            std::mem::take(&mut self.failures)
        });
        AcceptPause { delay, log }
    }

    fn succeeded(&mut self) {
        self.delay = None;
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_open_file_limit() {
        let cases: &[(u32, Option<u64>, u32)] = &[
            // (--max-connections, soft open-file limit, cap)
            (10_000, None, 10_000),
            (10_000, Some(1_048_576), 10_000),
            (10_000, Some(10_128), 10_000),
            (10_000, Some(10_000), 9_872),
            (10_000, Some(1_024), 896),
            (10_000, Some(200), 100),
            (10_000, Some(3), 2),
            (10_000, Some(1), 1),
            (10_000, Some(0), 1),
            (50, Some(1_024), 50),
            (u32::MAX, Some(u64::MAX), u32::MAX),
        ];
        for &(wanted, limit, cap) in cases {
            assert_eq!(cap_within(wanted, limit), cap, "{wanted} within {limit:?}");
        }
    }

    #[test]
    fn failed_accepts_back_off_and_log_once_a_second() {
        let mut backoff = AcceptBackoff::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // (time of the failure, pause, failures logged)
        let cases: &[(Duration, Duration, Option<u64>)] = &[
            (ms(0), ms(10), Some(1)),
            (ms(10), ms(20), None),
            (ms(30), ms(40), None),
            (ms(70), ms(80), None),
            (ms(150), ms(160), None),
            (ms(310), ms(320), None),
            (ms(630), ms(640), None),
            (ms(1_270), ms(1_000), Some(7)),
            (ms(2_270), ms(1_000), Some(1)),
            (ms(3_000), ms(1_000), None),
        ];
        for &(at, delay, log) in cases {
            let pause = backoff.failed(t0 + at);
            assert_eq!(pause, AcceptPause { delay, log }, "at {at:?}");
        }
        backoff.succeeded();
        assert_eq!(backoff.failed(t0 + ms(3_300)).delay, ms(10), "starts again");
    }

    #[test]
    fn a_connection_is_idle_only_with_nothing_in_flight() {
        let timeouts = Timeouts {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        };
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let activity = Arc::new(Activity::new(t0));
        assert_eq!(activity.idle(t0 + s(9), timeouts), Idle::No);
        assert_eq!(activity.idle(t0 + s(10), timeouts), Idle::NeverAsked);
        assert_eq!(activity.deadline(timeouts), t0 + s(10));
        let busy = Activity::begin(&activity);
        assert_eq!(
            activity.idle(t0 + s(1_000), timeouts),
            Idle::No,
            "in flight"
        );
        drop(busy);
        let ended = activity.state().since;
        assert_eq!(activity.deadline(timeouts), ended + s(60));
        assert_eq!(activity.idle(ended + s(59), timeouts), Idle::No);
        assert_eq!(activity.idle(ended + s(60), timeouts), Idle::Yes);
    }
}
