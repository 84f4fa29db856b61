//! `migrate`: the embedded Diesel migrations (run through diesel-async's harness, no
//! libpq) in the installation's schema, the users columns the layout needs, and the
//! adoption of an application's existing users table.
//!
//! Never half-migrates: before anything changes it reads what the schema holds, and a
//! table a pending migration would create that exists and was not created by a
//! migration already applied there is refused ([`StoreError::Refused`], one line naming
//! the table and what to do). With `adopt`, an existing `users` is kept (rows, foreign
//! keys, every column): the users migration (users has one of its own) is recorded as
//! applied and only what the write path lacks is added, in one transaction; the other
//! migrations then run as on any schema. Users columns declared after the users
//! migration are added the same way, under the layout's names, on every run. The
//! migration list is `build.rs`'s, from the migrations folder.
//!
//! Safe when several processes run it at once: the run holds a session advisory lock
//! per schema, so a second runner waits and then finds nothing pending. The harness calls
//! `block_in_place`, so this must run on tokio's multi-thread runtime.
//!
//! A guest's migration: every lock it asks for on a table queues for at most
//! [`DDL_LOCK_TIMEOUT`] (`lock_timeout`), so the application's own queries never wait
//! more than that behind it (Postgres queues later lock requests behind a waiting
//! exclusive one); a step refused so is rolled back and tried again with backoff, for
//! about five minutes in all ([`DDL_ATTEMPTS`]), then `migrate` fails saying which
//! session to look for. Indexes on an existing table are built `CONCURRENTLY`, outside
//! any transaction (they block neither reads nor writes).

use std::collections::{BTreeMap, HashSet};

