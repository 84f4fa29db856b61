//! The store: Diesel schema, embedded migrations and `apply` — the one idempotent step
//! through which webhooks, lazy sync, backfill and reconciliation all write.
//!
//! Every entity (users, organizations, domains, memberships, roles, permissions) goes
//! through the same step: an entity is its declaration (one file per entity in core's
//! `record/`, read through `tables`), and the rules are the same for all (`plan`). A batch of events is applied in one transaction, in
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
//! 3. one statement records the event ids (those in none of `processed_events`' day
//!    partitions, `RETURNING`: exact because every delivery of an id holds the same
//!    locks of step 1, an event without a scope its own id's) and makes
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
mod archive;
mod catalog;
mod cursors;
pub mod diagnose;
pub mod layout;
pub mod locks;
pub mod migrate;
mod parents;
pub mod plan;
mod pool;
pub mod processed;
mod reads;
mod rows;
pub mod schema;
pub mod spool;
mod sql;
mod tables;
pub mod tombstones;
pub mod usertag;
mod versions;

use std::time::Duration;

use diesel_async::{AsyncPgConnection, pooled_connection::deadpool::Pool};

pub use locks::SessionLock;
pub use plan::Outcome;
pub use rows::{DomainRow, MembershipRow, OrganizationRow};
pub use tombstones::Tombstone;
pub use versions::RowVersion;
/// A row of `users`, as reads return it (declared with the users entity).
pub use workos_sync_core::UserRow;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    /// `migrate` found a table it would create already there, not made by workos-sync;
    /// nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// The tables do not fit the settings (a users column missing, a mapping naming
    /// nothing, soft deletes without `deleted_at`): the store cannot write; the message
    /// says what to run.
    #[error("schema: {0}")]
    Schema(#[from] layout::LayoutError),
    /// An application's foreign key forbids removing a row WorkOS deleted. Retrying
    /// cannot help: dead-letter at once (the message names the constraint and the
    /// setting that keeps such rows instead).
    #[error(
        "delete blocked by foreign key {constraint} on table {table}: {}make the key ON DELETE CASCADE / SET NULL",
        match setting { Some(s) => format!("set sync.{s} = \"soft\" to keep such rows with deleted_at, or "), None => String::new() }
    )]
    DeleteBlocked {
        constraint: String,
        table: String,
        /// The setting that would keep the row instead (`None`: the entity has no soft
        /// mode: domains, roles, permissions).
        setting: Option<&'static str>,
    },
    /// The store broke one of its own invariants (a bug, not bad input or the database):
    /// treated like any failed statement, so the event is retried and then dead-lettered.
    #[error("store invariant broken: {0}")]
    Invariant(&'static str),
    /// A lock wait passed the session's `lock_timeout` (a table or row another session
    /// holds: the application's long transaction, a migration): the batch was rolled
    /// back. Not the event's fault: try it again shortly, never into a long retry tier.
    #[error("a lock wait timed out: another session holds what the batch needs")]
    Locked,
    /// A batch transaction took longer than the apply timeout and was abandoned (its
    /// connection is discarded, so Postgres rolls it back). Not by itself a sign that
    /// the database is down: callers ask [`Store::ping`] to tell.
    #[error("batch not finished within {0:?}; abandoned")]
    Timeout(Duration),
}

impl StoreError {
    /// True when the database could not be reached: wait and retry, never dead-letter.
    /// True when retrying the same event cannot succeed: dead-letter it at once.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::DeleteBlocked { .. })
    }

    /// True when a lock wait passed `lock_timeout` (Postgres's SQLSTATE 55P03, which
    /// diesel reports as an unknown database error with Postgres's own message, and the
    /// migration harness as text): the one place that message is recognised.
    pub fn is_lock_timeout(&self) -> bool {
        const MESSAGE: &str = "lock timeout";
        match self {
            Self::Locked => true,
            Self::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                info,
            )) => info.message().contains(MESSAGE),
            Self::Migration(text) => text.contains(MESSAGE),
            _ => false,
        }
    }

    /// A statement cancelled by its `statement_timeout` (Postgres's own message).
    pub fn is_statement_timeout(&self) -> bool {
        matches!(
            self,
            Self::Query(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("statement timeout")
        )
    }

    /// A row whose partition does not exist (Postgres's own message): a partition of
    /// `processed_events` or the event archive was dropped, or never made for that day.
    pub fn is_missing_partition(&self) -> bool {
        self.to_string().contains("no partition of relation")
    }

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

/// The connection pool and every database operation of workos-sync.
#[derive(Clone)]
pub struct Store {
    pool: Pool<AsyncPgConnection>,
    url: std::sync::Arc<str>,
    apply_timeout: Duration,
    entities: workos_sync_core::EntitySet,
    /// `database.schema`: every session's search_path.
    schema: std::sync::Arc<str>,
    users_columns: std::sync::Arc<std::collections::BTreeMap<String, String>>,
    deletes: layout::DeleteModes,
    /// The write path's statements, built from the users table's layout on first use.
    statements: std::sync::Arc<tokio::sync::OnceCell<std::sync::Arc<sql::Statements>>>,
    /// The event archive, when `archive.enabled`.
    archive: Option<std::sync::Arc<archive::Archive>>,
    /// The days whose `processed_events` partitions this process knows exist.
    processed: std::sync::Arc<processed::Days>,
}
