//! The store: Diesel schema, embedded migrations and `apply` — the one idempotent step
//! through which webhooks, lazy sync, backfill and reconciliation all write.
//!
//! A batch of events is applied in one transaction, in four round trips (the statements
//! are in the private `sql` module, prepared once per connection):
//! 1. lock every user of the batch, then the usertag lock root of every user it might create
//!    (`pg_advisory_xact_lock` on the hashes, one statement, one global order: batches
//!    never deadlock each other, and one user's events are serialised inside Postgres
//!    whatever the number of workers); pipelined behind it, read the stored
//!    `workos_updated_at`, usertags and tombstones (its snapshot is taken after the locks);
//! 2. decide outcomes in memory ([`plan`]) as if no id had been seen; pick usertags for
//!    new users (their bases' roots are locked: what is read stays true until commit);
//! 3. one statement records the event ids (`ON CONFLICT DO NOTHING RETURNING`) and makes
//!    every write (guarded upserts, sign-in refreshes, deletes with tombstones), each
//!    write skipped if its source event id was recorded before. Ids that do not come back
//!    were applied before: the batch is re-planned with them as duplicates, and users
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

pub mod migrate;
pub mod plan;
pub mod schema;
mod sql;
pub mod tombstones;
pub mod usertag;

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use diesel::{prelude::*, sql_types::Text};
use diesel_async::{
    AsyncConnection, AsyncPgConnection, RunQueryDsl,
    pooled_connection::{AsyncDieselConnectionManager, deadpool::Pool},
};
use serde::Serialize;
use workos_sync_core::{Event, EventKind, User};

pub use plan::Outcome;
use plan::{Existing, Write};
use schema::{processed_events, sync_cursors, user_tombstones, users};
pub use tombstones::Tombstone;

/// Advisory-lock namespaces (first key of the two-key form).
pub(crate) const LOCK_USER: i32 = 0x5753_0001;
const LOCK_USERTAG: i32 = 0x5753_0002;
pub(crate) const LOCK_MIGRATE: i64 = 0x5753_0003;

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
}

/// A session-level advisory lock held on a dedicated connection (not pooled, so it can
/// never leak back into the pool). Dropping it closes the connection, which releases
/// the lock; a crashed holder's lock disappears with its connection.
pub struct SessionLock {
    conn: AsyncPgConnection,
    key: i64,
}

