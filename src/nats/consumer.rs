//! [`NatsConsumer`]: reads the stream through a durable pull consumer and hands the reports
//! to a sink.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, AckKind};
use futures_util::{FutureExt, StreamExt};
use serde::Serialize;
use tokio::time::Instant;

use super::connect::Servers;
use super::error::{NatsError, NatsErrorKind};
use super::message;
use super::stream::{StreamSettings, invalid, is_name};
use crate::dispatch::{ErrorHook, SinkFailure, default_error_hook};
use crate::{ConfigError, ReportBatch, ReportSink, SinkError};

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
            settings: Arc::new(Settings {
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
    settings: Arc<Settings>,
}

struct Settings {
    servers: Servers,
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
    hook: ErrorHook,
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
        Ok(NatsConsumer {
            state: Arc::new(ConsumerState {
                settings: Arc::clone(&self.settings),
                client,
                js,
                pull,
                counters: Counters::default(),
            }),
        })
    }
}

impl Settings {
    async fn ensure_consumer(&self, js: &jetstream::Context) -> Result<PullConsumer, NatsError> {
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

/// Reads reports from the stream through a durable pull consumer, in batches, and hands each
/// batch to a [`ReportSink`] (the store's, whose writes are idempotent by report id).
///
/// - A batch's messages are acknowledged only after the sink returned `Ok`.
/// - On a transient error they are handed back to the server with a delay (the current
///   backoff) and the consumer waits as long before its next fetch; the server delivers them
///   again, here or to another process sharing the durable consumer.
/// - On a permanent error (or a panic) each report of the batch is tried alone: those the
///   sink takes are acknowledged, the others go to the error hook and are terminated, so
///   they are not delivered again. So are messages that are not reports.
/// - A process killed mid-batch leaves its messages unacknowledged: the server delivers them
///   again after [`ack_wait`](NatsConsumerBuilder::ack_wait). Reports can therefore reach
///   the sink more than once; a store keeps each id once.
///
/// Clones share the connection and the counters.
#[derive(Clone)]
pub struct NatsConsumer {
    state: Arc<ConsumerState>,
}

struct ConsumerState {
    settings: Arc<Settings>,
    client: async_nats::Client,
    js: jetstream::Context,
    pull: PullConsumer,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    fetched: AtomicU64,
    delivered: AtomicU64,
    redelivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
}

/// A snapshot of a [`NatsConsumer`]'s counters, in messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NatsConsumerStats {
    /// Messages received from the server.
    pub fetched: u64,
    /// Reports the sink took, acknowledged.
    pub delivered: u64,
    /// Messages received that the server had delivered before (to this or another process).
    pub redelivered: u64,
    /// Messages handed back after a transient failure, to be delivered again.
    pub retried: u64,
    /// Messages given up on and terminated: not reports, or refused by the sink for good.
    pub failed: u64,
}

impl fmt::Debug for NatsConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConsumer")
            .field("sink", &self.state.settings.sink.name())
            .field("stream", &self.state.settings.stream.stream_name())
            .field("durable", &self.state.settings.durable)
            .field("stats", &self.stats())
            .finish()
    }
}

/// What became of a batch.
enum Handled {
    Done,
    /// A transient failure: wait before the next fetch.
    Retry,
}

