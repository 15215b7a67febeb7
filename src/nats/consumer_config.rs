//! Configuring a [`NatsConsumer`]: [`NatsConsumerBuilder`] checks the settings, and the
//! [`NatsConsumerConfig`] it makes sets up the stream and the durable consumer and connects.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::ConsumerErrorKind;

use super::connect::Servers;
use super::consumer::NatsConsumer;
use super::error::{NatsError, NatsErrorKind};
use super::stream::{StreamSettings, invalid, is_name};
use crate::dispatch::{ErrorHook, SinkFailure, default_error_hook};
use crate::{ConfigError, ReportSink};

/// Builds a [`NatsConsumer`]; made by [`NatsConsumer::builder`].
///
/// The setters cannot fail; [`build`](Self::build) checks everything and returns a
/// [`NatsConsumerConfig`], which connects.
#[must_use]
pub struct NatsConsumerBuilder {
    url: String,
    sink: Arc<dyn ReportSink>,
    stream: StreamSettings,
    durable: String,
    batch_size: usize,
    max_wait: Duration,
    ack_wait: Duration,
    max_ack_pending: usize,
    timeout: Duration,
    backoff: Duration,
    max_backoff: Duration,
    connection_name: String,
    hook: Option<ErrorHook>,
}

impl NatsConsumerBuilder {
    pub(super) fn new(url: String, sink: Arc<dyn ReportSink>) -> Self {
        Self {
            url,
            sink,
            stream: StreamSettings::new(),
            durable: "csp-reports-store".to_owned(),
            batch_size: 500,
            max_wait: Duration::from_secs(1),
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 10_000,
            timeout: Duration::from_secs(20),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            connection_name: "tower-csp-reports consumer".to_owned(),
            hook: None,
        }
    }

    /// The stream to read (default: [`StreamSettings::new`]); it is created when missing.
    pub fn stream(mut self, stream: StreamSettings) -> Self {
        self.stream = stream;
        self
    }

    /// The durable consumer's name (default `csp-reports-store`). Every process that reads
    /// with the same name shares the work: each report goes to one of them.
    pub fn durable(mut self, name: impl Into<String>) -> Self {
        self.durable = name.into();
        self
    }

    /// The most reports handed to the sink at once (default 500).
    pub fn batch_size(mut self, reports: usize) -> Self {
        self.batch_size = reports;
        self
    }

    /// How long a fetch waits for a batch to fill before the sink gets what came (default
    /// 1 s).
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// How long the server waits for a delivered report's acknowledgement before it
    /// delivers it again, to this or another consumer (default 30 s). Set when the durable
    /// consumer is created; one that exists keeps its own.
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    /// The most reports delivered and not yet acknowledged, over every process sharing the
    /// durable consumer (default 10,000; at least the batch size). Set when the durable
    /// consumer is created.
    pub fn max_ack_pending(mut self, reports: usize) -> Self {
        self.max_ack_pending = reports;
        self
    }

    /// How long one call to the sink may take before it counts as a transient failure
    /// (default 20 s; shorter than [`ack_wait`](Self::ack_wait), so that a slow batch is
    /// given up before the server delivers it again).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The wait after a transient failure, doubled each time up to `max` (default 100 ms to
    /// 10 s). The failed reports are handed back to the server with the same delay.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.max_backoff = max;
        self
    }

    /// The name the connection shows on the server (default `tower-csp-reports consumer`).
    pub fn connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = name.into();
        self
    }

    /// Called on every failed call to the sink and every message that is not a report
    /// (default: a `tracing` warning). `will_retry` is `false` for the reports the consumer
    /// gives up on: they are terminated on the server and not delivered again.
    pub fn on_error<F>(mut self, hook: F) -> Self
    where
        F: Fn(&SinkFailure<'_>) + Send + Sync + 'static,
    {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Checks every setting.
    pub fn build(self) -> Result<NatsConsumerConfig, ConfigError> {
        self.stream.validate()?;
        if !is_name(&self.durable) {
            return Err(invalid(
                "nats durable consumer name",
                format!(
                    "{:?}: use 1 to 64 letters, digits, '-' or '_'",
                    self.durable
                ),
            ));
        }
        let limit = |setting, value: usize, min: usize, max: usize| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::InvalidLimit {
                    setting,
                    value: value as u64,
                    max: max as u64,
                })
            }
        };
        limit("nats batch_size", self.batch_size, 1, 100_000)?;
        limit(
            "nats max_ack_pending",
            self.max_ack_pending,
            self.batch_size,
            10_000_000,
        )?;
        let within = |setting, value: Duration, max: Duration| {
            if value.is_zero() || value > max {
                Err(invalid(
                    setting,
                    format!("must be longer than zero and at most {max:?}, not {value:?}"),
                ))
            } else {
                Ok(())
            }
        };
        within("nats max_wait", self.max_wait, Duration::from_secs(60))?;
        within(
            "nats ack_wait",
            self.ack_wait,
            Duration::from_secs(24 * 3600),
        )?;
        if self.ack_wait < Duration::from_millis(100) {
            return Err(invalid(
                "nats ack_wait",
                format!("must be at least 100 ms, not {:?}", self.ack_wait),
            ));
        }
        if self.timeout.is_zero() || self.timeout >= self.ack_wait {
            return Err(invalid(
                "nats consumer timeout",
                format!(
                    "must be longer than zero and shorter than ack_wait ({:?}), not {:?}",
                    self.ack_wait, self.timeout
                ),
            ));
        }
        if self.backoff.is_zero() || self.backoff > self.max_backoff {
            return Err(invalid(
                "nats consumer backoff",
                format!(
                    "the first wait ({:?}) must be longer than zero and at most the longest ({:?})",
                    self.backoff, self.max_backoff
                ),
            ));
        }
        Ok(NatsConsumerConfig {
            settings: Arc::new(ConsumerSettings {
                servers: Servers::parse(&self.url, self.connection_name)?,
                sink: self.sink,
                stream: self.stream,
                durable: self.durable,
                batch_size: self.batch_size,
                max_wait: self.max_wait,
                ack_wait: self.ack_wait,
                max_ack_pending: self.max_ack_pending,
                timeout: self.timeout,
                backoff: self.backoff,
                max_backoff: self.max_backoff,
                hook: self.hook.unwrap_or_else(default_error_hook),
            }),
        })
    }
}

