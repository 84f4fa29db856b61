//! The appliers: each takes whatever its partition has ready (up to `batch_size`),
//! applies it in one transaction holding through database outages, and resolves every
//! delivery (acked after the commit, or handed to `routing`). Failure model in the
//! parent module's header.

use std::time::{Duration, Instant};

use lapin::message::Delivery;
use workos_sync_core::{Event, backoff::Backoff};
use workos_sync_store::StoreError;

use super::{BatchError, Consumer, Session, routing::attempt};

/// The least time one apply attempt is given, even when parking is due: a healthy
/// database answers a batch in milliseconds, so this only bounds how late a park can be.
const MIN_ATTEMPT: Duration = Duration::from_secs(1);

impl Consumer {
    /// One partition: takes whatever is ready (up to `batch_size`), applies it in one
    /// transaction, resolves the deliveries; until its input closes.
    pub(super) async fn apply_partition(
        &self,
        mut rx: tokio::sync::mpsc::Receiver<(Delivery, Event)>,
        s: &Session,
    ) -> Result<(), BatchError> {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < self.config.batch_size {
                match rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            let deliveries = if s.parking.is_cancelled() {
                batch.into_iter().map(|(d, _)| d).collect()
            } else {
                metrics::histogram!(workos_sync_core::metric::WORKER_BATCH_SIZE)
                    .record(batch.len() as f64);
                self.process(s, batch).await?
            };
            self.park(&s.window, &deliveries).await?;
        }
        Ok(())
    }

    /// Resolves every delivery of the batch: acked after commit, republished to a delay
    /// tier, or dead-lettered. Returns the deliveries left unresolved because parking
    /// started while they were held (the caller parks them).
    pub(super) async fn process(
        &self,
        s: &Session,
        batch: Vec<(Delivery, Event)>,
    ) -> Result<Vec<Delivery>, BatchError> {
        let (mut deliveries, events): (Vec<Delivery>, Vec<Event>) = batch.into_iter().unzip();
        let started = Instant::now();
        let bodies: Vec<&[u8]> = deliveries.iter().map(|d| d.data.as_slice()).collect();
        let applied = match self.apply_holding(&events, &bodies, s).await {
            Err(BatchError::Park) => return Ok(deliveries),
            other => other?,
        };
        match applied {
            Ok(outcomes) => {
                let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                for ((ev, d), outcome) in events.iter().zip(&deliveries).zip(outcomes) {
                    if outcome == workos_sync_store::Outcome::Deferred {
                        self.defer(ev, d, "its users row is locked by another session")
                            .await?;
                    } else {
                        self.record_applied(ev, d, outcome.as_str(), duration_ms);
                    }
                }
                let tags: Vec<u64> = deliveries.iter().map(|d| d.delivery_tag).collect();
                s.window.resolve(&tags).await?;
                Ok(Vec::new())
            }
            Err(e) => {
                tracing::warn!(batch = events.len(), error = %e, "batch failed; isolating events");
                for (i, (ev, d)) in events.iter().zip(&deliveries).enumerate() {
                    let started = Instant::now();
                    let body = [d.data.as_slice()];
                    let applied = match self.apply_holding(std::slice::from_ref(ev), &body, s).await
                    {
                        Err(BatchError::Park) => return Ok(deliveries.split_off(i)),
                        other => other?,
                    };
                    match applied {
                        Ok(outcomes)
                            if outcomes.first() == Some(&workos_sync_store::Outcome::Deferred) =>
                        {
                            self.defer(ev, d, "its users row is locked by another session")
                                .await?;
                        }
                        Ok(outcomes) => {
                            let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                            let outcome = outcomes.first().map_or("unknown", |o| o.as_str());
                            self.record_applied(ev, d, outcome, duration_ms);
                        }
                        Err(StoreError::Locked) => {
                            self.defer(ev, d, "a lock it needs is held by another session")
                                .await?;
                        }
                        Err(e) => self.retry_or_dead_letter(ev, d, &e).await?,
                    }
                    s.window.resolve(&[d.delivery_tag]).await?;
                }
                Ok(Vec::new())
            }
        }
    }

    pub(super) fn record_applied(&self, ev: &Event, d: &Delivery, outcome: &str, duration_ms: f64) {
        // Lag of events applied for the first time; duplicates (redeliveries, reconciler
        // replays of old events) would only blur it.
        if outcome != "duplicate" {
            let lag = (chrono::Utc::now() - ev.created_at)
                .num_milliseconds()
                .max(0) as f64
                / 1000.0;
            metrics::histogram!(workos_sync_core::metric::EVENT_LAG_SECONDS).record(lag);
        }
        metrics::counter!(workos_sync_core::metric::WORKER_MESSAGES_TOTAL, "outcome" => "acked", "reason" => "").increment(1);
        tracing::debug!(
            event.id = %ev.id,
            event.r#type = %ev.event_type,
            user.id = ev.user_id().unwrap_or(""),
            delivery.attempt = attempt(d),
            outcome,
            duration_ms,
            "event applied"
        );
    }

