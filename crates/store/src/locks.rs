//! Advisory locks: every key workos-sync takes in Postgres, named once here, and the
//! session lock that makes one process the leader of a periodic job.
//!
//! Two kinds: transaction-scoped locks of the apply path (`pg_advisory_xact_lock(ns,
//! hashtext(key))` on the records' scopes: a user, an organization, a role, a
//! permission; and usertag lock roots, released at commit), and session locks on a
//! dedicated connection (migrations, the reconciler, the drift check), each keyed by
//! the schema so two installations in one database never wait for each other. The
//! session connection has TCP keepalives, so a leader whose host vanished loses the lock
//! when its connection is found dead, and [`SessionLock::setting`] reads a setting
//! (`lock_timeout`…) on the holder's session. Failure model: taking a lock fails only
//! with the database ([`StoreError`]); a crashed holder's session lock disappears with
//! its connection.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::{Store, StoreError};

/// Namespace (first key of the two-key form) of the per-user locks of the apply path: a
/// user and the user's memberships.
pub const LOCK_USER: i32 = 0x5753_0001;
/// Namespace of the usertag lock roots (`usertag::lock_root`).
pub const LOCK_USERTAG: i32 = 0x5753_0002;
/// Session lock of `migrate` (several replicas may run it at once), per schema: the
/// second key is `hashtext(database.schema)`, so installations in two schemas of one
/// database never wait for each other.
pub const LOCK_MIGRATE: i32 = 0x5753_0003;
/// Session lock of the Events API reconciler (one leader at a time per schema).
pub const LOCK_RECONCILE: i32 = 0x5753_0004;
/// Session lock of the periodic drift check (one leader at a time per schema).
pub const LOCK_VERIFY: i32 = 0x5753_0008;
/// Namespace of the per-organization locks of the apply path: an organization, its
/// domains, memberships and organization roles are serialised by it (so an
/// organization's delete and its children's writes never interleave).
pub const LOCK_ORG: i32 = 0x5753_0005;
/// Namespace of the per-role locks (by role key).
pub const LOCK_ROLE: i32 = 0x5753_0006;
/// Namespace of the per-permission locks (by permission key).
pub const LOCK_PERMISSION: i32 = 0x5753_0007;
/// Namespace of the per-directory locks of the apply path: a directory, its users,
/// groups and group memberships are serialised by it (so a directory's delete and its
/// children's writes never interleave).
pub const LOCK_DIRECTORY: i32 = 0x5753_0009;
/// Namespace of the per-group locks of the apply path: an AuthKit group and its
/// memberships are serialised by it (a group's delete and a member_added never
/// interleave).
pub const LOCK_GROUP: i32 = 0x5753_000B;
/// Namespace of the per-organization-membership locks: a membership's writes and the
/// group memberships that name it (`group.member_added` names only the membership's id,
/// so the membership's user and organization locks cannot serve).
pub const LOCK_MEMBERSHIP: i32 = 0x5753_000C;
/// The event archive's partition changes (made on demand by any worker, dropped by
/// retention): one at a time per schema (transaction-level, `(key, hashtext(schema))`).
pub const LOCK_ARCHIVE: i32 = 0x5753_000A;

/// `processed_events`' partition changes (made ahead by any worker, dropped by `prune`):
/// one at a time per schema (transaction-level, `(key, hashtext(schema))`).
pub const LOCK_PROCESSED: i32 = 0x5753_000D;
/// Namespace of the per-event locks of the apply path, taken only for an event whose
/// record has no other scope (or that has no record): every delivery of one event id
/// takes the same locks, which is what makes the dedupe's lookup across the partitions
/// of `processed_events` exact.
pub const LOCK_EVENT: i32 = 0x5753_000E;

/// Takes the transaction-level advisory lock `(ns, hashtext(key))` (released at commit
/// or rollback), waiting at most the session's `lock_timeout`.
pub(crate) async fn xact_lock(
    c: &mut AsyncPgConnection,
    ns: i32,
    key: &str,
) -> Result<(), StoreError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind::<diesel::sql_types::Integer, _>(ns)
        .bind::<diesel::sql_types::Text, _>(key)
        .execute(c)
        .await?;
    Ok(())
}

/// A session-level advisory lock held on a dedicated connection (not pooled, so it can
/// never leak back into the pool). Dropping it closes the connection, which releases
/// the lock; a crashed holder's lock disappears with its connection.
pub struct SessionLock {
    conn: AsyncPgConnection,
    key: i32,
    schema: std::sync::Arc<str>,
}

impl SessionLock {
    /// The lock session's value of the Postgres setting `name` (what it runs with).
    pub async fn setting(&mut self, name: &str) -> Result<String, StoreError> {
        #[derive(QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::Text)]
            setting: String,
        }
        let s: Setting = diesel::sql_query("SELECT current_setting($1) AS setting")
            .bind::<diesel::sql_types::Text, _>(name)
            .get_result(&mut self.conn)
            .await?;
        Ok(s.setting)
    }

    pub async fn release(mut self) {
        let _ = diesel::sql_query("SELECT pg_advisory_unlock($1, hashtext($2))")
            .bind::<diesel::sql_types::Integer, _>(self.key)
            .bind::<diesel::sql_types::Text, _>(&*self.schema)
            .execute(&mut self.conn)
            .await;
    }
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

impl Store {
    /// Takes the session advisory lock `key` of this store's schema if free; `None`
    /// when someone holds it.
    pub async fn try_session_lock(&self, key: i32) -> Result<Option<SessionLock>, StoreError> {
        let mut conn = AsyncPgConnection::establish(&self.url)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        // Server-side TCP keepalives on the lock's session (defaults: the OS's, ~2 h
        // idle): a leader whose host or network vanished without closing the connection
        // loses the lock within 10 + 3 × 5 = 25 s, not hours, and another process leads.
        diesel_async::SimpleAsyncConnection::batch_execute(
            &mut conn,
            "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; \
             SET tcp_keepalives_count = 3",
        )
        .await?;
        let got: Locked =
            diesel::sql_query("SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked")
                .bind::<diesel::sql_types::Integer, _>(key)
                .bind::<diesel::sql_types::Text, _>(&*self.schema)
                .get_result(&mut conn)
                .await?;
        Ok(got.locked.then_some(SessionLock {
            conn,
            key,
            schema: self.schema.clone(),
        }))
    }
}