impl fmt::Debug for NatsConsumerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConsumerBuilder")
            .field("sink", &self.sink.name())
            .field("stream", &self.stream)
            .field("durable", &self.durable)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

/// The checked settings of a [`NatsConsumer`]: [`connect`](Self::connect) makes one.
///
/// Connect it several times, in one process or many, to share the work of one durable
/// consumer.
#[derive(Clone)]
pub struct NatsConsumerConfig {
    settings: Arc<ConsumerSettings>,
}

/// What a consumer works with, shared by every consumer one config connects.
pub(super) struct ConsumerSettings {
    pub(super) servers: Servers,
    pub(super) sink: Arc<dyn ReportSink>,
    pub(super) stream: StreamSettings,
    pub(super) durable: String,
    pub(super) batch_size: usize,
    pub(super) max_wait: Duration,
    pub(super) ack_wait: Duration,
    pub(super) max_ack_pending: usize,
    pub(super) timeout: Duration,
    pub(super) backoff: Duration,
    pub(super) max_backoff: Duration,
    pub(super) hook: ErrorHook,
}

impl fmt::Debug for NatsConsumerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("NatsConsumerConfig")
            .field("servers", &s.servers)
            .field("sink", &s.sink.name())
            .field("stream", &s.stream)
            .field("durable", &s.durable)
            .field("batch_size", &s.batch_size)
            .field("max_wait", &s.max_wait)
            .field("ack_wait", &s.ack_wait)
            .field("max_ack_pending", &s.max_ack_pending)
            .field("timeout", &s.timeout)
            .finish_non_exhaustive()
    }
}

impl NatsConsumerConfig {
    /// The stream it reads.
    pub fn stream(&self) -> &StreamSettings {
        &self.settings.stream
    }

    /// The durable consumer's name.
    pub fn durable(&self) -> &str {
        &self.settings.durable
    }

    /// Connects, then sets up the stream and the durable consumer as
    /// [`with_client`](Self::with_client) does.
    pub async fn connect(&self) -> Result<NatsConsumer, NatsError> {
        let client = self.settings.servers.connect().await?;
        self.with_client(client).await
    }

    /// Makes the consumer on a client you connected yourself. The stream and the durable
    /// consumer are created when missing; a durable consumer that exists must be a pull
    /// consumer with explicit acknowledgements, reading every report subject.
    pub async fn with_client(&self, client: async_nats::Client) -> Result<NatsConsumer, NatsError> {
        let js = jetstream::new(client.clone());
        let pull = self.settings.ensure_consumer(&js).await?;
        Ok(NatsConsumer::new(
            Arc::clone(&self.settings),
            client,
            js,
            pull,
        ))
    }
}

impl ConsumerSettings {
    /// The stream and the durable consumer, made when missing and checked when present.
    pub(super) async fn ensure_consumer(
        &self,
        js: &jetstream::Context,
    ) -> Result<PullConsumer, NatsError> {
        let stream = self.stream.ensure(js).await?;
        let filter = self.stream.subjects();
        let wanted = pull::Config {
            durable_name: Some(self.durable.clone()),
            description: Some("CSP reports to the store (tower-csp-reports)".to_owned()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: -1,
            filter_subject: filter.clone(),
            max_ack_pending: i64::try_from(self.max_ack_pending).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let consumer = stream
            .get_or_create_consumer(&self.durable, wanted)
            .await
            .map_err(|error| match error.kind() {
                ConsumerErrorKind::InvalidConsumerType => NatsError::new(
                    NatsErrorKind::Consumer,
                    false,
                    format!(
                        "consumer {} of stream {} is a push consumer; a pull consumer is needed",
                        self.durable,
                        self.stream.stream_name()
                    ),
                    Some(Box::new(error)),
                ),
                ConsumerErrorKind::JetStream(answer) => NatsError::jetstream(
                    format!(
                        "cannot read or create consumer {} of stream {}",
                        self.durable,
                        self.stream.stream_name()
                    ),
                    Some(&answer),
                    Box::new(error),
                ),
                _ => NatsError::jetstream(
                    format!(
                        "cannot read or create consumer {} of stream {}",
                        self.durable,
                        self.stream.stream_name()
                    ),
                    None,
                    Box::new(error),
                ),
            })?;
        let config = &consumer.cached_info().config;
        let problem = if config.ack_policy != AckPolicy::Explicit {
            Some(format!(
                "acknowledges with {:?}, not each message explicitly",
                config.ack_policy
            ))
        } else if !config.filter_subject.is_empty() && config.filter_subject != filter {
            Some(format!(
                "reads {:?}, not every report ({filter})",
                config.filter_subject
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(NatsError::new(
                NatsErrorKind::Consumer,
                false,
                format!(
                    "consumer {} of stream {} exists but {problem}: give another durable name, \
                     or delete it",
                    self.durable,
                    self.stream.stream_name()
                ),
                None,
            ));
        }
        Ok(consumer)
    }
}
