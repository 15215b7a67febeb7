//! The metrics the library tells the `metrics` facade, kept for Prometheus by
//! metrics-exporter-prometheus and rendered on each scrape.

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::Failure;

/// Latency buckets, in seconds: from a report answered at once to a store that hangs.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often histograms drop the samples already rendered.
const UPKEEP: Duration = Duration::from_secs(5);

/// Installs the process's recorder; call it before the layer and its sinks are built, which
/// register their metrics with it. Runs inside the runtime (its upkeep is a task).
pub(crate) fn install() -> Result<PrometheusHandle, Failure> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| Failure::runtime(format!("cannot set up the metrics: {e}")))?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}
