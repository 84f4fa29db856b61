//! Lazy sync, backfill and Events API reconciliation: everything that reads the WorkOS
//! API. All three write through the store's one `apply` step, so dedupe, version guard,
//! tombstones and per-user locking hold here exactly as for webhooks.
//!
//! - [`sync_user`]: fetch one user now; WorkOS's own `entity_not_found` for that id
//!   removes and tombstones it locally. Any other answer (another 404, 5xx, a timeout)
//!   leaves the row untouched.
//! - [`backfill`]: page through all users; the cursor is saved after each applied page,
//!   so a killed run resumes where it stopped.
//! - [`reconcile_once`]: page through `GET /events` oldest first from the stored cursor,
//!   publish every event to the events exchange with a confirm (the webhook path), and
//!   advance the cursor only after the page was confirmed, and never to an older event.
//!   An event that cannot be queued goes to the DLQ instead. A refused cursor is
//!   [`SyncError::CursorRejected`] (one clear line, a metric). Only the holder of a
//!   Postgres advisory lock runs; a crashed holder's lock dies with its connection.

use std::time::Duration;

use chrono::{DateTime, Utc};
use workos_sync_core::{Envelope, Event, EventKind, User};
use workos_sync_queue::{Broker, Outgoing, PublishError, event_properties};
use workos_sync_store::{Outcome, Store, StoreError, UserRow};
use workos_sync_workos_api::{ApiError, Client, USER_EVENTS};

/// Cursor names in `sync_cursors`.
pub const BACKFILL_CURSOR: &str = "backfill";
pub const EVENTS_CURSOR: &str = "events";
/// The `created_at` of the event the events cursor names (RFC 3339).
pub const EVENTS_CURSOR_AT: &str = "events_at";
/// Advisory lock key of the reconciler.
pub const RECONCILE_LOCK: i64 = 0x5753_0004;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The Events API refused the stored cursor: most often it is older than the API's
    /// retention (30 days by its reference).
    #[error(
        "WorkOS refused the stored events cursor {cursor} ({detail}); it is probably older \
         than the Events API's retention. Run `workos-sync reconcile --reset --since <RFC 3339 time>` \
         to start again from a time"
    )]
    CursorRejected { cursor: String, detail: String },
}

/// What lazy sync found.
#[derive(Debug)]
pub enum SyncResult {
    /// The user as now stored.
    Synced(Box<UserRow>),
    /// WorkOS has no such user (or it was deleted): no local row either.
    Gone,
}

fn deletion_event(id: &str) -> Event {
    let now = Utc::now();
    Event {
        id: format!("sync-deleted:{id}"),
        event_type: "user.deleted".into(),
        created_at: now,
        kind: EventKind::UserDeleted(User::stub(id, now)),
    }
}

/// Fetches one user from WorkOS and applies it. With a `budget`, the WorkOS call gives
/// up with [`ApiError::OutOfTime`] rather than wait past it (the store step is bounded
/// by its own apply timeout). Only WorkOS's own `entity_not_found` removes the row.
pub async fn sync_user(
    api: &Client,
    store: &Store,
    id: &str,
    budget: Option<Duration>,
) -> Result<SyncResult, SyncError> {
    let fetched = match budget {
        Some(b) => api.get_user_within(id, b).await,
        None => api.get_user(id).await,
    };
    match fetched {
        Ok(user) => {
            let outcome = store.apply(&Event::snapshot(user)).await?;
            if outcome == Outcome::Tombstoned {
                return Ok(SyncResult::Gone);
            }
            Ok(store
                .get_user(id)
                .await?
                .map_or(SyncResult::Gone, |row| SyncResult::Synced(Box::new(row))))
        }
        Err(ApiError::NotFound) => {
            store.apply(&deletion_event(id)).await?;
            Ok(SyncResult::Gone)
        }
        Err(e) => Err(e.into()),
    }
}

/// Counts of a backfill run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BackfillReport {
    pub pages: u64,
    pub users: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub tombstoned: u64,
}

impl BackfillReport {
    fn count(&mut self, o: Outcome) {
        match o {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Tombstoned => self.tombstoned += 1,
            _ => self.unchanged += 1,
        }
    }
}

/// Pages through every WorkOS user and applies them. Resumes from the saved cursor
/// unless `restart`; with `dry_run` nothing is written (cursor included) and the report
/// says what would change.
pub async fn backfill(
    api: &Client,
    store: &Store,
    restart: bool,
    dry_run: bool,
    mut progress: impl FnMut(&BackfillReport),
) -> Result<BackfillReport, SyncError> {
    let mut cursor = if restart || dry_run {
        None
    } else {
        store.cursor(BACKFILL_CURSOR).await?
    };
    if restart && !dry_run {
        store.set_cursor(BACKFILL_CURSOR, None).await?;
    }
    let mut report = BackfillReport::default();
    loop {
        let page = api.list_users(cursor.as_deref(), 100).await?;
        report.pages += 1;
        report.users += page.data.len() as u64;
        let events: Vec<Event> = page.data.into_iter().map(Event::snapshot).collect();
        let outcomes = if dry_run {
            store.preview(&events).await?
        } else {
            store.apply_batch(&events).await?
        };
        for o in outcomes {
            report.count(o);
        }
        progress(&report);
        match page.after {
            Some(after) => {
                if !dry_run {
                    store.set_cursor(BACKFILL_CURSOR, Some(&after)).await?;
                }
                cursor = Some(after);
            }
            None => break,
        }
    }
    if !dry_run {
        // Done: the next run starts from the beginning again (idempotent).
        store.set_cursor(BACKFILL_CURSOR, None).await?;
    }
    Ok(report)
}

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
    let Some(leader) = store.try_session_lock(RECONCILE_LOCK).await? else {
        tracing::info!("another reconciler is running; skipping");
        return Ok(None);
    };
    let result = reconcile_pages(api, broker, store, request).await;
    leader.release().await;
    match &result {
        Err(SyncError::CursorRejected { .. }) => {
            metrics::counter!("workos_sync_reconcile_cursor_rejected_total").increment(1);
            metrics::gauge!("workos_sync_reconcile_cursor_rejected").set(1.0);
        }
        Ok(_) => metrics::gauge!("workos_sync_reconcile_cursor_rejected").set(0.0),
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
    loop {
        let range_start = if cursor.is_none() {
            request.since
        } else {
            None
        };
        let page = match api
            .list_events(USER_EVENTS, cursor.as_deref(), range_start, LIMIT)
            .await
        {
            Ok(page) => page,
            Err(ApiError::Refused {
                status,
                code,
                message,
            }) if cursor.is_some() => {
                return Err(SyncError::CursorRejected {
                    cursor: cursor.unwrap_or_default(),
                    detail: ApiError::Refused {
                        status,
                        code,
                        message,
                    }
                    .to_string(),
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
        metrics::counter!("workos_sync_reconcile_events_total").increment(page.data.len() as u64);
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
    metrics::counter!("workos_sync_reconcile_dead_lettered_total").increment(1);
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
