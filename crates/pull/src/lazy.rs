//! Lazy sync: fetch one user from WorkOS now and apply it as a snapshot; WorkOS's own
//! `entity_not_found` for that id removes and tombstones it locally. Any other answer
//! leaves the row untouched ([`SyncError::Api`]).

use std::time::Duration;

use chrono::Utc;
use workos_sync_core::{Event, EventKind, Record, User};
use workos_sync_store::{Outcome, Store, UserRow};
use workos_sync_workos_api::{ApiError, Client};

use crate::SyncError;

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
        event_type: workos_sync_core::event_type::USER_DELETED.into(),
        created_at: now,
        kind: EventKind::Delete(Record::User(User::stub(id, now))),
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
            let outcome = store.apply(&Event::user_snapshot(user)).await?;
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
