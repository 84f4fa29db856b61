//! Reads for `workos-sync doctor`: when the last event was applied, one event's outcome,
//! one user's processed events and tombstone, whether the users table is adopted; and
//! the removal of doctor's own test user (`user_doctor_…`, and nothing else).
//!
//! Every read here is bounded: `processed_events` has no index on `user_id` (the apply
//! path would pay for one on every insert), so a user's events are read under a
//! statement timeout and the caller says when the scan gave up. Failures are
//! [`StoreError`]s.

use chrono::{DateTime, Utc};
use diesel::{prelude::*, sql_types::Text};
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::{
    Store, StoreError, Tombstone,
    schema::{processed_events, tombstones},
};

/// The only ids [`Store::remove_probe_user`] removes: doctor's test users.
pub const PROBE_USER_PREFIX: &str = "user_doctor_";
/// Prefix of the test event ids; the rest is the test user's.
const PROBE_EVENT_PREFIX: &str = "event_doctor_";
/// Prefix of the `sync_cursors` row that remembers a test user until it is removed.
const PROBE_MARK: &str = "doctor:";

/// The test event id of test user `user_id`.
pub fn probe_event_id(user_id: &str) -> String {
    format!(
        "{PROBE_EVENT_PREFIX}{}",
        user_id.strip_prefix(PROBE_USER_PREFIX).unwrap_or(user_id)
    )
}

/// One row of `processed_events`.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = processed_events, check_for_backend(diesel::pg::Pg))]
pub struct ProcessedEvent {
    pub event_id: String,
    pub event_type: String,
    pub outcome: String,
    pub processed_at: DateTime<Utc>,
}

/// A user's processed events, or why they could not all be read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserEvents {
    /// Newest first.
    pub events: Vec<ProcessedEvent>,
    /// The scan took longer than its bound (a very large table): `events` is empty.
    pub timed_out: bool,
}

/// How far back [`Store::last_applied`] looks, window by window: the BRIN index on
/// `processed_at` makes each a short range scan, where a bare `max()` reads the table.
const LAST_APPLIED_WINDOWS: [&str; 4] = ["10 minutes", "1 day", "7 days", "90 days"];

impl Store {
    /// When the newest processed event was recorded (within the last 90 days).
    pub async fn last_applied(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut conn = self.conn().await?;
        for window in LAST_APPLIED_WINDOWS {
            let newest: Option<DateTime<Utc>> = processed_events::table
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
                    "processed_at > now() - interval '{window}'"
                )))
                .select(diesel::dsl::max(processed_events::processed_at))
                .get_result(&mut conn)
                .await?;
            if newest.is_some() {
                return Ok(newest);
            }
        }
        Ok(None)
    }

    /// The outcome recorded for event `id` (`applied`, `ignored`, …), if it was processed.
    pub async fn event_outcome(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(processed_events::table
            .find(id)
            .select(processed_events::outcome)
            .get_result(&mut conn)
            .await
            .optional()?)
    }

    /// User `id`'s processed events, newest first, at most `limit`, read within
    /// `within` (see the module header).
    pub async fn processed_of_user(
        &self,
        id: &str,
        limit: i64,
        within: std::time::Duration,
    ) -> Result<UserEvents, StoreError> {
        let mut conn = self.conn().await?;
        let id = id.to_owned();
        let ms = within.as_millis().max(1);
        let read = conn
            .transaction::<_, StoreError, _>(async move |c| {
                c.batch_execute(&format!("SET LOCAL statement_timeout = {ms}"))
                    .await?;
                Ok(processed_events::table
                    .filter(processed_events::user_id.eq(&id))
                    .order(processed_events::processed_at.desc())
                    .limit(limit)
                    .select(ProcessedEvent::as_select())
                    .load(c)
                    .await?)
            })
            .await;
        match read {
            Ok(events) => Ok(UserEvents {
                events,
                timed_out: false,
            }),
            Err(e) if e.is_statement_timeout() => Ok(UserEvents {
                events: Vec::new(),
                timed_out: true,
            }),
            Err(e) => Err(e),
        }
    }

    /// The tombstone of `key` of `entity`, if any.
    pub async fn tombstone_of(
        &self,
        entity: workos_sync_core::Entity,
        key: &str,
    ) -> Result<Option<Tombstone>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(tombstones::table
            .filter(tombstones::entity.eq(entity.name()))
            .filter(tombstones::id.eq(key))
            .select(Tombstone::as_select())
            .get_result(&mut conn)
            .await
            .optional()?)
    }

    /// True when `migrate --adopt` made the users table the application's.
    pub async fn users_adopted(&self) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        crate::catalog::users_adopted(&mut conn).await
    }

    /// Remembers test user `id` (a row of `sync_cursors`) before its event is sent, so
    /// that a later run removes it if this one cannot.
    pub async fn mark_probe_user(&self, id: &str) -> Result<(), StoreError> {
        self.set_cursor(&format!("{PROBE_MARK}{id}"), None).await
    }

    /// Test users marked and not yet removed.
    pub async fn probe_users(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .cursors()
            .await?
            .into_iter()
            .filter_map(|(name, _, _)| name.strip_prefix(PROBE_MARK).map(str::to_owned))
            .collect())
    }

    /// Removes doctor's test user `id` and every trace of its test event (its row,
    /// tombstone, processed record, archived body and mark), in one transaction.
    /// Refuses any id without [`PROBE_USER_PREFIX`]: this never removes a real user.
    pub async fn remove_probe_user(&self, id: &str) -> Result<(), StoreError> {
        if !id.starts_with(PROBE_USER_PREFIX) {
            return Err(StoreError::Invariant("not a doctor test user"));
        }
        let users_id = self.statements().await?.layout.q("id");
        let mut conn = self.conn().await?;
        let (id, event_id) = (id.to_owned(), probe_event_id(id));
        conn.transaction::<_, StoreError, _>(async move |c| {
            diesel::delete(crate::schema::sync_cursors::table.find(format!("{PROBE_MARK}{id}")))
                .execute(c)
                .await?;
            diesel::sql_query(format!("DELETE FROM users WHERE {users_id} = $1"))
                .bind::<Text, _>(&id)
                .execute(c)
                .await?;
            diesel::delete(
                tombstones::table
                    .filter(tombstones::entity.eq(workos_sync_core::Entity::Users.name()))
                    .filter(tombstones::id.eq(&id)),
            )
            .execute(c)
            .await?;
            diesel::delete(processed_events::table.find(&event_id))
                .execute(c)
                .await?;
            // The archive exists only when it was ever enabled.
            #[derive(QueryableByName)]
            struct Exists {
                #[diesel(sql_type = diesel::sql_types::Bool)]
                archive: bool,
            }
            let e: Exists =
                diesel::sql_query("SELECT to_regclass('event_archive') IS NOT NULL AS archive")
                    .get_result(c)
                    .await?;
            if e.archive {
                diesel::sql_query("DELETE FROM event_archive WHERE event_id = $1")
                    .bind::<Text, _>(&event_id)
                    .execute(c)
                    .await?;
            }
            Ok(())
        })
        .await
    }
}
