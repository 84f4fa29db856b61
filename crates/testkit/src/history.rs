//! Delivering a history of events the way WorkOS and the queue may: with duplicates, in
//! any order ([`deliveries`]), applied by several concurrent appliers taking batches of
//! random sizes off one shared queue ([`apply_concurrently`]), as the model-checked
//! store tests do for every entity.
//!
//! Failure model: the first batch that fails ends the run with its error.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde_json::{Value, json};
use workos_sync_core::Event;
use workos_sync_store::Store;

/// `events` with a fifth of them delivered again, shuffled (reproducibly by `seed`).
pub fn deliveries(events: &[Event], seed: u64) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(seed + 100);
    let mut out = events.to_vec();
    for _ in 0..events.len() / 5 {
        out.push(events[rng.random_range(0..events.len())].clone());
    }
    out.shuffle(&mut rng);
    out
}

/// Applies `deliveries` from `appliers` concurrent tasks, each taking batches of 1 to 39
/// events off a shared queue until it is empty.
pub async fn apply_concurrently(
    store: &Store,
    deliveries: Vec<Event>,
    appliers: usize,
    seed: u64,
) -> anyhow::Result<()> {
    let queue = Arc::new(tokio::sync::Mutex::new(deliveries));
    let mut tasks = tokio::task::JoinSet::new();
    for a in 0..appliers {
        let (queue, store) = (queue.clone(), store.clone());
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed + a as u64);
            loop {
                let batch: Vec<Event> = {
                    let mut q = queue.lock().await;
                    let k = rng.random_range(1..40).min(q.len());
                    let at = q.len() - k;
                    q.split_off(at)
                };
                if batch.is_empty() {
                    return Ok::<_, anyhow::Error>(());
                }
                store.apply_batch(&batch).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// The histories' time zero (2026-01-01T00:00:00Z), in seconds since the Unix epoch.
pub const EPOCH: i64 = 1_767_225_600;

/// `v` seconds after [`EPOCH`], as WorkOS writes times (RFC 3339, milliseconds, `Z`).
pub fn ts(v: i64) -> String {
    (DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(EPOCH + v))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The seconds after [`EPOCH`] of a time as a table returns it (0 when it is not one).
pub fn secs(v: &Value) -> i64 {
    serde_json::from_value::<DateTime<Utc>>(v.clone()).map_or(0, |t| t.timestamp() - EPOCH)
}

/// The event `id` of type `ty` with `data`, sent at [`ts`]`(at)`, decoded as the worker
/// decodes it (a body that does not decode is a test's own bug: it panics).
pub fn body(id: &str, ty: &str, data: Value, at: i64) -> Event {
    let b = json!({"object": "event", "id": id, "event": ty, "data": data, "created_at": ts(at)});
    #[allow(clippy::expect_used)] // test support: a history's own body always decodes
    Event::decode(b.to_string().as_bytes()).expect("a test history's event decodes")
}
