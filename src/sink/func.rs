use std::fmt;
use std::future::Future;

use async_trait::async_trait;

use super::{ReportBatch, ReportSink, SinkError};

/// A sink from an async closure; see [`sink_fn`].
#[derive(Clone)]
pub struct SinkFn<F> {
    name: String,
    f: F,
}

/// Makes a sink from an async closure that takes the batch by value (cloning a batch is cheap).
///
/// ```
/// use tower_csp_reports::sink::{sink_fn, ReportBatch, ReportSink};
///
/// let sink = sink_fn(|batch: ReportBatch| async move {
///     for report in batch.iter() {
///         println!("{:?} blocked {:?}", report.document_uri, report.blocked_uri);
///     }
///     Ok(())
/// })
/// .named("stdout");
/// assert_eq!(sink.name(), "stdout");
/// ```
pub fn sink_fn<F, Fut>(f: F) -> SinkFn<F>
where
    F: Fn(ReportBatch) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), SinkError>> + Send + 'static,
{
    SinkFn {
        name: "fn".to_owned(),
        f,
    }
}

impl<F> SinkFn<F> {
    /// Names the sink in counters and error messages (default `"fn"`).
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl<F> fmt::Debug for SinkFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkFn").field("name", &self.name).finish()
    }
}

#[async_trait]
impl<F, Fut> ReportSink for SinkFn<F>
where
    F: Fn(ReportBatch) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), SinkError>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        (self.f)(batch.clone()).await
    }
}
