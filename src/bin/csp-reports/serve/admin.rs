//! `--admin-listen`: the dashboard on a listener of its own, never on the public one, behind
//! a password from `CSP_REPORTS_ADMIN_PASSWORD` or `--admin-password-file`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tower_csp_reports::CspReportLayer;
use tower_csp_reports::dashboard::Dashboard;
use tower_csp_reports::store::ReportStore;
use tower_layer::Layer;
use tower_service::Service;

use super::args::Args;
use super::listener::{http_builder, listen};
use crate::Failure;

/// The environment variable that holds the dashboard's password.
const PASSWORD_ENV: &str = "CSP_REPORTS_ADMIN_PASSWORD";

/// Where the dashboard listens and its password, checked before anything starts.
#[derive(Debug)]
pub(crate) struct Admin {
    address: SocketAddr,
    password: String,
}

impl Admin {
    /// The dashboard's settings; `None` without `--admin-listen`. A missing or empty
    /// password, or `--no-store`, is a usage error (exit 2).
    pub(crate) fn from_args(args: &Args) -> Result<Option<Self>, Failure> {
        let Some(address) = args.admin_listen else {
            return Ok(None);
        };
        if address == args.listen && address.port() != 0 {
            return Err(Failure::usage(
                "--admin-listen must differ from --listen: the dashboard never shares the public listener",
            ));
        }
        if args.no_store {
            return Err(Failure::usage(
                "--admin-listen shows the store: it cannot go with --no-store",
            ));
        }
        let password = match &args.admin_password_file {
            Some(file) => {
                let text = std::fs::read_to_string(file).map_err(|e| {
                    Failure::usage(format!(
                        "cannot read --admin-password-file {}: {e}",
                        file.display()
                    ))
                })?;
                text.lines().next().unwrap_or_default().to_owned()
            }
            None => std::env::var(PASSWORD_ENV).unwrap_or_default(),
        };
        if password.is_empty() {
            return Err(Failure::usage(format!(
                "--admin-listen needs a password: set {PASSWORD_ENV} or give --admin-password-file FILE (there is no default password)"
            )));
        }
        Ok(Some(Self { address, password }))
    }

    /// Binds the listener and serves the dashboard in the background, with the collector's
    /// layer in front so that the dashboard's own CSP reports reach the store.
    pub(crate) fn start(
        self,
        args: &Args,
        store: Arc<dyn ReportStore>,
        layer: &CspReportLayer,
    ) -> Result<(), Failure> {
        let mut dashboard = Dashboard::builder(store)
            .password(self.password)
            .collector(layer.handle());
        if let Some(path) = args.paths.first() {
            dashboard = dashboard.report_uri(path);
        }
        let service = layer.layer(dashboard.build()?.router());
        let listener = listen(self.address).map_err(|e| {
            Failure::runtime(format!(
                "cannot listen on {} (--admin-listen): {e}",
                self.address
            ))
        })?;
        let address = listener
            .local_addr()
            .map_err(|e| Failure::runtime(e.to_string()))?;
        if !address.ip().is_loopback() {
            tracing::warn!(target: "csp_reports", %address, "the dashboard listens beyond loopback over plain HTTP: put it behind a TLS proxy");
        }
        tracing::info!(target: "csp_reports", %address, "dashboard on http://{address}");
        let builder = Arc::new(http_builder(&args.connections));
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::debug!(target: "csp_reports", %error, "dashboard accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (service, builder) = (service.clone(), builder.clone());
                tokio::spawn(async move {
                    // The login's rate limit is per client address.
                    let per_request =
                        hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
                            request.extensions_mut().insert(ConnectInfo(peer));
                            let mut service = service.clone();
                            async move {
                                std::future::poll_fn(|cx| {
                                    Service::<http::Request<Incoming>>::poll_ready(&mut service, cx)
                                })
                                .await?;
                                service.call(request).await
                            }
                        });
                    if let Err(error) = builder
                        .serve_connection(TokioIo::new(stream), per_request)
                        .await
                    {
                        tracing::debug!(target: "csp_reports", %peer, %error, "dashboard connection ended");
                    }
                });
            }
        });
        Ok(())
    }
}
