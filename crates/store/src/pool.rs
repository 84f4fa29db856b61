//! The connection pool and the settings of every pooled session.
//!
//! Failure model: a connection that cannot be had within the pool's timeout is
//! [`StoreError::Unavailable`]; [`Store::ping`] is bounded too, so callers can tell an
//! unreachable database from a failed statement.

use std::time::Duration;

use diesel_async::{
    AsyncConnection, AsyncPgConnection, RunQueryDsl,
    pooled_connection::{AsyncDieselConnectionManager, deadpool::Pool},
};

use workos_sync_core::EntitySet;

use crate::{
    Store, StoreError,
    layout::{DeleteModes, Layout},
    sql::Statements,
};

pub(crate) type Conn = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;

/// Default of [`Store::with_apply_timeout`] (`database.apply_timeout_secs`).
const DEFAULT_APPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// `database.schema`'s default.
pub const DEFAULT_SCHEMA: &str = "public";

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
        Self::build(url, size, timeout, apply_timeout, DEFAULT_SCHEMA)
    }

    fn build(
        url: &str,
        size: usize,
        timeout: Duration,
        apply_timeout: Duration,
        schema: &str,
    ) -> Result<Self, StoreError> {
        if !workos_sync_core::settings::valid_schema_name(schema) {
            return Err(StoreError::Unavailable(format!(
                "invalid schema name {schema:?}"
            )));
        }
        let mut config = diesel_async::pooled_connection::ManagerConfig::default();
        // A transaction abandoned after `apply_timeout` (its connection hung, then was
        // discarded) may live on in Postgres as "idle in transaction", holding its user
        // locks, until the server notices the dead client (TCP keepalive: ~2 h). The
        // server ends such sessions itself after twice the apply timeout; ours are never
        // idle inside a transaction for more than a round trip.
        let idle_in_tx = apply_timeout.saturating_mul(2);
        let search_path: std::sync::Arc<str> = schema.into();
        let path = search_path.clone();
        config.custom_setup = Box::new(move |url| connect_pooled(url, idle_in_tx, path.clone()));
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
            entities: EntitySet::ALL,
            schema: search_path,
            users_columns: Default::default(),
            deletes: DeleteModes::default(),
            statements: Default::default(),
            archive: None,
            processed: Default::default(),
        })
    }

    /// The same store in `schema` (`database.schema`): every pooled session's
    /// search_path, so every table, statement and migration lives there. Call before
    /// first use (the pool is rebuilt, empty).
    pub fn with_schema(self, schema: &str) -> Result<Self, StoreError> {
        let size = self.pool.status().max_size;
        let timeouts = self.pool.timeouts();
        let timeout = timeouts.wait.unwrap_or(Duration::from_secs(5));
        let mut s = Self::build(&self.url, size, timeout, self.apply_timeout, schema)?;
        s.entities = self.entities;
        s.users_columns = self.users_columns;
        s.deletes = self.deletes;
        s.archive = self.archive;
        Ok(s)
    }

    /// The schema this store works in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Our users columns mapped onto an adopted table's (`database.users_columns`).
    pub fn with_users_columns(mut self, map: std::collections::BTreeMap<String, String>) -> Self {
        self.users_columns = std::sync::Arc::new(map);
        self.statements = Default::default();
        self
    }

    /// How deletes are made (`sync.user_delete`, …).
    pub fn with_deletes(mut self, deletes: DeleteModes) -> Self {
        self.deletes = deletes;
        self.statements = Default::default();
        self
    }

    /// Keeps the events `filter` matches in the event archive (`[archive]`; `None`: off).
    pub fn with_archive(mut self, filter: Option<workos_sync_core::settings::TypeFilter>) -> Self {
        self.archive = filter.map(|f| std::sync::Arc::new(crate::archive::Archive::new(f)));
        self
    }

    /// The `[sync]` settings: entities and delete modes.
    pub fn with_sync(self, s: &workos_sync_core::settings::SyncSettings) -> Self {
        self.with_entities(s.entity_set())
            .with_deletes(DeleteModes::from_settings(s))
    }

    /// Resolves the users table's layout now (it is otherwise resolved on first use):
    /// a process calls this at start to refuse a table that does not fit the settings
    /// with one clear line instead of failing each event.
    pub async fn prepare(&self) -> Result<(), StoreError> {
        self.statements().await.map(|_| ())
    }

    /// The write path's statements for this store's layout.
    pub(crate) async fn statements(&self) -> Result<std::sync::Arc<Statements>, StoreError> {
        self.statements
            .get_or_try_init(|| async {
                let mut conn = self.conn().await?;
                let columns = crate::catalog::users_columns(&mut conn).await?;
                let layout = Layout::from_catalog(&columns, &self.users_columns, self.deletes)?;
                Ok::<_, StoreError>(std::sync::Arc::new(Statements::new(layout)))
            })
            .await
            .cloned()
    }

    /// Applies only `entities` (`sync.entities`); events of the others are recorded as
    /// ignored.
    pub fn with_entities(mut self, entities: EntitySet) -> Self {
        self.entities = entities;
        self
    }

    /// The entities this store applies.
    pub fn entities(&self) -> EntitySet {
        self.entities
    }

    /// The store of `[database]`: URL, pool, apply timeout, schema and users mapping.
    pub fn from_settings(
        s: &workos_sync_core::settings::DatabaseSettings,
    ) -> Result<Self, StoreError> {
        use secrecy::ExposeSecret;
        Ok(Self::build(
            s.url.expose_secret(),
            s.pool_size,
            Duration::from_secs(5),
            Duration::from_secs(s.apply_timeout_secs),
            &s.schema,
        )?
        .with_users_columns(s.users_columns.clone()))
    }

    pub(crate) async fn conn(&self) -> Result<Conn, StoreError> {
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

    /// True when a table the write path uses cannot even be read within 100 ms: another
    /// session holds it whole (a migration's `ACCESS EXCLUSIVE`). Then every event waits
    /// for the same lock, and the caller holds its batch rather than deferring each
    /// event (so everything applies as soon as the lock goes). A lock on single rows is
    /// not this: those events are deferred one by one.
    pub async fn table_locked(&self) -> Result<bool, StoreError> {
        let mut sql = "SET LOCAL lock_timeout = '100ms';".to_owned();
        let tables = crate::tables::TABLES.iter().map(|t| t.table);
        for t in tables.chain(["tombstones", "processed_events"]) {
            sql.push_str(&format!(" SELECT 1 FROM {t} LIMIT 0;"));
        }
        let mut conn = self.conn().await?;
        let probe = conn
            .transaction::<_, StoreError, _>(async |c| {
                diesel_async::SimpleAsyncConnection::batch_execute(c, &sql).await?;
                Ok(())
            })
            .await;
        match probe {
            Ok(()) => Ok(false),
            Err(e) if e.is_lock_timeout() => Ok(true),
            Err(e) => Err(e),
        }
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
///
/// `search_path = <database.schema>` (default `"$user", public`): every table,
/// statement and migration of workos-sync is unqualified, so the session's schema is the
/// installation's. Only that schema: a table missing there is an error, never another
/// schema's table of the same name (`pg_catalog` is always searched first).
///
/// `lock_timeout = 5s` (default 0 = wait forever): a lock the application holds (a long
/// transaction, a migration's table lock) must cost the events that need it, not hold a
/// whole batch and the partition behind it. A users row held by another session is
/// skipped after ~150 ms of asking again (`sql::LockUserRows`); every other lock wait (a table lock, a
/// row of another table) ends after 5 s as [`StoreError::Locked`], and the worker
/// tries those events again within seconds, isolated from the rest of their batch.
///
/// `default_transaction_isolation = 'read committed'` (the server's or role's default
/// otherwise): the dedupe of event ids looks an id up after the batch's advisory locks
/// were granted, which finds an earlier delivery's record only if each statement takes
/// its own snapshot (under repeatable read the snapshot would predate the lock wait).
///
/// `TimeZone = 'UTC'` (default: the server's): an adopted table's `timestamp without
/// time zone` columns (Prisma's) hold UTC, so what sync writes into them (`now()`, a
/// soft delete's time) and reads from them is UTC too, whatever the server's zone.
fn connect_pooled(
    url: &str,
    idle_in_tx: Duration,
    schema: std::sync::Arc<str>,
) -> futures_util::future::BoxFuture<'_, diesel::ConnectionResult<AsyncPgConnection>> {
    let url = url.to_owned();
    Box::pin(async move {
        use diesel_async::SimpleAsyncConnection;
        let mut conn = AsyncPgConnection::establish(&url).await?;
        conn.batch_execute(&format!(
            "SET plan_cache_mode = force_custom_plan; SET random_page_cost = 1.1; \
             SET idle_in_transaction_session_timeout = {}; SET search_path = {}; \
             SET TimeZone = 'UTC'; SET lock_timeout = '5s'; \
             SET default_transaction_isolation = 'read committed'",
            idle_in_tx.as_millis().max(1),
            crate::layout::quote(&schema),
        ))
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
        Ok(conn)
    })
}
