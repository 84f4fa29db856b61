//! The consume → apply → ack loop: the consume session and its dispatcher here; the
//! appliers in `apply`, where a delivery goes when it is not acked (park, retry tiers,
//! DLQ) in `routing`, ack ordering in `ack_window`, the user partitioning in
//! `partition`.
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

mod ack_window;
mod apply;
mod partition;
mod routing;

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use lapin::{
    Channel,
    message::Delivery,
    options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use tokio_util::sync::CancellationToken;
use workos_sync_core::{Event, backoff::Backoff};
use workos_sync_queue::Broker;
use workos_sync_store::Store;

pub use ack_window::AckWindow;
use partition::partition_of;

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
        let mut backoff = Backoff::new(Duration::from_millis(100), self.config.hold_backoff_max);
        let mut logged = false;
        loop {
            if self.store.ping().await.is_ok() {
                if logged {
                    tracing::info!("database reachable; consuming again");
                }
                // Also ends the holding state a park left set.
                metrics::gauge!(workos_sync_core::metric::WORKER_HOLDING).set(0.0);
                return true;
            }
            if !logged {
                tracing::error!("database unavailable; not consuming until it answers");
                metrics::gauge!(workos_sync_core::metric::WORKER_HOLDING).set(1.0);
                logged = true;
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return false,
                () = tokio::time::sleep(backoff.next_delay()) => {}
            }
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
            // The dispatcher drained what was delivered; whatever a failed session left
            // unacked returns to the queue when the channel closes.
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
        // Parking or shutdown: take no more deliveries, forward what was sent.
        let stop_taking = async {
            tokio::select! {
                () = s.parking.cancelled() => {}
                () = self.shutdown.cancelled() => {}
            }
        };
        tokio::pin!(stop_taking);
        // Set once the consumer is cancelled: the broker's cancel-ok ends the stream once
        // the deliveries sent before it are in, and a broker that never answers must not
        // hold shutdown past this.
        let mut drain_until: Option<tokio::time::Instant> = None;
        let cancel = |drain_until: &mut Option<tokio::time::Instant>| {
            *drain_until = Some(tokio::time::Instant::now() + CANCEL_DRAIN);
            if !s.parking.is_cancelled() {
                tracing::info!("shutting down: consumer cancelled, applying what was delivered");
            }
            channel.basic_cancel(tag.into(), BasicCancelOptions::default())
        };
        loop {
            let next = tokio::select! {
                biased;
                () = s.stop.cancelled() => return Ok(()),
                () = &mut stop_taking, if drain_until.is_none() => {
                    cancel(&mut drain_until).await?;
                    continue;
                }
                () = tokio::time::sleep_until(drain_until.unwrap_or_else(tokio::time::Instant::now)),
                    if drain_until.is_some() => {
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
                    // A user's events (and their memberships') share a partition, as do
                    // an organization's; the rest spread by event id.
                    let key = ev
                        .user_id()
                        .or_else(|| {
                            ev.record()
                                .and_then(workos_sync_core::Record::organization_id)
                        })
                        .unwrap_or(&ev.id);
                    let tx = &partitions[partition_of(key, partitions.len())];
                    let permit = tokio::select! {
                        biased;
                        () = &mut stop_taking, if drain_until.is_none() => {
                            cancel(&mut drain_until).await?;
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
                    metrics::counter!(workos_sync_core::metric::WORKER_MESSAGES_TOTAL, "outcome" => "dead_lettered", "reason" => "undecodable").increment(1);
                    self.dead_letter(&d, "undecodable", &e.to_string()).await?;
                    s.window.resolve(&[d.delivery_tag]).await?;
                }
            }
        }
    }
}

fn message_id(d: &Delivery) -> String {
    d.properties
        .message_id()
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_default()
}
