//! workos-sync-pull: lazy sync, backfill and Events API reconciliation, everything that
//! reads the WorkOS API (used by the worker and the CLI, so the CLI does not link the
//! worker). All three write through the store's one `apply` step, so dedupe, version
//! guard, tombstones and per-record locking hold here exactly as for webhooks.
//!
//! - [`sync_user`] / [`sync_organization`]: fetch one user (with its memberships) or one
//!   organization (with its domains) now; WorkOS's own `entity_not_found` for that id
//!   removes and tombstones it locally. Any other answer (another 404, 5xx, a timeout)
//!   leaves the rows untouched.
//! - [`backfill`]: page through every enabled entity; each list's cursor is saved after
//!   each applied page, so a killed run resumes where it stopped.
//! - [`verify`]: list every enabled entity from WorkOS and compare it with the tables
//!   (missing, extra, stale, ahead), writing nothing.
//! - [`reconcile_once`]: page through `GET /events` oldest first from the stored cursor,
//!   publish every event to the events exchange with a confirm (the webhook path), and
//!   advance the cursor only after the page was confirmed, and never to an older event.
//!   An event that cannot be queued goes to the DLQ instead. A refused cursor is
//!   [`SyncError::CursorRejected`] (one clear line, a metric). Only the holder of a
//!   Postgres advisory lock runs; a crashed holder's lock dies with its connection.

//!
//! Failure model: every failure is a [`SyncError`] whose variant says whose it is
//! (WorkOS, the database, the broker, a refused cursor); nothing here retries beyond the
//! API client's own retries, and nothing is written on a failed WorkOS call.

mod backfill;
mod lazy;
mod pages;
mod reconcile;
mod verify;
mod walk;

use workos_sync_queue::PublishError;
use workos_sync_store::StoreError;
use workos_sync_workos_api::ApiError;

pub use backfill::{BackfillOptions, BackfillReport, Counts, backfill, cursor_name};
pub use lazy::{
    DirectoryUserWithGroups, OrganizationWithDomains, SyncResult, UserWithMemberships,
    sync_directory_user, sync_organization, sync_user,
};
pub use reconcile::{ReconcileReport, ReconcileRequest, Start, reconcile_once};
pub use verify::{
    Drift, Failed, RemovalBound, Repair, VerifyReport, verify, verify_as_leader, verify_since,
};
pub use workos_sync_store::locks::LOCK_RECONCILE;

/// Cursor names in `sync_cursors`.
pub const BACKFILL_CURSOR: &str = "backfill";
pub const EVENTS_CURSOR: &str = "events";
/// The `created_at` of the event the events cursor names (RFC 3339).
pub const EVENTS_CURSOR_AT: &str = "events_at";

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
    /// A key that cannot be a WorkOS id (an application's uuid, an `auth0|…` id): WorkOS
    /// is not asked about it.
    #[error("not a WorkOS id: {0}")]
    NotAnId(String),
    /// A paged list whose `list_metadata.after` came back as a cursor already followed:
    /// it would never end.
    #[error(
        "WorkOS's {list} list returned the cursor {cursor} a second time; stopped (a listing that never ends)"
    )]
    CursorRepeated { list: &'static str, cursor: String },
    /// A task walking one directory's lists panicked or was cancelled (a bug: the walk
    /// stops, and a backfill resumes from its saved cursor).
    #[error("a directory's walk ended abnormally: {0}")]
    WalkAborted(String),
}
