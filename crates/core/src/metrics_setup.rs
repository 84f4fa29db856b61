//! The process-wide Prometheus recorder. Installed once (a second call returns the same
//! handle, so tests can start several services in one process); `/metrics` renders it.
//!
//! Fails only if another recorder was installed first, in which case metrics are not
//! collected and `None` is returned; the service still runs.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Event lag buckets in seconds, from 50 ms to a day: lag includes webhook retries and
/// outages, so it must be able to say "hours".
const LAG_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    7200.0, 21600.0, 86400.0,
];

/// Latency buckets in seconds, from 0.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often the histograms' sample buffers are drained. Every 1 s rather than 5: at
/// ~18k webhooks/s the receiver records two samples per request, and draining five
/// seconds of them at once (blocks freed later, cold, on the recording threads) cost
/// 25.3 µs of receiver CPU per request against 23.4 µs at 1 s
/// (`scripts/bench-ingress.sh 15 3`, docs/performance.md).
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Returns the recorder handle, installing it on first use.
pub fn prometheus() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            // The full-name matcher is registered first and wins over the suffix.
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(crate::metric::EVENT_LAG_SECONDS.into()),
                    LAG_BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full(crate::metric::WORKER_BATCH_SIZE.into()),
                    &[1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0],
                )
                .ok()?
                .install_recorder()
                .ok()?;
            crate::metric::describe();
            // The exporter needs periodic upkeep to drain histogram buffers.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                })
                .ok()?;
            Some(handle)
        })
        .clone()
}

/// The current metrics in Prometheus text format (empty when no recorder).
pub fn render() -> String {
    prometheus().map(|h| h.render()).unwrap_or_default()
}
