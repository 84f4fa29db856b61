//! The cluster profile's measurements: a sampler that records, every 200 ms, how many
//! events the workers have applied and how many consumers the events queue has (asked
//! of whichever node answers), and the per-fault figures drawn from it and from the
//! times of the 200s: the longest window without a 200, and how long the workers'
//! processing stalled (the time they took to resume), with the consumer count the
//! queue reported.
//!
//! Failure model: a sample whose node or database did not answer is recorded as unknown
//! (`None`) and never counts as progress; the figures are printed, not judged (the run
//! fails only on lost, stale, resurrected, doubled or dead-lettered events).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use workos_sync_store::Store;
use workos_sync_testkit::Cluster;

/// One observation of the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since the run started.
    pub t: f64,
    pub processed: Option<i64>,
    pub consumers: Option<u32>,
}

/// A fault: what it was and when (seconds since the run started).
#[derive(Debug, Clone)]
pub struct Window {
    pub name: String,
    pub from: f64,
    /// When the node was serving again.
    pub to: f64,
    /// 503 answers counted from the fault until 5 s after the node was back.
    pub answered_503: u64,
}

/// Samples until `stop` is cancelled; the samples.
pub fn spawn_sampler(
    store: Store,
    cluster: Cluster,
    queue: String,
    started: Instant,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Vec<Sample>> {
    tokio::spawn(async move {
        let mut samples = Vec::new();
        while !stop.is_cancelled() {
            let processed = store.processed_count().await.ok();
            let consumers = cluster.queue_stats(&queue).await.ok().map(|(_, c)| c);
            samples.push(Sample {
                t: started.elapsed().as_secs_f64(),
                processed,
                consumers,
            });
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        samples
    })
}

/// The longest gap between consecutive 200s within `[from, to]` (counting from `from`);
/// `times` sorted.
pub fn longest_without_200(times: &[f64], from: f64, to: f64) -> f64 {
    let mut last = from;
    let mut longest: f64 = 0.0;
    for &t in times.iter().filter(|t| **t >= from && **t <= to) {
        longest = longest.max(t - last);
        last = t;
    }
    longest
}

/// The longest time within `[from, to]` during which the applied count did not grow.
pub fn longest_stall(samples: &[Sample], from: f64, to: f64) -> f64 {
    let mut last_progress = from;
    let mut seen: Option<i64> = None;
    let mut longest: f64 = 0.0;
    for s in samples.iter().filter(|s| s.t >= from && s.t <= to) {
        let Some(p) = s.processed else { continue };
        if seen.is_some_and(|before| p > before) {
            longest = longest.max(s.t - last_progress);
            last_progress = s.t;
        }
        seen = Some(p);
    }
    longest
}

/// Seconds from `from` until the events queue had `want` consumers again, if it lost
/// any; `None` when it never dropped below `want` in `[from, to]`, `Some(f64::INFINITY)`
/// when it did not come back by `to`.
pub fn consumers_back(samples: &[Sample], from: f64, to: f64, want: u32) -> Option<f64> {
    let mut dropped = false;
    for s in samples.iter().filter(|s| s.t >= from && s.t <= to) {
        match s.consumers {
            Some(c) if c < want => dropped = true,
            Some(c) if dropped && c >= want => return Some(s.t - from),
            // A node that does not answer tells nothing.
            _ => {}
        }
    }
    dropped.then_some(f64::INFINITY)
}

/// The report line of one fault.
pub fn describe(w: &Window, samples: &[Sample], accepted_at: &[f64], workers: u32) -> String {
    let settle = w.to + 30.0;
    // The consumer count is what the queue's leader reports; after a leader change it
    // lags behind the workers (which the stall shows), so it is told as such.
    let consumers = match consumers_back(samples, w.from, settle, workers) {
        None => format!("the queue reported {workers} consumers throughout"),
        Some(t) if t.is_finite() => {
            format!("the queue reported {workers} consumers again after {t:.1} s")
        }
        Some(_) => format!("the queue reported fewer than {workers} consumers 30 s after"),
    };
    format!(
        "{}: node down {:.1} s, {} answers 503, longest window without a 200 {:.1} s, the workers' processing stalled at most {:.1} s ({consumers})",
        w.name,
        w.to - w.from,
        w.answered_503,
        longest_without_200(accepted_at, w.from, w.to + 5.0),
        longest_stall(samples, w.from, settle),
    )
}

/// The accept times recorded by the senders, sorted.
pub async fn sorted(times: &Arc<Mutex<Vec<f64>>>) -> Vec<f64> {
    let mut t = times.lock().await.clone();
    t.sort_by(f64::total_cmp);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: f64, processed: i64, consumers: u32) -> Sample {
        Sample {
            t,
            processed: Some(processed),
            consumers: Some(consumers),
        }
    }

    #[test]
    fn figures_from_samples() {
        let times = [1.0, 2.0, 2.5, 6.0, 6.1];
        assert!((longest_without_200(&times, 2.0, 7.0) - 3.5).abs() < 1e-9);
        let samples = [
            s(0.0, 10, 2),
            s(1.0, 20, 1),
            s(2.0, 20, 1),
            s(3.0, 20, 2),
            s(4.0, 30, 2),
        ];
        assert!((longest_stall(&samples, 0.0, 5.0) - 3.0).abs() < 1e-9);
        assert_eq!(consumers_back(&samples, 0.0, 5.0, 2), Some(3.0));
        assert_eq!(consumers_back(&samples, 3.0, 5.0, 2), None);
        assert_eq!(
            consumers_back(&samples[..3], 0.0, 5.0, 2),
            Some(f64::INFINITY)
        );
    }
}
