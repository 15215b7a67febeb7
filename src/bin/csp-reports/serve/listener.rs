//! The accept loop: connections within the cap, each served with its limits, and the
//! graceful shutdown.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, watch};
use tower_csp_reports::CspReportLayer;

use super::args::{Args, ConnectionArgs};
use super::connection::{Connection, Timeouts};
use super::endpoints::{Endpoints, METRICS_PATH, Routes};
use super::health::Readiness;
use super::limits::{AcceptBackoff, connection_cap, is_connection_error};
use super::metrics_listener;
use super::stack::collector;
use super::tls::tls_acceptor;
use crate::Failure;
use metrics_exporter_prometheus::PrometheusHandle;

/// Serves until SIGINT or SIGTERM, then drains open connections and every sink's queue.
pub(crate) async fn run(
    args: &Args,
    layer: CspReportLayer,
    readiness: Arc<Readiness>,
    metrics: PrometheusHandle,
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
    let endpoints = &args.endpoints;
    let routes = |metrics| Routes {
        healthz: endpoints.healthz_path.clone(),
        readyz: endpoints.readyz_path.clone(),
        readiness: Arc::clone(&readiness),
        metrics,
    };
    // Dropped, and so stopped, when `run` returns.
    let _metrics_listener = match endpoints.metrics_listen {
        Some(address) => {
            let listener = metrics_listener::bind(address).await?;
            let address = listener
                .local_addr()
                .map_err(|e| Failure::runtime(e.to_string()))?;
            tracing::info!(target: "csp_reports", metrics_address = %address, "metrics on http://{address}{METRICS_PATH}");
            let served = Endpoints::new(routes(Some(metrics.clone())));
            Some(AbortOnDrop(tokio::spawn(metrics_listener::serve(
                listener, served,
            ))))
        }
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(target: "csp_reports", address = %address, paths = ?args.paths, max_connections = cap.max, "listening on {scheme}://{address}");

    let service = collector(
        &layer,
        Endpoints::new(routes(endpoints.public_metrics.then_some(metrics))),
    );
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

/// A task that stops when its owner goes.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How many connections the kernel holds for the collector before it accepts them: those
/// past the connection cap wait there (the kernel lowers it to `net.core.somaxconn`).
pub(super) const LISTEN_BACKLOG: u32 = 1024;

pub(super) fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
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
pub(super) fn http_builder(limits: &ConnectionArgs) -> Builder<TokioExecutor> {
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

pub(super) async fn shutdown_signal() {
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