impl NatsConsumer {
    /// Starts building a consumer for the servers at `url` (one URL, or several separated by
    /// commas) that hands reports to `sink`.
    pub fn builder(url: impl Into<String>, sink: impl ReportSink) -> NatsConsumerBuilder {
        NatsConsumerBuilder {
            url: url.into(),
            sink: Arc::new(sink),
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

    /// The counters.
    pub fn stats(&self) -> NatsConsumerStats {
        let c = &self.state.counters;
        NatsConsumerStats {
            fetched: c.fetched.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            redelivered: c.redelivered.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    /// Fetches and delivers batches until `shutdown` completes, then finishes the batch in
    /// hand (the sink's call and the acknowledgements) and returns. Pass
    /// `tokio::signal::ctrl_c()`, a `CancellationToken`'s `cancelled()`, or any future.
    ///
    /// A signal that comes while a fetch waits ends the wait: the reports already received
    /// are delivered and acknowledged; any the server sends after that, for the same pull
    /// request, are delivered again after `ack_wait`.
    ///
    /// It rides out a lost connection or a restarting server: failures to fetch are logged
    /// as warnings and retried with the backoff. Several `run`s of one consumer, or of
    /// several, may go on at once.
    pub async fn run<F>(&self, shutdown: F)
    where
        F: Future<Output = ()> + Send,
    {
        let state = &*self.state;
        let settings = &*state.settings;
        let mut stop = Stop {
            signal: Box::pin(shutdown),
            fired: false,
        };
        let mut pull = state.pull.clone();
        let mut backoff = settings.backoff;
        let mut broken = false;
        while !stop.has_fired() {
            if broken {
                match settings.ensure_consumer(&state.js).await {
                    Ok(consumer) => {
                        pull = consumer;
                        broken = false;
                    }
                    Err(error) => {
                        warn(settings, &error);
                        stop.sleep(backoff).await;
                        backoff = (backoff * 2).min(settings.max_backoff);
                        continue;
                    }
                }
            }
            let started = Instant::now();
            let messages = match state.fetch(&pull, &mut stop).await {
                Ok(messages) => messages,
                Err(error) => {
                    warn(settings, &error);
                    broken = true;
                    stop.sleep(backoff).await;
                    backoff = (backoff * 2).min(settings.max_backoff);
                    continue;
                }
            };
            if messages.is_empty() {
                // An empty fetch takes `max_wait`; one that came back at once would spin.
                if !stop.fired && started.elapsed() < settings.max_wait / 2 {
                    stop.sleep(backoff).await;
                }
                continue;
            }
            match state.handle(messages, backoff).await {
                Handled::Done => backoff = settings.backoff,
                Handled::Retry => {
                    stop.sleep(backoff).await;
                    backoff = (backoff * 2).min(settings.max_backoff);
                }
            }
        }
    }
}

/// The shutdown signal, polled across fetches and waits.
struct Stop<F> {
    signal: Pin<Box<F>>,
    fired: bool,
}

impl<F: Future<Output = ()>> Stop<F> {
    /// Whether the signal has fired, without waiting for it.
    fn has_fired(&mut self) -> bool {
        if !self.fired && self.signal.as_mut().now_or_never().is_some() {
            self.fired = true;
        }
        self.fired
    }

    /// Completes once the signal has fired (at once if it already had).
    async fn wait(&mut self) {
        if !self.fired {
            self.signal.as_mut().await;
            self.fired = true;
        }
    }

    /// Sleeps, unless the signal fires first.
    async fn sleep(&mut self, duration: Duration) {
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            () = self.wait() => {}
        }
    }
}

fn warn(settings: &Settings, error: &NatsError) {
    tracing::warn!(
        target: "tower_csp_reports",
        stream = %settings.stream.stream_name(),
        consumer = %settings.durable,
        error = crate::error::chain(error),
        "NATS consumer cannot fetch reports; trying again"
    );
}

impl ConsumerState {
    /// One pull request: up to a batch of messages, within `max_wait`. A shutdown ends the
    /// wait with what came so far.
    async fn fetch<F: Future<Output = ()>>(
        &self,
        pull: &PullConsumer,
        stop: &mut Stop<F>,
    ) -> Result<Vec<jetstream::Message>, NatsError> {
        let settings = &*self.settings;
        let fetch_error = |error: Box<dyn std::error::Error + Send + Sync>| {
            NatsError::new(
                NatsErrorKind::Fetch,
                true,
                format!(
                    "cannot fetch from consumer {} of stream {}",
                    settings.durable,
                    settings.stream.stream_name()
                ),
                Some(error),
            )
        };
        let mut batch = pull
            .batch()
            .max_messages(settings.batch_size)
            .expires(settings.max_wait)
            .messages()
            .await
            .map_err(|e| fetch_error(Box::new(e)))?;
        let mut messages = Vec::new();
        loop {
            tokio::select! {
                biased;
                next = batch.next() => match next {
                    Some(Ok(message)) => messages.push(message),
                    Some(Err(error)) if messages.is_empty() => return Err(fetch_error(error)),
                    Some(Err(_)) | None => break,
                },
                () = stop.wait() => break,
            }
        }
        Ok(messages)
    }

    async fn handle(&self, messages: Vec<jetstream::Message>, delay: Duration) -> Handled {
        let counters = &self.counters;
        let mut held = Vec::with_capacity(messages.len());
        let mut reports = Vec::with_capacity(messages.len());
        let mut attempt = 1;
        for message in messages {
            counters.fetched.fetch_add(1, Ordering::Relaxed);
            let (delivered, sequence) = message
                .info()
                .map(|info| (info.delivered, info.stream_sequence))
                .unwrap_or((1, 0));
            if delivered > 1 {
                counters.redelivered.fetch_add(1, Ordering::Relaxed);
            }
            let delivered = u32::try_from(delivered).unwrap_or(u32::MAX).max(1);
            attempt = attempt.max(delivered);
            match message::decode(&message.payload) {
                Ok(report) => {
                    reports.push(report);
                    held.push(message);
                }
                Err(error) => {
                    let error = SinkError::permanent(NatsError::new(
                        NatsErrorKind::Decode,
                        false,
                        format!(
                            "message {sequence} of stream {} on {:?} is not a report",
                            self.settings.stream.stream_name(),
                            message.subject.as_str()
                        ),
                        Some(Box::new(error)),
                    ));
                    self.give_up(&message, &error, delivered).await;
                }
            }
        }
        if held.is_empty() {
            return Handled::Done;
        }
        let batch = ReportBatch::from(reports);
        match self.call(&batch).await {
            Ok(()) => {
                self.ack(&held).await;
                Handled::Done
            }
            Err(error) if error.is_transient() => {
                self.report(&error, held.len(), attempt, true);
                self.hand_back(&held, delay).await;
                Handled::Retry
            }
            Err(error) if held.len() == 1 => {
                self.give_up(&held[0], &error, attempt).await;
                Handled::Done
            }
            Err(_) => self.one_by_one(&batch, &held, delay).await,
        }
    }

    /// After a permanent failure of a batch: each report alone, so that one the sink cannot
    /// take does not cost the others.
    async fn one_by_one(
        &self,
        batch: &ReportBatch,
        held: &[jetstream::Message],
        delay: Duration,
    ) -> Handled {
        for (i, (report, message)) in batch.iter().zip(held).enumerate() {
            let attempt = message
                .info()
                .map_or(1, |info| u32::try_from(info.delivered).unwrap_or(u32::MAX));
            match self.call(&ReportBatch::from(vec![report.clone()])).await {
                Ok(()) => self.ack(std::slice::from_ref(message)).await,
                Err(error) if error.is_transient() => {
                    self.report(&error, held.len() - i, attempt, true);
                    self.hand_back(&held[i..], delay).await;
                    return Handled::Retry;
                }
                Err(error) => self.give_up(message, &error, attempt).await,
            }
        }
        Handled::Done
    }

    /// One call to the sink, within the timeout, its panics caught.
    async fn call(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        let settings = &*self.settings;
        let call = AssertUnwindSafe(settings.sink.send(batch)).catch_unwind();
        match tokio::time::timeout(settings.timeout, call).await {
            Ok(Ok(result)) => result,
            Ok(Err(payload)) => Err(SinkError::panicked(panic_message(payload.as_ref()))),
            Err(_) => Err(SinkError::timed_out(settings.timeout)),
        }
    }

    async fn ack(&self, messages: &[jetstream::Message]) {
        for message in messages {
            // A lost acknowledgement means one more delivery, which the sink takes in stride.
            if let Err(error) = message.ack().await {
                tracing::debug!(target: "tower_csp_reports", error = %error, "NATS ack not sent");
            }
        }
        let _ = self.client.flush().await;
        self.counters
            .delivered
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
    }

    /// Hands messages back to the server, to be delivered again after `delay`.
    async fn hand_back(&self, messages: &[jetstream::Message], delay: Duration) {
        for message in messages {
            // Without it the server delivers the message again after ack_wait all the same.
            let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
        }
        let _ = self.client.flush().await;
        self.counters
            .retried
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
    }

    /// Terminates a message, so that it is not delivered again, and tells the hook.
    async fn give_up(&self, message: &jetstream::Message, error: &SinkError, attempt: u32) {
        self.report(error, 1, attempt, false);
        let _ = message.ack_with(AckKind::Term).await;
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
    }

    fn report(&self, error: &SinkError, reports: usize, attempt: u32, will_retry: bool) {
        let settings = &*self.settings;
        let failure = SinkFailure {
            sink: settings.sink.name(),
            error,
            reports,
            attempt,
            will_retry,
        };
        // The hook is user code: a panic in it must not stop the consumer.
        let hook = &settings.hook;
        if std::panic::catch_unwind(AssertUnwindSafe(|| hook(&failure))).is_err() {
            tracing::error!(target: "tower_csp_reports", "the NATS consumer's error hook panicked");
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