    /// Applies, holding through database outages. The outer error is the session
    /// stopping (the dispatcher or another applier failed), or [`BatchError::Park`] once
    /// the outage lasted `park_after` or shutdown came while holding (this applier then
    /// starts parking for the whole session) or another applier started parking; the
    /// inner is a statement failure with the database up.
    pub(super) async fn apply_holding(
        &self,
        events: &[Event],
        bodies: &[&[u8]],
        s: &Session,
    ) -> Result<Result<Vec<workos_sync_store::Outcome>, StoreError>, BatchError> {
        let mut backoff = Backoff::new(Duration::from_millis(100), self.config.hold_backoff_max);
        let mut held_since: Option<Instant> = None;
        loop {
            // One attempt (the batch, and on failure the ping that tells a failed
            // statement from an unreachable database) may take as long as the pool's
            // connect timeout plus the ping's (~10 s against a database that swallows
            // packets): bounded by what is left until the oldest delivery must be
            // parked, so parking happens at park_after, not an attempt later. An
            // abandoned attempt is rolled back (its connection is discarded); if it had
            // committed after all, the parked copies are duplicates the store ignores.
            let oldest = s.window.oldest_unacked().await.unwrap_or_else(Instant::now);
            let budget = self
                .config
                .park_after
                .saturating_sub(oldest.elapsed())
                .max(MIN_ATTEMPT);
            let attempt = async {
                match self.store.apply_batch_archived(events, bodies).await {
                    Ok(o) => Ok(o),
                    // A failed statement with a reachable database is the event's
                    // problem; an unreachable database is nobody's: wait for it.
                    // A table held whole (a migration) stops every event alike: hold the
                    // batch as for an outage, so it applies the moment the lock goes.
                    Err(StoreError::Locked) => {
                        let up = self.store.table_locked().await.is_ok_and(|held| !held);
                        Err((StoreError::Locked, up))
                    }
                    Err(e) => {
                        let up = !e.is_unavailable() && self.store.ping().await.is_ok();
                        Err((e, up))
                    }
                }
            };
            let err = match tokio::time::timeout(budget, attempt).await {
                Ok(Ok(o)) => {
                    if let Some(since) = held_since {
                        tracing::info!(
                            held_ms = since.elapsed().as_millis() as u64,
                            "database back; resumed"
                        );
                        metrics::gauge!(workos_sync_core::metric::WORKER_HOLDING).set(0.0);
                    }
                    return Ok(Ok(o));
                }
                Ok(Err((e, true))) => return Ok(Err(e)),
                Ok(Err((e, false))) => e,
                Err(_) => StoreError::Unavailable(format!(
                    "no answer within {} ms, the time left before parking",
                    budget.as_millis()
                )),
            };
            let since = *held_since.get_or_insert_with(|| {
                if matches!(err, StoreError::Locked) {
                    tracing::warn!(error = %err, "a table is locked by another session (a migration?); holding batch until it is free");
                } else {
                    tracing::error!(error = %err, "database unavailable; holding batch until it returns");
                }
                metrics::gauge!(workos_sync_core::metric::WORKER_HOLDING).set(1.0);
                Instant::now()
            });
            // Park once the oldest unacked delivery has waited park_after. That is never
            // later than park_after into this hold (the held batch was received before
            // it began), and it also counts the time deliveries waited through earlier
            // holds of a database that keeps coming back briefly.
            let oldest = s.window.oldest_unacked().await.unwrap_or(since);
            let park_in = self.config.park_after.saturating_sub(oldest.elapsed());
            // Shutting down while the database is away: hand everything back now rather
            // than let the closing channel return it (each return counts toward the
            // delivery limit).
            if park_in.is_zero() || self.shutdown.is_cancelled() {
                s.parking.cancel();
            }
            tokio::select! {
                biased;
                () = s.stop.cancelled() => return Err(BatchError::Stopped),
                // The holding gauge stays 1: the worker still waits for the database.
                () = s.parking.cancelled() => return Err(BatchError::Park),
                () = self.shutdown.cancelled() => {
                    s.parking.cancel();
                    return Err(BatchError::Park);
                }
                () = tokio::time::sleep(backoff.next_delay().min(park_in)) => {}
            }
        }
    }
}
