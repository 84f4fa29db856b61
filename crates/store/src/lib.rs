//! The store: Diesel schema, embedded migrations and `apply` — the one idempotent step
//! through which webhooks, lazy sync, backfill and reconciliation all write.
//!
//! Every entity (users, organizations, domains, memberships, roles, permissions) goes
//! through the same step: an entity is a table plus a mapping (`tables`), and the rules
//! are the same for all (`plan`). A batch of events is applied in one transaction, in
//! four round trips (the statements are in the private `sql` module, built once from the
//! mappings and prepared once per connection):
//! 1. lock every record's scope (a user with its memberships, an organization with its
//!    domains, memberships and roles, a role, a permission), then the usertag lock root
//!    of every user it might create (`pg_advisory_xact_lock` on the hashes, one
//!    statement, one global order: batches never deadlock each other, and one scope's
//!    events are serialised inside Postgres whatever the number of workers); pipelined
//!    behind it, read the stored versions, usertags, memberships by user and organization,
//!    and the tombstones of the records and their parents (its snapshot is taken after
//!    the locks);
//! 2. decide outcomes in memory ([`plan`]) as if no id had been seen; pick usertags for
//!    new users (their bases' roots are locked: what is read stays true until commit);
//! 3. one statement records the event ids (`ON CONFLICT DO NOTHING RETURNING`) and makes
//!    every write (guarded upserts per table, sign-in refreshes, deletes with their
//!    children and tombstones), each
//!    write skipped if its source event id was recorded before. Ids that do not come back
//!    were applied before: the batch is re-planned with them as duplicates, and keys
//!    whose write was skipped get their exact write in a second statement (only possible
//!    when the table changed behind our back, e.g. the application deleted a row; other
//!    writes are the same either way, since a seen event's effect is already in what
//!    step 1 read). Only such a row can make a new event's *recorded* outcome label
//!    differ, never what is written;
//! 4. commit.
//!
//! Failure model: [`StoreError::Unavailable`] means the database could not be reached
//! (hold and retry later, never dead-letter); [`StoreError::Query`] is a failed
//! statement (serialisation failure, deadlock, a trigger raising…), retried by the caller
//! per event through the delay tiers; [`StoreError::Timeout`] is a batch abandoned after
//! the apply timeout (a hung connection; the caller pings to tell an unreachable
//! database from a slow statement); [`StoreError::Invariant`] is a bug of the store.

mod apply;
mod cursors;
pub mod locks;
pub mod migrate;
pub mod plan;
mod pool;
mod reads;
mod rows;
pub mod schema;
mod sql;
mod tables;
pub mod tombstones;
mod user_columns;
pub mod usertag;

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, pooled_connection::deadpool::Pool};
use serde::Serialize;

pub use locks::SessionLock;
pub use plan::Outcome;
pub use rows::{DomainRow, MembershipRow, OrganizationRow};
use schema::users;
pub use tombstones::Tombstone;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    /// The store broke one of its own invariants (a bug, not bad input or the database):
    /// treated like any failed statement, so the event is retried and then dead-lettered.
    #[error("store invariant broken: {0}")]
    Invariant(&'static str),
    /// A batch transaction took longer than the apply timeout and was abandoned (its
    /// connection is discarded, so Postgres rolls it back). Not by itself a sign that
    /// the database is down: callers ask [`Store::ping`] to tell.
    #[error("batch not finished within {0:?}; abandoned")]
    Timeout(Duration),
}

impl StoreError {
    /// True when the database could not be reached: wait and retry, never dead-letter.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_)
                | Self::Query(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::ClosedConnection,
                    _,
                ))
                | Self::Query(diesel::result::Error::BrokenTransactionManager)
        )
    }
}

/// A row of `users`, as the lazy-sync endpoint returns it.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub usertag: String,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    pub details: Option<serde_json::Value>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email_verified: bool,
    pub external_id: Option<String>,
    pub metadata: serde_json::Value,
    pub locale: Option<String>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub workos_created_at: DateTime<Utc>,
    pub workos_updated_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The connection pool and every database operation of workos-sync.
#[derive(Clone)]
pub struct Store {
    pool: Pool<AsyncPgConnection>,
    url: std::sync::Arc<str>,
    apply_timeout: Duration,
    entities: workos_sync_core::EntitySet,
}
