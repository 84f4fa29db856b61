//! Events API reconciliation: page through `GET /events` oldest first from the stored
//! cursor, publish every event to the events exchange with a confirm (the webhook path
//! from there), and advance the cursor only after the page was confirmed, and never to
//! an older event. An event that cannot be queued goes to the DLQ. Only the holder of
//! the reconciler's session lock runs. Failures are [`SyncError`]s; a refused cursor is
//! [`SyncError::CursorRejected`] (one clear line, a metric).

use std::time::Duration;

use chrono::{DateTime, Utc};
use workos_sync_core::Envelope;
use workos_sync_queue::{Broker, Outgoing, event_properties};
use workos_sync_store::{Store, locks::LOCK_RECONCILE};
use workos_sync_workos_api::{ApiError, Client};

use crate::{EVENTS_CURSOR, EVENTS_CURSOR_AT, SyncError};

/// Where a reconciliation pass started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The stored cursor (an event id).
    Cursor(String),
    /// No cursor: events from this time.
    Since(DateTime<Utc>),
    /// No cursor and no time: everything the Events API still holds.
    Beginning,
}

/// What to reconcile.
#[derive(Debug, Clone)]
pub struct ReconcileRequest {
    /// Where to start when no cursor is stored (or with `reset`).
    pub since: Option<DateTime<Utc>>,
    /// Forget the stored cursor first and start from `since`.
    pub reset: bool,
    /// Confirm timeout of each publish.
    pub publish_timeout: Duration,
}

impl ReconcileRequest {
    /// From the stored cursor (or the beginning), as the worker's periodic pass does.
    pub fn from_cursor(publish_timeout: Duration) -> Self {
        Self {
            since: None,
            reset: false,
            publish_timeout,
        }
    }
}

/// Counts of one reconciliation run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub pages: u64,
    pub events: u64,
    /// Events the API returned that cannot be queued (unreadable, or an id or type
    /// too long for the message properties): put in the DLQ instead, cursor moved on.
    pub dead_lettered: u64,
    pub start: Start,
    /// True when `since` was given but a stored cursor was used instead.
    pub since_ignored: bool,
    pub cursor: Option<String>,
}

/// One reconciliation pass. `Ok(None)` when another reconciler holds the lock.
pub async fn reconcile_once(
    api: &Client,
    broker: &Broker,
    store: &Store,
    request: &ReconcileRequest,
) -> Result<Option<ReconcileReport>, SyncError> {
    let Some(leader) = store.try_session_lock(LOCK_RECONCILE).await? else {
        tracing::info!("another reconciler is running; skipping");
        return Ok(None);
    };
    let result = reconcile_pages(api, broker, store, request).await;
    leader.release().await;
    match &result {
        Err(SyncError::CursorRejected { .. }) => {
            metrics::counter!(workos_sync_core::metric::RECONCILE_CURSOR_REJECTED_TOTAL)
                .increment(1);
            metrics::gauge!(workos_sync_core::metric::RECONCILE_CURSOR_REJECTED).set(1.0);
        }
        Ok(_) => metrics::gauge!(workos_sync_core::metric::RECONCILE_CURSOR_REJECTED).set(0.0),
        Err(_) => {}
    }
    result.map(Some)
}

/// The part of an event the cursor needs.
#[derive(serde::Deserialize)]
struct Stamp {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
}

