//! Embedded Diesel migrations, run through diesel-async's harness (no libpq).
//!
//! Safe when several processes run it at once: the run holds a session advisory lock, so
//! a second runner waits and then finds nothing pending. The harness calls
//! `block_in_place`, so this must run on tokio's multi-thread runtime.

use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::{StoreError, locks::LOCK_MIGRATE};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

async fn connect(url: &str) -> Result<AsyncPgConnection, StoreError> {
    AsyncPgConnection::establish(url)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

async fn lock(conn: &mut AsyncPgConnection, take: bool) -> Result<(), StoreError> {
    let sql = if take {
        "SELECT pg_advisory_lock($1)"
    } else {
        "SELECT pg_advisory_unlock($1)"
    };
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::BigInt, _>(LOCK_MIGRATE)
        .execute(conn)
        .await?;
    Ok(())
}

fn versions(v: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// Runs `step` with the migration lock held; returns the versions it touched.
async fn locked<F>(url: &str, step: F) -> Result<Vec<String>, StoreError>
where
    F: FnOnce(
        &mut AsyncMigrationHarness<AsyncPgConnection>,
    ) -> diesel::migration::Result<Vec<String>>,
{
    let mut conn = connect(url).await?;
    lock(&mut conn, true).await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let result = step(&mut harness).map_err(|e| StoreError::Migration(e.to_string()));
    let mut conn = harness.into_inner();
    let _ = lock(&mut conn, false).await;
    result
}

/// Runs every pending migration; returns the versions applied.
pub async fn run(url: &str) -> Result<Vec<String>, StoreError> {
    locked(url, |h| h.run_pending_migrations(MIGRATIONS).map(versions)).await
}

/// Reverts every migration (tests check that each down.sql undoes its up.sql).
pub async fn revert_all(url: &str) -> Result<Vec<String>, StoreError> {
    locked(url, |h| h.revert_all_migrations(MIGRATIONS).map(versions)).await
}

/// The names of the embedded migrations, in order (what a migrated database holds; the
/// test kit keys its template database by them).
pub fn embedded_names() -> Vec<String> {
    use diesel::migration::MigrationSource;
    MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map(|v| v.iter().map(|m| m.name().to_string()).collect())
        .unwrap_or_default()
}

/// Migrations not yet applied.
pub async fn pending(url: &str) -> Result<Vec<String>, StoreError> {
    let conn = connect(url).await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    harness
        .pending_migrations(MIGRATIONS)
        .map(|v| v.iter().map(|m| m.name().to_string()).collect())
        .map_err(|e| StoreError::Migration(e.to_string()))
}
