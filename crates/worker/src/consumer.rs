//! The consume → apply → ack loop.
//!
//! Each consumer owns a channel with a prefetch window, takes whatever deliveries are
//! ready (up to `batch_size`) and applies them in one transaction; the messages are
//! acked only after the commit. Failures are classified:
//! - undecodable body → DLQ at once (permanent: the same bytes fail again);
//! - database unreachable → hold the batch unacked, wait with backoff until the
//!   database answers, apply again. An outage longer than `park_after` parks instead:
//!   every delivery this consumer holds is republished to the events queue (confirmed)
//!   and acked, the consumer is cancelled, and consuming resumes once the database
//!   answers. Held deliveries would otherwise outlive RabbitMQ's `consumer_timeout`,
//!   whose requeue counts toward the delivery limit; so an outage of any length
//!   dead-letters nothing;
//! - any other failed statement → apply the batch's events one by one to isolate the
//!   culprit; a failing event is republished to the next delay tier with `x-attempt`
//!   (confirm first, then ack) and dead-lettered after the last tier.
//!
//! Shutdown (SIGTERM) hands nothing back unresolved: the consumer is cancelled, the
//! deliveries already pushed to this worker (up to the prefetch window) are still
//! applied and acked, and if the database is unreachable then, they are parked
//! (republished and acked) instead of held. A delivery returned by a closing channel
//! counts toward the events queue's delivery limit, so returning a prefetch window at
//! every restart or scale-down during a backlog would dead-letter events that never
//! failed.
//!
//! A broker connection loss (or `kill -9`) ends the consumer's stream; unacked messages
//! go back to the queue, each counted as a delivery, and the consumer starts again on
//! the next connection.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use lapin::{
    Channel,
    message::Delivery,
    options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::{AMQPValue, FieldTable},
};
use tokio_util::sync::CancellationToken;
use workos_sync_core::{Event, now_ms};
use workos_sync_queue::{
    Broker, HEADER_ATTEMPT, Outgoing,
    dlq::{self, HEADER_FIRST_SEEN, HEADER_LAST_ERROR},
    header_i64,
};
use workos_sync_store::{Store, StoreError};

/// How long a cancelled consumer waits for the broker to end its stream.
const CANCEL_DRAIN: Duration = Duration::from_secs(10);

/// Consumer parameters.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub prefetch: u16,
    pub batch_size: usize,
    pub publish_timeout: Duration,
    pub hold_backoff_max: Duration,
    /// How long one outage may hold deliveries before they are parked (handed back).
    pub park_after: Duration,
    /// Parallel appliers, each owning a hash partition of the users.
    pub partitions: usize,
}

pub struct Consumer {
    pub broker: Broker,
    pub store: Store,
    pub config: ConsumerConfig,
    pub shutdown: CancellationToken,
}

/// Why a batch could not be finished; the consumer restarts on a fresh channel.
#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error("amqp: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("publish to retry/DLQ failed: {0}")]
    Publish(#[from] workos_sync_queue::PublishError),
    #[error("consumer session stopped while holding")]
    Stopped,
    #[error("applier task failed: {0}")]
    Applier(String),
    /// The database stayed unreachable for `park_after`: hand the deliveries back.
    #[error("database unavailable for too long; parking deliveries")]
    Park,
}

/// What the dispatcher and the appliers of one consume session share.
struct Session {
    window: AckWindow,
    /// Ends the session early: a failed dispatcher or applier; appliers holding for the
    /// database give up their batch (the channel closes and the broker requeues it).
    /// Shutdown is not such an end: it drains (see the module header).
    stop: CancellationToken,
    /// Cancelled by the first applier whose outage outlasts `park_after`: every
    /// delivery of this session is then handed back instead of applied.
    parking: CancellationToken,
}

