//! The collector built from the options: the layer and its sinks.

use tower_csp_reports::filter::KeepAll;
use tower_csp_reports::sink::TracingSink;
use tower_csp_reports::{Cors, CspReportLayer, CspReportLayerBuilder, ReportSink, SinkOptions};

use super::admin::Admin;
use super::args::{Args, FilterChoice, MailMode, Overload};
use super::listener::run;
use crate::Failure;
use crate::db::failed;
use tower_csp_reports::sink::SmtpSink;
use tower_csp_reports::sink::smtp::SmtpMode;

/// Builds the collector from the options and serves.
pub(crate) async fn serve(args: &Args) -> Result<(), Failure> {
    let mut layer = layer(args)?;
    let admin = Admin::from_args(args)?;
    let mut dashboard_store = None;
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
        dashboard_store = Some(store.clone());
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
    let layer = layer.build()?;
    if let (Some(admin), Some(store)) = (admin, dashboard_store) {
        admin.start(args, store, &layer)?;
    }
    run(args, layer, mail).await
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
        .sink_with(TracingSink::new(), log_options(args));
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
