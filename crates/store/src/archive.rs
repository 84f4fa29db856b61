//! The optional event archive (`[archive]`): `event_archive (event_id, event_type,
//! created_at, body)`, one row per event of an archived type (`archive.types`),
//! partitioned by day of `created_at` (UTC), the body stored minus every secret
//! (`core::secrets::redact`). Rows are written in the same transaction as the batch's
//! effects, `ON CONFLICT DO NOTHING` on `(created_at, event_id)`: a redelivery, a
//! reconciler replay or a webhook sent twice lands on the same row, so each event is
//! kept exactly once. A day's partition is made on demand (also for days long past: the
//! reconciler replays up to 30 days), before the batch's transaction and under
//! [`LOCK_ARCHIVE`], and remembered per process; retention drops whole partitions
//! ([`Store::archive_prune`]), never rows.
//!
//! Failure model: making a partition is one short transaction whose wait on the parent
//! table is bounded by the session's `lock_timeout` (a timeout is [`StoreError::Locked`]:
//! the batch is held and retried); a partition dropped by another process while this one
//! still remembers it fails the insert with Postgres's "no partition" error, which
//! forgets every remembered day, so the retry makes it again.

use std::{collections::HashSet, sync::Mutex};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::sql_types::{Array, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use workos_sync_core::{Event, settings::TypeFilter};

use crate::{Store, StoreError, locks::LOCK_ARCHIVE};

/// The parent table. Its only index is the primary key (each row is written once and
/// read rarely: a per-type index would cost every write for an occasional query).
const PARENT_DDL: &str = "CREATE TABLE IF NOT EXISTS event_archive (
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    body         JSONB NOT NULL,
    archived_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (created_at, event_id)
) PARTITION BY RANGE (created_at)";

/// What the archive keeps, and the days whose partition this process knows exists.
#[derive(Debug)]
pub(crate) struct Archive {
    filter: TypeFilter,
    days: Mutex<HashSet<NaiveDate>>,
}

impl Archive {
    pub(crate) fn new(filter: TypeFilter) -> Self {
        Self {
            filter,
            days: Mutex::new(HashSet::new()),
        }
    }

    fn known(&self, day: NaiveDate) -> bool {
        self.days.lock().map(|d| d.contains(&day)).unwrap_or(false)
    }

    fn remember(&self, day: NaiveDate) {
        if let Ok(mut d) = self.days.lock() {
            d.insert(day);
        }
    }

    /// Forgets every remembered day (a partition may have been dropped elsewhere).
    pub(crate) fn forget(&self) {
        if let Ok(mut d) = self.days.lock() {
            d.clear();
        }
    }
}

/// One batch's rows for the archive, column by column.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    ids: Vec<String>,
    types: Vec<String>,
    times: Vec<DateTime<Utc>>,
    bodies: Vec<String>,
}

impl Rows {
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn days(&self) -> Vec<NaiveDate> {
        let mut days: Vec<NaiveDate> = self.times.iter().map(DateTime::date_naive).collect();
        days.sort_unstable();
        days.dedup();
        days
    }
}

/// The archived events of a batch with their bodies (`bodies[i]` is `events[i]`'s as
/// received; an event without one, or without a time of its own, is not archived).
pub(crate) fn rows(archive: &Archive, events: &[Event], bodies: &[&[u8]]) -> Rows {
    let mut rows = Rows::default();
    for (ev, body) in events.iter().zip(bodies) {
        if !archive.filter.matches(&ev.event_type) || ev.created_at == DateTime::UNIX_EPOCH {
            continue;
        }
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
            continue;
        };
        workos_sync_core::secrets::redact(&mut v);
        rows.ids.push(ev.id.clone());
        rows.types.push(ev.event_type.clone());
        rows.times.push(ev.created_at);
        rows.bodies.push(v.to_string());
    }
    rows
}

/// Writes `rows` (inside the batch's transaction); how many were new.
pub(crate) async fn insert(c: &mut AsyncPgConnection, rows: &Rows) -> Result<usize, StoreError> {
    let n = diesel::sql_query(
        "INSERT INTO event_archive (event_id, event_type, created_at, body) \
         SELECT i, t, c, b::jsonb FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) \
         AS r(i, t, c, b) ON CONFLICT DO NOTHING",
    )
    .bind::<Array<Text>, _>(&rows.ids)
    .bind::<Array<Text>, _>(&rows.types)
    .bind::<Array<Timestamptz>, _>(&rows.times)
    .bind::<Array<Text>, _>(&rows.bodies)
    .execute(c)
    .await?;
    Ok(n)
}

