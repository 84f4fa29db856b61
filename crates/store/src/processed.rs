//! `processed_events`' day partitions: made ahead of their first event, and `prune`,
//! which drops whole days instead of deleting rows.
//!
//! The table is partitioned by day (UTC) of `processed_at`, which is the database's
//! clock at insert (migration `processed_by_day`). Each process makes the partitions of
//! yesterday, today and tomorrow (by its own clock: a skew under a day between it and
//! the database is covered) before its first batch and again when the day changes, so
//! the partition a batch writes into was made a day before it is needed. Each day's
//! partition has its own index on `event_id` (the dedupe's lookup of each id across the
//! partitions since [`since`]) and a BRIN on `processed_at` (the reads of the newest
//! events); the parent has none (see the migration). The table that existed before the migration is the
//! partition `processed_events_before` (everything before the migration's next day):
//! days it covers are not made again.
//!
//! Failure model: making a partition is one short transaction under [`LOCK_PROCESSED`]
//! whose waits are bounded by the session's `lock_timeout` (a timeout is
//! [`StoreError::Locked`]: the batch is held and retried). A batch meeting a missing
//! partition (dropped by hand, or a clock far off) fails with Postgres's "no partition"
//! error; the remembered days are then forgotten, so the retry makes them (the
//! database's days as well as this process's). Prune drops one partition per
//! transaction (`ACCESS EXCLUSIVE` on the parent: it waits for the batches in flight
//! and new batches wait behind it, at most `lock_timeout`), so an interrupted prune
//! leaves whole days, never half of one.

use std::{collections::HashSet, sync::Mutex};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::{Store, StoreError, locks::LOCK_PROCESSED};

/// How far the database's clock may be behind WorkOS's for the dedupe still to find a
/// first delivery ([`since`]). A day: clocks are NTP-synchronised to milliseconds.
const CLOCK_SKEW: Duration = Duration::days(1);

/// The earliest `processed_at` a first delivery of any of `created` (the batch's
/// recorded events' `created_at`) can have: a redelivery, a replay from the Events API
/// or the DLQ carries its event's own `created_at`, and an event is recorded after it
/// was created. An event whose time is unknown (the epoch) or more than the skew ahead
/// of `now` reads every partition; a batch recording nothing (snapshots) reads none
/// (`now`: nothing is looked up, and planning skips every older partition).
pub(crate) fn since(
    created: impl Iterator<Item = DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let mut earliest: Option<DateTime<Utc>> = None;
    for c in created {
        let c = if c <= DateTime::UNIX_EPOCH || c > now + CLOCK_SKEW {
            DateTime::UNIX_EPOCH
        } else {
            c - CLOCK_SKEW
        };
        earliest = Some(earliest.map_or(c, |e| e.min(c)));
    }
    earliest.unwrap_or(now)
}

/// The partition the migration made of the table as it was (all days before it).
pub const BEFORE: &str = "processed_events_before";

/// The partition of `day`.
fn partition(day: NaiveDate) -> String {
    format!("processed_events_p{}", day.format("%Y%m%d"))
}

/// The days whose partitions this process knows exist.
#[derive(Debug, Default)]
pub(crate) struct Days(Mutex<HashSet<NaiveDate>>);

impl Days {
    fn missing(&self, days: &[NaiveDate]) -> Vec<NaiveDate> {
        match self.0.lock() {
            Ok(known) => days
                .iter()
                .copied()
                .filter(|d| !known.contains(d))
                .collect(),
            Err(_) => days.to_vec(),
        }
    }

    fn remember(&self, days: &[NaiveDate]) {
        if let Ok(mut d) = self.0.lock() {
            d.extend(days);
        }
    }

    /// Forgets every remembered day (a partition may have been dropped elsewhere).
    pub(crate) fn forget(&self) {
        if let Ok(mut d) = self.0.lock() {
            d.clear();
        }
    }
}

/// True for Postgres's error of a partition whose range another one covers (SQLSTATE
/// 42P17, reported with this text).
fn is_overlap(e: &StoreError) -> bool {
    e.to_string().contains("would overlap partition")
}

#[derive(diesel::QueryableByName)]
struct Part {
    #[diesel(sql_type = Text)]
    name: String,
    /// The partition's upper bound (`None` for an unbounded one).
    #[diesel(sql_type = diesel::sql_types::Nullable<Timestamptz>)]
    upper: Option<DateTime<Utc>>,
    /// Postgres's estimate of its rows (-1: never analysed).
    #[diesel(sql_type = diesel::sql_types::Float4)]
    rows: f32,
}

