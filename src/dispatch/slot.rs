//! One sink as the dispatcher sees it: the sink, its options, its bounded queue, its counters.

use std::fmt;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::SinkOptions;
use super::stats::{SinkCounters, SinkStats};
use crate::metrics::{self as m, Level};
use crate::sink::ReportSink;

pub(crate) struct Slot {
    sink: Arc<dyn ReportSink>,
    options: SinkOptions,
    /// Reports admitted and not yet handed to the sink: in the channel or in the batch the
    /// worker is gathering.
    queued: Level,
    /// Woken whenever reports leave the queue, for requests waiting for room.
    room: Notify,
    counters: SinkCounters,
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("sink", &self.sink.name())
            .field("options", &self.options)
            .field("queued", &self.queued.get())
            .finish_non_exhaustive()
    }
}

impl Slot {
    pub(crate) fn new(sink: Arc<dyn ReportSink>, options: SinkOptions) -> Self {
        let name = sink.name();
        Self {
            queued: Level::new(
                (m::SINK_QUEUED, "Reports waiting in each sink's queue."),
                name,
            ),
            counters: SinkCounters::new(name),
            sink,
            options,
            room: Notify::new(),
        }
    }

    pub(crate) fn sink(&self) -> &Arc<dyn ReportSink> {
        &self.sink
    }

    pub(crate) fn name(&self) -> &str {
        self.sink.name()
    }

    pub(crate) fn options(&self) -> &SinkOptions {
        &self.options
    }

    pub(crate) fn counters(&self) -> &SinkCounters {
        &self.counters
    }

    /// Takes room for `n` reports in the queue, if there is some. An empty queue takes any
    /// request's reports, so one larger than the capacity is not refused for ever.
    pub(crate) fn try_reserve(&self, n: usize) -> bool {
        let before = self.queued.add(n);
        if before == 0 || before + n <= self.options.queue_capacity {
            return true;
        }
        self.queued.sub(n);
        false
    }

    /// Waits until there is room for `n` reports or `deadline` passes.
    pub(crate) async fn reserve(&self, n: usize, deadline: Instant) -> bool {
        loop {
            // Registered before the check, so room made in between still wakes us.
            let notified = self.room.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.try_reserve(n) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.try_reserve(n);
            }
        }
    }

    /// Gives back room: reports taken into a delivery, or a reservation not used.
    pub(crate) fn release(&self, n: usize) {
        self.queued.sub(n);
        self.room.notify_waiters();
    }

    /// Counts reports this sink will not get.
    pub(crate) fn drop_reports(&self, n: usize) {
        self.counters
            .dropped(self.sink.name(), self.options.queue_capacity, n);
    }

    pub(crate) fn stats(&self) -> SinkStats {
        self.counters
            .snapshot(self.sink.name(), self.options.required, self.queued.get())
    }
}
