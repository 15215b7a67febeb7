//! `csp-reports serve`: a standalone collector.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use clap::{Args as ClapArgs, ValueEnum};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
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
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let span: jiff::Span = text
        .parse()
        .map_err(|_| format!("cannot read {text:?} as a duration (e.g. 30s, 2m)"))?;
    Duration::try_from(span.abs()).map_err(|e| format!("{text:?}: {e}"))
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
    if let Some(store) = args.db.store().await? {
        if !args.no_migrate {
            store
                .migrate()
                .await
                .map_err(failed("cannot migrate the database"))?;
        }
        tracing::info!(target: "csp_reports", table = store.table_name(), "storing reports in Postgres");
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

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

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
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::runtime(format!("cannot listen on {}: {e}", args.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| Failure::runtime(e.to_string()))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(target: "csp_reports", address = %address, paths = ?args.paths, "listening on {scheme}://{address}");

    let service = layer.layer(Endpoints {
        handle: handle.clone(),
        mail,
    });
    let graceful = GracefulShutdown::new();
    let mut shutdown: BoxFuture<()> = Box::pin(shutdown_signal());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(target: "csp_reports", %error, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = service.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let hyper_service =
                hyper::service::service_fn(move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(peer);
                    let mut service = service.clone();
                    async move {
                        std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
                        service.call(request).await
                    }
                });
            let builder = Builder::new(TokioExecutor::new());
            let result = match tls {
                Some(tls) => {
                    match tokio::time::timeout(Duration::from_secs(10), tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let conn =
                                builder.serve_connection(TokioIo::new(stream), hyper_service);
                            watcher.watch(conn.into_owned()).await
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(target: "csp_reports", %peer, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), hyper_service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(error) = result {
                tracing::debug!(target: "csp_reports", %peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(target: "csp_reports", "shutting down: finishing open requests");
    if tokio::time::timeout(args.shutdown_timeout, graceful.shutdown())
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