/// What a prune removed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Pruned {
    /// Rows deleted one by one (from the partition that predates day partitions).
    pub deleted: u64,
    /// Partitions dropped whole, oldest first (day partitions, and the one that
    /// predates them once its range is past the cutoff).
    pub dropped: Vec<String>,
    /// Postgres's estimate of the rows the dropped partitions held (`reltuples` as of
    /// their last VACUUM or ANALYZE; 0 when never analysed: counting them would read
    /// them all).
    pub dropped_rows_estimate: u64,
}

impl Store {
    /// Makes the partitions of yesterday, today and tomorrow (by this process's clock)
    /// unless this process made or saw them already; the apply path calls it before
    /// each batch (a set lookup when nothing is missing).
    pub(crate) async fn processed_days(&self) -> Result<(), StoreError> {
        let today = Utc::now().date_naive();
        let days = [today - Duration::days(1), today, today + Duration::days(1)];
        let missing = self.processed.missing(&days);
        if missing.is_empty() {
            return Ok(());
        }
        // `processed_at` is the database's clock: its days too (the same three unless
        // the clocks differ by a day or more).
        let db_today = self.database_today().await?;
        let mut make = missing.clone();
        for d in [
            db_today - Duration::days(1),
            db_today,
            db_today + Duration::days(1),
        ] {
            if !make.contains(&d) {
                make.push(d);
            }
        }
        self.make_processed_partitions(&make).await?;
        self.processed.remember(&missing);
        Ok(())
    }

    /// The database's date (UTC).
    async fn database_today(&self) -> Result<NaiveDate, StoreError> {
        #[derive(diesel::QueryableByName)]
        struct Today {
            #[diesel(sql_type = diesel::sql_types::Date)]
            d: NaiveDate,
        }
        let mut conn = self.conn().await?;
        let t: Today = diesel::sql_query("SELECT (now() AT TIME ZONE 'UTC')::date AS d")
            .get_result(&mut conn)
            .await?;
        Ok(t.d)
    }

    /// Forgets the days this process remembers (after a batch met a missing partition).
    pub(crate) fn processed_forget(&self) {
        self.processed.forget();
    }

    /// Makes the partitions of `days` that neither exist nor fall in the range of
    /// another partition (the one that predates day partitions covers every day before
    /// its migration's next one).
    pub async fn make_processed_partitions(&self, days: &[NaiveDate]) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let schema = self.schema.clone();
        let days = days.to_vec();
        conn.transaction::<_, StoreError, _>(async |c| {
            crate::locks::xact_lock(c, LOCK_PROCESSED, &schema).await?;
            let parts = partitions(c).await?;
            // The range of the partition that predates day partitions (MINVALUE to its
            // migration's next day): days before its end are covered by it.
            let covered_until = parts
                .iter()
                .filter(|p| p.name == BEFORE)
                .filter_map(|p| p.upper)
                .max();
            let existing: HashSet<String> = parts.into_iter().map(|p| p.name).collect();
            for day in days {
                let name = partition(day);
                let start = day
                    .and_hms_opt(0, 0, 0)
                    .map(|t| t.and_utc())
                    .unwrap_or(DateTime::UNIX_EPOCH);
                if existing.contains(&name) || covered_until.is_some_and(|u| start < u) {
                    continue;
                }
                // A savepoint per day: a day covered by a partition made by hand fails
                // with an overlap (Postgres's English message; any other language is
                // an error), which leaves the others to make.
                let made = c
                    .transaction::<_, StoreError, _>(async |c| make(c, day, &name).await)
                    .await;
                match made {
                    Err(e) if is_overlap(&e) => {}
                    other => other?,
                }
            }
            Ok(())
        })
        .await
        .map_err(crate::apply::locked)
    }

    /// The partitions of `processed_events` with their upper bounds, by name.
    pub async fn processed_partitions(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn().await?;
        let mut names: Vec<String> = partitions(&mut conn)
            .await?
            .into_iter()
            .map(|p| p.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Removes processed-event records older than `before`: each day partition whose
    /// whole day is older is dropped (one transaction each); the partition that
    /// predates day partitions has its older rows deleted `batch` per statement (short
    /// transactions), and is dropped whole once its range is older. Rows of the day
    /// `before` falls in stay until that whole day is older (a record kept a little
    /// longer only dedupes a little longer).
    pub async fn prune_processed(
        &self,
        before: DateTime<Utc>,
        batch: i64,
    ) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        let mut conn = self.conn().await?;
        let mut parts = partitions(&mut conn).await?;
        parts.sort_by_key(|a| a.upper);
        for p in parts {
            let whole = p.upper.is_some_and(|u| u <= before);
            if whole {
                let schema = self.schema.clone();
                conn.transaction::<_, StoreError, _>(async |c| {
                    crate::locks::xact_lock(c, LOCK_PROCESSED, &schema).await?;
                    diesel::sql_query(format!("DROP TABLE IF EXISTS {}", p.name))
                        .execute(c)
                        .await?;
                    Ok(())
                })
                .await
                .map_err(crate::apply::locked)?;
                pruned.dropped_rows_estimate += p.rows.max(0.0) as u64;
                pruned.dropped.push(p.name);
            } else if p.name == BEFORE {
                pruned.deleted += delete_rows(&mut conn, before, batch).await?;
            }
        }
        if !pruned.dropped.is_empty() {
            self.processed.forget();
        }
        Ok(pruned)
    }
}

