//! The tombstones of deleted users, for the operator: list them and remove one that was
//! written by mistake (`workos-sync tombstones list|remove`).
//!
//! A tombstone makes a deletion final: no later or replayed event brings the user back.
//! Removing one is the only way back, so it takes the user's advisory lock (the same
//! key the apply path takes), and removes nothing else: the next event or lazy sync
//! for that user may then create the row again. Failures are [`StoreError`]s.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Serialize;

use crate::{Store, StoreError, locks::LOCK_USER, schema::user_tombstones};

/// One tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = user_tombstones, check_for_backend(diesel::pg::Pg))]
pub struct Tombstone {
    pub user_id: String,
    /// When WorkOS deleted the user (the event's or the snapshot's time).
    pub deleted_at: DateTime<Utc>,
    /// The event that deleted it (`sync-deleted:<id>` when lazy sync learnt it).
    pub event_id: String,
    pub recorded_at: DateTime<Utc>,
}

impl Store {
    /// Tombstones, newest deletion first, at most `limit`.
    pub async fn tombstones(&self, limit: i64) -> Result<Vec<Tombstone>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(user_tombstones::table
            .order((
                user_tombstones::recorded_at.desc(),
                user_tombstones::user_id,
            ))
            .limit(limit.max(0))
            .select(Tombstone::as_select())
            .load(&mut conn)
            .await?)
    }

    /// Removes the tombstone of `user_id` under that user's lock; returns it, or `None`
    /// when there was none.
    pub async fn remove_tombstone(&self, user_id: &str) -> Result<Option<Tombstone>, StoreError> {
        let mut conn = self.conn().await?;
        let id = user_id.to_owned();
        conn.transaction::<_, StoreError, _>(async move |c| {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind::<diesel::sql_types::Integer, _>(LOCK_USER)
                .bind::<diesel::sql_types::Text, _>(&id)
                .execute(c)
                .await?;
            Ok(
                diesel::delete(user_tombstones::table.filter(user_tombstones::user_id.eq(&id)))
                    .returning(Tombstone::as_returning())
                    .get_result(c)
                    .await
                    .optional()?,
            )
        })
        .await
    }
}
