//! Lazy sync, backfill and Events API reconciliation: everything that reads the WorkOS
//! API. All three write through the store's one `apply` step, so dedupe, version guard,
//! tombstones and per-user locking hold here exactly as for webhooks.
//!
//! - [`sync_user`]: fetch one user now; a WorkOS 404 removes and tombstones it locally.
//!   WorkOS failures leave the row untouched.
//! - [`backfill`]: page through all users; the cursor is saved after each applied page,
//!   so a killed run resumes where it stopped.
//! - [`reconcile_once`]: page through `GET /events` from the stored cursor, publish every
//!   event to the events exchange with a confirm (the webhook path), and advance the
//!   cursor only after the page was confirmed. Only the holder of a Postgres advisory
//!   lock runs; a crashed holder's lock dies with its connection.

use std::time::Duration;

use chrono::{DateTime, Utc};
use workos_sync_core::{Envelope, Event, EventKind, User};
use workos_sync_queue::{Broker, Outgoing, PublishError, event_properties};
use workos_sync_store::{Outcome, Store, StoreError, UserRow};
use workos_sync_workos_api::{ApiError, Client, USER_EVENTS};

/// Cursor names in `sync_cursors`.
pub const BACKFILL_CURSOR: &str = "backfill";
pub const EVENTS_CURSOR: &str = "events";
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
    #[error("event from the Events API is not readable: {0}")]
    BadEvent(String),
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

/// Fetches one user from WorkOS and applies it.
pub async fn sync_user(api: &Client, store: &Store, id: &str) -> Result<SyncResult, SyncError> {
    match api.get_user(id).await {
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

/// Counts of one reconciliation run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub pages: u64,
    pub events: u64,
    pub cursor: Option<String>,
}

/// One reconciliation pass. `Ok(None)` when another reconciler holds the lock.
pub async fn reconcile_once(
    api: &Client,
    broker: &Broker,
    store: &Store,
    since: Option<DateTime<Utc>>,
    publish_timeout: Duration,
) -> Result<Option<ReconcileReport>, SyncError> {
    let Some(leader) = store.try_session_lock(RECONCILE_LOCK).await? else {
        tracing::info!("another reconciler is running; skipping");
        return Ok(None);
    };
    let result = reconcile_pages(api, broker, store, since, publish_timeout).await;
    leader.release().await;
    result.map(Some)
}

async fn reconcile_pages(
    api: &Client,
    broker: &Broker,
    store: &Store,
    since: Option<DateTime<Utc>>,
    publish_timeout: Duration,
) -> Result<ReconcileReport, SyncError> {
    const LIMIT: u32 = 100;
    let mut report = ReconcileReport {
        cursor: store.cursor(EVENTS_CURSOR).await?,
        ..ReconcileReport::default()
    };
    let exchange = broker.topology().events_exchange();
    loop {
        let range_start = if report.cursor.is_none() { since } else { None };
        let page = api
            .list_events(USER_EVENTS, report.cursor.as_deref(), range_start, LIMIT)
            .await?;
        report.pages += 1;
        let mut last_id = None;
        for raw in &page.data {
            let body = raw.get().as_bytes();
            let env = Envelope::decode(body).map_err(|e| SyncError::BadEvent(e.to_string()))?;
            broker
                .publish(
                    Outgoing {
                        exchange: &exchange,
                        routing_key: &env.event_type,
                        body,
                        properties: event_properties(
                            &env.id,
                            &env.event_type,
                            workos_sync_core::now_ms(),
                            env.id_from_hash,
                        ),
                    },
                    publish_timeout,
                )
                .await?;
            report.events += 1;
            last_id = Some(env.id);
        }
        // Every event of the page is confirmed: only now move the cursor.
        let next = page.after.clone().or(last_id);
        if let Some(next) = &next {
            store.set_cursor(EVENTS_CURSOR, Some(next)).await?;
            report.cursor = Some(next.clone());
        }
        metrics::counter!("workos_sync_reconcile_events_total").increment(page.data.len() as u64);
        if page.data.len() < LIMIT as usize || next.is_none() {
            break;
        }
    }
    tracing::info!(
        pages = report.pages,
        events = report.events,
        "reconciliation pass done"
    );
    Ok(report)
}
