//! Dead-lettering and the DLQ tools (`workos-sync dlq list|show|replay|purge`).
//!
//! Every message the worker puts in `{p}.dead` carries why it died in headers:
//! `x-dlq-reason` (a stable label), `x-dlq-error` (the error text), `x-attempts`,
//! `x-first-seen-at` and `x-dead-at` (ms since epoch), `x-original-routing-key`.
//! Messages dead-lettered by RabbitMQ itself (delivery limit) carry `x-death` instead;
//! both are shown.
//!
//! Inspecting the DLQ never hands a message back to RabbitMQ. A `basic.get` that is
//! returned unacked (by a nack, or by closing the channel) counts as a delivery of a
//! quorum queue: on RabbitMQ 4.x every quorum queue has a delivery limit of 20 by
//! default ("Quorum queues now have a default redelivery limit set to 20", 4.0.1 release
//! notes), and `{p}.dead` has no dead-letter target, so a message inspected ~20 times
//! would be dropped. Disabling the limit is no way out on every version: `-1` disables
//! it on 4.x, but 3.10 accepts `x-delivery-limit = -1` and then drops every message on
//! its first return, and refuses `delivery-limit: -1` in a policy. So every tool
//! [`walk`]s the queue instead: it takes the messages that were in it when it started,
//! one at a time, and for each either republishes an identical copy to the tail of the
//! DLQ (kept) or publishes it to the events exchange (replayed), waits for the confirm,
//! and only then acks the original. A full walk leaves the DLQ in its order; a crash
//! between confirm and ack leaves a duplicate copy (which the store ignores on replay),
//! never a loss. Replaying `--all` stops after the messages it started with, even when
//! replayed ones die again at once.

use lapin::{
    BasicProperties, Channel,
    options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions, QueuePurgeOptions},
    types::{AMQPValue, FieldTable},
};
use serde::Serialize;

use crate::{
    Broker, HEADER_ATTEMPT, Outgoing, PublishError, amqp_i64, header_i64, header_str, long_string,
};

pub const HEADER_DLQ_REASON: &str = "x-dlq-reason";
pub const HEADER_DLQ_ERROR: &str = "x-dlq-error";
pub const HEADER_ATTEMPTS: &str = "x-attempts";
pub const HEADER_FIRST_SEEN: &str = "x-first-seen-at";
pub const HEADER_DEAD_AT: &str = "x-dead-at";
pub const HEADER_ORIGINAL_KEY: &str = "x-original-routing-key";
pub const HEADER_LAST_ERROR: &str = "x-last-error";

/// Headers that must not be copied into a republished message: `x-death` in a client
/// republish makes RabbitMQ's dead-letter cycle detection drop messages, and the
/// delivery count belongs to the queue.
const BROKER_HEADERS: &[&str] = &[
    "x-death",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-first-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-last-death-exchange",
    "x-delivery-count",
];

/// Headers a replay resets: the message starts over as if it had just arrived.
const DEAD_LETTER_HEADERS: &[&str] = &[
    HEADER_ATTEMPT,
    HEADER_DLQ_REASON,
    HEADER_DLQ_ERROR,
    HEADER_ATTEMPTS,
    HEADER_DEAD_AT,
    HEADER_LAST_ERROR,
];

/// Copies `props`, dropping broker-owned headers and applying `set`.
pub fn republish_properties(props: &BasicProperties, set: &[(&str, AMQPValue)]) -> BasicProperties {
    copy_properties(props, &[], set)
}

/// Like [`republish_properties`], also dropping the headers named in `drop`.
fn copy_properties(
    props: &BasicProperties,
    drop: &[&str],
    set: &[(&str, AMQPValue)],
) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(h) = props.headers() {
        for (k, v) in h.inner() {
            let k_str = k.as_str();
            if !BROKER_HEADERS.contains(&k_str) && !drop.contains(&k_str) {
                headers.insert(k.clone(), v.clone());
            }
        }
    }
    for (k, v) in set {
        headers.insert((*k).into(), v.clone());
    }
    props.clone().with_headers(headers)
}

/// One DLQ message as the tools show it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadMessage {
    pub id: String,
    pub event_type: String,
    pub reason: String,
    pub error: String,
    pub attempts: i64,
    pub first_seen_at_ms: Option<i64>,
    pub dead_at_ms: Option<i64>,
    pub headers: serde_json::Value,
    pub body: String,
}

fn value_json(v: &AMQPValue) -> serde_json::Value {
    match v {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into(),
        AMQPValue::ShortString(s) => s.as_str().into(),
        AMQPValue::Boolean(b) => (*b).into(),
        AMQPValue::FieldTable(t) => table_json(t),
        AMQPValue::FieldArray(a) => a.as_slice().iter().map(value_json).collect(),
        AMQPValue::Timestamp(t) => (*t).into(),
        other => amqp_i64(other).map_or_else(|| format!("{other:?}").into(), Into::into),
    }
}

