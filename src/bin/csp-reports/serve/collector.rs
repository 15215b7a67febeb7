//! The collector built from the options: the layer and its sinks.

use tower_csp_reports::privacy::{ClientIpPrivacy, Privacy};
use tower_csp_reports::{Cors, CspReportLayer, CspReportLayerBuilder, ReportSink, SinkOptions};

use super::admin::Admin;
use super::alerts;
use super::args::{Args, ClientIpChoice, MailMode, Overload};
use super::endpoints::METRICS_PATH;
use super::health::Readiness;
use super::listener::run;
use crate::Failure;
use tower_csp_reports::sink::SmtpSink;
use tower_csp_reports::sink::smtp::SmtpMode;

/// Builds the collector from the options and serves.
pub(crate) async fn serve(args: &Args) -> Result<(), Failure> {
    check_endpoint_paths(args)?;
    // Before the layer and its sinks, which register their metrics with it.
    let metrics = crate::metrics::install()?;
    let mut layer = layer(args)?;
    let admin = Admin::from_args(args)?;
    let mut kept = None;
    if let Some(url) = &args.nats.nats_url {
        layer = super::nats::publish(args, url, layer).await?;
    } else if !args.no_store {
        let opened = args.db.open_for_writing(args.no_migrate).await?;
        let store = &opened.store;
        tracing::info!(target: "csp_reports", store = store.name(), "storing reports in {}", opened.description);
        let sink = store.sink();
        let options = sink
            .default_options()
            .required(args.overload == Overload::Reject);
        layer = layer.sink_with(sink, options);
        kept = Some(opened.store);
    }
    let store = kept;
    let (with_webhook, mut wanted) = args.alerts.add_webhook(layer, store.as_ref())?;
    layer = with_webhook;
    if args.mail.configured() {
        // With a store, the store decides what is new and what a window held, so that
        // several collectors on one database mail each once.
        let mode = match (args.smtp_mode, store.is_some()) {
            (MailMode::Digest, true) => SmtpMode::store_digests(),
            (MailMode::NewOnly, true) => SmtpMode::store_violations(),
            (MailMode::Digest, false) => SmtpMode::digest(args.smtp_window),
            (MailMode::PerReport, _) => SmtpMode::PerReport,
            (MailMode::NewOnly, false) => SmtpMode::new_only(10_000),
        };
        wanted.violations |= mode == SmtpMode::store_violations();
        wanted.digests |= mode == SmtpMode::store_digests();
        let mut builder = SmtpSink::builder(args.mail.smtp_url.as_deref().unwrap_or_default())
            .from(&args.mail.smtp_from)
            .mode(mode)
            .max_per_hour(args.smtp_max_per_hour);
        for to in &args.mail.smtp_to {
            builder = builder.to(to);
        }
        let sink = builder.build()?;
        layer = layer.sink(sink);
        tracing::info!(target: "csp_reports", to = ?args.mail.smtp_to, mode = ?args.smtp_mode, "mailing reports");
    } else if args.mail.smtp_url.is_some() {
        return Err(Failure::usage("--smtp-url needs at least one --smtp-to"));
    }
    let feed = args.alerts.feed(store.as_ref(), wanted, args.smtp_window)?;
    let layer = layer.build()?;
    match (admin, &store) {
        (Some(admin), Some(store)) => admin.start(args, std::sync::Arc::clone(store), &layer)?,
        (Some(_), None) => {
            return Err(Failure::usage(
                "--admin-listen needs a store to show (not --no-store or --nats-url)",
            ));
        }
        (None, _) => {}
    }
    let alerts = alerts::start(feed, layer.handle());
    let readiness = std::sync::Arc::new(Readiness::new(store));
    run(args, layer, readiness, metrics, alerts).await
}

/// Health paths that a report path, `/metrics` or each other would hide.
fn check_endpoint_paths(args: &Args) -> Result<(), Failure> {
    let endpoints = &args.endpoints;
    let named = [
        ("--healthz-path", &endpoints.healthz_path),
        ("--readyz-path", &endpoints.readyz_path),
    ];
    for (flag, path) in named {
        if args.paths.contains(path) || path == METRICS_PATH {
            return Err(Failure::usage(format!(
                "{flag} {path} is already taken (a report path or {METRICS_PATH})"
            )));
        }
    }
    if endpoints.healthz_path == endpoints.readyz_path {
        return Err(Failure::usage(format!(
            "--healthz-path and --readyz-path are both {}",
            endpoints.healthz_path
        )));
    }
    Ok(())
}

/// How the log sink is fed: when it is the only record of the reports (no store), a 2xx
/// must mean the report is logged, so it is required like a store.
fn log_options(args: &Args) -> SinkOptions {
    SinkOptions::default()
        .batch_size(1_000)
        .required(args.no_store && args.overload == Overload::Reject)
}

/// Configures the layer from the options, with the log sink; other sinks are added by the
/// caller, which builds it.
pub(crate) fn layer(args: &Args) -> Result<CspReportLayerBuilder, Failure> {
    let mut layer = CspReportLayer::builder()
        .paths(args.paths.iter().cloned())
        .max_body_size(args.max_body_size)
        .admission_wait(args.admission_wait)
        .privacy(privacy(args));
    match args.report_log.sink() {
        Some(sink) => layer = layer.sink_with(sink, log_options(args)),
        None if args.no_store => {
            return Err(Failure::usage(
                "--report-log off with --no-store would keep no record of the reports",
            ));
        }
        None => {}
    }
    if let Some(max) = args.max_reports_per_request {
        layer = layer.max_reports_per_request(max);
    }
    if !args.cors_origins.is_empty() {
        layer = layer.cors(Cors::origins(&args.cors_origins)?);
    }
    layer = args.intake.apply(layer, args.filter)?;
    if !args.trusted_proxies.is_empty() {
        layer = layer.client_ip(tower_csp_reports::client_ip::forwarded_for(
            &args.trusted_proxies,
        )?);
    }
    Ok(layer)
}

fn privacy(args: &Args) -> Privacy {
    let client_ip = match args.client_ip {
        ClientIpChoice::Off => ClientIpPrivacy::Off,
        ClientIpChoice::Truncated => ClientIpPrivacy::Truncated,
        ClientIpChoice::Full => ClientIpPrivacy::Full,
    };
    Privacy::default()
        .keep_query(args.keep_query)
        .client_ip(client_ip)
}
