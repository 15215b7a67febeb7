//! The metrics listener (`--metrics-listen`): `/metrics` and health off the public port, for
//! Prometheus and probes on a private address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::endpoints::Endpoints;
use super::stack::nosniff;
use crate::Failure;

/// Scrapers and probes are few: past this many connections, new ones wait in the backlog.
const MAX_CONNECTIONS: usize = 64;
/// A scraper sends its request at once; one that does not is not kept.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `address`, so that a bad one stops the start; serving begins with [`serve`].
pub(super) async fn bind(address: SocketAddr) -> Result<TcpListener, Failure> {
    TcpListener::bind(address).await.map_err(|e| {
        Failure::runtime(format!(
            "cannot listen on {address} (--metrics-listen): {e}"
        ))
    })
}

/// Serves HTTP/1 on `listener` until the task is dropped.
pub(super) async fn serve(listener: TcpListener, endpoints: Endpoints) {
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&open).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::debug!(target: "csp_reports", %error, "metrics listener: accept failed");
                // Out of files, most likely: give the open connections time to close.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(nosniff(endpoints.clone()));
        tokio::spawn(async move {
            let _permit = permit;
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(target: "csp_reports", %error, "metrics connection ended with an error");
            }
        });
    }
}