impl SessionLock {
    pub async fn release(mut self) {
        let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<diesel::sql_types::BigInt, _>(self.key)
            .execute(&mut self.conn)
            .await;
    }
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

type Conn = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;

/// Default of [`Store::with_apply_timeout`] (`database.apply_timeout_secs`).
const DEFAULT_APPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Store::ping`] waits for `SELECT 1`.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Builds the pool (no connection is opened yet). `size` connections at most; a
    /// connection attempt or a wait for a free connection gives up after `timeout`.
    pub fn new(url: &str, size: usize, timeout: Duration) -> Result<Self, StoreError> {
        Self::with_apply_timeout(url, size, timeout, DEFAULT_APPLY_TIMEOUT)
    }

    /// Like [`Store::new`]; a batch transaction may take `apply_timeout` at most (see
    /// [`StoreError::Timeout`]).
    pub fn with_apply_timeout(
        url: &str,
        size: usize,
        timeout: Duration,
        apply_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let mut config = diesel_async::pooled_connection::ManagerConfig::default();
        // A transaction abandoned after `apply_timeout` (its connection hung, then was
        // discarded) may live on in Postgres as "idle in transaction", holding its user
        // locks, until the server notices the dead client (TCP keepalive: ~2 h). The
        // server ends such sessions itself after twice the apply timeout; ours are never
        // idle inside a transaction for more than a round trip.
        let idle_in_tx = apply_timeout.saturating_mul(2);
        config.custom_setup = Box::new(move |url| connect_pooled(url, idle_in_tx));
        let manager =
            AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
        let pool = Pool::builder(manager)
            .max_size(size.max(1))
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self {
            pool,
            url: url.into(),
            apply_timeout,
        })
    }

    /// Takes the session advisory lock `key` if free; `None` when someone holds it.
    pub async fn try_session_lock(&self, key: i64) -> Result<Option<SessionLock>, StoreError> {
        let mut conn = AsyncPgConnection::establish(&self.url)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let got: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind::<diesel::sql_types::BigInt, _>(key)
            .get_result(&mut conn)
            .await?;
        Ok(got.locked.then_some(SessionLock { conn, key }))
    }

    /// What [`Store::apply_batch`] would return for `events`, without writing: the same
    /// reads and the same [`plan`], no locks taken (the answer may be stale by the time
    /// it is shown, which is fine for a dry run).
    pub async fn preview(&self, events: &[Event]) -> Result<Vec<Outcome>, StoreError> {
        let mut conn = self.conn().await?;
        let (existing, _) = load_existing(&conn, &user_ids_of(events)).await?;
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let seen: HashSet<String> = processed_events::table
            .filter(processed_events::event_id.eq_any(&ids))
            .select(processed_events::event_id)
            .load::<String>(&mut conn)
            .await?
            .into_iter()
            .collect();
        Ok(plan::plan(events, &existing, &seen).outcomes)
    }

    pub fn from_settings(
        s: &workos_sync_core::settings::DatabaseSettings,
    ) -> Result<Self, StoreError> {
        use secrecy::ExposeSecret;
        Self::with_apply_timeout(
            s.url.expose_secret(),
            s.pool_size,
            Duration::from_secs(5),
            Duration::from_secs(s.apply_timeout_secs),
        )
    }

    async fn conn(&self) -> Result<Conn, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// `SELECT 1` on a pooled connection, within [`PING_TIMEOUT`].
    pub async fn ping(&self) -> Result<(), StoreError> {
        let ping = async {
            let mut conn = self.conn().await?;
            diesel::sql_query("SELECT 1")
                .execute(&mut conn)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            Ok(())
        };
        tokio::time::timeout(PING_TIMEOUT, ping)
            .await
            .map_err(|_| StoreError::Unavailable(format!("no answer within {PING_TIMEOUT:?}")))?
    }

    /// Applies one event (a batch of one).
    pub async fn apply(&self, event: &Event) -> Result<Outcome, StoreError> {
        let outcomes = self.apply_batch(std::slice::from_ref(event)).await?;
        outcomes
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Invariant("a batch of one returned no outcome"))
    }

    /// Applies a batch in one transaction; returns one outcome per event, in order.
    pub async fn apply_batch(&self, events: &[Event]) -> Result<Vec<Outcome>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let mut conn = self.conn().await?;
        // A connection whose network path silently drops packets hangs instead of
        // failing (TCP gives up after ~15 min). Dropping the future mid-transaction
        // leaves the connection's transaction open, so the pool discards it.
        let outcomes = tokio::time::timeout(
            self.apply_timeout,
            conn.transaction::<_, StoreError, _>(async |c| apply_in_tx(c, events).await),
        )
        .await
        .map_err(|_| StoreError::Timeout(self.apply_timeout))??;
        metrics::histogram!("workos_sync_apply_batch_seconds")
            .record(started.elapsed().as_secs_f64());
        for (ev, outcome) in events.iter().zip(&outcomes) {
            metrics::counter!(
                "workos_sync_events_applied_total",
                "type" => metric_type(&ev.event_type),
                "outcome" => outcome.as_str()
            )
            .increment(1);
        }
        Ok(outcomes)
    }

    /// A user row by id.
    pub async fn get_user(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(users::table
            .find(id)
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// True when `id` has a tombstone.
    pub async fn is_tombstoned(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let n: i64 = user_tombstones::table
            .filter(user_tombstones::user_id.eq(id))
            .count()
            .get_result(&mut conn)
            .await?;
        Ok(n > 0)
    }

    /// All user rows ordered by id (tests, checks).
    pub async fn all_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(users::table
            .order(users::id)
            .select(UserRow::as_select())
            .load(&mut conn)
            .await?)
    }

    /// Number of processed-event records.
    pub async fn processed_count(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn().await?;
        Ok(processed_events::table
            .count()
            .get_result(&mut conn)
            .await?)
    }

    /// Deletes processed-event records older than `before`, `batch` rows per statement
    /// (short transactions, no long lock on the table). Returns how many were deleted.
    pub async fn prune_processed(
        &self,
        before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let mut total = 0u64;
        loop {
            let mut conn = self.conn().await?;
            let n = diesel::sql_query(
                "DELETE FROM processed_events WHERE event_id IN \
                 (SELECT event_id FROM processed_events WHERE processed_at < $1 LIMIT $2)",
            )
            .bind::<diesel::sql_types::Timestamptz, _>(before)
            .bind::<diesel::sql_types::BigInt, _>(batch.max(1))
            .execute(&mut conn)
            .await?;
            total += n as u64;
            if (n as i64) < batch.max(1) {
                return Ok(total);
            }
        }
    }

    /// Every stored cursor: (name, cursor, last run).
    pub async fn cursors(
        &self,
    ) -> Result<Vec<(String, Option<String>, Option<DateTime<Utc>>)>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(sync_cursors::table
            .order(sync_cursors::name)
            .select((
                sync_cursors::name,
                sync_cursors::cursor,
                sync_cursors::last_run_at,
            ))
            .load(&mut conn)
            .await?)
    }

    /// Reads a named cursor.
    pub async fn cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(sync_cursors::table
            .find(name)
            .select(sync_cursors::cursor)
            .first::<Option<String>>(&mut conn)
            .await
            .optional()?
            .flatten())
    }

    /// Stores a named cursor.
    pub async fn set_cursor(&self, name: &str, cursor: Option<&str>) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        diesel::insert_into(sync_cursors::table)
            .values((
                sync_cursors::name.eq(name),
                sync_cursors::cursor.eq(cursor),
                sync_cursors::last_run_at.eq(diesel::dsl::now),
            ))
            .on_conflict(sync_cursors::name)
            .do_update()
            .set((
                sync_cursors::cursor.eq(cursor),
                sync_cursors::last_run_at.eq(diesel::dsl::now),
                sync_cursors::updated_at.eq(diesel::dsl::now),
            ))
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}

/// Opens a pooled connection with `plan_cache_mode = force_custom_plan`: prepared
/// statements with `= ANY($1)` otherwise switch to a generic plan after five runs,
/// planned for a 10-element array and for the table as small as it was then; on a
/// growing processed_events that became a sequential scan (140 ms per batch at 50k
/// rows, measured). Custom plans cost ~0.1 ms of planning and always use the index.
///
/// `random_page_cost = 1.1` (default 4.0, which models a spinning disk): the rows this
/// service reads are hot in the buffer cache, and at 4.0 the planner chose a sequential
/// scan of `users` over 100 index probes once the table held ~10k rows (EXPLAIN on a
/// 10k-row table: seq scan cost 284 vs index 110 at 1.1). Only this pool's sessions.
///
/// `idle_in_transaction_session_timeout = idle_in_tx` (default 0 = never): see
/// [`Store::with_apply_timeout`].
fn connect_pooled(
    url: &str,
    idle_in_tx: Duration,
) -> futures_util::future::BoxFuture<'_, diesel::ConnectionResult<AsyncPgConnection>> {
    let url = url.to_owned();
    Box::pin(async move {
        use diesel_async::SimpleAsyncConnection;
        let mut conn = AsyncPgConnection::establish(&url).await?;
        conn.batch_execute(&format!(
            "SET plan_cache_mode = force_custom_plan; SET random_page_cost = 1.1; \
             SET idle_in_transaction_session_timeout = {}",
            idle_in_tx.as_millis().max(1)
        ))
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
        Ok(conn)
    })
}

/// Bounded label set for metrics: unknown event types are folded into `other`.
fn metric_type(t: &str) -> &'static str {
    match t {
        "user.created" => "user.created",
        "user.updated" => "user.updated",
        "user.deleted" => "user.deleted",
        "user.snapshot" => "user.snapshot",
        _ => "other",
    }
}

#[derive(QueryableByName)]
struct StateRow {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    updated_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    usertag: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    last_sign_in_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct TagRow {
    #[diesel(sql_type = Text)]
    usertag: String,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    event_id: String,
}

/// What the database holds for `user_ids` (rows and tombstones, one round trip), and
/// the usertag of each existing row.
async fn load_existing(
    c: &AsyncPgConnection,
    user_ids: &[String],
) -> Result<(HashMap<String, Existing>, HashMap<String, String>), StoreError> {
    let mut existing: HashMap<String, Existing> = HashMap::new();
    let mut tags: HashMap<String, String> = HashMap::new();
    if user_ids.is_empty() {
        return Ok((existing, tags));
    }
    let rows: Vec<StateRow> = sql::LoadState { ids: user_ids }.load(&mut &*c).await?;
    for r in rows {
        let e = existing.entry(r.id.clone()).or_default();
        if r.kind == "t" {
            e.tombstoned = true;
        } else {
            e.updated_at = r.updated_at;
            e.last_sign_in_at = r.last_sign_in_at;
            if let Some(tag) = r.usertag {
                tags.insert(r.id, tag);
            }
        }
    }
    Ok((existing, tags))
}

/// The distinct user ids of a batch.
fn user_ids_of(events: &[Event]) -> Vec<String> {
    let set: HashSet<&str> = events.iter().filter_map(Event::user_id).collect();
    set.into_iter().map(str::to_owned).collect()
}

/// The usertag lock roots ([`usertag::lock_root`]) of every user the batch might create
/// (any event carrying user data but a delete: an update of an unknown user creates it
/// too).
fn creatable_bases(events: &[Event]) -> Vec<String> {
    let set: HashSet<String> = events
        .iter()
        .filter_map(|ev| match &ev.kind {
            EventKind::UserCreated(u) | EventKind::UserUpdated(u) | EventKind::UserSnapshot(u) => {
                Some(usertag::lock_root(&usertag::base(&u.email)).to_owned())
            }
            EventKind::UserDeleted(_) | EventKind::Other => None,
        })
        .collect();
    set.into_iter().collect()
}

async fn apply_in_tx(
    c: &mut AsyncPgConnection,
    events: &[Event],
) -> Result<Vec<Outcome>, StoreError> {
    let user_ids = user_ids_of(events);
    let bases = creatable_bases(events);
    // Every lock of the transaction in one statement and one global order: the users,
    // then the usertag bases of users it might create (needed before their tags are
    // read, and taking them later could deadlock against another batch). The read is
    // pipelined behind it: Postgres runs the two in order, and the read's snapshot is
    // taken when it starts, after every lock is held.
    let (existing, tags) = if user_ids.is_empty() {
        Default::default()
    } else {
        let conn: &AsyncPgConnection = c;
        let lock = sql::LockKeys {
            user_ns: LOCK_USER,
            users: &user_ids,
            tag_ns: LOCK_USERTAG,
            bases: &bases,
        }
        .execute(&mut &*conn);
        let read = load_existing(conn, &user_ids);
        futures_util::try_join!(async { lock.await.map_err(StoreError::from) }, read)?.1
    };

    // Dedupe by writing: plan as if no id had been seen, and send the records and the
    // writes in one statement whose writes are conditional on their source event being
    // newly recorded. An id seen before has its effect in `existing` already, so it is
    // never the source of a write unless the table was changed behind our back (the
    // application deleted a row by hand); such users are re-planned with the seen ids
    // and written by a second statement, so the result is exactly that of planning with
    // the seen ids known. Other writes are the same either way: a seen event changes no
    // other event's outcome.
    let plan0 = plan::plan(events, &existing, &HashSet::new());
    let mut batch = sql::WriteBatch::default();
    for p in &plan0.processed {
        batch.event_ids.push(&p.event_id);
        batch.event_types.push(&p.event_type);
        batch.user_ids.push(p.user_id.as_deref());
        batch.outcomes.push(p.outcome.as_str());
    }
    add_writes(c, &mut batch, &plan0.writes, &tags, true).await?;
    if batch.is_empty() {
        return Ok(plan0.outcomes);
    }
    let inserted: HashSet<String> = batch
        .load::<IdRow>(c)
        .await?
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    if inserted.len() == plan0.processed.len() {
        return Ok(plan0.outcomes);
    }
    let seen: HashSet<String> = plan0
        .processed
        .iter()
        .filter(|p| !inserted.contains(&p.event_id))
        .map(|p| p.event_id.clone())
        .collect();
    let exact = plan::plan(events, &existing, &seen);
    let skipped: HashSet<&str> = plan0
        .writes
        .iter()
        .filter_map(|w| match w {
            Write::Upsert {
                user,
                source: Some(src),
                ..
            } if seen.contains(src) => Some(user.id.as_str()),
            Write::Delete {
                user_id, event_id, ..
            } if seen.contains(event_id) => Some(user_id.as_str()),
            _ => None,
        })
        .collect();
    let redo: Vec<Write> = exact
        .writes
        .iter()
        .filter(|w| skipped.contains(write_user(w)))
        .cloned()
        .collect();
    if !redo.is_empty() {
        let mut fix = sql::WriteBatch::default();
        add_writes(c, &mut fix, &redo, &tags, false).await?;
        fix.execute(c).await?;
    }
    Ok(exact.outcomes)
}

fn write_user(w: &Write) -> &str {
    match w {
        Write::Upsert { user, .. } => &user.id,
        Write::RefreshSignIn { user_id, .. } | Write::Delete { user_id, .. } => user_id,
    }
}

/// Adds `writes` to `batch`, allocating usertags for new users. With `conditional`,
/// each write carries its source event id (skipped if that id was recorded before);
/// otherwise every write is unconditional.
async fn add_writes<'a>(
    c: &mut AsyncPgConnection,
    batch: &mut sql::WriteBatch<'a>,
    writes: &'a [Write],
    tags: &HashMap<String, String>,
    conditional: bool,
) -> Result<(), StoreError> {
    let new_users: Vec<&User> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Upsert {
                user, new: true, ..
            } => Some(&**user),
            _ => None,
        })
        .collect();
    let mut new_tags = allocate_usertags(c, &new_users).await?.into_iter();
    for w in writes {
        match w {
            Write::Upsert {
                user: u,
                new,
                source,
            } => {
                let tag = if *new {
                    new_tags.next().unwrap_or_default()
                } else {
                    // Existing rows keep their usertag: it is not in the SET list.
                    tags.get(&u.id).cloned().unwrap_or_default()
                };
                batch.id.push(&u.id);
                batch.email.push(&u.email);
                batch.name.push(u.display_name());
                batch.usertag.push(tag);
                batch.avatar_url.push(u.profile_picture_url.as_deref());
                batch.first_name.push(u.first_name.as_deref());
                batch.last_name.push(u.last_name.as_deref());
                batch.email_verified.push(u.email_verified);
                batch.external_id.push(u.external_id.as_deref());
                batch.metadata.push(
                    u.metadata
                        .as_ref()
                        .and_then(|m| serde_json::to_value(m).ok())
                        .unwrap_or_else(|| serde_json::json!({})),
                );
                batch.locale.push(u.locale.as_deref());
                batch.last_sign_in_at.push(u.last_sign_in_at);
                batch.workos_created_at.push(u.created_at);
                batch.workos_updated_at.push(u.updated_at);
                batch.source.push(source.as_deref().filter(|_| conditional));
            }
            Write::RefreshSignIn {
                user_id,
                last_sign_in_at,
            } => {
                batch.refresh_id.push(user_id);
                batch.refresh_at.push(*last_sign_in_at);
            }
            Write::Delete {
                user_id,
                deleted_at,
                event_id,
            } => {
                batch.delete_id.push(user_id);
                batch.deleted_at.push(*deleted_at);
                batch.delete_event.push(event_id);
                batch
                    .delete_source
                    .push(Some(event_id.as_str()).filter(|_| conditional));
            }
        }
    }
    Ok(())
}

/// Which of `tags` are in use.
async fn taken_tags(
    c: &mut AsyncPgConnection,
    tags: &[String],
) -> Result<HashSet<String>, StoreError> {
    if tags.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(sql::TakenTags { tags }
        .load::<TagRow>(c)
        .await?
        .into_iter()
        .map(|r| r.usertag)
        .collect())
}

/// Picks a free usertag for each new user. The caller holds the lock of every base's
/// root (taken with the user locks), so what is read here stays true until commit: read
/// which candidates are taken, then hand out the first free one, never the same twice.
async fn allocate_usertags(
    c: &mut AsyncPgConnection,
    new_users: &[&User],
) -> Result<Vec<String>, StoreError> {
    if new_users.is_empty() {
        return Ok(Vec::new());
    }
    let bases: Vec<String> = new_users.iter().map(|u| usertag::base(&u.email)).collect();
    let mut unique_bases: Vec<String> = bases.clone();
    unique_bases.sort();
    unique_bases.dedup();
    // Most bases are free: look up the bare bases first and the numbered candidates only
    // of the bases already taken. Asking for every candidate at once (50 per base) made
    // the planner scan the whole users table once per batch (measured: ~500 sequential
    // scans of users while draining 100k events).
    // A base shared by two new users of this batch needs its numbered candidates too
    // (the second user gets one), even when the base itself is free.
    let mut taken = taken_tags(c, &unique_bases).await?;
    let shared: HashSet<&String> = {
        let mut once = HashSet::new();
        bases.iter().filter(|b| !once.insert(*b)).collect()
    };
    let numbered: Vec<String> = unique_bases
        .iter()
        .filter(|b| taken.contains(*b) || shared.contains(b))
        .flat_map(|b| usertag::candidates(b).into_iter().skip(1))
        .collect();
    taken.extend(taken_tags(c, &numbered).await?);
    let mut out = Vec::with_capacity(bases.len());
    for (base, user) in bases.iter().zip(new_users) {
        let mut chosen = usertag::candidates(base)
            .into_iter()
            .find(|t| !taken.contains(t));
        if chosen.is_none() {
            // Every numbered candidate is taken: derive a suffix from the user id, and
            // make sure it is free (the root lock is held, so the answer holds). `-`
            // is never in a base, so no other root can hand out the same tag.
            let digest = workos_sync_core::event::body_hash_id(user.id.as_bytes());
            for n in 0..8usize {
                let start = 7 + n * 6;
                let suffix = digest.get(start..start + 6).unwrap_or("0");
                let t = format!("{base}-{suffix}");
                let exists: i64 = users::table
                    .filter(users::usertag.eq(&t))
                    .count()
                    .get_result(c)
                    .await?;
                if exists == 0 && !taken.contains(&t) {
                    chosen = Some(t);
                    break;
                }
            }
        }
        let tag = chosen.unwrap_or_else(|| format!("{base}-{}", user.id.to_ascii_lowercase()));
        taken.insert(tag.clone());
        out.push(tag);
    }
    Ok(out)
}
