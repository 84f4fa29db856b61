//! `processed_events` at volume (issue #30, item 2): what millions of remembered event
//! ids cost the apply path, and what pruning them costs, in the table as an upgraded
//! installation has it and in day partitions, side by side in one run.
//!
//! Three databases of their own, migrated (`processed_events` is partitioned by day;
//! the table that predates the partitions is its partition `processed_events_before`):
//! - `empty`: nothing remembered (the baseline);
//! - `rows`: `--rows` ids in `processed_events_before`, as an installation that upgraded
//!   with that many remembered ids has them (pruned row by row, as before partitions);
//! - `days`: the same ids in day partitions (`processed_events_before` dropped first).
//!
//! The ids are all older than the prune cutoff. Interleaved (empty, rows, days, …
//! `--rounds` times each, so that drift of the machine falls on all alike), the store
//! applies `--events` new user events in batches of 100 (the worker's batch), and the
//! rate of each round is printed with the median of each database and its ratio to
//! `empty`. Then `prune --older-than 30d` as the CLI runs it on `rows` and on `days`:
//! wall time, WAL written, table and index size before and after, dead tuples, and (for
//! `rows`, whose space a prune does not return) autovacuum within `--autovacuum-wait`
//! seconds or else a VACUUM by hand, measured.
//!
//! Event ids are ULID-like by default (time first, as WorkOS's are: new ids land at
//! the right edge of each index); `--random-ids` makes them random, the worst case for
//! the index.
//!
//! Usage: `processed-scale --rows 20000000 --events 20000 [--rounds 3] [--random-ids]
//! [--autovacuum-wait SECS]` with DATABASE_URL set (the server's URL: the benchmark
//! makes and drops its databases).

#![allow(clippy::print_stdout)] // a benchmark reports its figures on stdout

use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::{QueryableByName, sql_types::BigInt};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use workos_sync_core::Event;
use workos_sync_store::Store;

struct Args {
    rows: u64,
    events: usize,
    rounds: usize,
    autovacuum_wait: u64,
    /// Event ids as WorkOS makes them (ULIDs: time first, so new ids sort after old
    /// ones) or random (uuid v4: every insert lands on a random page of the index).
    random_ids: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        rows: 2_000_000,
        events: 20_000,
        rounds: 3,
        autovacuum_wait: 60,
        random_ids: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--random-ids" {
            a.random_ids = true;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rows" => a.rows = value.parse()?,
            "--events" => a.events = value.parse()?,
            "--rounds" => a.rounds = value.parse()?,
            "--autovacuum-wait" => a.autovacuum_wait = value.parse()?,
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    Ok(a)
}

fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database replaced by `db`.
fn url_for(db: &str) -> anyhow::Result<String> {
    let mut u = url::Url::parse(&server_url())?;
    u.set_path(&format!("/{db}"));
    Ok(u.to_string())
}

async fn admin(sql: &str) -> anyhow::Result<()> {
    let mut c = AsyncPgConnection::establish(&server_url()).await?;
    c.batch_execute(sql).await?;
    Ok(())
}

