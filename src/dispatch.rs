//! Handing reports to sinks off the request path.
//!
//! Each sink has its own bounded queue (counted in reports) and its own worker task, so a slow
//! or failing sink never holds up the response or another sink. A worker gathers reports into
//! batches (by size and time), calls the sink with a timeout, retries transient errors with
//! exponential backoff, catches panics, and tells the error hook about every failure. A full
//! queue drops the new reports for that sink only, counts them and warns (at most once per
//! ten seconds per sink).
//!
//! [`CspReportHandle::shutdown`](crate::CspReportHandle::shutdown) drains every queue, so a graceful shutdown loses nothing that
//! was accepted.
//!
//! ```
//! use std::time::Duration;
//! use tower_csp_reports::dispatch::SinkOptions;
//!
//! let options = SinkOptions::default()
//!     .batch_size(500)
//!     .linger(Duration::from_millis(50))
//!     .timeout(Duration::from_secs(5))
//!     .retries(3);
//! assert_eq!(options.queue_capacity_value(), 10_000);
//! ```

use std::fmt;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::Report;
use crate::error::ConfigError;
use crate::sink::{ReportBatch, ReportSink, SinkError};

/// When sinks run relative to the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Dispatch {
    /// Queue the reports and answer at once; workers deliver them (the default).
    #[default]
    Background,
    /// Deliver to every sink (with retries) before answering: for tests, and for serverless
    /// platforms that freeze the process once the response is sent.
    Inline,
}

/// How one sink is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkOptions {
    queue_capacity: usize,
    batch_size: usize,
    concurrency: usize,
    linger: Duration,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    max_backoff: Duration,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            batch_size: 100,
            concurrency: 1,
            linger: Duration::from_millis(100),
            timeout: Duration::from_secs(10),
            retries: 10,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl SinkOptions {
    /// Reports that may wait for the sink before new ones are dropped (default 10,000).
    #[must_use]
    pub fn queue_capacity(mut self, reports: usize) -> Self {
        self.queue_capacity = reports;
        self
    }

    /// The queue capacity set.
    pub fn queue_capacity_value(&self) -> usize {
        self.queue_capacity
    }

    /// The most reports handed to the sink in one call (default 100).
    #[must_use]
    pub fn batch_size(mut self, reports: usize) -> Self {
        self.batch_size = reports;
        self
    }

    /// How many batches may be with the sink at once (default 1: one after the other, in the
    /// order the reports came).
    ///
    /// A sink that waits on a server, such as a database, keeps up with more reports when
    /// the next batch is on its way while the server stores the last one; batches may then
    /// finish out of order. Keep it at most the number of connections the sink can use.
    #[must_use]
    pub fn concurrency(mut self, batches: usize) -> Self {
        self.concurrency = batches;
        self
    }

    /// How long the first report of a batch may wait for others (default 100 ms).
    #[must_use]
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// How long one call to the sink may take before it counts as a transient failure
    /// (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a batch is tried again after a transient failure (default 10).
    #[must_use]
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The first wait before a retry, doubled each time up to `max` (default 100 ms to 10 s).
    #[must_use]
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.max_backoff = max;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let limit = |setting, value: usize, max: usize| {
            if value == 0 || value > max {
                Err(ConfigError::InvalidLimit {
                    setting,
                    value: value as u64,
                    max: max as u64,
                })
            } else {
                Ok(())
            }
        };
        limit("queue_capacity", self.queue_capacity, 100_000_000)?;
        limit("batch_size", self.batch_size, 1_000_000)?;
        limit("concurrency", self.concurrency, 1_000)?;
        if self.timeout.is_zero() {
            return Err(ConfigError::Invalid {
                setting: "timeout",
                reason: "must be longer than zero".to_owned(),
            });
        }
        if self.backoff > self.max_backoff {
            return Err(ConfigError::Invalid {
                setting: "backoff",
                reason: format!(
                    "the first wait ({:?}) is longer than the longest ({:?})",
                    self.backoff, self.max_backoff
                ),
            });
        }
        Ok(())
    }
}

/// A failed call to a sink, as told to the error hook.
#[derive(Debug)]
#[non_exhaustive]
pub struct SinkFailure<'a> {
    /// The sink's name.
    pub sink: &'a str,
    /// What went wrong.
    pub error: &'a SinkError,
    /// How many reports the call carried.
    pub reports: usize,
    /// Which attempt failed (1 for the first).
    pub attempt: u32,
    /// Whether the batch will be tried again; when `false` its reports are lost to this sink.
    pub will_retry: bool,
}

