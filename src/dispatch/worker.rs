//! A sink's worker: gathers the reports of its queue into batches and sees them through,
//! up to `concurrency` at a time.

use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

use super::deliver::{deliver, shut_down};
use super::hook::ErrorHook;
use super::slot::Slot;
use crate::Report;
use crate::alert::Alert;
use crate::sink::ReportBatch;

/// What the dispatcher tells a worker.
#[derive(Debug)]
pub(crate) enum WorkerMessage {
    /// The reports of one request.
    Reports(Arc<Vec<Report>>),
    /// Alerts, for a sink fed alerts.
    Alerts(Arc<Vec<Alert>>),
    /// Hand the sink everything queued so far, wait for it, then answer.
    Flush(oneshot::Sender<()>),
    /// Like a flush, then call the sink's `shutdown` and stop.
    Shutdown(oneshot::Sender<()>),
}

/// Runs until told to shut down, or until the dispatcher is gone.
pub(crate) async fn run(
    slot: Arc<Slot>,
    hook: ErrorHook,
    rx: mpsc::UnboundedReceiver<WorkerMessage>,
) {
    let mut worker = Worker {
        slot,
        hook,
        rx,
        batch: ReportBatch::new(),
        linger: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
        running: JoinSet::new(),
        deferred: None,
    };
    loop {
        let msg = match worker.deferred.take() {
            Some(msg) => Some(msg),
            None if worker.batch.pending() == 0 => worker.rx.recv().await,
            None => tokio::select! {
                biased;
                msg = worker.rx.recv() => msg,
                () = &mut worker.linger => {
                    worker.start().await;
                    continue;
                }
            },
        };
        let Some(msg) = msg else {
            worker.finish().await;
            return;
        };
        if worker.take(msg).await.is_break() {
            return;
        }
        if worker.batch.pending() > 0 && worker.deferred.is_none() {
            // Requests hand their reports over one by one, and Tokio runs a task woken by
            // another right after it: this worker would run once per request. It steps aside
            // until the tasks ready now have run, then takes everything they queued at once.
            tokio::task::yield_now().await;
            worker.gather().await;
        }
    }
}

struct Worker {
    slot: Arc<Slot>,
    hook: ErrorHook,
    rx: mpsc::UnboundedReceiver<WorkerMessage>,
    /// The batch being gathered.
    batch: ReportBatch,
    /// One timer for the whole batch, set when the batch starts: a timer made per message
    /// would be registered and cancelled once per request.
    linger: Pin<Box<Sleep>>,
    /// Batches with the sink, when more than one may be at once.
    running: JoinSet<()>,
    /// A flush or shutdown met while gathering, acted on next.
    deferred: Option<WorkerMessage>,
}

impl Worker {
    /// Acts on one message; `Break` when the worker is to stop.
    async fn take(&mut self, msg: WorkerMessage) -> ControlFlow<()> {
        match msg {
            WorkerMessage::Reports(chunk) => self.push(Chunk::Reports(chunk)).await,
            WorkerMessage::Alerts(chunk) => self.push(Chunk::Alerts(chunk)).await,
            WorkerMessage::Flush(done) => {
                self.finish().await;
                let _ = done.send(());
            }
            WorkerMessage::Shutdown(done) => {
                // Reports sent by requests that raced with the shutdown are still taken.
                let mut waiting = vec![done];
                while let Ok(msg) = self.rx.try_recv() {
                    match msg {
                        WorkerMessage::Reports(chunk) => self.push(Chunk::Reports(chunk)).await,
                        WorkerMessage::Alerts(chunk) => self.push(Chunk::Alerts(chunk)).await,
                        WorkerMessage::Flush(done) | WorkerMessage::Shutdown(done) => {
                            waiting.push(done);
                        }
                    }
                }
                if let Some(WorkerMessage::Flush(done) | WorkerMessage::Shutdown(done)) =
                    self.deferred.take()
                {
                    waiting.push(done);
                }
                self.finish().await;
                shut_down(&self.slot, &self.hook).await;
                for done in waiting {
                    let _ = done.send(());
                }
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// Takes what the channel holds now, until a flush or shutdown comes up.
    async fn gather(&mut self) {
        while self.deferred.is_none() {
            match self.rx.try_recv() {
                Ok(WorkerMessage::Reports(chunk)) => self.push(Chunk::Reports(chunk)).await,
                Ok(WorkerMessage::Alerts(chunk)) => self.push(Chunk::Alerts(chunk)).await,
                Ok(control) => self.deferred = Some(control),
                Err(_) => return,
            }
        }
    }

    /// Adds reports or alerts to the batch, and hands the batch on once it is full.
    async fn push(&mut self, chunk: Chunk) {
        if self.batch.pending() == 0 {
            let deadline = Instant::now() + self.slot.options().linger;
            self.linger.as_mut().reset(deadline);
        }
        chunk.add_to(&mut self.batch);
        if self.batch.pending() >= self.slot.options().batch_size {
            self.start().await;
        }
    }

    /// Hands the batch to the sink once a place is free: at once with a concurrency of one,
    /// otherwise in a task of its own. What came in while it waited for a place joins it, up
    /// to the batch size: under load, batches grow.
    async fn start(&mut self) {
        if self.batch.pending() == 0 {
            return;
        }
        let options = *self.slot.options();
        while self.running.try_join_next().is_some() {}
        while self.running.len() >= options.concurrency {
            self.running.join_next().await;
        }
        while self.batch.pending() < options.batch_size && self.deferred.is_none() {
            match self.rx.try_recv() {
                Ok(WorkerMessage::Reports(chunk)) => self.batch.push_chunk(chunk),
                Ok(WorkerMessage::Alerts(chunk)) => self.batch.push_alerts(chunk),
                Ok(control) => self.deferred = Some(control),
                Err(_) => break,
            }
        }
        let mut batch = std::mem::take(&mut self.batch);
        batch.set_dropped(self.slot.counters().take_untold());
        self.slot.release(batch.pending());
        if options.concurrency <= 1 {
            deliver(&self.slot, &self.hook, batch).await;
            return;
        }
        let (slot, hook) = (Arc::clone(&self.slot), Arc::clone(&self.hook));
        self.running.spawn(async move {
            deliver(&slot, &hook, batch).await;
        });
    }

    /// Delivers what is gathered and waits for every batch still with the sink.
    async fn finish(&mut self) {
        self.start().await;
        // `deliver` catches the sink's panics; a join error means the runtime is going away.
        while self.running.join_next().await.is_some() {}
    }
}

/// What one message adds to a batch.
enum Chunk {
    Reports(Arc<Vec<Report>>),
    Alerts(Arc<Vec<Alert>>),
}

impl Chunk {
    fn add_to(self, batch: &mut ReportBatch) {
        match self {
            Self::Reports(chunk) => batch.push_chunk(chunk),
            Self::Alerts(chunk) => batch.push_alerts(chunk),
        }
    }
}
