//! The consume → apply → ack loop.
//!
//! Each consumer owns a channel with a prefetch window, takes whatever deliveries are
//! ready (up to `batch_size`) and applies them in one transaction; the messages are
//! acked only after the commit. Failures are classified:
//! - undecodable body → DLQ at once (permanent: the same bytes fail again);
//! - database unreachable → hold the batch unacked, wait with backoff until the
//!   database answers, apply again (an outage of any length dead-letters nothing);
//! - any other failed statement → apply the batch's events one by one to isolate the
//!   culprit; a failing event is republished to the next delay tier with `x-attempt`
//!   (confirm first, then ack) and dead-lettered after the last tier.
//!
//! A broker connection loss ends the consumer's stream; unacked messages go back to the
//! queue and the consumer starts again on the next connection.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{FutureExt, StreamExt};
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

/// Consumer parameters.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub prefetch: u16,
    pub batch_size: usize,
    pub publish_timeout: Duration,
    pub hold_backoff_max: Duration,
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
    #[error("shutting down while holding")]
    Shutdown,
}

impl Consumer {
    /// Runs until shutdown, reconnecting as needed.
    pub async fn run(self: Arc<Self>, index: usize) {
        while !self.shutdown.is_cancelled() {
            if !self.broker.wait_connected(Duration::from_secs(1)).await {
                continue;
            }
            let Some(live) = self.broker.live().await else {
                continue;
            };
            match self.consume(&live.connection, index).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(consumer = index, error = %e, "consumer stopped; restarting");
                    self.broker.report_failure();
                    tokio::select! {
                        () = self.shutdown.cancelled() => {}
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            }
        }
    }

    async fn consume(&self, conn: &lapin::Connection, index: usize) -> Result<(), BatchError> {
        let ch = conn.create_channel().await?;
        // Prefetch bounds the unacked messages pushed to this consumer: enough to fill the
        // next batch while the current one commits, small enough to share the queue with
        // other workers. Per-consumer (global=false): quorum queues reject global QoS.
        ch.basic_qos(self.config.prefetch, BasicQosOptions::default())
            .await?;
        let queue = self.broker.topology().events_queue();
        let tag = format!("worker-{}-{index}", std::process::id());
        let mut stream = ch
            .basic_consume(
                queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(consumer = index, queue = %queue, "consuming");
        loop {
            let first = tokio::select! {
                () = self.shutdown.cancelled() => None,
                d = stream.next() => Some(d),
            };
            let Some(first) = first else {
                // Shutdown: stop taking work; unacked prefetched messages return to the
                // queue when the channel closes.
                let _ = ch
                    .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                    .await;
                let _ = ch.close(200, "shutdown".into()).await;
                return Ok(());
            };
            let mut batch = match first {
                None => return Ok(()),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(d)) => vec![d],
            };
            while batch.len() < self.config.batch_size {
                match stream.next().now_or_never() {
                    Some(Some(Ok(d))) => batch.push(d),
                    _ => break,
                }
            }
            metrics::histogram!("workos_sync_worker_batch_size").record(batch.len() as f64);
            self.process(&ch, batch).await?;
        }
    }

    /// Resolves every delivery of the batch: acked after commit, republished to a delay
    /// tier, or dead-lettered.
    async fn process(&self, ch: &Channel, batch: Vec<Delivery>) -> Result<(), BatchError> {
        let _ = ch;
        let mut events = Vec::with_capacity(batch.len());
        let mut deliveries = Vec::with_capacity(batch.len());
        for d in batch {
            match Event::decode(&d.data) {
                Ok(ev) => {
                    events.push(ev);
                    deliveries.push(d);
                }
                Err(e) => {
                    let id = message_id(&d);
                    tracing::error!(event.id = %id, reason = "undecodable", error = %e, "dead-lettering undecodable message");
                    metrics::counter!("workos_sync_worker_messages_total", "outcome" => "dead_lettered", "reason" => "undecodable").increment(1);
                    self.dead_letter(&d, "undecodable", &e.to_string()).await?;
                }
            }
        }
        if events.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        match self.apply_holding(&events).await? {
            Ok(outcomes) => {
                let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                for ((ev, d), outcome) in events.iter().zip(&deliveries).zip(outcomes) {
                    self.record_applied(ev, d, outcome.as_str(), duration_ms);
                }
                // One ack for the whole batch: this channel has a single consumer that
                // handles batches in order, so every delivery up to the last tag is
                // resolved (applied here, or dead-lettered and acked above).
                if let Some(last) = deliveries.last() {
                    last.ack(BasicAckOptions { multiple: true }).await?;
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(batch = events.len(), error = %e, "batch failed; isolating events");
                for (ev, d) in events.iter().zip(&deliveries) {
                    let started = Instant::now();
                    match self.apply_holding(std::slice::from_ref(ev)).await? {
                        Ok(outcomes) => {
                            let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
                            let outcome = outcomes.first().map_or("unknown", |o| o.as_str());
                            self.record_applied(ev, d, outcome, duration_ms);
                            d.ack(BasicAckOptions::default()).await?;
                        }
                        Err(e) => self.retry_or_dead_letter(ev, d, &e).await?,
                    }
                }
                Ok(())
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

    /// Applies, holding through database outages. The outer error is fatal for the
    /// consumer (shutdown); the inner is a statement failure with the database up.
    async fn apply_holding(
        &self,
        events: &[Event],
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
            if held_since.is_none() {
                tracing::error!(error = %err, "database unavailable; holding batch until it returns");
                metrics::gauge!("workos_sync_worker_holding").set(1.0);
                held_since = Some(Instant::now());
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return Err(BatchError::Shutdown),
                () = tokio::time::sleep(backoff) => {}
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
        self.broker
            .publish(
                Outgoing {
                    exchange: "",
                    routing_key: &queue,
                    body: &d.data,
                    properties: props,
                },
                self.config.publish_timeout,
            )
            .await?;
        d.ack(BasicAckOptions::default()).await?;
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
        self.broker
            .publish(
                Outgoing {
                    exchange: &exchange,
                    routing_key: "",
                    body: &d.data,
                    properties: props,
                },
                self.config.publish_timeout,
            )
            .await?;
        d.ack(BasicAckOptions::default()).await?;
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