pub(crate) type ErrorHook = Arc<dyn Fn(&SinkFailure<'_>) + Send + Sync>;

pub(crate) fn default_error_hook() -> ErrorHook {
    Arc::new(|failure: &SinkFailure<'_>| {
        tracing::warn!(
            target: "tower_csp_reports",
            sink = failure.sink,
            reports = failure.reports,
            attempt = failure.attempt,
            will_retry = failure.will_retry,
            error = crate::error::chain(failure.error),
            "CSP report sink failed"
        );
    })
}

/// Counters of one sink.
#[derive(Debug, Default)]
struct SinkCounters {
    delivered: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    errors: AtomicU64,
    queued: AtomicUsize,
    dropped_unwarned: AtomicU64,
    last_drop_warning: Mutex<Option<Instant>>,
}

/// A snapshot of one sink's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SinkStats {
    /// The sink's name.
    pub name: String,
    /// Reports the sink accepted.
    pub delivered: u64,
    /// Reports dropped because the sink's queue was full or the dispatcher was shut down.
    pub dropped: u64,
    /// Reports lost after the sink failed for good (permanent error or retries exhausted).
    pub failed: u64,
    /// Failed calls, retried or not.
    pub errors: u64,
    /// Reports waiting in the queue now.
    pub queued: usize,
}

pub(crate) struct Slot {
    sink: Arc<dyn ReportSink>,
    options: SinkOptions,
    counters: SinkCounters,
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("sink", &self.sink.name())
            .field("options", &self.options)
            .finish()
    }
}

