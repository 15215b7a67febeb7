//! The fan-out: a request's reports to every sink's queue, with admission for required sinks.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::deliver::{deliver, shut_down};
use super::hook::ErrorHook;
use super::slot::Slot;
use super::stats::SinkStats;
use super::worker::{self, WorkerMessage};
use super::{Dispatch, SinkOptions};
use crate::Report;
use crate::alert::Alert;
use crate::sink::{ReportBatch, ReportSink};

/// What became of a request's reports.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Every required sink has them queued (best-effort sinks took what fitted).
    Queued,
    /// To be delivered before the answer ([`Dispatch::Inline`], or no runtime to start the
    /// workers on): pass them to [`Dispatcher::deliver_inline`].
    Inline(Arc<Vec<Report>>),
    /// A required sink had no room for them in time, or the layer is shut down: the request
    /// is to be answered `503`. No sink has them.
    Refused,
}

/// The sinks and their workers, shared by every clone of a layer and its services.
pub(crate) struct Dispatcher {
    slots: Vec<Arc<Slot>>,
    mode: Dispatch,
    hook: ErrorHook,
    workers: OnceLock<Vec<mpsc::UnboundedSender<WorkerMessage>>>,
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
                .map(|(sink, options)| Arc::new(Slot::new(sink, options)))
                .collect(),
            mode,
            hook,
            workers: OnceLock::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Hands a request's reports to every sink's queue. A required sink without room is
    /// waited for until `wait` has passed; the reports then go to no sink at all.
    pub(crate) async fn admit(&self, reports: Vec<Report>, wait: Duration) -> Admission {
        if reports.is_empty() || self.slots.is_empty() {
            return Admission::Queued;
        }
        // Shared by every sink as it is: no copy of the reports.
        let chunk = Arc::new(reports);
        let n = chunk.len();
        if self.closed.load(Ordering::Acquire) {
            if self
                .slots
                .iter()
                .any(|slot| slot.options().requires_reports())
            {
                return Admission::Refused;
            }
            for slot in self.report_slots() {
                slot.drop_reports(n);
            }
            return Admission::Queued;
        }
        let workers = match self.mode {
            Dispatch::Inline => None,
            Dispatch::Background => self.workers(),
        };
        let Some(workers) = workers else {
            return Admission::Inline(chunk);
        };
        if !self.reserve_required(n, wait).await {
            return Admission::Refused;
        }
        for (slot, worker) in self.slots.iter().zip(workers) {
            if slot.takes_alerts() {
                continue;
            }
            let reserved = slot.options().requires_reports() || slot.try_reserve(n);
            if !reserved {
                slot.drop_reports(n);
            } else if worker
                .send(WorkerMessage::Reports(Arc::clone(&chunk)))
                .is_err()
            {
                // The worker is gone: the runtime is shutting down.
                slot.release(n);
                slot.drop_reports(n);
            }
        }
        Admission::Queued
    }

    /// Takes room for `n` reports in every required sink's queue, or none at all.
    async fn reserve_required(&self, n: usize, wait: Duration) -> bool {
        let required = || {
            self.slots
                .iter()
                .filter(|slot| slot.options().requires_reports())
        };
        let mut short: Vec<&Arc<Slot>> = required().filter(|slot| !slot.try_reserve(n)).collect();
        if short.is_empty() {
            return true;
        }
        let deadline = Instant::now() + wait;
        while let Some(slot) = short.last() {
            if !slot.reserve(n, deadline).await {
                for slot in required().filter(|slot| !short.iter().any(|s| Arc::ptr_eq(s, slot))) {
                    slot.release(n);
                }
                return false;
            }
            short.pop();
        }
        true
    }

    /// Delivers reports to every sink at once (with retries) and waits for all of them;
    /// returns whether every required sink took them.
    pub(crate) async fn deliver_inline(&self, chunk: Arc<Vec<Report>>) -> bool {
        let mut batch = ReportBatch::new();
        batch.push_chunk(chunk);
        let tasks: Vec<_> = self
            .report_slots()
            .map(|slot| {
                let slot = Arc::clone(slot);
                let hook = Arc::clone(&self.hook);
                let batch = batch.clone();
                let required = slot.options().requires_reports();
                let task = tokio::spawn(async move { deliver(&slot, &hook, batch).await });
                (required, task)
            })
            .collect();
        let mut stored = true;
        for (required, task) in tasks {
            // `deliver` catches the sink's panics itself; a join error means the runtime is
            // shutting down, and the reports did not get through.
            let delivered = task.await.unwrap_or(false);
            stored &= delivered || !required;
        }
        stored
    }

    /// Hands alerts to every sink fed alerts ([`Feed::Alerts`](super::Feed::Alerts)): queued
    /// when there is room (dropped and counted otherwise), or delivered before returning
    /// when the layer delivers inline.
    pub(crate) async fn announce(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        let chunk = Arc::new(alerts);
        let n = chunk.len();
        let alert_slots = || self.slots.iter().filter(|slot| slot.takes_alerts());
        let workers = match self.mode {
            Dispatch::Inline => None,
            Dispatch::Background => self.workers(),
        };
        let closed = self.closed.load(Ordering::Acquire);
        let Some(workers) = workers.filter(|_| !closed) else {
            for slot in alert_slots() {
                if closed {
                    slot.drop_reports(n);
                } else {
                    deliver(
                        slot,
                        &self.hook,
                        ReportBatch::from_alert_chunk(Arc::clone(&chunk)),
                    )
                    .await;
                }
            }
            return;
        };
        for (slot, worker) in self.slots.iter().zip(workers) {
            if !slot.takes_alerts() {
                continue;
            }
            if !slot.try_reserve(n) {
                slot.drop_reports(n);
            } else if worker
                .send(WorkerMessage::Alerts(Arc::clone(&chunk)))
                .is_err()
            {
                slot.release(n);
                slot.drop_reports(n);
            }
        }
    }

    fn report_slots(&self) -> impl Iterator<Item = &Arc<Slot>> {
        self.slots.iter().filter(|slot| !slot.takes_alerts())
    }

    /// The workers, started on first use (inside the runtime that serves the requests).
    fn workers(&self) -> Option<&[mpsc::UnboundedSender<WorkerMessage>]> {
        if let Some(workers) = self.workers.get() {
            return Some(workers);
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let workers = self.workers.get_or_init(|| {
            self.slots
                .iter()
                .map(|slot| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    runtime.spawn(worker::run(Arc::clone(slot), Arc::clone(&self.hook), rx));
                    tx
                })
                .collect()
        });
        Some(workers)
    }

    /// Waits until every report queued so far was handed to its sink (or given up on).
    pub(crate) async fn flush(&self) {
        self.signal(WorkerMessage::Flush).await;
    }

    /// Stops accepting reports, drains every queue, and calls each sink's `shutdown`.
    pub(crate) async fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        if self.workers.get().is_none() {
            for slot in &self.slots {
                shut_down(slot, &self.hook).await;
            }
            return;
        }
        self.signal(WorkerMessage::Shutdown).await;
    }

    async fn signal(&self, make: fn(oneshot::Sender<()>) -> WorkerMessage) {
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
        self.slots.iter().map(|slot| slot.stats()).collect()
    }
}
