//! Drift detection in bounded memory: WorkOS's listing spooled, a page at a time, to a
//! temporary table of one held connection (`pg_temp.verify_listing`: entity, key,
//! version), then compared with each synced table in SQL (a full outer join with the
//! table's keys and versions, `sql::versions_select`), returning only the keys that
//! differ. The process holds a page and the differences, never a listing or a table:
//! its memory grows with the drift, not with the number of records; Postgres does the
//! join (hash or merge, spilling to disk past `work_mem`), `O(n log n)` in the rows of
//! both sides.
//!
//! The temporary table lives as long as the connection's session: made afresh by
//! [`Store::spool`] (dropped first, so a spool a failed run left behind on a pooled
//! connection is never read), dropped by [`Spool::finish`].
//!
//! Failure model: every call is one statement; a failure is its [`StoreError`], and the
//! caller abandons the run (a partial listing is never compared).

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz},
};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use workos_sync_core::Entity;

use crate::{Store, StoreError, pool::Conn, sql};

/// WorkOS's keys and versions as listed, held by Postgres.
pub struct Spool {
    conn: Conn,
    layout: crate::layout::Layout,
}

/// How one key differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// Listed; not here, or here only as a row sync soft-deleted.
    Missing,
    /// Here with an older version (or none: an adopted row sync never wrote).
    Stale,
    /// Here newer than WorkOS listed it.
    Ahead,
    /// A live row sync wrote that WorkOS did not list.
    Extra,
    /// A live row with no WorkOS version that WorkOS did not list: the application's own.
    Unsynced,
}

/// One key that differs, with when this database last wrote its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Differing {
    pub key: String,
    pub difference: Difference,
    pub written_at: Option<DateTime<Utc>>,
}

/// One entity compared: the keys that differ, in key order, and the counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Keys WorkOS listed.
    pub listed: u64,
    /// Live rows sync wrote (with a WorkOS version).
    pub synced: u64,
    pub differing: Vec<Differing>,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    written_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct Counts {
    #[diesel(sql_type = BigInt)]
    listed: i64,
    #[diesel(sql_type = BigInt)]
    synced: i64,
}

impl Store {
    /// A fresh spool on a connection of its own (held until [`Spool::finish`]).
    pub async fn spool(&self) -> Result<Spool, StoreError> {
        let layout = self.statements().await?.layout.clone();
        let mut conn = self.conn().await?;
        // Unlogged by nature (temporary): no WAL, gone with the session.
        conn.batch_execute(
            "DROP TABLE IF EXISTS pg_temp.verify_listing; \
             CREATE TEMPORARY TABLE verify_listing (entity text NOT NULL, key text NOT NULL, \
             updated_at timestamptz NOT NULL, PRIMARY KEY (entity, key))",
        )
        .await?;
        Ok(Spool { conn, layout })
    }
}

impl Spool {
    /// Adds one page of `entity`'s listing (a key listed twice keeps its last version).
    pub async fn add(
        &mut self,
        entity: Entity,
        keys: &[String],
        versions: &[DateTime<Utc>],
    ) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        diesel::sql_query(
            "INSERT INTO pg_temp.verify_listing (entity, key, updated_at) \
             SELECT $1, k, v FROM unnest($2::text[], $3::timestamptz[]) AS l(k, v) \
             ON CONFLICT (entity, key) DO UPDATE SET updated_at = excluded.updated_at",
        )
        .bind::<Text, _>(entity.name())
        .bind::<Array<Text>, _>(keys)
        .bind::<Array<Timestamptz>, _>(versions)
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    /// Compares `entity`'s listing with its table. `own_version`: WorkOS versions its
    /// objects; without, a listed key that is here live is in step whatever its version
    /// (presence alone).
    pub async fn compare(
        &mut self,
        entity: Entity,
        own_version: bool,
    ) -> Result<Comparison, StoreError> {
        let versions = sql::versions_select(&self.layout, entity);
        let rows: Vec<Row> = diesel::sql_query(format!(
            "SELECT key, kind, written_at FROM (SELECT COALESCE(s.key, v.key) AS key, \
             CASE \
               WHEN s.key IS NOT NULL AND (v.key IS NULL OR v.deleted) THEN 'missing' \
               WHEN s.key IS NOT NULL AND v.updated_at IS NULL THEN 'stale' \
               WHEN s.key IS NOT NULL AND NOT $2 THEN NULL \
               WHEN s.key IS NOT NULL AND v.updated_at < s.updated_at THEN 'stale' \
               WHEN s.key IS NOT NULL AND v.updated_at > s.updated_at THEN 'ahead' \
               WHEN s.key IS NOT NULL THEN NULL \
               WHEN v.deleted THEN NULL \
               WHEN v.updated_at IS NOT NULL THEN 'extra' \
               ELSE 'unsynced' \
             END AS kind, v.written_at \
             FROM (SELECT key, updated_at FROM pg_temp.verify_listing WHERE entity = $1) s \
             FULL OUTER JOIN ({versions}) v ON v.key = s.key) d \
             WHERE kind IS NOT NULL ORDER BY key"
        ))
        .bind::<Text, _>(entity.name())
        .bind::<Bool, _>(own_version)
        .load(&mut self.conn)
        .await?;
        let counts: Counts = diesel::sql_query(format!(
            "SELECT (SELECT count(*) FROM pg_temp.verify_listing WHERE entity = $1) AS listed, \
             (SELECT count(*) FROM ({versions}) v WHERE v.updated_at IS NOT NULL \
              AND NOT v.deleted) AS synced"
        ))
        .bind::<Text, _>(entity.name())
        .get_result(&mut self.conn)
        .await?;
        let differing = rows
            .into_iter()
            .filter_map(|r| {
                let difference = match r.kind.as_str() {
                    "missing" => Difference::Missing,
                    "stale" => Difference::Stale,
                    "ahead" => Difference::Ahead,
                    "extra" => Difference::Extra,
                    "unsynced" => Difference::Unsynced,
                    _ => return None,
                };
                Some(Differing {
                    key: r.key,
                    difference,
                    written_at: r.written_at,
                })
            })
            .collect();
        Ok(Comparison {
            listed: u64::try_from(counts.listed).unwrap_or(0),
            synced: u64::try_from(counts.synced).unwrap_or(0),
            differing,
        })
    }

    /// Drops the spool and gives the connection back.
    pub async fn finish(mut self) {
        let _ = self
            .conn
            .batch_execute("DROP TABLE IF EXISTS pg_temp.verify_listing")
            .await;
    }
}
