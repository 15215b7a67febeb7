//! [`NatsSink`]: publishes reports to the JetStream stream.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::Subject;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, context::PublishAckFuture};
use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::connect::Servers;
use super::error::{NatsError, NatsErrorKind};
use super::message;
use super::stream::{StreamSettings, invalid};
use crate::{
    ConfigError, Report, ReportBatch, ReportSink, SinkError, SinkOptions, report::CSP_VIOLATION,
};

/// Builds a [`NatsSink`]; made by [`NatsSink::builder`].
///
/// The setters cannot fail; [`build`](Self::build) checks everything and returns a
/// [`NatsSinkConfig`], which connects.
#[derive(Clone)]
#[must_use]
pub struct NatsSinkBuilder {
    url: String,
    stream: StreamSettings,
    max_in_flight: usize,
    ack_timeout: Duration,
    connection_name: String,
}

impl NatsSinkBuilder {
    /// The stream to publish to (default: [`StreamSettings::new`]).
    pub fn stream(mut self, stream: StreamSettings) -> Self {
        self.stream = stream;
        self
    }

    /// The most publishes waiting for their acknowledgement at once, over every batch the
    /// sink is working on (default 512). A batch is published in chunks of this size: every
    /// report of a chunk is sent, then their acknowledgements are awaited together.
    pub fn max_in_flight(mut self, publishes: usize) -> Self {
        self.max_in_flight = publishes;
        self
    }

    /// How long the acknowledgements of a chunk may take once it is sent (default 5 s); a
    /// missing one fails the batch, which the dispatcher then retries. Keep the dispatcher's
    /// [timeout](crate::SinkOptions::timeout) above this times the chunks in a batch.
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// The name the connection shows on the server (default
    /// `tower-csp-reports collector`).
    pub fn connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = name.into();
        self
    }

    /// Checks every setting.
    pub fn build(self) -> Result<NatsSinkConfig, ConfigError> {
        self.stream.validate()?;
        if !(1..=65_536).contains(&self.max_in_flight) {
            return Err(ConfigError::InvalidLimit {
                setting: "nats max_in_flight",
                value: self.max_in_flight as u64,
                max: 65_536,
            });
        }
        if self.ack_timeout.is_zero() || self.ack_timeout > Duration::from_secs(600) {
            return Err(invalid(
                "nats ack_timeout",
                format!(
                    "must be longer than zero and at most 10 minutes, not {:?}",
                    self.ack_timeout
                ),
            ));
        }
        Ok(NatsSinkConfig {
            servers: Servers::parse(&self.url, self.connection_name)?,
            stream: self.stream,
            max_in_flight: self.max_in_flight,
            ack_timeout: self.ack_timeout,
        })
    }
}

impl fmt::Debug for NatsSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        f.debug_struct("NatsSinkBuilder")
            .field("stream", &self.stream)
            .field("max_in_flight", &self.max_in_flight)
            .field("ack_timeout", &self.ack_timeout)
            .field("connection_name", &self.connection_name)
            .finish_non_exhaustive()
    }
}

/// The checked settings of a [`NatsSink`]: [`connect`](Self::connect) makes the sink.
#[derive(Debug, Clone)]
pub struct NatsSinkConfig {
    servers: Servers,
    stream: StreamSettings,
    max_in_flight: usize,
    ack_timeout: Duration,
}

impl NatsSinkConfig {
    /// The stream the sink publishes to.
    pub fn stream(&self) -> &StreamSettings {
        &self.stream
    }

    /// Connects to the servers, then sets up the stream as [`with_client`](Self::with_client)
    /// does. The client reconnects by itself whenever the connection drops later.
    pub async fn connect(&self) -> Result<NatsSink, NatsError> {
        let client = self.servers.connect().await?;
        self.with_client(client).await
    }

    /// Makes the sink on a client you connected yourself (for credentials files, NKeys or
    /// TLS client certificates, set up with [`async_nats::ConnectOptions`]). The stream is
    /// created when missing; one that exists must take the subjects reports go to.
    pub async fn with_client(&self, client: async_nats::Client) -> Result<NatsSink, NatsError> {
        let js = jetstream::ContextBuilder::new()
            .timeout(self.ack_timeout)
            .ack_timeout(self.ack_timeout)
            // Room for the acknowledgements of a batch abandoned by the dispatcher's timeout,
            // which the client keeps waiting for, beside those of the next batch.
            .max_ack_inflight(self.max_in_flight * 2)
            .build(client);
        self.stream.ensure(&js).await?;
        Ok(NatsSink {
            state: Arc::new(SinkState {
                csp_subject: Subject::from(self.stream.subject_for(CSP_VIOLATION)),
                js,
                stream: self.stream.clone(),
                in_flight: Semaphore::new(self.max_in_flight),
                max_in_flight: self.max_in_flight,
                ack_timeout: self.ack_timeout,
                published: AtomicU64::new(0),
                duplicates: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
            }),
        })
    }
}

/// Publishes each report to a JetStream stream, on subject `<prefix>.<type>`, with its id as
/// the `Nats-Msg-Id`, so that the server drops the second copy of a retried publish.
///
/// A batch succeeds once the stream acknowledged every report of it. Any failed or missing
/// acknowledgement fails the whole batch with a transient [`SinkError`]; the dispatcher then
/// publishes it again, and the server keeps each report once (within the stream's
/// [duplicate window](StreamSettings::duplicate_window)). A report too large for the server
/// is left out and fails the batch for good once every other report of it is in the stream.
///
/// Clones share the connection and the counters.
#[derive(Clone)]
pub struct NatsSink {
    state: Arc<SinkState>,
}

