//! Seeing one batch through: a call with a timeout, in a task of its own so a panic is
//! caught, retried with backoff while the failure is transient.

use std::sync::Arc;
use std::time::Duration;

use super::backoff::Backoff;
use super::hook::{ErrorHook, SinkFailure, tell};
use super::slot::Slot;
use crate::metrics::Started;
use crate::sink::{ReportBatch, ReportSink, SinkError};

/// Calls the sink until it accepts the batch, fails for good, or retries run out; counts the
/// outcome and tells the hook of every failure. Returns whether the sink accepted it.
pub(crate) async fn deliver(slot: &Arc<Slot>, hook: &ErrorHook, batch: ReportBatch) -> bool {
    let options = slot.options();
    let n = batch.pending();
    let mut backoff = Backoff::new(options.backoff, options.max_backoff);
    let mut attempt: u32 = 1;
    loop {
        let Err(error) = call(slot, &batch).await else {
            slot.counters().delivered(n);
            return true;
        };
        let will_retry = error.is_transient() && attempt <= options.retries;
        failed(slot, hook, &error, n, attempt, will_retry);
        if !will_retry {
            slot.counters().failed(n);
            return false;
        }
        tokio::time::sleep(backoff.next_wait()).await;
        attempt = attempt.saturating_add(1);
    }
}

/// The sink's [`shutdown`](crate::ReportSink::shutdown), with its failure told to the hook.
pub(crate) async fn shut_down(slot: &Slot, hook: &ErrorHook) {
    if let Err(error) = slot.sink().shutdown().await {
        failed(slot, hook, &error, 0, 1, false);
    }
}

async fn call(slot: &Arc<Slot>, batch: &ReportBatch) -> Result<(), SinkError> {
    let started = Started::now();
    let result = call_sink(slot.sink(), batch, slot.options().timeout).await;
    slot.counters().called(started);
    result
}

/// One call to a sink, in its own task so that a panic is caught and a hang can be
/// abandoned after `timeout`. Everything that hands reports to a sink goes through here.
pub(crate) async fn call_sink(
    sink: &Arc<dyn ReportSink>,
    batch: &ReportBatch,
    timeout: Duration,
) -> Result<(), SinkError> {
    let sink = Arc::clone(sink);
    let batch = batch.clone();
    let mut task = tokio::spawn(async move { sink.send(&batch).await });
    match tokio::time::timeout(timeout, &mut task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(SinkError::panicked(match join.try_into_panic() {
            Ok(payload) => panic_message(payload.as_ref()),
            Err(join) => join.to_string(),
        })),
        Err(_) => {
            task.abort();
            Err(SinkError::timed_out(timeout))
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

fn failed(
    slot: &Slot,
    hook: &ErrorHook,
    error: &SinkError,
    reports: usize,
    attempt: u32,
    will_retry: bool,
) {
    slot.counters().error();
    tell(
        hook,
        &SinkFailure {
            sink: slot.name(),
            error,
            reports,
            attempt,
            will_retry,
        },
    );
}
