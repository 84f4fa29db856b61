//! RabbitMQ for workos-sync: the topology (declared idempotently under a prefix), a
//! supervised connection with a confirmed publisher, and the message properties every
//! event carries.
//!
//! Failure model: connection-level problems are retried by the supervisor in
//! [`broker`]; per-publish failures come back as [`PublishError`] for the caller to map
//! (503 in the receiver, retry in the worker). Nothing here panics or drops a message
//! silently: an unroutable publish is reported as `Returned`.

pub mod broker;
pub mod check;
pub mod dlq;
pub mod topology;

use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

pub use broker::{Broker, BrokerConfig, Live, Outgoing, PublishError};
pub use topology::Topology;

/// Errors setting up the connection or topology. Always transient from our point of view:
/// the supervisor retries with backoff.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("amqp: {0}")]
    Amqp(#[from] lapin::Error),
    /// `AMQP_URL` does not parse; the text has its password masked.
    #[error("invalid AMQP URL: {0}")]
    BadUrl(String),
    /// No connection within the time allowed (`check::connect`).
    #[error("no connection within {0:?}")]
    Timeout(std::time::Duration),
}

/// Header with the time (ms since epoch) the receiver accepted the webhook.
pub const HEADER_RECEIVED_AT: &str = "x-received-at";
/// Header with the retry attempt (1 on first delivery; set by the worker on republish).
pub const HEADER_ATTEMPT: &str = "x-attempt";
/// Header: true when the event id is a hash of the body (legacy bodies without `id`).
pub const HEADER_ID_FROM_HASH: &str = "x-id-from-body-hash";

/// The properties of an event message: `message_id` = event id, `type` = event type,
/// JSON content type, timestamp (seconds) and the receive time in ms as a header.
pub fn event_properties(
    event_id: &str,
    event_type: &str,
    received_at_ms: u64,
    id_from_hash: bool,
) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        HEADER_RECEIVED_AT.into(),
        AMQPValue::LongLongInt(i64::try_from(received_at_ms).unwrap_or(i64::MAX)),
    );
    if id_from_hash {
        headers.insert(HEADER_ID_FROM_HASH.into(), AMQPValue::Boolean(true));
    }
    BasicProperties::default()
        .with_message_id(short(event_id))
        .with_type(short(event_type))
        .with_content_type("application/json".into())
        .with_timestamp(received_at_ms / 1000)
        .with_headers(headers)
}

/// `s` as an AMQP short string, cut at 255 bytes (on a character boundary) instead of
/// panicking as lapin's `From` does. Event ids and types are refused above that length
/// when bodies are decoded, so the cut is only a guard.
pub fn short(s: &str) -> ShortString {
    let mut end = s.len().min(lapin::types::MAX_SHORT_STRING_LENGTH);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    ShortString::try_new(&s[..end]).unwrap_or_default()
}

/// Reads a string header.
pub fn header_str(props: &BasicProperties, key: &str) -> Option<String> {
    match props.headers().as_ref()?.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// Reads an integer header of any width.
pub fn header_i64(props: &BasicProperties, key: &str) -> Option<i64> {
    amqp_i64(props.headers().as_ref()?.inner().get(key)?)
}

/// An integer AMQP value of any width as `i64`.
pub fn amqp_i64(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::Timestamp(v) => i64::try_from(*v).ok(),
        _ => None,
    }
}

/// A long-string header value.
pub fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}