/// The partition of `day`.
fn partition(day: NaiveDate) -> String {
    format!("event_archive_p{}", day.format("%Y%m%d"))
}

/// The day of a partition named by [`partition`].
fn day_of(name: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(name.strip_prefix("event_archive_p")?, "%Y%m%d").ok()
}

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

impl Store {
    /// The archive's rows of a batch, when the archive is on and keeps any of them.
    pub(crate) fn archive_rows(&self, events: &[Event], bodies: &[&[u8]]) -> Option<Rows> {
        let a = self.archive.as_ref()?;
        Some(rows(a, events, bodies)).filter(|r| !r.is_empty())
    }

    /// Makes the parent table and the partitions of `rows`' days that this process does
    /// not know of.
    pub(crate) async fn archive_days(&self, rows: &Rows) -> Result<(), StoreError> {
        let Some(a) = self.archive.as_ref() else {
            return Ok(());
        };
        let missing: Vec<NaiveDate> = rows.days().into_iter().filter(|d| !a.known(*d)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        self.make_partitions(&missing).await?;
        for d in missing {
            a.remember(d);
        }
        Ok(())
    }

    /// Makes the archive table and the partitions of `days` (those that exist are left).
    pub async fn make_partitions(&self, days: &[NaiveDate]) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let schema = self.schema.clone();
        let days = days.to_vec();
        conn.transaction::<_, StoreError, _>(async |c| {
            crate::locks::xact_lock(c, LOCK_ARCHIVE, &schema).await?;
            diesel::sql_query(PARENT_DDL).execute(c).await?;
            for day in days {
                let next = day + Duration::days(1);
                diesel::sql_query(format!(
                    "CREATE TABLE IF NOT EXISTS {} PARTITION OF event_archive \
                     FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next} 00:00:00+00')",
                    partition(day)
                ))
                .execute(c)
                .await?;
            }
            Ok(())
        })
        .await
        .map_err(crate::apply::locked)
    }

    /// Drops the partitions of days before `today - retention_days` (whole partitions:
    /// no row is deleted); the names dropped, oldest first.
    pub async fn archive_prune(
        &self,
        retention_days: u32,
        today: NaiveDate,
    ) -> Result<Vec<String>, StoreError> {
        let cutoff = today - Duration::days(i64::from(retention_days));
        let mut conn = self.conn().await?;
        let schema = self.schema.clone();
        let dropped = conn
            .transaction::<_, StoreError, _>(async |c| {
                crate::locks::xact_lock(c, LOCK_ARCHIVE, &schema).await?;
                let mut old: Vec<(NaiveDate, String)> = partitions(c)
                    .await?
                    .into_iter()
                    .filter_map(|n| day_of(&n).map(|d| (d, n)))
                    .filter(|(d, _)| *d < cutoff)
                    .collect();
                old.sort();
                for (_, name) in &old {
                    diesel::sql_query(format!("DROP TABLE {name}"))
                        .execute(c)
                        .await?;
                }
                Ok(old.into_iter().map(|(_, n)| n).collect::<Vec<_>>())
            })
            .await
            .map_err(crate::apply::locked)?;
        if let Some(a) = &self.archive {
            a.forget();
        }
        Ok(dropped)
    }

    /// The archive's partitions (none when it was never made), by name.
    pub async fn archive_partitions(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn().await?;
        let mut names = partitions(&mut conn).await?;
        names.sort();
        Ok(names)
    }
}

/// The partitions of this schema's `event_archive`.
async fn partitions(c: &mut AsyncPgConnection) -> Result<Vec<String>, StoreError> {
    let rows: Vec<Name> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
         WHERE p.relname = 'event_archive' AND p.relnamespace = current_schema()::regnamespace",
    )
    .load(c)
    .await?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(partition(d), "event_archive_p20261207");
        assert_eq!(day_of(&partition(d)), Some(d));
        assert_eq!(day_of("event_archive_default"), None);
    }
}
