//! Scale-out through NATS JetStream: [`NatsSink`] publishes reports to a stream, and
//! [`NatsConsumer`] reads them back, in batches, into any [`ReportSink`](crate::ReportSink)
//! (the store's), with [async-nats].
//!
//! ```text
//! collectors (NatsSink) ──► JetStream stream CSP_REPORTS ──► durable consumer ──► NatsConsumer ×M ──► store
//!                            subjects csp.reports.<type>      csp-reports-store     acks after the store's Ok
//! ```
//!
//! ```
//! use std::time::Duration;
//! use tower_csp_reports::nats::{NatsConsumer, NatsSink, StreamSettings};
//! use tower_csp_reports::sink::MemorySink;
//!
//! let stream = StreamSettings::new()
//!     .max_age(Duration::from_secs(3 * 24 * 3600))
//!     .max_bytes(50 << 30)
//!     .duplicate_window(Duration::from_secs(15 * 60))
//!     .replicas(3);
//! let sink = NatsSink::builder("nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222")
//!     .stream(stream.clone())
//!     .max_in_flight(1024)
//!     .build()
//!     .expect("valid settings");
//! assert_eq!(sink.stream().subject_for("csp-violation"), "csp.reports.csp-violation");
//! // A hostile report type cannot make a subject of its own.
//! assert_eq!(sink.stream().subject_for("x.*.>"), "csp.reports.x____");
//!
//! let consumer = NatsConsumer::builder("nats://nats-1:4222", MemorySink::new())
//!     .stream(stream)
//!     .durable("csp-reports-store")
//!     .batch_size(1000)
//!     .max_wait(Duration::from_millis(500))
//!     .build()
//!     .expect("valid settings");
//! assert_eq!(consumer.durable(), "csp-reports-store");
//!
//! // No password in debug output.
//! let with_password = NatsSink::builder("nats://csp:s3cret@nats-1:4222");
//! assert!(!format!("{with_password:?}").contains("s3cret"));
//! assert!(!format!("{:?}", with_password.build().unwrap()).contains("s3cret"));
//!
//! // Settings that cannot work are refused before anything connects.
//! let error = NatsSink::builder("http://nats-1:4222").build().unwrap_err();
//! assert!(error.to_string().contains("nats url"), "{error}");
//! let error = NatsSink::builder("nats://nats-1")
//!     .stream(StreamSettings::new().subject_prefix("csp.*"))
//!     .build()
//!     .unwrap_err();
//! assert!(error.to_string().contains("subject prefix"), "{error}");
//! ```
//!
//! Connecting sets up the stream (and, for a consumer, the durable consumer) when it is
//! missing:
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_csp_reports::nats::{NatsConsumer, NatsSink};
//! use tower_csp_reports::{CspReportLayer, SinkOptions};
//! # use tower_csp_reports::sink::MemorySink;
//!
//! # async fn run(store_sink: MemorySink) -> Result<(), Box<dyn std::error::Error>> {
//! // In each collector:
//! let sink = NatsSink::builder("nats://127.0.0.1:4222").build()?.connect().await?;
//! let layer = CspReportLayer::builder()
//!     .sink_with(
//!         sink.clone(),
//!         SinkOptions::store().batch_size(500).timeout(Duration::from_secs(15)),
//!     )
//!     .build()?;
//! # drop(layer);
//!
//! // In each consumer process, with the store's sink:
//! let consumer = NatsConsumer::builder("nats://127.0.0.1:4222", store_sink)
//!     .build()?
//!     .connect()
//!     .await?;
//! consumer.run(async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await;
//! println!("{:?}", consumer.stats());
//! # Ok(())
//! # }
//! ```
//!
//! # Exactly once, by report id
//!
//! Each message is one [`Report`](crate::Report) as JSON, every field, so the consumer
//! rebuilds it exactly; its `Nats-Msg-Id` is the report's id. Publishes are at least once:
//! a batch whose acknowledgements did not all come back is published again by the
//! dispatcher, and the server drops the copies it already has (within the stream's
//! duplicate window). Deliveries are at least once too: a consumer killed before it
//! acknowledged gets its messages delivered again elsewhere. What makes the whole path
//! exactly once is the store, which keeps each report id once.
//!
//! # Connecting
//!
//! [`connect`](NatsSinkConfig::connect) takes `nats://` and `tls://` URLs with an optional
//! `user:password@`. For credentials files, NKeys or client certificates, connect a client
//! with [`async_nats::ConnectOptions`] (enabling the features of `async-nats` you need) and
//! pass it to [`with_client`](NatsSinkConfig::with_client).
//!
//! [async-nats]: https://docs.rs/async-nats

mod connect;
mod consumer;
mod consumer_config;
mod error;
mod message;
mod sink;
mod stream;

pub use consumer::{NatsConsumer, NatsConsumerStats};
pub use consumer_config::{NatsConsumerBuilder, NatsConsumerConfig};
pub use error::{NatsError, NatsErrorKind};
pub use sink::{NatsSink, NatsSinkBuilder, NatsSinkConfig, NatsSinkStats};
pub use stream::StreamSettings;

pub use async_nats;
