//! `csp-reports consume`: reads the JetStream stream that `serve --nats-url` publishes to,
//! through a durable pull consumer, and writes the reports with the store's sink (the
//! violation tables included). A batch is acknowledged only after the store committed it;
//! every process started with the same `--durable` shares the work, and a report delivered
//! twice (a process killed mid-batch) is stored once, by its id.

use std::time::Duration;

use clap::Args as ClapArgs;
use tower_csp_reports::nats::NatsConsumer;

use crate::Failure;
use crate::db::DbArgs;
use crate::nats::{NatsArgs, nats_failed};
use crate::serve::{parse_positive_duration, shutdown_signal};

/// The longest a store may take over one batch before it is handed back to the stream.
const MAX_STORE_TIME: Duration = Duration::from_secs(20);

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) nats: NatsArgs,

    #[command(flatten)]
    pub(crate) db: DbArgs,

    /// Do not create or upgrade the schema on start.
    #[arg(long, env = "CSP_REPORTS_NO_MIGRATE")]
    pub(crate) no_migrate: bool,

    /// The durable consumer: every process with the same name shares the work, each report
    /// going to one of them.
    #[arg(
        long,
        env = "CSP_REPORTS_NATS_DURABLE",
        default_value = "csp-reports-store"
    )]
    pub(crate) durable: String,

    /// The most reports written to the store in one transaction.
    #[arg(long, env = "CSP_REPORTS_NATS_BATCH", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) batch: u32,

    /// How many batches this process works on at once (each fetched, written and
    /// acknowledged in turn).
    #[arg(long, env = "CSP_REPORTS_NATS_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) concurrency: u16,

    /// How long a fetch waits for a batch to fill before the store gets what came.
    #[arg(long, env = "CSP_REPORTS_NATS_MAX_WAIT", default_value = "1s", value_parser = parse_positive_duration)]
    pub(crate) max_wait: Duration,

    /// How long the server waits for a batch's acknowledgement before it delivers the batch
    /// again, here or to another process (set when the durable consumer is created).
    #[arg(long, env = "CSP_REPORTS_NATS_ACK_WAIT", default_value = "30s", value_parser = parse_positive_duration)]
    pub(crate) ack_wait: Duration,
}

/// Reads the stream into the store until SIGINT or SIGTERM, then finishes the batches in
/// hand and stops.
pub(crate) async fn run(args: &Args) -> Result<(), Failure> {
    let Some(url) = &args.nats.nats_url else {
        return Err(Failure::usage(
            "consume needs --nats-url (or CSP_REPORTS_NATS_URL): the servers to read from",
        ));
    };
    let opened = args.db.open_for_writing(args.no_migrate).await?;
    let store = &opened.store;
    let batch = args.batch as usize;
    let concurrency = usize::from(args.concurrency);
    let config = NatsConsumer::builder(url, store.sink())
        .stream(args.nats.stream())
        .durable(&args.durable)
        .batch_size(batch)
        .max_wait(args.max_wait)
        .ack_wait(args.ack_wait)
        // The store must finish a batch well before the server would deliver it again.
        .timeout(MAX_STORE_TIME.min(args.ack_wait * 2 / 3))
        .max_ack_pending((batch * concurrency * 8).clamp(10_000, 10_000_000))
        .connection_name("csp-reports consume")
        .build()?;
    let consumer = config
        .connect()
        .await
        .map_err(nats_failed("cannot set up the NATS consumer"))?;
    tracing::info!(
        target: "csp_reports",
        stream = config.stream().stream_name(),
        durable = config.durable(),
        store = store.name(),
        "consuming stream {} into {}",
        config.stream().stream_name(),
        opened.description
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let consumer = consumer.clone();
        let mut stopped = stopped.clone();
        workers.spawn(async move {
            consumer
                .run(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
        });
    }
    shutdown_signal().await;
    tracing::info!(target: "csp_reports", "shutting down: finishing the batches in hand");
    stop.send_replace(true);
    while workers.join_next().await.is_some() {}
    let stats = consumer.stats();
    tracing::info!(
        target: "csp_reports",
        fetched = stats.fetched,
        delivered = stats.delivered,
        redelivered = stats.redelivered,
        retried = stats.retried,
        failed = stats.failed,
        "stopped"
    );
    Ok(())
}