fn table_json(t: &FieldTable) -> serde_json::Value {
    t.inner()
        .iter()
        .map(|(k, v)| (k.to_string(), value_json(v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn describe(props: &BasicProperties, body: &[u8]) -> DeadMessage {
    let headers = props.headers().as_ref().map(table_json).unwrap_or_default();
    // RabbitMQ's own dead-lettering (delivery limit): reason from x-first-death-reason.
    let reason = header_str(props, HEADER_DLQ_REASON)
        .or_else(|| header_str(props, "x-first-death-reason"))
        .unwrap_or_else(|| "unknown".into());
    DeadMessage {
        id: props
            .message_id()
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        event_type: props
            .kind()
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        reason,
        error: header_str(props, HEADER_DLQ_ERROR).unwrap_or_default(),
        attempts: header_i64(props, HEADER_ATTEMPTS)
            .or_else(|| header_i64(props, HEADER_ATTEMPT))
            .unwrap_or(1),
        first_seen_at_ms: header_i64(props, HEADER_FIRST_SEEN)
            .or_else(|| header_i64(props, crate::HEADER_RECEIVED_AT)),
        dead_at_ms: header_i64(props, HEADER_DEAD_AT),
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("amqp: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("publish failed: {0}")]
    Publish(#[from] PublishError),
    #[error("broker unavailable")]
    Unavailable,
}

async fn open(broker: &Broker) -> Result<Channel, DlqError> {
    let live = broker.live().await.ok_or(DlqError::Unavailable)?;
    Ok(live.connection.create_channel().await?)
}

/// What a [`walk`] does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Put an identical copy at the tail of the DLQ.
    Keep,
    /// Send it back to the events exchange with its attempt count reset.
    Replay,
}

/// What a [`walk`] saw and did.
#[derive(Debug, Default)]
pub struct Walk {
    /// Every message taken, in queue order.
    pub messages: Vec<DeadMessage>,
    /// Ids of the messages replayed.
    pub replayed: Vec<String>,
}

/// A kept copy's properties: everything, RabbitMQ's `x-death` history included (it is
/// what `dlq show` reports for messages RabbitMQ dead-lettered itself, and the DLQ has
/// no dead-letter target whose cycle detection it could confuse), but the delivery
/// count, which belongs to the queue.
fn kept_properties(props: &BasicProperties) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(h) = props.headers() {
        for (k, v) in h.inner() {
            if k.as_str() != "x-delivery-count" {
                headers.insert(k.clone(), v.clone());
            }
        }
    }
    props.clone().with_headers(headers)
}

/// Takes each message that is in the DLQ when the walk starts (not the ones that
/// arrive meanwhile) and keeps or replays it as `decide` says, each confirmed before the
/// original is acked. Stops at the first failed publish; that message was not acked and
/// goes back to the queue when the channel closes.
pub async fn walk(
    broker: &Broker,
    timeout: std::time::Duration,
    mut decide: impl FnMut(&DeadMessage) -> Step,
) -> Result<Walk, DlqError> {
    let ch = open(broker).await?;
    let queue = broker.topology().dead_queue();
    let exchange = broker.topology().events_exchange();
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let waiting = ch
        .queue_declare(queue.as_str().into(), passive, FieldTable::default())
        .await?
        .message_count();
    let mut walked = Walk::default();
    let mut result = Ok(());
    for _ in 0..waiting {
        let Some(msg) = ch
            .basic_get(queue.as_str().into(), BasicGetOptions::default())
            .await?
        else {
            break;
        };
        let d = describe(&msg.delivery.properties, &msg.delivery.data);
        let step = decide(&d);
        let (target_exchange, key, props) = match step {
            Step::Keep => ("", queue.clone(), kept_properties(&msg.delivery.properties)),
            Step::Replay => (
                exchange.as_str(),
                header_str(&msg.delivery.properties, HEADER_ORIGINAL_KEY)
                    .unwrap_or_else(|| d.event_type.clone()),
                copy_properties(
                    &msg.delivery.properties,
                    DEAD_LETTER_HEADERS,
                    &[("x-replayed-at", AMQPValue::LongLongInt(now_ms_i64()))],
                ),
            ),
        };
        let out = Outgoing {
            exchange: target_exchange,
            routing_key: &key,
            body: &msg.delivery.data,
            properties: props,
        };
        if let Err(e) = broker.publish(out, timeout).await {
            result = Err(e);
            break;
        }
        msg.delivery.ack(BasicAckOptions::default()).await?;
        if step == Step::Replay {
            walked.replayed.push(d.id.clone());
        }
        walked.messages.push(d);
    }
    ch.close(200, "dlq walk done".into()).await?;
    result?;
    Ok(walked)
}

/// Every message in the DLQ, oldest first; the queue is left as it was (see [`walk`]).
pub async fn list(broker: &Broker) -> Result<Vec<DeadMessage>, DlqError> {
    Ok(walk(broker, LIST_CONFIRM_TIMEOUT, |_| Step::Keep)
        .await?
        .messages)
}

/// How long a kept copy may wait for its confirm.
const LIST_CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Replays the selected messages (all when `ids` is `None`) to the events exchange with
/// their attempt count reset; every other message stays. Returns the ids replayed.
pub async fn replay(
    broker: &Broker,
    ids: Option<&[String]>,
    timeout: std::time::Duration,
) -> Result<Vec<String>, DlqError> {
    let walked = walk(broker, timeout, |d| match ids {
        Some(ids) if !ids.contains(&d.id) => Step::Keep,
        _ => Step::Replay,
    })
    .await?;
    Ok(walked.replayed)
}

/// Deletes every message in the DLQ; returns how many.
pub async fn purge(broker: &Broker) -> Result<u32, DlqError> {
    let ch = open(broker).await?;
    let n = ch
        .queue_purge(
            broker.topology().dead_queue().into(),
            QueuePurgeOptions::default(),
        )
        .await?;
    ch.close(200, "purge done".into()).await?;
    Ok(n)
}

/// Header value for a dead-letter reason or error text.
pub fn text(s: &str) -> AMQPValue {
    // Bound header size: an error chain can be long.
    let s: String = s.chars().take(1000).collect();
    long_string(&s)
}

pub fn now_ms_i64() -> i64 {
    i64::try_from(workos_sync_core::now_ms()).unwrap_or(i64::MAX)
}
