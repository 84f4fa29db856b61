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

/// A `user.updated` webhook body for `user_id` with event id `id`, and its freshly
/// computed `WorkOS-Signature` header under `secret` (what the load generators send).
pub fn signed_update(id: &str, user_id: &str, secret: &str) -> (String, String) {
    let body =
        workos_sync_testkit::user_event(id, "user.updated", user_id, "2026-01-01T00:00:00.000Z");
    let sig = workos_sync_core::signature::signature_header(
        secret.as_bytes(),
        workos_sync_core::now_ms(),
        body.as_bytes(),
    );
    (body, sig)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One delivery of a generated history.
#[derive(Clone)]
pub struct Delivery {
    pub id: String,
    pub user: String,
    pub event_type: &'static str,
    /// `updated_at` as milliseconds after [`History::epoch`].
    pub version: i64,
    pub deleted: bool,
    pub body: Vec<u8>,
}

/// A generated event history: per user a create, updates and sometimes a delete; ~10%
/// of deliveries are duplicates; delivery order is shuffled.
pub struct History {
    pub deliveries: Vec<Delivery>,
    pub unique: usize,
    pub epoch: chrono::DateTime<chrono::Utc>,
}

impl History {
    /// user id → Some(newest version) or None (deleted), over every delivery.
    pub fn model(&self) -> std::collections::HashMap<String, Option<i64>> {
        let mut m: std::collections::HashMap<String, Option<i64>> =
            std::collections::HashMap::new();
        let mut deleted = std::collections::HashSet::new();
        for d in &self.deliveries {
            if d.deleted {
                deleted.insert(d.user.clone());
            } else {
                let e = m.entry(d.user.clone()).or_insert(None);
                if e.is_none_or(|v| d.version > v) {
                    *e = Some(d.version);
                }
            }
        }
        for u in deleted {
            m.insert(u, None);
        }
        m
    }
}

pub fn generate_history(events: usize, users: usize, seed: u64) -> History {
    use rand::{Rng, SeedableRng, seq::SliceRandom};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let epoch = chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
    let ts = |v: i64| {
        (epoch + chrono::Duration::milliseconds(v))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let unique_target = events * 10 / 11;
    let per_user = (unique_target / users.max(1)).max(1);
    let mut out = Vec::with_capacity(events);
    for u in 0..users {
        let user = format!("user_{u:06}");
        let deleted = rng.random_bool(0.1);
        let updates = if deleted {
            per_user.saturating_sub(1).max(1)
        } else {
            per_user
        };
        for v in 1..=updates {
            let event_type = if v == 1 {
                "user.created"
            } else {
                "user.updated"
            };
            let id = format!("event_{u:06}_{v:03}");
            let body = workos_sync_testkit::user_event(&id, event_type, &user, &ts(v as i64));
            out.push(Delivery {
                id,
                user: user.clone(),
                event_type,
                version: v as i64,
                deleted: false,
                body: body.into_bytes(),
            });
        }
        if deleted {
            let id = format!("event_{u:06}_del");
            let body =
                workos_sync_testkit::user_event(&id, "user.deleted", &user, &ts(updates as i64));
            out.push(Delivery {
                id,
                user: user.clone(),
                event_type: "user.deleted",
                version: updates as i64,
                deleted: true,
                body: body.into_bytes(),
            });
        }
    }
    let unique = out.len();
    let extra = events.saturating_sub(unique);
    for _ in 0..extra {
        let d = out[rng.random_range(0..unique)].clone();
        out.push(d);
    }
    out.shuffle(&mut rng);
    History {
        deliveries: out,
        unique,
        epoch,
    }
}