use diesel_async::{
    AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use workos_sync_core::declare::ColumnType;

use crate::{
    StoreError, catalog,
    layout::{Found, quote, resolve, user_columns},
    locks::LOCK_MIGRATE,
};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// The longest one lock request of `migrate` queues (default 0: forever, and every
/// later query of the application on that table queues behind it).
const DDL_LOCK_TIMEOUT: &str = "2s";
/// Tries of a step refused by [`DDL_LOCK_TIMEOUT`]: each waits up to 2 s for its locks,
/// then 1 to 5 s before the next (about five minutes in all).
const DDL_ATTEMPTS: u32 = 60;

/// Runs `step` until it is not refused by the lock timeout, at most [`DDL_ATTEMPTS`]
/// times.
async fn retry_locked<T>(
    conn: &mut AsyncPgConnection,
    what: &str,
    mut step: impl AsyncFnMut(&mut AsyncPgConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut attempt = 1;
    loop {
        match step(conn).await {
            Err(e) if e.is_lock_timeout() && attempt < DDL_ATTEMPTS => {
                let wait = std::time::Duration::from_secs(u64::from(attempt.min(5)));
                tracing::warn!(
                    step = what,
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "a table migrate needs is held by another session; trying again"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) if e.is_lock_timeout() => {
                return Err(StoreError::Migration(format!(
                    "{what}: a table stayed locked by another session for {DDL_ATTEMPTS} tries \
                     (look for long transactions in pg_stat_activity); nothing of this step \
                     was applied"
                )));
            }
            other => return other,
        }
    }
}

/// Statements run outside any transaction, after the rest of their step.
fn concurrent(sql: &str) -> bool {
    sql.contains(" CONCURRENTLY ")
}

/// Runs `statements`: the transactional ones in one transaction (retried while the
/// lock timeout refuses it), then each concurrent index build on its own, waiting as
/// long as it needs (it blocks no query of the application); a failed build leaves no
/// invalid index behind.
async fn run_step(
    conn: &mut AsyncPgConnection,
    what: &str,
    statements: &[String],
) -> Result<(), StoreError> {
    let (later, now): (Vec<String>, Vec<String>) =
        statements.iter().cloned().partition(|s| concurrent(s));
    if !now.is_empty() {
        retry_locked(conn, what, async |c| in_transaction(c, &now).await).await?;
    }
    for s in &later {
        conn.batch_execute("SET lock_timeout = 0").await?;
        let built = conn.batch_execute(s).await;
        conn.batch_execute(&format!("SET lock_timeout = '{DDL_LOCK_TIMEOUT}'"))
            .await?;
        if let Err(e) = built {
            let _ = conn
                .batch_execute("DROP INDEX CONCURRENTLY IF EXISTS users_usertag_key")
                .await;
            return Err(e.into());
        }
    }
    Ok(())
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The migration that creates the users table, alone: adopting an existing table is
/// recording it as applied.
const USERS_MIGRATION: usize = 0;
/// The first migration of the other tables (until users had a migration of its own,
/// it created users too).
const FIRST_MIGRATION: usize = 1;

/// Records migration `i` as applied without running it (Diesel's bookkeeping table
/// created as its harness creates it).
/// The comment `migrate --adopt` leaves on `__diesel_schema_migrations` (ours): the
/// users table is the application's, so a column it gets only when asked
/// (`Adopt::Asked`, `database.users_raw`) is not added to it by later runs.
pub(crate) const ADOPTED: &str = "workos-sync: the users table is adopted";

fn mark_applied(i: usize) -> Vec<String> {
    vec![
        "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY \
         NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            .to_owned(),
        format!(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('{}') ON CONFLICT DO NOTHING",
            version(MIGRATION_SQL[i].0)
        ),
    ]
}

/// What `migrate` is asked to do.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// `database.schema`: created when missing.
    pub schema: String,
    /// Keep an existing `users` table and add what it lacks.
    pub adopt: bool,
    /// Print what would run; change nothing.
    pub dry_run: bool,
    /// `database.users_columns`.
    pub users_columns: BTreeMap<String, String>,
    /// `database.users_raw`: an adopted users table gets the raw object's column too.
    pub users_raw: bool,
}

impl MigrateOptions {
    pub fn new(schema: &str) -> Self {
        Self {
            schema: schema.into(),
            adopt: false,
            dry_run: false,
            users_columns: BTreeMap::new(),
            users_raw: false,
        }
    }
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct MigrateReport {
    /// Migrations applied (versions), in order; with `dry_run`, the names pending.
    pub applied: Vec<String>,
    /// An existing users table was adopted.
    pub adopted: bool,
    /// Every statement that ran (or would run), in order; migrations as their up.sql.
    pub sql: Vec<String>,
    /// The users columns added (or, dry, to be added), by their names in the table.
    pub added_columns: Vec<String>,
}

/// A migration's version as Diesel records it: the name's date part without dashes.
fn version(name: &str) -> String {
    name.split('_')
        .next()
        .unwrap_or(name)
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

/// The tables and views `sql` creates (`CREATE TABLE x`, `CREATE VIEW x`).
fn creates(sql: &str) -> Vec<String> {
    let tokens: Vec<&str> = sql.split_whitespace().collect();
    let mut out = Vec::new();
    for w in tokens.windows(3) {
        if w[0].eq_ignore_ascii_case("CREATE")
            && (w[1].eq_ignore_ascii_case("TABLE") || w[1].eq_ignore_ascii_case("VIEW"))
        {
            let name = w[2].trim_end_matches('(').trim_matches('"');
            out.push(name.to_owned());
        }
    }
    out
}

async fn connect(url: &str, schema: &str) -> Result<AsyncPgConnection, StoreError> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    // The schema's objects only (see `pool::connect_pooled`).
    conn.batch_execute(&format!(
        "SET search_path = {}; SET TimeZone = 'UTC'",
        quote(schema)
    ))
    .await?;
    Ok(conn)
}

async fn lock(conn: &mut AsyncPgConnection, schema: &str, take: bool) -> Result<(), StoreError> {
    let sql = if take {
        "SELECT pg_advisory_lock($1, hashtext($2))"
    } else {
        "SELECT pg_advisory_unlock($1, hashtext($2))"
    };
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::Integer, _>(LOCK_MIGRATE)
        .bind::<diesel::sql_types::Text, _>(schema)
        .execute(conn)
        .await?;
    Ok(())
}

fn versions(v: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// Runs every pending migration in the default schema; returns the versions applied.
pub async fn run(url: &str) -> Result<Vec<String>, StoreError> {
    Ok(
        migrate(url, &MigrateOptions::new(crate::pool::DEFAULT_SCHEMA))
            .await?
            .applied,
    )
}

/// `workos-sync migrate [--adopt] [--dry-run]` (see the module header).
pub async fn migrate(url: &str, opts: &MigrateOptions) -> Result<MigrateReport, StoreError> {
    if !workos_sync_core::settings::valid_schema_name(&opts.schema) {
        return Err(StoreError::Refused(format!(
            "database.schema {:?} is not a plain lowercase identifier",
            opts.schema
        )));
    }
    let mut conn = connect(url, &opts.schema).await?;
    lock(&mut conn, &opts.schema, true).await?;
    // After the advisory lock (a second runner waits for the first as long as it takes).
    conn.batch_execute(&format!("SET lock_timeout = '{DDL_LOCK_TIMEOUT}'"))
        .await?;
    let (mut conn, result) = migrate_locked(conn, opts).await;
    let _ = lock(&mut conn, &opts.schema, false).await;
    result
}

/// Runs `statements` in one transaction.
async fn in_transaction(
    c: &mut AsyncPgConnection,
    statements: &[String],
) -> Result<(), StoreError> {
    c.transaction::<_, StoreError, _>(async |c| {
        for s in statements {
            c.batch_execute(s).await?;
        }
        Ok(())
    })
    .await
}

/// The run with the lock held; hands the connection back (the harness takes it).
async fn migrate_locked(
    mut conn: AsyncPgConnection,
    opts: &MigrateOptions,
) -> (AsyncPgConnection, Result<MigrateReport, StoreError>) {
    let mut report = match prepare(&mut conn, opts).await {
        Ok(Prepared::Done(report)) => return (conn, Ok(report)),
        Ok(Prepared::Run(report)) => report,
        Err(e) => return (conn, Err(e)),
    };
    if let Err(e) = conn
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote(&opts.schema)
        ))
        .await
    {
        return (conn, Err(e.into()));
    }
    if !report.sql.is_empty() {
        if let Err(e) = run_step(&mut conn, "recording the users table", &report.sql).await {
            return (conn, Err(e));
        }
        if report.adopted {
            tracing::info!(schema = %opts.schema, "existing users table adopted");
        }
    }
    // Each migration is a transaction of its own: one refused by the lock timeout is
    // rolled back, and the next run of the harness starts from it.
    let mut attempt = 1;
    let ran = loop {
        let mut harness = AsyncMigrationHarness::new(conn);
        let ran = harness
            .run_pending_migrations(MIGRATIONS)
            .map(versions)
            .map_err(|e| StoreError::Migration(e.to_string()));
        conn = harness.into_inner();
        match ran {
            Err(e) if e.is_lock_timeout() && attempt < DDL_ATTEMPTS => {
                tracing::warn!(
                    attempt,
                    "a table a migration needs is held by another session; trying again"
                );
                tokio::time::sleep(std::time::Duration::from_secs(u64::from(attempt.min(5)))).await;
                attempt += 1;
            }
            other => break other,
        }
    };
    report.applied = match ran {
        Ok(v) => v,
        Err(e) => return (conn, Err(e)),
    };
    let ensure = async {
        let columns = catalog::users_columns(&mut conn).await?;
        let adopted = catalog::users_adopted(&mut conn).await?;
        let ensure = ensure_sql(&columns, opts, false, adopted)?;
        if !ensure.is_empty() {
            run_step(&mut conn, "adding users columns", &ensure).await?;
        }
        Ok::<_, StoreError>(ensure)
    }
    .await;
    match ensure {
        Ok(sql) => {
            report.added_columns.extend(added(&sql));
            report.sql.extend(sql);
        }
        Err(e) => return (conn, Err(e)),
    }
    (conn, Ok(report))
}

enum Prepared {
    /// A dry run: the report says what would run.
    Done(MigrateReport),
    /// Go on; `sql` holds the adoption's statements when `adopted`.
    Run(MigrateReport),
}

/// Reads the schema and decides, changing nothing: refuse, adopt, or migrate.
async fn prepare(
    conn: &mut AsyncPgConnection,
    opts: &MigrateOptions,
) -> Result<Prepared, StoreError> {
    let schema = &opts.schema;
    let relations = catalog::relations(conn).await?;
    let applied = catalog::applied_versions(conn, &relations).await?;
    let mut ours: HashSet<String> = MIGRATION_SQL
        .iter()
        .filter(|(n, _)| applied.contains(&version(n)))
        .flat_map(|(_, sql)| creates(sql))
        .collect();
    // An installation from before users had a migration of its own: its first
    // migration made the users table; recorded as the users migration's below.
    let applied_before_split = applied.contains(&version(MIGRATION_SQL[FIRST_MIGRATION].0))
        && !applied.contains(&version(MIGRATION_SQL[USERS_MIGRATION].0));
    if applied_before_split {
        ours.extend(creates(MIGRATION_SQL[USERS_MIGRATION].1));
    }
    let pending: Vec<&(&str, &str)> = MIGRATION_SQL
        .iter()
        .filter(|(n, _)| !applied.contains(&version(n)))
        .collect();
    let mut conflicts: Vec<String> = pending
        .iter()
        .flat_map(|(_, sql)| creates(sql))
        .filter(|t| relations.contains(t) && !ours.contains(t))
        .collect();
    conflicts.sort();
    conflicts.dedup();
    // An installation of the previous release lived wherever the connection's
    // search_path pointed; this one goes to database.schema. A default `public` with
    // nothing of ours while another schema holds an installation is that upgrade: refuse
    // rather than start an empty mirror beside the real one.
    if schema == crate::pool::DEFAULT_SCHEMA && applied.is_empty() {
        let elsewhere = catalog::installations_elsewhere(conn).await?;
        if let Some(other) = <[String]>::first(&elsewhere) {
            return Err(StoreError::Refused(format!(
                "schema {other} already holds a workos-sync installation and {schema} none; \
                 nothing was changed: set database.schema = \"{other}\" to keep using it (a second \
                 installation needs a schema of its own)"
            )));
        }
    }
    // A mapping that names nothing, or two of ours on one column: refused before any
    // migration runs (the layout would refuse to write afterwards).
    if relations.contains("users") && !conflicts.iter().any(|t| t == "users") {
        let columns = catalog::users_columns(conn).await?;
        resolve(&columns, &opts.users_columns).map_err(|e| StoreError::Refused(e.to_string()))?;
    }
    let mut report = MigrateReport::default();
    if applied_before_split {
        report.sql = mark_applied(USERS_MIGRATION);
    }
    if let Some(first) = <[String]>::first(&conflicts) {
        if !opts.adopt {
            return Err(StoreError::Refused(format!(
                "table {schema}.{first} already exists and was not created by workos-sync; nothing \
                 was changed: run `workos-sync migrate --adopt` to adopt an existing users table, \
                 or set database.schema to a schema of its own"
            )));
        }
        if let Some(other) = conflicts.iter().find(|t| t.as_str() != "users") {
            return Err(StoreError::Refused(format!(
                "table {schema}.{other} already exists and was not created by workos-sync; only a \
                 users table can be adopted, nothing was changed: set database.schema to a schema \
                 of its own"
            )));
        }
        report.sql = adoption(conn, opts).await?;
        report.added_columns = added(&report.sql);
        report.adopted = true;
    }
    if !opts.dry_run {
        return Ok(Prepared::Run(report));
    }
    // What would run: the adoption, the pending migrations, then the users columns the
    // table would still lack (ours: those added since its first migration).
    let mut sql = Vec::new();
    if !catalog::schema_exists(conn, schema).await? {
        sql.push(format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema)));
    }
    sql.append(&mut report.sql);
    for (name, text) in &pending {
        if (report.adopted || applied_before_split) && *name == MIGRATION_SQL[USERS_MIGRATION].0 {
            continue;
        }
        report.applied.push(version(name));
        sql.push(format!("-- migration {name}\n{}", text.trim()));
    }
    if !report.adopted {
        let columns = catalog::users_columns(conn).await?;
        let fresh = columns.is_empty();
        let adopted = catalog::users_adopted(conn).await?;
        sql.extend(ensure_sql(&columns, opts, fresh, adopted)?);
    }
    report.added_columns = added(&sql);
    report.sql = sql;
    Ok(Prepared::Done(report))
}

/// `ALTER TABLE users ADD COLUMN` for each of our columns the table lacks (`fresh`: the
/// table does not exist yet and will be our first migration's; `adopted`: it is the
/// application's, and gets the columns only added when asked only if asked).
fn ensure_sql(
    columns: &[crate::layout::CatalogColumn],
    opts: &MigrateOptions,
    fresh: bool,
    adopted: bool,
) -> Result<Vec<String>, StoreError> {
    let owned;
    let columns = if fresh {
        owned = own_first_columns();
        &owned
    } else {
        columns
    };
    let found = resolve(columns, &opts.users_columns)?;
    Ok(add_columns(&found, opts.users_raw || !adopted))
}

/// The columns the users migration gives the table: each of ours its text names (the
/// columns declared since are added by `migrate` like any an adopted table lacks).
fn own_first_columns() -> Vec<crate::layout::CatalogColumn> {
    let words: HashSet<&str> = MIGRATION_SQL[USERS_MIGRATION]
        .1
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    user_columns()
        .iter()
        .filter(|c| words.contains(c.name))
        .map(|c| crate::layout::CatalogColumn {
            name: c.name.into(),
            data_type: match c.ty {
                ColumnType::Text => "text",
                ColumnType::Bool => "boolean",
                ColumnType::Json => "jsonb",
                ColumnType::Time => "timestamp with time zone",
                ColumnType::TextList => "ARRAY",
            }
            .into(),
            nullable: false,
            has_default: false,
        })
        .collect()
}

/// The column names `ALTER TABLE users ADD COLUMN` statements among `sql` add.
fn added(sql: &[String]) -> Vec<String> {
    sql.iter()
        .filter_map(|s| s.strip_prefix("ALTER TABLE users ADD COLUMN \""))
        .filter_map(|rest| {
            rest.split_once("\" ")
                .map(|(name, _)| name.replace("\"\"", "\""))
        })
        .collect()
}

/// `asked`: the columns added only when asked are added too.
fn add_columns(found: &[Found], asked: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (col, f) in user_columns().iter().zip(found) {
        if col.asked && !asked {
            continue;
        }
        if let (Found::Missing(name), Some(ddl)) = (f, col.add) {
            out.push(format!(
                "ALTER TABLE users ADD COLUMN {} {ddl}",
                quote(name)
            ));
            if col.name == "usertag" {
                // Usertags are unique (the allocation reads them under its locks); the
                // added column is all NULL, so the index builds on any table, and
                // concurrently: the application's writes go on meanwhile.
                out.push(format!(
                    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_usertag_key ON users ({})",
                    quote(name)
                ));
            }
        }
    }
    out
}

/// The statements that adopt the existing users table, after checking that the write
/// path can use it.
async fn adoption(
    conn: &mut AsyncPgConnection,
    opts: &MigrateOptions,
) -> Result<Vec<String>, StoreError> {
    let refuse = |why: String| {
        StoreError::Refused(format!("cannot adopt users: {why}; nothing was changed"))
    };
    let columns = catalog::users_columns(conn).await?;
    let found = resolve(&columns, &opts.users_columns).map_err(|e| refuse(e.to_string()))?;
    let at = |logical: &str| {
        user_columns()
            .iter()
            .position(|c| c.name == logical)
            .and_then(|i| found.get(i))
    };
    for required in ["id", "email"] {
        if !matches!(at(required), Some(Found::At(_))) {
            return Err(refuse(format!(
                "it has no {required} column (set database.users_columns.{required})"
            )));
        }
    }
    let Some(Found::At(id)) = at("id") else {
        return Err(StoreError::Invariant("id resolved above"));
    };
    if !catalog::users_unique_on(conn, id).await? {
        return Err(refuse(format!(
            "column {id} is not its primary key or unique, and WorkOS user ids must be"
        )));
    }
    // A column of the application that must be given on insert: rows workos-sync
    // creates for new users could never be written.
    let mapped: HashSet<&str> = found
        .iter()
        .filter_map(|f| match f {
            Found::At(p) => Some(p.as_str()),
            Found::Missing(_) => None,
        })
        .collect();
    if let Some(c) = columns
        .iter()
        .find(|c| !c.nullable && !c.has_default && !mapped.contains(c.name.as_str()))
    {
        return Err(refuse(format!(
            "column {} is NOT NULL without a default, so users created from WorkOS could not be \
             inserted: give it a default (or make it nullable) first",
            c.name
        )));
    }
    // The application's columns sync will write (every event overwrites them, a soft
    // delete clears the personal ones): said, so that a column the application fills
    // itself under one of our names is noticed before adopting.
    let used: Vec<String> = user_columns()
        .iter()
        .zip(&found)
        .filter_map(|(c, f)| match f {
            Found::At(p) if c.name != "id" => Some(if p == c.name {
                p.clone()
            } else {
                format!("{} as {p}", c.name)
            }),
            _ => None,
        })
        .collect();
    let mut sql = vec![format!(
        "-- existing users columns sync will write: {} (the others are the application's)",
        used.join(", ")
    )];
    sql.extend(mark_applied(USERS_MIGRATION));
    sql.push(format!(
        "COMMENT ON TABLE __diesel_schema_migrations IS '{ADOPTED}'"
    ));
    sql.extend(add_columns(&found, opts.users_raw));
    Ok(sql)
}

/// Reverts every migration (tests check that each down.sql undoes its up.sql).
pub async fn revert_all(url: &str) -> Result<Vec<String>, StoreError> {
    let schema = crate::pool::DEFAULT_SCHEMA;
    let mut conn = connect(url, schema).await?;
    lock(&mut conn, schema, true).await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let result = harness
        .revert_all_migrations(MIGRATIONS)
        .map(versions)
        .map_err(|e| StoreError::Migration(e.to_string()));
    let mut conn = harness.into_inner();
    let _ = lock(&mut conn, schema, false).await;
    result
}

/// The names of the embedded migrations, in order (what a migrated database holds; the
/// test kit keys its template database by them).
pub fn embedded_names() -> Vec<String> {
    use diesel::migration::MigrationSource;
    MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map(|v| v.iter().map(|m| m.name().to_string()).collect())
        .unwrap_or_default()
}

/// Migrations not yet applied in `schema`.
pub async fn pending(url: &str, schema: &str) -> Result<Vec<String>, StoreError> {
    let mut conn = connect(url, schema).await?;
    let relations = catalog::relations(&mut conn).await?;
    let applied = catalog::applied_versions(&mut conn, &relations).await?;
    Ok(MIGRATION_SQL
        .iter()
        .filter(|(n, _)| !applied.contains(&version(n)))
        .map(|(n, _)| (*n).to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_list_is_the_embedded_list() {
        let names: Vec<String> = MIGRATION_SQL.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(names, embedded_names());
        assert_eq!(version(MIGRATION_SQL[0].0), "20261126000000");
    }

    #[test]
    fn what_each_migration_creates() {
        assert_eq!(creates(MIGRATION_SQL[USERS_MIGRATION].1), ["users"]);
        assert_eq!(
            creates(MIGRATION_SQL[FIRST_MIGRATION].1),
            ["user_tombstones", "processed_events", "sync_cursors"]
        );
        assert!(creates(MIGRATION_SQL[2].1).is_empty());
        assert_eq!(
            creates(MIGRATION_SQL[4].1),
            [
                "organizations",
                "organization_domains",
                "organization_memberships",
                "roles",
                "permissions",
                "tombstones",
                "user_tombstones"
            ]
        );
    }

    #[test]
    fn a_fresh_own_table_gets_only_the_columns_added_since() {
        let sql = ensure_sql(&[], &MigrateOptions::new("public"), true, false).unwrap();
        assert!(
            sql.contains(&"ALTER TABLE users ADD COLUMN \"deleted_at\" TIMESTAMPTZ".to_owned())
        );
        // Never a column the users migration made.
        for made in ["id", "email", "usertag", "workos_updated_at", "updated_at"] {
            let add = format!("ADD COLUMN \"{made}\" ");
            assert!(!sql.iter().any(|s| s.contains(&add)), "{made}: {sql:?}");
        }
    }
}