async fn reconcile_pages(
    api: &Client,
    broker: &Broker,
    store: &Store,
    request: &ReconcileRequest,
) -> Result<ReconcileReport, SyncError> {
    const LIMIT: u32 = 100;
    if request.reset {
        store.set_cursor(EVENTS_CURSOR, None).await?;
        store.set_cursor(EVENTS_CURSOR_AT, None).await?;
    }
    let mut cursor = store.cursor(EVENTS_CURSOR).await?;
    // The time of the cursor's event: the cursor never moves to an older one, whatever
    // order a page comes in (an API that ignored `order`, or answered an unknown cursor
    // with its first page, must not send us back in time).
    let mut cursor_at = store
        .cursor(EVENTS_CURSOR_AT)
        .await?
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc));
    let start = match (&cursor, request.since) {
        (Some(c), _) => Start::Cursor(c.clone()),
        (None, Some(t)) => Start::Since(t),
        (None, None) => Start::Beginning,
    };
    let mut report = ReconcileReport {
        pages: 0,
        events: 0,
        dead_lettered: 0,
        since_ignored: cursor.is_some() && request.since.is_some(),
        start,
        cursor: cursor.clone(),
    };
    if report.since_ignored {
        tracing::warn!(
            cursor = cursor.as_deref().unwrap_or(""),
            "--since ignored: reconciling from the stored cursor (add --reset to start from --since)"
        );
    }
    let exchange = broker.topology().events_exchange();
    // Every enabled entity's event types (a switched-off entity's are not asked for).
    let types: Vec<&str> = store
        .entities()
        .iter()
        .flat_map(|e| e.event_types().iter().copied())
        .collect();
    loop {
        let range_start = if cursor.is_none() {
            request.since
        } else {
            None
        };
        let page = match api
            .list_events(&types, cursor.as_deref(), range_start, LIMIT)
            .await
        {
            Ok(page) => page,
            Err(e @ ApiError::Refused { .. }) if cursor.is_some() => {
                return Err(SyncError::CursorRejected {
                    cursor: cursor.unwrap_or_default(),
                    detail: e.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        report.pages += 1;
        let mut newest: Option<(String, DateTime<Utc>)> = None;
        for raw in &page.data {
            let body = raw.get().as_bytes();
            let stamp: Option<Stamp> = serde_json::from_slice(body).ok();
            match Envelope::decode(body) {
                Ok(env) => {
                    let out = Outgoing {
                        exchange: &exchange,
                        routing_key: &env.event_type,
                        body,
                        properties: event_properties(
                            &env.id,
                            &env.event_type,
                            workos_sync_core::now_ms(),
                            env.id_from_hash,
                        ),
                    };
                    broker.publish(out, request.publish_timeout).await?;
                    report.events += 1;
                }
                Err(e) => {
                    dead_letter_unqueueable(broker, body, &e, request.publish_timeout).await?;
                    report.dead_lettered += 1;
                }
            }
            if let Some(Stamp {
                id: Some(id),
                created_at: Some(at),
            }) = stamp
                && newest.as_ref().is_none_or(|(_, n)| at >= *n)
            {
                newest = Some((id, at));
            }
        }
        metrics::counter!(workos_sync_core::metric::RECONCILE_EVENTS_TOTAL)
            .increment(page.data.len() as u64);
        // Every event of the page is confirmed: only now move the cursor, and only
        // forward in time.
        let moved = match newest {
            Some((id, at)) if cursor_at.is_none_or(|c| at >= c) && cursor.as_ref() != Some(&id) => {
                store.set_cursor(EVENTS_CURSOR, Some(&id)).await?;
                store
                    .set_cursor(EVENTS_CURSOR_AT, Some(&at.to_rfc3339()))
                    .await?;
                cursor = Some(id);
                cursor_at = Some(at);
                true
            }
            Some(_) => {
                tracing::warn!(
                    cursor = cursor.as_deref().unwrap_or(""),
                    "the Events API answered with nothing newer than the cursor; cursor kept"
                );
                false
            }
            None => false,
        };
        report.cursor.clone_from(&cursor);
        if !moved || page.data.len() < LIMIT as usize || page.after.is_none() {
            break;
        }
    }
    tracing::info!(
        pages = report.pages,
        events = report.events,
        dead_lettered = report.dead_lettered,
        "reconciliation pass done"
    );
    Ok(report)
}

/// Puts an event the Events API returned but that cannot be queued into the DLQ, so that
/// it is kept (and shown by `dlq list`) while the cursor moves past it.
async fn dead_letter_unqueueable(
    broker: &Broker,
    body: &[u8],
    error: &workos_sync_core::DecodeError,
    timeout: Duration,
) -> Result<(), SyncError> {
    use lapin::types::AMQPValue;
    use workos_sync_queue::dlq;
    let id = workos_sync_core::event::body_hash_id(body);
    tracing::error!(event.id = %id, error = %error, "event from the Events API cannot be queued; dead-lettered");
    metrics::counter!(workos_sync_core::metric::RECONCILE_DEAD_LETTERED_TOTAL).increment(1);
    let props = dlq::republish_properties(
        &event_properties(&id, "unknown", workos_sync_core::now_ms(), true),
        &[
            (dlq::HEADER_DLQ_REASON, dlq::text("undecodable")),
            (dlq::HEADER_DLQ_ERROR, dlq::text(&error.to_string())),
            (
                dlq::HEADER_DEAD_AT,
                AMQPValue::LongLongInt(dlq::now_ms_i64()),
            ),
        ],
    );
    let exchange = broker.topology().dead_exchange();
    let out = Outgoing {
        exchange: &exchange,
        routing_key: "",
        body,
        properties: props,
    };
    broker.publish(out, timeout).await?;
    Ok(())
}
