//! `serve --nats-url`: the collector publishes every report to the JetStream stream instead
//! of writing a database; `csp-reports consume` writes the stream into the store.

use tower_csp_reports::nats::NatsSink;
use tower_csp_reports::{CspReportLayerBuilder, ReportSink};

use super::args::{Args, Overload};
use crate::Failure;
use crate::nats::nats_failed;

/// Adds the stream's sink to the layer, connected and with the stream set up. It is
/// required like a store (with `--overload reject`): a 2xx means the report is queued for
/// the stream, and publishes are retried until the stream has them.
pub(super) async fn publish(
    args: &Args,
    url: &str,
    layer: CspReportLayerBuilder,
) -> Result<CspReportLayerBuilder, Failure> {
    if args.no_store {
        return Err(Failure::usage(
            "--nats-url publishes every report to the stream; it cannot go with --no-store",
        ));
    }
    if args.db.database_url.is_some() {
        return Err(Failure::usage(
            "--nats-url publishes every report to the stream instead of a database: \
             give --database-url to `csp-reports consume`, not to `serve`",
        ));
    }
    let sink = NatsSink::builder(url)
        .stream(args.nats.stream())
        .connection_name("csp-reports serve")
        .build()?
        .connect()
        .await
        .map_err(nats_failed("cannot set up the NATS stream"))?;
    tracing::info!(
        target: "csp_reports",
        stream = sink.stream().stream_name(),
        subjects = sink.stream().subjects(),
        "publishing reports to NATS stream {}",
        sink.stream().stream_name()
    );
    let options = sink
        .default_options()
        .required(args.overload == Overload::Reject);
    Ok(layer.sink_with(sink, options))
}
