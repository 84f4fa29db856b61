//! Dead-lettering and the DLQ tools (`workos-sync dlq list|show|replay|purge`).
//!
//! Every message the worker puts in `{p}.dead` carries why it died in headers:
//! `x-dlq-reason` (a stable label), `x-dlq-error` (the error text), `x-attempts`,
//! `x-first-seen-at` and `x-dead-at` (ms since epoch), `x-original-routing-key`.
//! Messages dead-lettered by RabbitMQ itself (delivery limit) carry `x-death` instead;
//! both are shown.
//!
//! Reading the DLQ uses `basic.get` without ack on a channel of its own; closing the
//! channel returns every unacked message, so listing changes nothing. Replay publishes a
//! copy to the events exchange with a confirm, then acks the DLQ copy.

use lapin::{
    BasicProperties, Channel,
    options::{BasicAckOptions, BasicGetOptions, QueuePurgeOptions},
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

/// Every message in the DLQ, oldest first; the queue is left as it was.
pub async fn list(broker: &Broker) -> Result<Vec<DeadMessage>, DlqError> {
    let ch = open(broker).await?;
    let queue = broker.topology().dead_queue();
    let mut out = Vec::new();
    while let Some(msg) = ch
        .basic_get(queue.as_str().into(), BasicGetOptions::default())
        .await?
    {
        out.push(describe(&msg.delivery.properties, &msg.delivery.data));
    }
    // Closing the channel returns all unacked messages to the queue.
    ch.close(200, "list done".into()).await?;
    Ok(out)
}

/// Replays the selected messages (all when `ids` is `None`) to the events exchange with
/// their attempt count reset. Returns the ids replayed.
pub async fn replay(
    broker: &Broker,
    ids: Option<&[String]>,
    timeout: std::time::Duration,
) -> Result<Vec<String>, DlqError> {
    let ch = open(broker).await?;
    let queue = broker.topology().dead_queue();
    let exchange = broker.topology().events_exchange();
    let mut replayed = Vec::new();
    let mut result = Ok(());
    while let Some(msg) = ch
        .basic_get(queue.as_str().into(), BasicGetOptions::default())
        .await?
    {
        let d = describe(&msg.delivery.properties, &msg.delivery.data);
        if ids.is_some_and(|ids| !ids.contains(&d.id)) {
            continue;
        }
        let key = header_str(&msg.delivery.properties, HEADER_ORIGINAL_KEY)
            .unwrap_or_else(|| d.event_type.clone());
        let props = copy_properties(
            &msg.delivery.properties,
            DEAD_LETTER_HEADERS,
            &[("x-replayed-at", AMQPValue::LongLongInt(now_ms_i64()))],
        );
        let out = Outgoing {
            exchange: &exchange,
            routing_key: &key,
            body: &msg.delivery.data,
            properties: props,
        };
        match broker.publish(out, timeout).await {
            Ok(()) => {
                msg.delivery.ack(BasicAckOptions::default()).await?;
                replayed.push(d.id);
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    ch.close(200, "replay done".into()).await?;
    result?;
    Ok(replayed)
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
