use serde::Serialize;
use tokio::sync::broadcast;

use super::Violation;

/// Something a write did to a violation that people may want to hear about at once.
///
/// Decided by the store's upsert, inside the transaction that stores the reports: when several
/// collectors write to one database, exactly one of them creates a violation (or reopens a
/// fixed one), so exactly one of them emits its event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ViolationEvent {
    /// What happened.
    pub kind: ViolationEventKind,
    /// The violation as the write left it.
    pub violation: Violation,
}

/// What happened to a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ViolationEventKind {
    /// Its first report was stored: a violation never seen before.
    New,
    /// A report of a violation marked fixed was stored: it is `new` again.
    Regressed,
}

/// What one write stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOutcome {
    /// How many reports were stored; those already stored (a retried batch) are not counted
    /// and count nowhere.
    pub inserted: u64,
    /// The violations this write created or reopened, in fingerprint order.
    pub events: Vec<ViolationEvent>,
}

/// How many events a subscriber may fall behind before it misses some.
const CAPACITY: usize = 4096;

/// The events of one store handle, for its subscribers.
#[derive(Debug)]
pub(crate) struct EventChannel {
    sender: broadcast::Sender<ViolationEvent>,
}

impl EventChannel {
    pub(crate) fn new() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ViolationEvent> {
        self.sender.subscribe()
    }

    /// Hands a committed write's events to the subscribers (none is fine).
    pub(crate) fn publish(&self, events: &[ViolationEvent]) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        for event in events {
            let _ = self.sender.send(event.clone());
        }
    }
}