/// Makes `day`'s partition `name`: a table of the parent's shape with its indexes (the
/// `event_id` index unique: within a day, a second record of an id is refused by
/// Postgres itself, a backstop to the locked lookup, and what a previous release's
/// `ON CONFLICT DO NOTHING` dedupes against after a rollback), then attached (`ATTACH` takes `SHARE UPDATE EXCLUSIVE` on the parent, which the
/// batches' inserts do not wait for; `CREATE TABLE … PARTITION OF` would take `ACCESS
/// EXCLUSIVE`). The table is empty, so the attach's check of its rows reads nothing.
async fn make(c: &mut AsyncPgConnection, day: NaiveDate, name: &str) -> Result<(), StoreError> {
    let next = day + Duration::days(1);
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {name} (LIKE processed_events INCLUDING DEFAULTS);
         CREATE UNIQUE INDEX IF NOT EXISTS {name}_event_id ON {name} (event_id);
         CREATE INDEX IF NOT EXISTS {name}_processed_at ON {name} USING brin (processed_at);
         ALTER TABLE processed_events ATTACH PARTITION {name} \
         FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next} 00:00:00+00');"
    );
    diesel_async::SimpleAsyncConnection::batch_execute(c, &sql).await?;
    Ok(())
}

/// Deletes up to `batch` rows older than `before` per statement from the partition that
/// predates day partitions, until none is left; how many.
async fn delete_rows(
    c: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    batch: i64,
) -> Result<u64, StoreError> {
    let mut total = 0u64;
    loop {
        let n = diesel::sql_query(format!(
            "DELETE FROM {BEFORE} WHERE ctid = ANY(ARRAY( \
             SELECT ctid FROM {BEFORE} WHERE processed_at < $1 LIMIT $2))"
        ))
        .bind::<Timestamptz, _>(before)
        .bind::<BigInt, _>(batch.max(1))
        .execute(c)
        .await?;
        total += n as u64;
        if (n as i64) < batch.max(1) {
            return Ok(total);
        }
    }
}

/// This schema's partitions of `processed_events`, with their upper bounds.
async fn partitions(c: &mut AsyncPgConnection) -> Result<Vec<Part>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT c.relname::text AS name, c.reltuples AS rows, \
         (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz \
         AS upper \
         FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
         WHERE p.relname = 'processed_events' AND p.relnamespace = current_schema()::regnamespace",
    )
    .load(c)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_the_earliest_event_less_a_day() {
        let t = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let day = 86_400;
        let now = t(20 * day);
        assert_eq!(
            since([t(10 * day), t(5 * day)].into_iter(), now),
            t(4 * day)
        );
        assert_eq!(since(std::iter::empty(), now), now);
        assert_eq!(since([t(10 * day), t(0)].into_iter(), now), t(0));
        // A time far ahead of this clock is not trusted: every partition is read.
        assert_eq!(
            since([t(10 * day), t(22 * day)].into_iter(), now),
            DateTime::UNIX_EPOCH
        );
    }

    #[test]
    fn partition_names() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(partition(d), "processed_events_p20261207");
    }
}