enum Msg {
    Reports(Arc<Vec<Report>>),
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// The sinks and their workers, shared by every clone of a layer and its services.
pub(crate) struct Dispatcher {
    slots: Vec<Arc<Slot>>,
    mode: Dispatch,
    hook: ErrorHook,
    workers: OnceLock<Vec<mpsc::UnboundedSender<Msg>>>,
    closed: AtomicBool,
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("slots", &self.slots)
            .field("mode", &self.mode)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    pub(crate) fn new(
        sinks: Vec<(Arc<dyn ReportSink>, SinkOptions)>,
        mode: Dispatch,
        hook: ErrorHook,
    ) -> Self {
        Self {
            slots: sinks
                .into_iter()
                .map(|(sink, options)| {
                    Arc::new(Slot {
                        sink,
                        options,
                        counters: SinkCounters::default(),
                    })
                })
                .collect(),
            mode,
            hook,
            workers: OnceLock::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Hands a request's reports to every sink's queue, without waiting. The reports come
    /// back when they are to be delivered before the answer instead ([`Dispatch::Inline`],
    /// or no runtime to start the workers on): pass them to
    /// [`deliver_inline`](Self::deliver_inline).
    pub(crate) fn dispatch(&self, reports: Vec<Report>) -> Option<Arc<Vec<Report>>> {
        if reports.is_empty() || self.slots.is_empty() {
            return None;
        }
        // Shared by every sink as it is: no copy of the reports.
        let chunk = Arc::new(reports);
        if self.closed.load(Ordering::Acquire) {
            for slot in &self.slots {
                slot.counters
                    .dropped
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            return None;
        }
        match self.mode {
            Dispatch::Inline => Some(chunk),
            Dispatch::Background => match self.workers() {
                Some(workers) => {
                    self.enqueue(workers, &chunk);
                    None
                }
                None => Some(chunk),
            },
        }
    }

    /// Delivers reports to every sink at once (with retries) and waits for all of them.
    pub(crate) async fn deliver_inline(&self, chunk: Arc<Vec<Report>>) {
        let mut batch = ReportBatch::new();
        batch.push_chunk(chunk);
        let tasks: Vec<_> = self
            .slots
            .iter()
            .map(|slot| {
                let slot = Arc::clone(slot);
                let hook = Arc::clone(&self.hook);
                let batch = batch.clone();
                tokio::spawn(async move { deliver(&slot, &hook, batch).await })
            })
            .collect();
        for task in tasks {
            // `deliver` catches the sink's panics itself; a join error means the runtime is
            // shutting down, and there is nobody left to tell.
            let _ = task.await;
        }
    }

    fn enqueue(&self, workers: &[mpsc::UnboundedSender<Msg>], chunk: &Arc<Vec<Report>>) {
        let n = chunk.len();
        for (slot, worker) in self.slots.iter().zip(workers) {
            let counters = &slot.counters;
            let before = counters.queued.fetch_add(n, Ordering::AcqRel);
            if before + n > slot.options.queue_capacity
                || worker.send(Msg::Reports(Arc::clone(chunk))).is_err()
            {
                counters.queued.fetch_sub(n, Ordering::AcqRel);
                counters.dropped.fetch_add(n as u64, Ordering::Relaxed);
                warn_dropped(slot, n as u64);
            }
        }
    }

    /// The workers, started on first use (inside the runtime that serves the requests).
    fn workers(&self) -> Option<&[mpsc::UnboundedSender<Msg>]> {
        if let Some(workers) = self.workers.get() {
            return Some(workers);
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let workers = self.workers.get_or_init(|| {
            self.slots
                .iter()
                .map(|slot| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    runtime.spawn(run_worker(Arc::clone(slot), Arc::clone(&self.hook), rx));
                    tx
                })
                .collect()
        });
        Some(workers)
    }

    /// Waits until every report queued so far was handed to its sink (or given up on).
    pub(crate) async fn flush(&self) {
        self.signal(Msg::Flush).await;
    }

    /// Stops accepting reports, drains every queue, and calls each sink's `shutdown`.
    pub(crate) async fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        if self.workers.get().is_none() {
            for slot in &self.slots {
                if let Err(error) = slot.sink.shutdown().await {
                    report_failure(slot, &self.hook, &error, 0, 1, false);
                }
            }
            return;
        }
        self.signal(Msg::Shutdown).await;
    }

    async fn signal(&self, make: fn(oneshot::Sender<()>) -> Msg) {
        let Some(workers) = self.workers.get() else {
            return;
        };
        let waits: Vec<_> = workers
            .iter()
            .filter_map(|worker| {
                let (tx, rx) = oneshot::channel();
                worker.send(make(tx)).ok().map(|()| rx)
            })
            .collect();
        for wait in waits {
            // An error means the worker already stopped, which is what we wait for.
            let _ = wait.await;
        }
    }

    pub(crate) fn stats(&self) -> Vec<SinkStats> {
        self.slots
            .iter()
            .map(|slot| {
                let c = &slot.counters;
                SinkStats {
                    name: slot.sink.name().to_owned(),
                    delivered: c.delivered.load(Ordering::Relaxed),
                    dropped: c.dropped.load(Ordering::Relaxed),
                    failed: c.failed.load(Ordering::Relaxed),
                    errors: c.errors.load(Ordering::Relaxed),
                    queued: c.queued.load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}

fn warn_dropped(slot: &Slot, n: u64) {
    let counters = &slot.counters;
    counters.dropped_unwarned.fetch_add(n, Ordering::Relaxed);
    let mut last = counters
        .last_drop_warning
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let now = Instant::now();
    if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(10)) {
        return;
    }
    *last = Some(now);
    let dropped = counters.dropped_unwarned.swap(0, Ordering::Relaxed);
    tracing::warn!(
        target: "tower_csp_reports",
        sink = slot.sink.name(),
        dropped,
        capacity = slot.options.queue_capacity,
        "CSP report queue full: reports dropped for this sink"
    );
}

async fn run_worker(slot: Arc<Slot>, hook: ErrorHook, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut worker = Worker {
        slot: &slot,
        batch: ReportBatch::new(),
        deliveries: Deliveries::new(&slot, &hook),
        linger: Box::pin(tokio::time::sleep(Duration::ZERO)),
    };
    loop {
        let msg = if worker.batch.is_empty() {
            rx.recv().await
        } else {
            tokio::select! {
                biased;
                msg = rx.recv() => msg,
                () = &mut worker.linger => {
                    worker.deliveries.start(&mut worker.batch).await;
                    continue;
                }
            }
        };
        let Some(msg) = msg else {
            worker.finish().await;
            return;
        };
        if worker.take(msg, &mut rx).await.is_break() {
            return;
        }
        if !worker.batch.is_empty() {
            // Requests hand their reports over one by one, and Tokio runs a task woken by
            // another right after it: this worker would run once per request. It steps aside
            // until the tasks ready now have run, then takes everything they queued at once.
            tokio::task::yield_now().await;
            while let Ok(msg) = rx.try_recv() {
                if worker.take(msg, &mut rx).await.is_break() {
                    return;
                }
            }
        }
    }
}

/// What a worker holds between messages.
struct Worker<'w> {
    slot: &'w Arc<Slot>,
    batch: ReportBatch,
    deliveries: Deliveries<'w>,
    /// One timer for the whole batch, set when the batch starts: a timer made per message
    /// would be registered and cancelled once per request.
    linger: Pin<Box<tokio::time::Sleep>>,
}

impl Worker<'_> {
    /// Acts on one message; `Break` when the worker is to stop.
    async fn take(&mut self, msg: Msg, rx: &mut mpsc::UnboundedReceiver<Msg>) -> ControlFlow<()> {
        match msg {
            Msg::Reports(chunk) => self.push(chunk).await,
            Msg::Flush(done) => {
                self.deliveries.start(&mut self.batch).await;
                self.deliveries.finish().await;
                let _ = done.send(());
            }
            Msg::Shutdown(done) => {
                // Reports sent by requests that raced with the shutdown are still taken.
                while let Ok(msg) = rx.try_recv() {
                    if let Msg::Reports(chunk) = msg {
                        self.push(chunk).await;
                    }
                }
                self.finish().await;
                if let Err(error) = self.slot.sink.shutdown().await {
                    report_failure(self.slot, self.deliveries.hook, &error, 0, 1, false);
                }
                let _ = done.send(());
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// Adds reports to the batch, and hands the batch on once it is full.
    async fn push(&mut self, chunk: Arc<Vec<Report>>) {
        if self.batch.is_empty() {
            let deadline = Instant::now() + self.slot.options.linger;
            self.linger.as_mut().reset(deadline);
        }
        self.batch.push_chunk(chunk);
        if self.batch.len() >= self.slot.options.batch_size {
            self.deliveries.start(&mut self.batch).await;
        }
    }

    /// Delivers what is left and waits for every batch still with the sink.
    async fn finish(&mut self) {
        self.deliveries.start(&mut self.batch).await;
        self.deliveries.finish().await;
    }
}

/// The batches a worker has handed to its sink and not yet seen through.
struct Deliveries<'w> {
    slot: &'w Arc<Slot>,
    hook: &'w ErrorHook,
    /// Used only when more than one batch may be with the sink at once.
    running: tokio::task::JoinSet<()>,
}

impl<'w> Deliveries<'w> {
    fn new(slot: &'w Arc<Slot>, hook: &'w ErrorHook) -> Self {
        Self {
            slot,
            hook,
            running: tokio::task::JoinSet::new(),
        }
    }

    /// Takes the batch and delivers it: at once with a concurrency of one, otherwise in a
    /// task of its own, after waiting for a free place.
    async fn start(&mut self, batch: &mut ReportBatch) {
        if batch.is_empty() {
            return;
        }
        let batch = std::mem::take(batch);
        self.slot
            .counters
            .queued
            .fetch_sub(batch.len(), Ordering::AcqRel);
        let limit = self.slot.options.concurrency;
        if limit <= 1 {
            deliver(self.slot, self.hook, batch).await;
            return;
        }
        while self.running.try_join_next().is_some() {}
        while self.running.len() >= limit {
            self.running.join_next().await;
        }
        let (slot, hook) = (Arc::clone(self.slot), Arc::clone(self.hook));
        self.running
            .spawn(async move { deliver(&slot, &hook, batch).await });
    }

    /// Waits for every batch still with the sink.
    async fn finish(&mut self) {
        // `deliver` catches the sink's panics; a join error means the runtime is going away.
        while self.running.join_next().await.is_some() {}
    }
}

/// Calls the sink until it accepts the batch, fails for good, or retries run out.
async fn deliver(slot: &Arc<Slot>, hook: &ErrorHook, batch: ReportBatch) {
    let options = &slot.options;
    let n = batch.len();
    let mut backoff = options.backoff;
    let mut attempt = 1;
    loop {
        match call(slot, &batch).await {
            Ok(()) => {
                slot.counters
                    .delivered
                    .fetch_add(n as u64, Ordering::Relaxed);
                return;
            }
            Err(error) => {
                let will_retry = error.is_transient() && attempt <= options.retries;
                report_failure(slot, hook, &error, n, attempt, will_retry);
                if !will_retry {
                    slot.counters.failed.fetch_add(n as u64, Ordering::Relaxed);
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(options.max_backoff);
                attempt += 1;
            }
        }
    }
}

/// One call, in its own task so that a panic is caught and a hang can be abandoned.
async fn call(slot: &Arc<Slot>, batch: &ReportBatch) -> Result<(), SinkError> {
    let sink = Arc::clone(&slot.sink);
    let batch = batch.clone();
    let mut task = tokio::spawn(async move { sink.send(&batch).await });
    match tokio::time::timeout(slot.options.timeout, &mut task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(SinkError::panicked(match join.try_into_panic() {
            Ok(payload) => panic_message(payload.as_ref()),
            Err(join) => join.to_string(),
        })),
        Err(_) => {
            task.abort();
            Err(SinkError::timed_out(slot.options.timeout))
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

fn report_failure(
    slot: &Slot,
    hook: &ErrorHook,
    error: &SinkError,
    reports: usize,
    attempt: u32,
    will_retry: bool,
) {
    slot.counters.errors.fetch_add(1, Ordering::Relaxed);
    let failure = SinkFailure {
        sink: slot.sink.name(),
        error,
        reports,
        attempt,
        will_retry,
    };
    // The hook is user code: a panic in it must not take the worker down.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&failure)));
    if caught.is_err() {
        tracing::error!(target: "tower_csp_reports", sink = slot.sink.name(), "the sink error hook panicked");
    }
}
