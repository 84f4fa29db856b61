//! `processed_events` at volume (issue #30, item 2): what millions of remembered event
//! ids cost the apply path, and what pruning them costs.
//!
//! Two databases of their own, migrated: `empty` and `full`, where `full`'s
//! `processed_events` is first filled with `--rows` ids (random-looking, like WorkOS's
//! ULIDs, all older than the prune cutoff). Then, interleaved (empty, full, empty, full…
//! `--rounds` times each, so that drift of the machine falls on both alike), the store
//! applies `--events` new user events in batches of 100 (the worker's batch), and the
//! rate of each round is printed with the median of each database and their ratio.
//! Then `prune --older-than 30d` as the CLI runs it (batches of 10,000) on `full`: wall
//! time, WAL written, table and index size before and after, dead tuples, and whether
//! autovacuum got to it within `--autovacuum-wait` seconds. Last, the same rows in a
//! table partitioned by day, removed by dropping the partitions: time and WAL, the
//! alternative the figures decide on.
//!
//! Event ids are ULID-like by default (time first, as WorkOS's are: new ids land at
//! the right edge of the primary key's index); `--random-ids` makes them random, the
//! worst case for the index.
//!
//! Usage: `processed-scale --rows 20000000 --events 20000 [--rounds 3] [--random-ids]
//! [--skip-partitions] [--autovacuum-wait SECS]` with
//! DATABASE_URL set (the server's URL: the benchmark makes and drops its databases).

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
    /// Skip the partitioned alternative.
    skip_partitions: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        rows: 2_000_000,
        events: 20_000,
        rounds: 3,
        autovacuum_wait: 60,
        random_ids: false,
        skip_partitions: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--random-ids" => {
                a.random_ids = true;
                continue;
            }
            "--skip-partitions" => {
                a.skip_partitions = true;
                continue;
            }
            _ => {}
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

