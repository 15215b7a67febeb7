//! The error hook: told of every failed call to a sink, whatever the sink.

use std::sync::Arc;

use crate::sink::SinkError;

/// A failed call to a sink, as told to the error hook.
#[derive(Debug)]
#[non_exhaustive]
pub struct SinkFailure<'a> {
    /// The sink's name.
    pub sink: &'a str,
    /// What went wrong.
    pub error: &'a SinkError,
    /// How many reports the call carried (0 for a call that carried none, such as
    /// [`shutdown`](crate::ReportSink::shutdown)).
    pub reports: usize,
    /// Which attempt failed (1 for the first).
    pub attempt: u32,
    /// Whether the batch will be tried again; when `false` its reports are lost to this sink.
    pub will_retry: bool,
}

/// What the layer calls with every [`SinkFailure`].
pub(crate) type ErrorHook = Arc<dyn Fn(&SinkFailure<'_>) + Send + Sync>;

/// The default hook: a `tracing` warning with the whole chain of causes.
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

/// Tells the hook, which is user code: a panic in it must not take a worker down.
pub(crate) fn tell(hook: &ErrorHook, failure: &SinkFailure<'_>) {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(failure)));
    if caught.is_err() {
        tracing::error!(target: "tower_csp_reports", sink = failure.sink, "the sink error hook panicked");
    }
}
