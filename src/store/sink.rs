use async_trait::async_trait;

use super::ReportStore;
use crate::SinkOptions;
use crate::sink::{ReportBatch, ReportSink, SinkError};

/// The sink of a store: each batch goes to [`ReportStore::write`]; transient store errors are
/// transient sink errors, so the dispatcher retries them.
#[derive(Debug, Clone)]
pub(crate) struct StoreSink<S> {
    store: S,
}

impl<S: ReportStore> StoreSink<S> {
    pub(crate) fn new(store: S) -> Self {
        Self { store }
    }
}

#[async_trait]
impl<S: ReportStore> ReportSink for StoreSink<S> {
    fn name(&self) -> &str {
        self.store.name()
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        self.store
            .write(batch)
            .await
            .map(drop)
            .map_err(SinkError::from)
    }

    /// [`SinkOptions::store`]: required, large batches, several at once.
    fn default_options(&self) -> SinkOptions {
        SinkOptions::store()
    }
}
