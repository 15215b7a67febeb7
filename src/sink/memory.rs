use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{ReportBatch, ReportSink, SinkError};
use crate::Report;

/// Keeps the most recent reports in memory, for tests and demos.
///
/// Clones share the same store, so keep one clone and give the other to the layer.
#[derive(Debug, Clone)]
pub struct MemorySink {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    reports: Mutex<Store>,
    changed: Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Store {
    recent: VecDeque<Report>,
    total: u64,
}

impl MemorySink {
    /// A sink that keeps the last 10,000 reports.
    pub fn new() -> Self {
        Self::with_capacity(10_000)
    }

    /// A sink that keeps the last `capacity` reports (older ones are forgotten).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                reports: Mutex::new(Store::default()),
                changed: Notify::new(),
                capacity: capacity.max(1),
            }),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave the store half-written.
        self.shared
            .reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The reports kept, oldest first.
    pub fn reports(&self) -> Vec<Report> {
        self.store().recent.iter().cloned().collect()
    }

    /// How many reports were ever received, including forgotten ones.
    pub fn total(&self) -> u64 {
        self.store().total
    }

    /// Forgets every report.
    pub fn clear(&self) {
        let mut store = self.store();
        store.recent.clear();
        store.total = 0;
    }

    /// Waits until at least `count` reports were received in all, or `timeout` passes;
    /// returns the reports kept.
    pub async fn wait_for(&self, count: u64, timeout: Duration) -> Vec<Report> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the check, so a batch that lands in between still wakes us.
            let notified = self.shared.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.total() >= count {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        self.reports()
    }
}

impl Default for MemorySink {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ReportSink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        {
            let mut store = self.store();
            for report in batch.iter() {
                if store.recent.len() == self.shared.capacity {
                    store.recent.pop_front();
                }
                store.recent.push_back(report.clone());
                store.total += 1;
            }
        }
        self.shared.changed.notify_waiters();
        Ok(())
    }
}