/// `processed_events` with its indexes, in bytes.
async fn table_bytes(c: &mut AsyncPgConnection) -> anyhow::Result<i64> {
    num(c, "SELECT pg_total_relation_size('processed_events') AS n").await
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

/// `n` new user.updated events for 10,000 users, each with a fresh id.
fn events(n: usize, round: usize, random_ids: bool) -> anyhow::Result<Vec<Event>> {
    (0..n)
        .map(|i| {
            let at = chrono::DateTime::from_timestamp(1_767_225_600 + (round * n + i) as i64, 0)
                .unwrap_or_default()
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let pid = std::process::id();
    let names = [
        format!("wsb_processed_empty_{pid}"),
        format!("wsb_processed_full_{pid}"),
    ];
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

async fn run(a: &Args, names: &[String; 2]) -> anyhow::Result<()> {
    let urls = [url_for(&names[0])?, url_for(&names[1])?];
    let mut stores = Vec::new();
    for url in &urls {
        workos_sync_store::migrate::run(url).await?;
        stores.push(Store::new(url, 4, Duration::from_secs(10))?);
    }
    let mut full = AsyncPgConnection::establish(&urls[1]).await?;
    let secs = fill(&mut full, "processed_events", a.rows, a.random_ids).await?;
    println!(
        "fill: {} rows in {secs:.1} s; processed_events {:.0} MiB with its indexes",
        a.rows,
        mib(table_bytes(&mut full).await?)
    );

    // Apply rate, interleaved.
    let mut rates = [Vec::new(), Vec::new()];
    for round in 0..a.rounds {
        for (i, store) in stores.iter().enumerate() {
            let evs = events(a.events, round * 2 + i, a.random_ids)?;
            let rate = apply(store, &evs).await?;
            let label = if i == 0 { "empty" } else { "full" };
            println!("apply round {round} {label:>5}: {rate:.0} events/s");
            rates[i].push(rate);
        }
    }
    let (e, f) = (median(&mut rates[0]), median(&mut rates[1]));
    println!(
        "apply median: empty table {e:.0} events/s, with {} rows {f:.0} events/s ({:.2}x)",
        a.rows,
        f / e
    );

    // Prune as the CLI does.
    let size_before = table_bytes(&mut full).await?;
    let wal_before = wal_bytes(&mut full).await?;
    let started = Instant::now();
    let cutoff = chrono::Utc::now() - chrono::Duration::days(30);
    let deleted = stores[1].prune_processed(cutoff, 10_000).await?;
    let took = started.elapsed().as_secs_f64();
    let wal = wal_bytes(&mut full).await? - wal_before;
    let size_after = table_bytes(&mut full).await?;
    let dead = num(
        &mut full,
        "SELECT n_dead_tup AS n FROM pg_stat_user_tables WHERE relname = 'processed_events'",
    )
    .await?;
    println!(
        "prune (batches of 10,000): {deleted} rows in {took:.1} s ({:.0} rows/s), WAL {:.0} MiB, \
         table {:.0} → {:.0} MiB, {dead} dead tuples",
        deleted as f64 / took,
        mib(wal),
        mib(size_before),
        mib(size_after)
    );
    let autovacuum_on = num(
        &mut full,
        "SELECT (current_setting('autovacuum') = 'on')::int::bigint AS n",
    )
    .await?
        == 1;
    if autovacuum_on {
        let deadline = Instant::now() + Duration::from_secs(a.autovacuum_wait);
        let vacuumed = loop {
            let n = num(
                &mut full,
                "SELECT autovacuum_count AS n FROM pg_stat_user_tables WHERE relname = 'processed_events'",
            )
            .await?;
            if n > 0 || Instant::now() >= deadline {
                break n > 0;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        println!(
            "autovacuum within {} s: {}",
            a.autovacuum_wait,
            if vacuumed { "ran" } else { "did not run" }
        );
    } else {
        println!("autovacuum is off on this server (SHOW autovacuum): a VACUUM by hand instead");
    }
    let wal_before = wal_bytes(&mut full).await?;
    let started = Instant::now();
    full.batch_execute("VACUUM processed_events").await?;
    let took = started.elapsed().as_secs_f64();
    let wal = wal_bytes(&mut full).await? - wal_before;
    let size_vacuumed = table_bytes(&mut full).await?;
    println!(
        "VACUUM after the prune: {took:.1} s, WAL {:.0} MiB; table then {:.0} MiB (the space is free for new rows, not returned to the OS)",
        mib(wal),
        mib(size_vacuumed)
    );
    if a.skip_partitions {
        return Ok(());
    }
    // The alternative: partitions by day, dropped whole.
    full.batch_execute(
        "CREATE TABLE processed_part (LIKE processed_events INCLUDING DEFAULTS) \
         PARTITION BY RANGE (processed_at)",
    )
    .await?;
    let days = a.rows / 864_000_000 + 2; // 100 µs apart: 864M rows per day
    let start = chrono::Utc::now().date_naive() - chrono::Duration::days(41);
    for d in 0..=days + 1 {
        let from = start + chrono::Duration::days(d as i64);
        let to = from + chrono::Duration::days(1);
        full.batch_execute(&format!(
            "CREATE TABLE processed_part_{d} PARTITION OF processed_part \
             FOR VALUES FROM ('{from}') TO ('{to}')"
        ))
        .await?;
    }
    full.batch_execute("ALTER TABLE processed_part ADD PRIMARY KEY (event_id, processed_at)")
        .await?;
    fill(&mut full, "processed_part", a.rows, a.random_ids).await?;
    let wal_before = wal_bytes(&mut full).await?;
    let started = Instant::now();
    for d in 0..=days + 1 {
        full.batch_execute(&format!("DROP TABLE processed_part_{d}"))
            .await?;
    }
    let took = started.elapsed().as_secs_f64();
    let wal = wal_bytes(&mut full).await? - wal_before;
    println!(
        "partitioned by day, the same {} rows dropped as {} partitions: {took:.2} s, WAL {:.2} MiB",
        a.rows,
        days + 2,
        mib(wal)
    );
    Ok(())
}
