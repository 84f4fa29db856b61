//! Where a delivery goes when it is not acked after a commit: parked (republished to
//! the events queue during a long outage or a shutdown while holding), republished to
//! the next delay tier, or dead-lettered with its reason. Every republish waits for the
//! broker's confirm before the original is acked; a crash between the two leaves a
//! duplicate, which the store ignores.

use lapin::{message::Delivery, types::AMQPValue};
use workos_sync_core::{Event, now_ms};
use workos_sync_queue::{
    HEADER_ATTEMPT, Outgoing,
    dlq::{self, HEADER_FIRST_SEEN, HEADER_LAST_ERROR},
    header_i64,
};
use workos_sync_store::StoreError;

use super::{AckWindow, BatchError, Consumer};

impl Consumer {
    /// Hands deliveries back during a long database outage: each is republished to the
    /// events queue as a new message (same body and properties, so its attempt header
    /// is kept; a fresh delivery count) with a confirm, then acked. A crash between the
    /// two leaves a duplicate, which the store ignores.
    pub(super) async fn park(
        &self,
        window: &AckWindow,
        deliveries: &[Delivery],
    ) -> Result<(), BatchError> {
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
        metrics::counter!(workos_sync_core::metric::WORKER_MESSAGES_TOTAL, "outcome" => "parked", "reason" => "database_unavailable").increment(deliveries.len() as u64);
        Ok(())
    }

    /// An event that waits on the application's lock: republished to the shortest delay
    /// tier with its attempt count unchanged (waiting costs no attempt, and never sends
    /// it to a long tier or the DLQ), then acked; the rest of its batch went on.
    pub(super) async fn defer(
        &self,
        ev: &Event,
        d: &Delivery,
        why: &str,
    ) -> Result<(), BatchError> {
        let topology = self.broker.topology();
        // Without delay tiers configured: back to the events queue itself.
        let queue = topology
            .retry_queue(0)
            .unwrap_or_else(|| topology.events_queue());
        let first_seen =
            header_i64(&d.properties, HEADER_FIRST_SEEN).unwrap_or_else(dlq::now_ms_i64);
        let props = dlq::republish_properties(
            &d.properties,
            &[
                (HEADER_LAST_ERROR, dlq::text(why)),
                (HEADER_FIRST_SEEN, AMQPValue::LongLongInt(first_seen)),
            ],
        );
        self.republish(d, "", &queue, props).await?;
        tracing::info!(event.id = %ev.id, event.r#type = %ev.event_type, user.id = ev.user_id().unwrap_or(""), retry_queue = %queue, reason = why, "event deferred");
        metrics::counter!(workos_sync_core::metric::WORKER_MESSAGES_TOTAL, "outcome" => "deferred", "reason" => "locked").increment(1);
        Ok(())
    }

    pub(super) async fn retry_or_dead_letter(
        &self,
        ev: &Event,
        d: &Delivery,
        err: &StoreError,
    ) -> Result<(), BatchError> {
        let attempt = attempt(d);
        if err.is_permanent() {
            // Retrying cannot help (an application's foreign key forbids the delete):
            // the DLQ at once, with the reason naming the constraint and the setting.
            tracing::error!(event.id = %ev.id, event.r#type = %ev.event_type, user.id = ev.user_id().unwrap_or(""), delivery.attempt = attempt, error = %err, "event cannot be applied; dead-lettering without retries");
            metrics::counter!(workos_sync_core::metric::WORKER_MESSAGES_TOTAL, "outcome" => "dead_lettered", "reason" => "delete_blocked").increment(1);
            return self
                .dead_letter(d, "delete_blocked", &err.to_string())
                .await;
        }
        let topology = self.broker.topology();
        let tier = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        let Some(queue) = topology.retry_queue(tier) else {
            tracing::error!(event.id = %ev.id, event.r#type = %ev.event_type, delivery.attempt = attempt, error = %err, "retries exhausted; dead-lettering");
            metrics::counter!(workos_sync_core::metric::WORKER_MESSAGES_TOTAL, "outcome" => "dead_lettered", "reason" => "retries_exhausted").increment(1);
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
        metrics::counter!(workos_sync_core::metric::WORKER_MESSAGES_TOTAL, "outcome" => "retried", "reason" => "apply_failed").increment(1);
        Ok(())
    }

    pub(super) async fn dead_letter(
        &self,
        d: &Delivery,
        reason: &str,
        error: &str,
    ) -> Result<(), BatchError> {
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
    pub(super) async fn republish(
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

pub(super) fn attempt(d: &Delivery) -> i64 {
    header_i64(&d.properties, HEADER_ATTEMPT)
        .unwrap_or(1)
        .max(1)
}