#[derive(QueryableByName)]
struct Num {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn num(c: &mut AsyncPgConnection, sql: &str) -> anyhow::Result<i64> {
    let r: Num = diesel::sql_query(sql).get_result(c).await?;
    Ok(r.n)
}

/// Bytes of WAL written since the server began (differences are what a step wrote).
async fn wal_bytes(c: &mut AsyncPgConnection) -> anyhow::Result<i64> {
    num(
        c,
        "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint AS n",
    )
    .await
}

/// `processed_events` (every partition) with its indexes, in bytes.
async fn table_bytes(c: &mut AsyncPgConnection) -> anyhow::Result<i64> {
    num(
        c,
        "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint AS n \
         FROM pg_partition_tree('processed_events')",
    )
    .await
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Fills `table` with `rows` processed-event rows older than 30 days, a million per
/// statement; returns the seconds it took. Ids: ULID-like (the row's time in hex
/// first, as WorkOS's `event_01H…` sort by time) or random.
async fn fill(
    c: &mut AsyncPgConnection,
    table: &str,
    rows: u64,
    random_ids: bool,
) -> anyhow::Result<f64> {
    let id = if random_ids {
        "'event_' || md5(g::text)"
    } else {
        "'event_' || lpad(to_hex((extract(epoch from now() - interval '40 days') * 1000)::bigint + g / 10), 12, '0') || left(md5(g::text), 16)"
    };
    let started = Instant::now();
    let mut done = 0u64;
    while done < rows {
        let n = (rows - done).min(1_000_000);
        c.batch_execute(&format!(
            "INSERT INTO {table} (event_id, event_type, user_id, outcome, processed_at) \
             SELECT {id}, 'user.updated', 'user_fill_' || (g % 100000), \
                    'updated', now() - interval '40 days' + g * interval '100 microseconds' \
             FROM generate_series({from}, {to}) g",
            from = done + 1,
            to = done + n
        ))
        .await?;
        done += n;
        eprintln!("processed-scale: {table}: {done} of {rows} rows");
    }
    c.batch_execute(&format!("VACUUM ANALYZE {table}")).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// A new event id: ULID-like (now in hex milliseconds first, as [`fill`]'s) or random.
fn event_id(random: bool) -> String {
    let tail = uuid::Uuid::new_v4().simple().to_string();
    if random {
        return format!("event_{tail}");
    }
    let ms = chrono::Utc::now().timestamp_millis();
    format!("event_{ms:012x}{}", &tail[..16])
}

/// `n` new user.updated events for 10,000 users, each with a fresh id, created now (as
/// WorkOS sends them: the dedupe reads the partitions from a day before), a microsecond
/// apart (a user's two events of a round 10 ms apart; the next round, made after this
/// one was applied, newer still).
fn events(n: usize, random_ids: bool) -> anyhow::Result<Vec<Event>> {
    let now = chrono::Utc::now();
    (0..n)
        .map(|i| {
            let at = (now + chrono::Duration::microseconds(i as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let body = workos_sync_core::event::sample_user_event(
                &event_id(random_ids),
                "user.updated",
                &format!("user_bench_{:05}", i % 10_000),
                "2026-01-01T00:00:00.000Z",
                &at,
            );
            Event::decode(body.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))
        })
        .collect()
}

/// Applies `evs` in batches of 100; events per second.
async fn apply(store: &Store, evs: &[Event]) -> anyhow::Result<f64> {
    let started = Instant::now();
    for batch in evs.chunks(100) {
        store.apply_batch(batch).await?;
    }
    Ok(evs.len() as f64 / started.elapsed().as_secs_f64())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

const LAYOUTS: [&str; 3] = ["empty", "rows", "days"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let pid = std::process::id();
    let names = LAYOUTS.map(|l| format!("wsb_processed_{l}_{pid}"));
    for db in &names {
        admin(&format!("DROP DATABASE IF EXISTS {db}")).await?;
        admin(&format!("CREATE DATABASE {db}")).await?;
    }
    let result = run(&a, &names).await;
    for db in &names {
        let _ = admin(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
    }
    result
}

/// The days [`fill`]'s rows fall on (100 µs apart from 40 days ago).
fn fill_days(rows: u64) -> Vec<chrono::NaiveDate> {
    let start = (chrono::Utc::now() - chrono::Duration::days(40)).date_naive();
    let days = rows / 864_000_000 + 2; // 864M rows per day
    (0..days)
        .map(|d| start + chrono::Duration::days(d as i64))
        .collect()
}

async fn run(a: &Args, names: &[String; 3]) -> anyhow::Result<()> {
    let mut stores = Vec::new();
    let mut conns = Vec::new();
    for name in names {
        let url = url_for(name)?;
        workos_sync_store::migrate::run(&url).await?;
        stores.push(Store::new(&url, 4, Duration::from_secs(10))?);
        conns.push(AsyncPgConnection::establish(&url).await?);
    }
    let [_, rows, days] = &mut conns[..] else {
        anyhow::bail!("three databases")
    };
    let secs = fill(rows, "processed_events", a.rows, a.random_ids).await?;
    println!(
        "fill rows: {} rows in {secs:.1} s; processed_events {:.0} MiB with its indexes",
        a.rows,
        mib(table_bytes(rows).await?)
    );
    days.batch_execute("DROP TABLE processed_events_before")
        .await?;
    stores[2]
        .make_processed_partitions(&fill_days(a.rows))
        .await?;
    let secs = fill(days, "processed_events", a.rows, a.random_ids).await?;
    println!(
        "fill days: {} rows in {secs:.1} s; processed_events {:.0} MiB with its indexes",
        a.rows,
        mib(table_bytes(days).await?)
    );

    // Apply rate, interleaved.
    let mut rates = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..a.rounds {
        for (i, store) in stores.iter().enumerate() {
            let evs = events(a.events, a.random_ids)?;
            let rate = apply(store, &evs).await?;
            println!("apply round {round} {:>5}: {rate:.0} events/s", LAYOUTS[i]);
            rates[i].push(rate);
        }
    }
    let m = rates.map(|mut r| median(&mut r));
    println!(
        "apply median: empty {:.0} events/s; {} rows in the table before partitions {:.0} ({:.2}x); \
         in day partitions {:.0} ({:.2}x)",
        m[0],
        a.rows,
        m[1],
        m[1] / m[0],
        m[2],
        m[2] / m[0]
    );

    // Prune as the CLI does, on both layouts.
    let cutoff = chrono::Utc::now() - chrono::Duration::days(30);
    for (i, c) in [(1, &mut *rows), (2, &mut *days)] {
        let size_before = table_bytes(c).await?;
        let wal_before = wal_bytes(c).await?;
        let started = Instant::now();
        let p = stores[i].prune_processed(cutoff, 10_000).await?;
        let took = started.elapsed().as_secs_f64();
        let wal = wal_bytes(c).await? - wal_before;
        let size_after = table_bytes(c).await?;
        let dead = num(
            c,
            "SELECT coalesce(sum(n_dead_tup), 0)::bigint AS n FROM pg_stat_user_tables \
             WHERE relname LIKE 'processed_events%'",
        )
        .await?;
        println!(
            "prune {}: {} rows deleted, {} partitions dropped (~{} rows) in {took:.2} s, \
             WAL {:.2} MiB, table {:.0} → {:.0} MiB, {dead} dead tuples",
            LAYOUTS[i],
            p.deleted,
            p.dropped.len(),
            p.dropped_rows_estimate,
            mib(wal),
            mib(size_before),
            mib(size_after)
        );
    }
    let autovacuum_on = num(
        rows,
        "SELECT (current_setting('autovacuum') = 'on')::int::bigint AS n",
    )
    .await?
        == 1;
    if autovacuum_on {
        let deadline = Instant::now() + Duration::from_secs(a.autovacuum_wait);
        let vacuumed = loop {
            let n = num(
                rows,
                "SELECT autovacuum_count AS n FROM pg_stat_user_tables \
                 WHERE relname = 'processed_events_before'",
            )
            .await?;
            if n > 0 || Instant::now() >= deadline {
                break n > 0;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        println!(
            "autovacuum of rows within {} s: {}",
            a.autovacuum_wait,
            if vacuumed { "ran" } else { "did not run" }
        );
    } else {
        println!("autovacuum is off on this server (SHOW autovacuum): a VACUUM by hand instead");
    }
    let wal_before = wal_bytes(rows).await?;
    let started = Instant::now();
    rows.batch_execute("VACUUM processed_events").await?;
    let took = started.elapsed().as_secs_f64();
    let wal = wal_bytes(rows).await? - wal_before;
    println!(
        "VACUUM of rows after its prune: {took:.1} s, WAL {:.0} MiB; table then {:.0} MiB \
         (the space is free for new rows, not returned to the OS)",
        mib(wal),
        mib(table_bytes(rows).await?)
    );
    Ok(())
}
