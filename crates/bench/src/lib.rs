//! Benchmark helpers: latency summaries, peak RSS of a process, and realistic event
//! bodies. The benchmarks are programs (see `src/bin/`), run by `scripts/bench-*.sh`;
//! they print figures next to a baseline measured in the same run.

use std::time::Duration;

/// p50/p99/max of a set of latencies.
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

pub fn summarize(mut v: Vec<Duration>) -> Summary {
    v.sort_unstable();
    let at = |q: f64| -> Duration {
        if v.is_empty() {
            return Duration::ZERO;
        }
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v[i.min(v.len() - 1)]
    };
    Summary {
        count: v.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: v.last().copied().unwrap_or_default(),
    }
}

/// Peak resident set size (VmHWM) of `pid` in KiB, from /proc.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
