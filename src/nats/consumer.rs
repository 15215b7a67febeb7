//! [`NatsConsumer`]: reads the stream through a durable pull consumer and hands the reports
//! to a sink.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, AckKind};
use futures_util::{FutureExt, StreamExt};
use serde::Serialize;
use tokio::time::Instant;

use super::consumer_config::{ConsumerSettings, NatsConsumerBuilder};
use super::error::{NatsError, NatsErrorKind};
use super::message;
use crate::dispatch::{Backoff, SinkFailure, call_sink, tell};
use crate::{ReportBatch, ReportSink, SinkError};

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
    settings: Arc<ConsumerSettings>,
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
        NatsConsumerBuilder::new(url.into(), Arc::new(sink))
    }

    pub(super) fn new(
        settings: Arc<ConsumerSettings>,
        client: async_nats::Client,
        js: jetstream::Context,
        pull: PullConsumer,
    ) -> Self {
        Self {
            state: Arc::new(ConsumerState {
                settings,
                client,
                js,
                pull,
                counters: Counters::default(),
            }),
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
        let new_backoff = || Backoff::new(settings.backoff, settings.max_backoff);
        let mut backoff = new_backoff();
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
                        stop.sleep(backoff.next_wait()).await;
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
                    stop.sleep(backoff.next_wait()).await;
                    continue;
                }
            };
            if messages.is_empty() {
                // An empty fetch takes `max_wait`; one that came back at once would spin.
                if !stop.fired && started.elapsed() < settings.max_wait / 2 {
                    stop.sleep(settings.backoff).await;
                }
                continue;
            }
            // Reports handed back are delivered again after the wait this consumer takes.
            let delay = backoff.next_wait();
            match state.handle(messages, delay).await {
                Handled::Done => backoff = new_backoff(),
                Handled::Retry => stop.sleep(delay).await,
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

fn warn(settings: &ConsumerSettings, error: &NatsError) {
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
        call_sink(&settings.sink, batch, settings.timeout).await
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
        tell(&settings.hook, &failure);
    }
}