impl Consumer {
    /// Runs until shutdown, reconnecting as needed.
    pub async fn run(self: Arc<Self>) {
        while !self.shutdown.is_cancelled() {
            if !self.broker.wait_connected(Duration::from_secs(1)).await {
                continue;
            }
            // Take no work while the database is unreachable (after a park, or when the
            // worker starts during an outage).
            if !self.wait_for_database().await {
                return;
            }
            let Some(live) = self.broker.live().await else {
                continue;
            };
            match self.consume(&live.connection).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "consumer stopped; restarting");
                    self.broker.report_failure();
                    tokio::select! {
                        () = self.shutdown.cancelled() => {}
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            }
        }
    }

    /// Waits until the database answers; false when shutdown came first.
    async fn wait_for_database(&self) -> bool {
        let mut backoff = Duration::from_millis(100);
        let mut logged = false;
        loop {
            if self.store.ping().await.is_ok() {
                if logged {
                    tracing::info!("database reachable; consuming again");
                }
                // Also ends the holding state a park left set.
                metrics::gauge!("workos_sync_worker_holding").set(0.0);
                return true;
            }
            if !logged {
                tracing::error!("database unavailable; not consuming until it answers");
                metrics::gauge!("workos_sync_worker_holding").set(1.0);
                logged = true;
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return false,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(self.config.hold_backoff_max);
        }
    }

    /// One consume session, until shutdown, the broker ends the stream, or a park (after
    /// which `run` waits for the database before the next session).
    async fn consume(self: &Arc<Self>, conn: &lapin::Connection) -> Result<(), BatchError> {
        let ch = conn.create_channel().await?;
        // Prefetch bounds the unacked messages pushed to this consumer: enough to fill the
        // next batch while the current one commits, small enough to share the queue with
        // other workers. Per-consumer (global=false): quorum queues reject global QoS.
        ch.basic_qos(self.config.prefetch, BasicQosOptions::default())
            .await?;
        let queue = self.broker.topology().events_queue();
        let tag = format!("worker-{}", std::process::id());
        let mut stream = ch
            .basic_consume(
                queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(queue = %queue, partitions = self.config.partitions, "consuming");
        let session = Arc::new(Session {
            window: AckWindow::new(ch.clone()),
            stop: CancellationToken::new(),
            parking: CancellationToken::new(),
        });
        // Partitions by user: events of one user always go to the same applier, so the
        // appliers of this process never wait on each other's user locks, and a user's
        // events stay in delivery order.
        let mut senders = Vec::with_capacity(self.config.partitions);
        let mut appliers = tokio::task::JoinSet::new();
        for _ in 0..self.config.partitions.max(1) {
            let (tx, rx) =
                tokio::sync::mpsc::channel::<(Delivery, Event)>(self.config.batch_size * 2);
            senders.push(tx);
            let this = Arc::clone(self);
            let session = Arc::clone(&session);
            appliers.spawn(async move {
                let r = this.apply_partition(rx, &session).await;
                if r.is_err() {
                    session.stop.cancel();
                }
                r
            });
        }
        let dispatched = self
            .dispatch(&mut stream, &senders, &session, &ch, &tag)
            .await;
        if dispatched.is_err() {
            // The channel is gone or going: holding appliers must not wait on for it.
            session.stop.cancel();
        }
        drop(senders);
        let mut result = dispatched;
        while let Some(joined) = appliers.join_next().await {
            let joined = joined
                .map_err(|e| BatchError::Applier(e.to_string()))
                .and_then(|r| r);
            if let Err(e) = joined
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        if self.shutdown.is_cancelled() {
            // Stop taking work; unacked prefetched messages return to the queue when the
            // channel closes.
            let _ = ch
                .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                .await;
            let _ = ch.close(200, "shutdown".into()).await;
        }
        result?;
        if session.parking.is_cancelled() {
            // Everything was handed back and acked; the consumer is cancelled.
            let _ = ch.close(200, "parked".into()).await;
        }
        Ok(())
    }

    /// Reads deliveries, decodes them (undecodable → DLQ at once) and hands each to the
    /// partition of its user. Ends on an applier failure or when the stream ends. On
    /// shutdown, and when parking starts, it cancels the consumer at once (also while
    /// waiting for room in a partition) and keeps forwarding what was already sent until
    /// the stream ends after the broker's cancel-ok (the appliers apply those, or park
    /// them).
    async fn dispatch(
        &self,
        stream: &mut lapin::Consumer,
        partitions: &[tokio::sync::mpsc::Sender<(Delivery, Event)>],
        s: &Session,
        channel: &Channel,
        tag: &str,
    ) -> Result<(), BatchError> {
        let mut cancelled = false;
        // After the cancel, the broker's cancel-ok ends the stream once the deliveries
        // sent before it are in; a broker that never answers must not hold shutdown.
        let mut drain_until = tokio::time::Instant::now();
        let cancel = || async {
            channel
                .basic_cancel(tag.into(), BasicCancelOptions::default())
                .await
        };
        loop {
            let next = tokio::select! {
                biased;
                () = s.stop.cancelled() => return Ok(()),
                () = s.parking.cancelled(), if !cancelled => {
                    cancelled = true;
                    drain_until = tokio::time::Instant::now() + CANCEL_DRAIN;
                    cancel().await?;
                    continue;
                }
                () = self.shutdown.cancelled(), if !cancelled => {
                    cancelled = true;
                    drain_until = tokio::time::Instant::now() + CANCEL_DRAIN;
                    tracing::info!("shutting down: consumer cancelled, applying what was delivered");
                    cancel().await?;
                    continue;
                }
                () = tokio::time::sleep_until(drain_until), if cancelled => {
                    tracing::warn!("no cancel-ok from the broker; closing the channel");
                    return Ok(());
                }
                d = stream.next() => d,
            };
            let d = match next {
                None => return Ok(()),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(d)) => d,
            };
            s.window.track(d.delivery_tag).await;
            match Event::decode(&d.data) {
                Ok(ev) => {
                    let key = ev.user_id().unwrap_or(&ev.id);
                    let tx = &partitions[partition_of(key, partitions.len())];
                    let permit = tokio::select! {
                        biased;
                        () = s.parking.cancelled(), if !cancelled => {
                            cancelled = true;
                            drain_until = tokio::time::Instant::now() + CANCEL_DRAIN;
                            cancel().await?;
                            tx.reserve().await
                        }
                        () = self.shutdown.cancelled(), if !cancelled => {
                            cancelled = true;
                            drain_until = tokio::time::Instant::now() + CANCEL_DRAIN;
                            cancel().await?;
                            tx.reserve().await
                        }
                        p = tx.reserve() => p,
                    };
                    match permit {
                        Ok(permit) => permit.send((d, ev)),
                        Err(_) => return Ok(()),
                    }
                }
                Err(e) => {
                    let id = message_id(&d);
                    tracing::error!(event.id = %id, reason = "undecodable", error = %e, "dead-lettering undecodable message");
                    metrics::counter!("workos_sync_worker_messages_total", "outcome" => "dead_lettered", "reason" => "undecodable").increment(1);
                    self.dead_letter(&d, "undecodable", &e.to_string()).await?;
                    s.window.resolve(&[d.delivery_tag]).await?;
                }
            }
        }
    }

    /// One partition: takes whatever is ready (up to `batch_size`), applies it in one
    /// transaction, resolves the deliveries; until its input closes.
    async fn apply_partition(
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
                metrics::histogram!("workos_sync_worker_batch_size").record(batch.len() as f64);
                self.process(s, batch).await?
            };
            self.park(&s.window, &deliveries).await?;
        }
        Ok(())
    }

    /// Hands deliveries back during a long database outage: each is republished to the
    /// events queue as a new message (same body and properties, so its attempt header
    /// is kept; a fresh delivery count) with a confirm, then acked. A crash between the
    /// two leaves a duplicate, which the store ignores.
    async fn park(&self, window: &AckWindow, deliveries: &[Delivery]) -> Result<(), BatchError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let queue = self.broker.topology().events_queue();
        for d in deliveries {
            let props = dlq::republish_properties(&d.properties, &[]);
            self.republish(d, "", &queue, props).await?;
        }
        let tags: Vec<u64> = deliveries.iter().map(|d| d.delivery_tag).collect();
        window.resolve(&tags).await?;
        tracing::warn!(
            count = deliveries.len(),
            "database unavailable for too long; deliveries handed back to the queue"
        );
        metrics::counter!("workos_sync_worker_messages_total", "outcome" => "parked", "reason" => "database_unavailable").increment(deliveries.len() as u64);
        Ok(())
    }

    /// Resolves every delivery of the batch: acked after commit, republished to a delay
    /// tier, or dead-lettered. Returns the deliveries left unresolved because parking
    /// started while they were held (the caller parks them).
    async fn process(
        &self,
        s: &Session,
        batch: Vec<(Delivery, Event)>,
    ) -> Result<Vec<Delivery>, BatchError> {
        let (mut deliveries, events): (Vec<Delivery>, Vec<Event>) = batch.into_iter().unzip();
        let started = Instant::now();
        let applied = match self.apply_holding(&events, s).await {
            Err(BatchError::Park) => return Ok(deliveries),
            other => other?,
        };
        match applied {
            Ok(outcomes) => {
                let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                for ((ev, d), outcome) in events.iter().zip(&deliveries).zip(outcomes) {
                    self.record_applied(ev, d, outcome.as_str(), duration_ms);
                }
                let tags: Vec<u64> = deliveries.iter().map(|d| d.delivery_tag).collect();
                s.window.resolve(&tags).await?;
                Ok(Vec::new())
            }
            Err(e) => {
                tracing::warn!(batch = events.len(), error = %e, "batch failed; isolating events");
                for (i, (ev, d)) in events.iter().zip(&deliveries).enumerate() {
                    let started = Instant::now();
                    let applied = match self.apply_holding(std::slice::from_ref(ev), s).await {
                        Err(BatchError::Park) => return Ok(deliveries.split_off(i)),
                        other => other?,
                    };
                    match applied {
                        Ok(outcomes) => {
                            let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                            let outcome = outcomes.first().map_or("unknown", |o| o.as_str());
                            self.record_applied(ev, d, outcome, duration_ms);
                        }
                        Err(e) => self.retry_or_dead_letter(ev, d, &e).await?,
                    }
                    s.window.resolve(&[d.delivery_tag]).await?;
                }
                Ok(Vec::new())
            }
        }
    }

    fn record_applied(&self, ev: &Event, d: &Delivery, outcome: &str, duration_ms: f64) {
        // Lag of events applied for the first time; duplicates (redeliveries, reconciler
        // replays of old events) would only blur it.
        if outcome != "duplicate" {
            let lag = (chrono::Utc::now() - ev.created_at)
                .num_milliseconds()
                .max(0) as f64
                / 1000.0;
            metrics::histogram!("workos_sync_event_lag_seconds").record(lag);
        }
        metrics::counter!("workos_sync_worker_messages_total", "outcome" => "acked", "reason" => "").increment(1);
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
    async fn apply_holding(
        &self,
        events: &[Event],
        s: &Session,
    ) -> Result<Result<Vec<workos_sync_store::Outcome>, StoreError>, BatchError> {
        let mut backoff = Duration::from_millis(100);
        let mut held_since: Option<Instant> = None;
        loop {
            let result = self.store.apply_batch(events).await;
            let err = match result {
                Ok(o) => {
                    if let Some(since) = held_since {
                        tracing::info!(
                            held_ms = since.elapsed().as_millis() as u64,
                            "database back; resumed"
                        );
                        metrics::gauge!("workos_sync_worker_holding").set(0.0);
                    }
                    return Ok(Ok(o));
                }
                Err(e) => e,
            };
            // A failed statement with a reachable database is the event's problem; an
            // unreachable database is nobody's: wait for it.
            if !err.is_unavailable() && self.store.ping().await.is_ok() {
                return Ok(Err(err));
            }
            let since = *held_since.get_or_insert_with(|| {
                tracing::error!(error = %err, "database unavailable; holding batch until it returns");
                metrics::gauge!("workos_sync_worker_holding").set(1.0);
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
                () = tokio::time::sleep(backoff.min(park_in)) => {}
            }
            backoff = (backoff * 2).min(self.config.hold_backoff_max);
        }
    }

    async fn retry_or_dead_letter(
        &self,
        ev: &Event,
        d: &Delivery,
        err: &StoreError,
    ) -> Result<(), BatchError> {
        let attempt = attempt(d);
        let topology = self.broker.topology();
        let tier = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        let Some(queue) = topology.retry_queue(tier) else {
            tracing::error!(event.id = %ev.id, event.r#type = %ev.event_type, delivery.attempt = attempt, error = %err, "retries exhausted; dead-lettering");
            metrics::counter!("workos_sync_worker_messages_total", "outcome" => "dead_lettered", "reason" => "retries_exhausted").increment(1);
            return self
                .dead_letter(d, "retries_exhausted", &err.to_string())
                .await;
        };
        let first_seen =
            header_i64(&d.properties, HEADER_FIRST_SEEN).unwrap_or_else(dlq::now_ms_i64);
        let props = dlq::republish_properties(
            &d.properties,
            &[
                (HEADER_ATTEMPT, AMQPValue::LongLongInt(attempt + 1)),
                (HEADER_LAST_ERROR, dlq::text(&err.to_string())),
                (HEADER_FIRST_SEEN, AMQPValue::LongLongInt(first_seen)),
            ],
        );
        self.republish(d, "", &queue, props).await?;
        tracing::warn!(event.id = %ev.id, event.r#type = %ev.event_type, delivery.attempt = attempt, retry_queue = %queue, error = %err, "event failed; scheduled retry");
        metrics::counter!("workos_sync_worker_messages_total", "outcome" => "retried", "reason" => "apply_failed").increment(1);
        Ok(())
    }

    async fn dead_letter(&self, d: &Delivery, reason: &str, error: &str) -> Result<(), BatchError> {
        let attempts = attempt(d);
        let first_seen = header_i64(&d.properties, HEADER_FIRST_SEEN)
            .or_else(|| header_i64(&d.properties, workos_sync_queue::HEADER_RECEIVED_AT))
            .unwrap_or_else(dlq::now_ms_i64);
        let props = dlq::republish_properties(
            &d.properties,
            &[
                (dlq::HEADER_DLQ_REASON, dlq::text(reason)),
                (dlq::HEADER_DLQ_ERROR, dlq::text(error)),
                (dlq::HEADER_ATTEMPTS, AMQPValue::LongLongInt(attempts)),
                (HEADER_FIRST_SEEN, AMQPValue::LongLongInt(first_seen)),
                (
                    dlq::HEADER_DEAD_AT,
                    AMQPValue::LongLongInt(i64::try_from(now_ms()).unwrap_or(0)),
                ),
                (dlq::HEADER_ORIGINAL_KEY, dlq::text(d.routing_key.as_str())),
            ],
        );
        let exchange = self.broker.topology().dead_exchange();
        self.republish(d, &exchange, "", props).await
    }

    /// Publishes `d`'s body with `properties` and waits for the confirm.
    async fn republish(
        &self,
        d: &Delivery,
        exchange: &str,
        routing_key: &str,
        properties: lapin::BasicProperties,
    ) -> Result<(), BatchError> {
        self.broker
            .publish(
                Outgoing {
                    exchange,
                    routing_key,
                    body: &d.data,
                    properties,
                },
                self.config.publish_timeout,
            )
            .await?;
        Ok(())
    }
}

fn attempt(d: &Delivery) -> i64 {
    header_i64(&d.properties, HEADER_ATTEMPT)
        .unwrap_or(1)
        .max(1)
}

fn message_id(d: &Delivery) -> String {
    d.properties
        .message_id()
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Which partition handles `key` (a user id, or the event id for non-user events).
fn partition_of(key: &str, n: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    usize::try_from(h.finish() % n.max(1) as u64).unwrap_or(0)
}

/// Acknowledges one channel's deliveries in tag order, whatever order the partitions
/// finish them in: a delivery is acked (with `multiple`) only once every delivery before
/// it is resolved too. One ack frame per advance instead of one per message, and never
/// an ack of an unknown tag (which would close the channel): the state lock is held while
/// the frame is sent, so acks leave in increasing order.
pub struct AckWindow {
    channel: Channel,
    state: tokio::sync::Mutex<AckState>,
}

#[derive(Default)]
struct AckState {
    /// Unacked deliveries and when each was received.
    outstanding: std::collections::BTreeMap<u64, Instant>,
    done: std::collections::BTreeSet<u64>,
}

impl AckState {
    /// Marks `tags` resolved; returns the highest tag of the resolved prefix, if it grew.
    fn resolve(&mut self, tags: &[u64]) -> Option<u64> {
        self.done.extend(tags.iter().copied());
        let mut upto = None;
        while let Some((&first, _)) = self.outstanding.first_key_value() {
            if !self.done.remove(&first) {
                break;
            }
            self.outstanding.pop_first();
            upto = Some(first);
        }
        upto
    }

    /// When the oldest unacked delivery was received (tags arrive in order).
    fn oldest(&self) -> Option<Instant> {
        self.outstanding.first_key_value().map(|(_, at)| *at)
    }
}

impl AckWindow {
    fn new(channel: Channel) -> Self {
        Self {
            channel,
            state: tokio::sync::Mutex::new(AckState::default()),
        }
    }

    /// Records a delivery as received (call in delivery order).
    async fn track(&self, tag: u64) {
        self.state
            .lock()
            .await
            .outstanding
            .insert(tag, Instant::now());
    }

    /// When the oldest delivery not acked yet was received.
    async fn oldest_unacked(&self) -> Option<Instant> {
        self.state.lock().await.oldest()
    }

    /// Marks deliveries as resolved and acks the longest resolved prefix.
    async fn resolve(&self, tags: &[u64]) -> Result<(), lapin::Error> {
        let mut st = self.state.lock().await;
        if let Some(tag) = st.resolve(tags) {
            self.channel
                .basic_ack(tag, BasicAckOptions { multiple: true })
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_window_acks_only_resolved_prefixes_in_order() {
        let mut st = AckState::default();
        let t0 = Instant::now();
        st.outstanding.extend((1..=6).map(|t| (t, t0)));
        // Partition B finishes first: nothing can be acked yet.
        assert_eq!(st.resolve(&[2, 4]), None);
        // Partition A resolves 1 and 3: the prefix 1..=4 is complete.
        assert_eq!(st.resolve(&[1, 3]), Some(4));
        assert_eq!(st.resolve(&[6]), None);
        assert_eq!(st.resolve(&[5]), Some(6));
        assert!(st.outstanding.is_empty() && st.done.is_empty());
        // Tags arriving after a gap keep waiting for it.
        let t7 = t0 + Duration::from_secs(7);
        st.outstanding
            .extend([(7, t7), (8, t7 + Duration::from_secs(1))]);
        assert_eq!(st.resolve(&[8]), None);
        // 8 is resolved but not acked: 7 is still the oldest unacked delivery.
        assert_eq!(st.oldest(), Some(t7));
        assert_eq!(st.resolve(&[7]), Some(8));
        assert_eq!(st.oldest(), None);
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        let n = 4;
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            let key = format!("user_{i:06}");
            let p = partition_of(&key, n);
            assert_eq!(p, partition_of(&key, n), "same user, same partition");
            counts[p] += 1;
        }
        assert!(counts.iter().all(|c| *c > 800), "{counts:?}");
        assert_eq!(partition_of("x", 1), 0);
    }
}
