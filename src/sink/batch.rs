use std::sync::Arc;

use crate::Report;
use crate::alert::Alert;

/// Reports handed to a sink in one call: the reports of one or more requests, or, for a
/// sink fed alerts ([`Feed::Alerts`](crate::dispatch::Feed::Alerts)), the
/// [`alerts`](Self::alerts) a store decided.
///
/// Cloning is cheap: the reports themselves are shared between sinks, never copied.
#[derive(Debug, Clone, Default)]
pub struct ReportBatch {
    chunks: Vec<Arc<Vec<Report>>>,
    len: usize,
    alerts: Vec<Arc<Vec<Alert>>>,
    alert_len: usize,
    dropped: u64,
}

impl ReportBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the reports of one request.
    pub(crate) fn push_chunk(&mut self, chunk: Arc<Vec<Report>>) {
        self.len += chunk.len();
        self.chunks.push(chunk);
    }

    /// Appends alerts.
    pub(crate) fn push_alerts(&mut self, chunk: Arc<Vec<Alert>>) {
        self.alert_len += chunk.len();
        self.alerts.push(chunk);
    }

    pub(crate) fn from_alert_chunk(chunk: Arc<Vec<Alert>>) -> Self {
        let mut batch = Self::new();
        batch.push_alerts(chunk);
        batch
    }

    /// Reports and alerts together: what the dispatcher counts.
    pub(crate) fn pending(&self) -> usize {
        self.len + self.alert_len
    }

    /// The alerts, in the order they were announced (none for a sink fed reports).
    pub fn alerts(&self) -> impl ExactSizeIterator<Item = &Alert> + '_ {
        Iter {
            inner: self.alerts.iter().flat_map(|chunk| chunk.iter()),
            remaining: self.alert_len,
        }
    }

    /// How many reports it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no reports (it may still hold [`alerts`](Self::alerts)).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many reports this sink lost to a full queue since its batch before this one, so
    /// that a sink that sums up what it gets (a digest) can say what it did not get.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub(crate) fn set_dropped(&mut self, dropped: u64) {
        self.dropped = dropped;
    }

    /// The reports, in the order they were received.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Report> + DoubleEndedIterator + '_ {
        Iter {
            inner: self.chunks.iter().flat_map(|chunk| chunk.iter()),
            remaining: self.len,
        }
    }
}

/// A batch's reports or alerts, walked knowing how many are left.
struct Iter<I> {
    inner: I,
    remaining: usize,
}

impl<'a, T: 'a, I: Iterator<Item = &'a T>> Iterator for Iter<I> {
    type Item = &'a T;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next()?;
        self.remaining -= 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<'a, T: 'a, I: DoubleEndedIterator<Item = &'a T>> DoubleEndedIterator for Iter<I> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = self.inner.next_back()?;
        self.remaining -= 1;
        Some(item)
    }
}

impl<'a, T: 'a, I: Iterator<Item = &'a T>> ExactSizeIterator for Iter<I> {}

impl<'a> IntoIterator for &'a ReportBatch {
    type Item = &'a Report;
    type IntoIter = Box<dyn Iterator<Item = &'a Report> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl From<Vec<Report>> for ReportBatch {
    fn from(reports: Vec<Report>) -> Self {
        let mut batch = Self::new();
        if !reports.is_empty() {
            batch.push_chunk(Arc::new(reports));
        }
        batch
    }
}

impl From<Vec<Alert>> for ReportBatch {
    /// A batch of alerts, as a sink fed alerts is given them.
    fn from(alerts: Vec<Alert>) -> Self {
        if alerts.is_empty() {
            return Self::new();
        }
        Self::from_alert_chunk(Arc::new(alerts))
    }
}

impl FromIterator<Report> for ReportBatch {
    fn from_iter<T: IntoIterator<Item = Report>>(iter: T) -> Self {
        Self::from(iter.into_iter().collect::<Vec<_>>())
    }
}