struct SinkState {
    js: jetstream::Context,
    stream: StreamSettings,
    /// Nearly every report is a CSP violation: its subject is made once.
    csp_subject: Subject,
    in_flight: Semaphore,
    max_in_flight: usize,
    ack_timeout: Duration,
    published: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
}

/// A snapshot of a [`NatsSink`]'s counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NatsSinkStats {
    /// Reports the stream acknowledged as new.
    pub published: u64,
    /// Publishes the stream acknowledged as the duplicate of one it already had (a retried
    /// batch).
    pub duplicates: u64,
    /// Reports not published because they are larger than the server takes.
    pub rejected: u64,
}

impl NatsSink {
    /// Starts building a sink for the servers at `url` (one URL, or several separated by
    /// commas: `nats://a:4222,nats://b:4222`).
    pub fn builder(url: impl Into<String>) -> NatsSinkBuilder {
        NatsSinkBuilder {
            url: url.into(),
            stream: StreamSettings::new(),
            max_in_flight: 512,
            ack_timeout: Duration::from_secs(5),
            connection_name: "tower-csp-reports collector".to_owned(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> NatsSinkStats {
        let state = &self.state;
        NatsSinkStats {
            published: state.published.load(Ordering::Relaxed),
            duplicates: state.duplicates.load(Ordering::Relaxed),
            rejected: state.rejected.load(Ordering::Relaxed),
        }
    }

    /// The stream it publishes to.
    pub fn stream(&self) -> &StreamSettings {
        &self.state.stream
    }
}

impl fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSink")
            .field("stream", &self.state.stream.stream_name())
            .field("max_in_flight", &self.state.max_in_flight)
            .field("stats", &self.stats())
            .finish()
    }
}

/// What publishing one batch came to.
#[derive(Default)]
struct Outcome {
    /// Publishes that failed or whose acknowledgement did not come.
    unacked: usize,
    first_error: Option<PublishError>,
    /// Reports that cannot be published at all.
    rejected: usize,
    first_rejection: Option<String>,
}

impl SinkState {
    fn subject(&self, report: &Report) -> Subject {
        if report.is_csp_violation() {
            self.csp_subject.clone()
        } else {
            Subject::from(self.stream.subject_for(&report.report_type))
        }
    }

    /// Publishes a chunk, then awaits its acknowledgements. Stops sending at the first
    /// failed publish: the batch is failing and will be sent again whole.
    async fn publish_chunk(&self, chunk: &[&Report], outcome: &mut Outcome) {
        let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(chunk.len());
        for report in chunk {
            let payload = match message::encode(report) {
                Ok(payload) => payload,
                Err(error) => {
                    outcome.rejected += 1;
                    outcome
                        .first_rejection
                        .get_or_insert_with(|| format!("report {}: {error}", report.id));
                    continue;
                }
            };
            let publish = PublishMessage::build()
                .payload(payload)
                .message_id(report.id.to_string());
            match self.js.send_publish(self.subject(report), publish).await {
                Ok(ack) => acks.push(ack),
                Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    outcome.rejected += 1;
                    outcome
                        .first_rejection
                        .get_or_insert_with(|| format!("report {}: {error}", report.id));
                }
                Err(error) => {
                    outcome.unacked += 1;
                    outcome.first_error.get_or_insert(error);
                    break;
                }
            }
        }
        // One deadline for the chunk: the acknowledgements travel together.
        let deadline = Instant::now() + self.ack_timeout;
        for ack in acks {
            match tokio::time::timeout_at(deadline, ack.into_future()).await {
                Ok(Ok(ack)) if ack.duplicate => {
                    self.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Ok(_)) => {
                    self.published.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(error)) => {
                    outcome.unacked += 1;
                    outcome.first_error.get_or_insert(error);
                }
                Err(_) => {
                    outcome.unacked += 1;
                    outcome
                        .first_error
                        .get_or_insert_with(|| PublishError::new(PublishErrorKind::TimedOut));
                }
            }
        }
    }
}

#[async_trait]
impl ReportSink for NatsSink {
    fn name(&self) -> &str {
        "nats"
    }

    /// [`SinkOptions::store`]: the stream stands in for the store, so it is required (a
    /// 2xx means the report is queued for the stream) and publishes are retried until it
    /// has them.
    fn default_options(&self) -> SinkOptions {
        SinkOptions::store()
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        let state = &self.state;
        let mut outcome = Outcome::default();
        let mut reports = batch.iter();
        while outcome.unacked == 0 {
            let chunk: Vec<&Report> = reports.by_ref().take(state.max_in_flight).collect();
            if chunk.is_empty() {
                break;
            }
            // All permits of a chunk at once: two batches sent at the same time can never
            // each hold part of what the other waits for.
            let n = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            let Ok(_permits) = state.in_flight.acquire_many(n).await else {
                // The semaphore is never closed.
                break;
            };
            state.publish_chunk(&chunk, &mut outcome).await;
        }
        if outcome.rejected > 0 {
            state
                .rejected
                .fetch_add(outcome.rejected as u64, Ordering::Relaxed);
        }
        if outcome.unacked > 0 {
            let source = outcome.first_error.map(|e| Box::new(e) as _);
            return Err(SinkError::transient(NatsError::new(
                NatsErrorKind::Publish,
                true,
                format!(
                    "{} of {} reports not acknowledged by stream {}",
                    outcome.unacked,
                    batch.len(),
                    state.stream.stream_name()
                ),
                source,
            )));
        }
        if outcome.rejected > 0 {
            return Err(SinkError::permanent(NatsError::new(
                NatsErrorKind::TooLarge,
                false,
                format!(
                    "{} of {} reports cannot be published (the others are in stream {}): {}",
                    outcome.rejected,
                    batch.len(),
                    state.stream.stream_name(),
                    outcome.first_rejection.unwrap_or_default()
                ),
                None,
            )));
        }
        Ok(())
    }
}
