//! Worker benchmark, all in one run:
//!   a. raw consume + ack of the events queue (the worker's prefetch and one multiple-ack
//!      per batch, no database work);
//!   b. raw batched upserts of the same rows (100 per statement);
//!   c. the release worker binary draining a pre-filled queue of `--events` events over
//!      `--users` users (created/updated/deleted, 10% duplicates, shuffled): events/s,
//!      peak RSS, and a check of the final table against the model; `--runs` times,
//!      each after a fresh (a), reporting the median rate and the median of the per-run
//!      ratios c / a.
//! With `--table-users 10000,5000000`, (c) runs once per size in each run, interleaved,
//! each in a database of its own whose users table already holds that many other users
//! (the fake WorkOS's, written in SQL before the first run; the events are the same for
//! every size), and prints each size's median beside the first's. With `--lazy-syncs N`,
//! each worker run is then asked for N lazy syncs (`POST /v1/users/{id}/sync`) of
//! random users of the table, one after another, against a fake WorkOS in this process
//! (`fake_workos`, no latency of its own): p50/p99 of the answer.
//! Each phase also prints the CPU it cost (all processes, per message/row/event, and by
//! process) and, per worker run, the ceiling of c / a for a worker doing no more than
//! (a) + (b) at that run's core use: on 2 shared cores the worker's ratio is bounded by
//! CPU, not by waiting, and these figures say by how much.

#![allow(clippy::print_stdout)] // a benchmark reports its figures on stdout

use std::{
    collections::HashMap,
    process::Stdio,
    time::{Duration, Instant},
};

use clap::Parser;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use lapin::{
    Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions,
    },
    types::FieldTable,
};
use workos_sync_bench::{
    CpuSample, CpuUse, Delivery, ProcCpu, cpu_note, generate_history, peak_rss_kib,
};
use workos_sync_queue::event_properties;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Path of the worker binary to measure.
    #[arg(long)]
    worker_bin: String,
    /// Prefetch and ack batch of the raw baseline: the worker's defaults.
    #[arg(long, default_value_t = 1000)]
    prefetch: u16,
    #[arg(long, default_value_t = 250)]
    ack_every: usize,
    /// Worker runs (c); the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// A mixed drain: also this many organizations (a create and an update each)…
    #[arg(long, default_value_t = 0)]
    orgs: usize,
    /// …with this many memberships each (created and updated once), of random users.
    #[arg(long, default_value_t = 0)]
    memberships_per_org: usize,
    /// A drain with Directory Sync: also this many directories (activated once)…
    #[arg(long, default_value_t = 0)]
    directories: usize,
    /// …with this many directory users each (created and updated once)…
    #[arg(long, default_value_t = 100)]
    directory_users: usize,
    /// …this many groups each (created once)…
    #[arg(long, default_value_t = 10)]
    groups_per_directory: usize,
    /// …and this many `user_added` per group, of random users of the directory.
    #[arg(long, default_value_t = 20)]
    members_per_group: usize,
    /// Users already in the table before each drain, one database per size (the
    /// events are the same for each): e.g. `10000,5000000`.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    table_users: Vec<u64>,
    /// Lazy syncs asked of each worker run after its drain (latency p50/p99).
    #[arg(long, default_value_t = 0)]
    lazy_syncs: usize,
}

/// Users written in SQL before the drains (ids of the fake WorkOS: `user_` and 20
/// digits, never an id of the history's, which have 6).
const PREFILLED_ID_LEN: usize = 25;

/// Writes `n` users of the fake WorkOS into `url`'s users table, a million per
/// statement, then VACUUM ANALYZE.
async fn prefill_users(url: &str, n: u64) -> anyhow::Result<()> {
    let mut c = AsyncPgConnection::establish(url).await?;
    let mut done = 0;
    while done < n {
        let k = (n - done).min(1_000_000);
        diesel::sql_query(format!(
            "INSERT INTO users (id, email, usertag, first_name, last_name, email_verified, \
             workos_created_at, workos_updated_at) \
             SELECT 'user_' || lpad(g::text, 20, '0'), 'u' || g || '@scale.example', 'u' || g, \
             'Scale', 'User ' || g, true, \
             to_timestamp(1767225600 + g), to_timestamp(1767225600 + g) \
             FROM generate_series({}, {}) g",
            done,
            done + k - 1
        ))
        .execute(&mut c)
        .await?;
        done += k;
    }
    diesel::sql_query("VACUUM ANALYZE users")
        .execute(&mut c)
        .await?;
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Version {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    workos_updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Each of `n` lazy syncs of a random prefilled user (one after another); p50/p99.
async fn lazy_syncs(port: u16, table_users: u64, n: usize) -> anyhow::Result<String> {
    if n == 0 || table_users == 0 {
        return Ok(String::new());
    }
    let client = reqwest::Client::new();
    let mut took = Vec::with_capacity(n);
    let mut failed = 0;
    for _ in 0..n {
        let i = rand::random_range(0..table_users);
        let id = workos_sync_bench::fake_workos::user_id(i);
        let started = Instant::now();
        let r = client
            .post(format!("http://127.0.0.1:{port}/v1/users/{id}/sync"))
            .bearer_auth(LAZY_TOKEN)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => took.push(started.elapsed()),
            _ => failed += 1,
        }
    }
    let s = workos_sync_bench::summarize(took);
    Ok(format!(
        "lazy sync of {n} users of the table, one at a time: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {failed} failed",
        workos_sync_bench::ms(s.p50),
        workos_sync_bench::ms(s.p99),
        workos_sync_bench::ms(s.max)
    ))
}

const LAZY_TOKEN: &str = "bench-lazy-token";

/// One raw-consume baseline (a).
struct RawConsume {
    rate: f64,
    cpu: Option<CpuUse>,
    by_process: String,
}

impl std::fmt::Display for RawConsume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0}/s{}\n   CPU µs per message by process: {}",
            self.rate,
            cpu_note(self.cpu),
            self.by_process
        )
    }
}

/// Prefills the events queue with `msgs` and consumes them with the worker's prefetch and
/// ack strategy but no database work; returns messages per second.
async fn raw_consume(
    args: &Args,
    conn: &Connection,
    topology: &workos_sync_queue::Topology,
    msgs: &[Delivery],
) -> anyhow::Result<RawConsume> {
    prefill(conn, &topology.events_exchange(), msgs).await?;
    let ch = conn.create_channel().await?;
    ch.basic_qos(args.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = ch
        .basic_consume(
            topology.events_queue().as_str().into(),
            "raw".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let started = Instant::now();
    let cpu = CpuSample::now();
    let procs = ProcCpu::now();
    let mut got = 0;
    while got < msgs.len() {
        match tokio::time::timeout(Duration::from_secs(30), consumer.next()).await {
            Ok(Some(Ok(d))) => {
                got += 1;
                // Same ack strategy as the worker: one multiple-ack per batch.
                if got % args.ack_every == 0 || got == msgs.len() {
                    d.ack(BasicAckOptions { multiple: true }).await?;
                }
            }
            _ => anyhow::bail!("raw consumer stalled at {got}"),
        }
    }
    let rate = got as f64 / started.elapsed().as_secs_f64();
    let raw = RawConsume {
        rate,
        cpu: cpu.and_then(|c| c.since(got)),
        by_process: ProcCpu::now().per_item_since(&procs, got, 4),
    };
    ch.close(200, "done".into()).await?;
    Ok(raw)
}

async fn prefill(conn: &Connection, exchange: &str, msgs: &[Delivery]) -> anyhow::Result<()> {
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    for chunk in msgs.chunks(1000) {
        for m in chunk {
            // Confirms are awaited per chunk with wait_for_confirms below.
            let pending = ch
                .basic_publish(
                    exchange.into(),
                    m.event_type.into(),
                    BasicPublishOptions::default(),
                    &m.body,
                    event_properties(&m.id, m.event_type, workos_sync_core::now_ms(), false)
                        .with_delivery_mode(2),
                )
                .await?;
            drop(pending);
        }
        ch.wait_for_confirms().await?;
    }
    ch.close(200, "filled".into()).await?;
    Ok(())
}

/// Runs the worker binary until every unique event is recorded and checks the table.
async fn drain_once(
    args: &Args,
    probe: &lapin::Channel,
    queue: &str,
    table: &Table<'_>,
    prefix: &str,
    history: &workos_sync_bench::History,
    memberships: usize,
) -> anyhow::Result<Drain> {
    let (db, table_users, api) = (table.db, table.users, table.api);
    let started = Instant::now();
    let cpu = CpuSample::now();
    let procs = ProcCpu::now();
    let total = history.deliveries.len();
    // When the worker took its first deliveries: the drain proper starts there (process
    // start, connections and topology declaration come before; reported separately).
    let mut consuming: Option<Instant> = None;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = std::process::Command::new(&args.worker_bin)
        .env("DATABASE_URL", &db.url)
        .env("AMQP_URL", workos_sync_testkit::amqp_url())
        .env("WORKOS_SYNC__AMQP__PREFIX", prefix)
        .env(
            "WORKOS_SYNC__WORKER__HTTP_BIND",
            format!("127.0.0.1:{port}"),
        )
        .env("WORKOS_SYNC__WORKER__API_TOKEN", LAZY_TOKEN)
        .env("WORKOS_SYNC__WORKER__LAZY_SYNC_PER_SECOND", "100000")
        .env("WORKOS_API_BASE_URL", api)
        .env("WORKOS_API_KEY", "sk_test_bench")
        .env("WORKOS_SYNC__WORKOS__READS_PER_SECOND", "100000")
        .env("WORKOS_SYNC__RECONCILE__INTERVAL_SECS", "0")
        .env("WORKOS_SYNC__LOG__FILTER", "warn")
        .stdout(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let mut peak = 0;
    loop {
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "worker did not drain"
        );
        // Cheap while messages wait in the queue (a passive declare); the processed
        // count (a scan of processed_events, ~3 ms at 90k rows, which would take CPU from
        // the worker under test) only for the tail.
        let ready = workos_sync_testkit::queue_len_on(probe, queue).await?;
        if consuming.is_none() && (ready as usize) < total {
            consuming = Some(Instant::now());
        }
        if ready > 0 {
            let pause = if consuming.is_some() { 50 } else { 5 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
            continue;
        }
        let n = db.store.processed_count().await?;
        if n as usize >= history.unique {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = Instant::now();
    let cpu = cpu.and_then(|c| c.since(total));
    // Before the worker exits, or its CPU time is gone with it.
    let by_process = ProcCpu::now().per_item_since(&procs, total, 5);
    let lazy = lazy_syncs(port, table_users, args.lazy_syncs).await?;
    peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
    let _ = child.kill();
    let _ = child.wait();
    let consuming = consuming.unwrap_or(started);
    let rate = total as f64 / (done - consuming).as_secs_f64();
    let startup = consuming - started;

    // Check the table against the model (the prefilled users left out).
    let mut pg = AsyncPgConnection::establish(&db.url).await?;
    let rows: Vec<Version> = diesel::sql_query(format!(
        "SELECT id, workos_updated_at FROM users WHERE length(id) <> {PREFILLED_ID_LEN}"
    ))
    .load(&mut pg)
    .await?;
    let by_id: HashMap<&str, &Version> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    let wrong = history
        .model()
        .iter()
        .filter(|(id, want)| match (want, by_id.get(id.as_str())) {
            (None, None) => false,
            (Some(v), Some(r)) => {
                r.workos_updated_at
                    .map(|u| (u - history.epoch).num_milliseconds())
                    != Some(*v)
            }
            _ => true,
        })
        .count()
        + db.store
            .all_memberships()
            .await?
            .len()
            .abs_diff(memberships);
    Ok(Drain {
        rate,
        startup,
        with_startup: total as f64 / (done - started).as_secs_f64(),
        peak_kib: peak,
        wrong,
        cpu,
        by_process,
        lazy,
    })
}

/// The database a worker run drains into: its prefilled users, and the fake WorkOS
/// its lazy syncs read.
struct Table<'a> {
    db: &'a workos_sync_testkit::TestDb,
    users: u64,
    api: &'a str,
}

/// One worker run (c).
struct Drain {
    /// Events per second from the first delivery taken to the last event recorded.
    rate: f64,
    /// Process start until the first delivery was taken.
    startup: Duration,
    /// Events per second including the startup.
    with_startup: f64,
    peak_kib: u64,
    /// Users whose row differs from the model.
    wrong: usize,
    cpu: Option<CpuUse>,
    /// CPU µs per event by process.
    by_process: String,
    /// The lazy syncs' latencies (empty: none asked).
    lazy: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut history = generate_history(args.events, args.users, 7);
    let member_users = if args.orgs > 0 {
        workos_sync_bench::add_organizations(
            &mut history,
            args.users,
            args.orgs,
            args.memberships_per_org,
            11,
        )
    } else {
        Vec::new()
    };
    let directory_counts = workos_sync_bench::add_directories(
        &mut history,
        args.directories,
        args.directory_users,
        args.groups_per_directory,
        args.members_per_group,
        13,
    );
    // Memberships the table must end with: those whose user was not deleted.
    let model = history.model();
    let memberships = member_users
        .iter()
        .filter(|u| model.get(*u).is_some_and(Option::is_some))
        .count();
    let msgs = &history.deliveries;
    println!(
        "generated {} deliveries ({} unique events) over {} users, {} organizations, {memberships} memberships",
        msgs.len(),
        history.unique,
        args.users,
        args.orgs
    );
    if args.directories > 0 {
        println!(
            "  and {} directories: {directory_counts:?} (Directory Sync)",
            args.directories
        );
    }
    let prefix = format!("wst-bench-drain-{}", std::process::id());
    let broker = workos_sync_testkit::test_broker(&prefix).await?;
    let topology = broker.topology().clone();
    let conn = Connection::connect(
        &workos_sync_testkit::amqp_url(),
        ConnectionProperties::default(),
    )
    .await?;

    // a. raw consume + ack.
    let first_raw = raw_consume(&args, &conn, &topology, msgs).await?;
    println!("a. raw consume+ack: {} msgs, {first_raw}", msgs.len());

    // b. raw batched upserts of the same rows.
    let db = workos_sync_testkit::fresh_database().await?;
    let mut pg = AsyncPgConnection::establish(&db.url).await?;
    let started = Instant::now();
    let cpu = CpuSample::now();
    let procs = ProcCpu::now();
    for chunk in msgs.chunks(100) {
        // One row per user per statement (ON CONFLICT cannot touch a row twice).
        let mut uids: Vec<String> = chunk.iter().map(|m| m.user.clone()).collect();
        uids.sort();
        uids.dedup();
        let emails: Vec<String> = uids.iter().map(|u| format!("{u}@example.com")).collect();
        diesel::sql_query(
            "INSERT INTO users (id, email, usertag, workos_created_at, workos_updated_at) \
             SELECT u, e, u, now(), now() FROM unnest($1::text[], $2::text[]) AS t(u, e) \
             ON CONFLICT (id) DO UPDATE SET email = excluded.email, workos_updated_at = excluded.workos_updated_at \
             WHERE users.workos_updated_at <= excluded.workos_updated_at",
        )
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&uids)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&emails)
        .execute(&mut pg)
        .await?;
    }
    let upsert_rate = msgs.len() as f64 / started.elapsed().as_secs_f64();
    let upsert_cpu = cpu.and_then(|c| c.since(msgs.len()));
    let after = ProcCpu::now();
    // The upserts' own cost: Postgres and this client. RabbitMQ may still be cleaning up
    // after (a) meanwhile, which is no part of an upsert.
    let me = std::process::id();
    let upsert_us = after.us_per_item_of(&procs, msgs.len(), |pid, comm| {
        pid == me || comm == "postgres"
    });
    println!(
        "b. raw batched upserts (100/statement): {upsert_rate:.0} rows/s{}\n   CPU µs per row by process: {}; Postgres and client {upsert_us:.1}",
        cpu_note(upsert_cpu),
        after.per_item_since(&procs, msgs.len(), 4)
    );

    // c. the worker draining the same deliveries, `--runs` times on emptied tables, each
    // run after a fresh raw-consume baseline (one figure of either is too noisy on 2
    // shared cores); the medians of the rates and of the per-run ratios are the result.
    // One database per table size, interleaved within each run.
    let largest = args.table_users.iter().copied().max().unwrap_or(0);
    let fake =
        workos_sync_bench::fake_workos::FakeWorkos::start(workos_sync_bench::fake_workos::Sizes {
            users: largest,
            orgs: 0,
            memberships_per_org: 0,
        })?;
    let mut dbs = Vec::new();
    for &size in &args.table_users {
        let d = workos_sync_testkit::fresh_database().await?;
        if size > 0 {
            let started = Instant::now();
            prefill_users(&d.url, size).await?;
            println!(
                "table of {size} users written in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        dbs.push((size, d));
    }
    let sized = dbs.len() > 1;
    let mut rates = vec![Vec::new(); dbs.len()];
    let mut ratios = vec![Vec::new(); dbs.len()];
    let mut ceilings = Vec::new();
    let mut first_raw = Some(first_raw);
    let mut wrong_total = 0;
    let probe = conn.create_channel().await?;
    for run in 1..=args.runs.max(1) {
        let raw = match first_raw.take() {
            Some(raw) => raw,
            None => {
                let raw = raw_consume(&args, &conn, &topology, msgs).await?;
                println!("a. raw consume+ack before run {run}: {raw}");
                raw
            }
        };
        for (k, (size, d)) in dbs.iter().enumerate() {
            let mut pg = AsyncPgConnection::establish(&d.url).await?;
            diesel::sql_query(format!(
                "DELETE FROM users WHERE length(id) <> {PREFILLED_ID_LEN}"
            ))
            .execute(&mut pg)
            .await?;
            diesel::sql_query(
                "TRUNCATE organizations, organization_memberships, directories, \
                 directory_users, directory_groups, directory_group_memberships, tombstones, \
                 processed_events",
            )
            .execute(&mut pg)
            .await?;
            prefill(&conn, &topology.events_exchange(), msgs).await?;
            let dr = drain_once(
                &args,
                &probe,
                &topology.events_queue(),
                &Table {
                    db: d,
                    users: *size,
                    api: &fake.url,
                },
                &prefix,
                &history,
                memberships,
            )
            .await?;
            let (rate, wrong) = (dr.rate, dr.wrong);
            let table = if sized {
                format!(" (table of {size} users)")
            } else {
                String::new()
            };
            println!(
                "c. worker drain, run {run}{table}: {} deliveries = {rate:.0} events/s ({:.2}x this run's raw consume of {:.0}/s){}; startup {} ms (with it {:.0}/s), peak RSS {:.1} MiB, {wrong} users wrong",
                msgs.len(),
                rate / raw.rate,
                raw.rate,
                cpu_note(dr.cpu),
                dr.startup.as_millis(),
                dr.with_startup,
                dr.peak_kib as f64 / 1024.0
            );
            if !dr.lazy.is_empty() {
                println!("   {}", dr.lazy);
            }
            if args.directories > 0 {
                let got = workos_sync_bench::DirectoryCounts {
                    users: d.rows("SELECT 1 FROM directory_users").await?.len(),
                    groups: d.rows("SELECT 1 FROM directory_groups").await?.len(),
                    memberships: d
                        .rows("SELECT 1 FROM directory_group_memberships")
                        .await?
                        .len(),
                };
                let verdict = if got == directory_counts {
                    "as the model"
                } else {
                    "NOT as the model (a worker without Directory Sync records these events as ignored)"
                };
                println!("   Directory Sync tables: {got:?}, {verdict}");
            }
            println!("   CPU µs per event by process: {}", dr.by_process);
            // What a worker that did nothing but this run's raw consume plus the raw
            // upsert of every delivery (no event-id records, no locks, no reads) could
            // drain at the share of the cores this worker run kept busy; and the CPU per
            // event the 0.7x target leaves even with every core busy.
            if let (Some(a), Some(c)) = (raw.cpu, dr.cpu) {
                let floor = a.us_per_item + upsert_us;
                let ceiling = CpuUse::rate_at(floor, c.share) / raw.rate;
                let budget = CpuUse::rate_at(1.0, 1.0) / (0.7 * raw.rate);
                println!(
                    "   CPU: this worker {:.1} µs per event; consume ({:.1}) + bare upsert ({:.1}) = {floor:.1} µs would reach {ceiling:.2}x at the {:.0}% core use of this run; 0.7x needs <= {budget:.1} µs with every core busy",
                    c.us_per_item,
                    a.us_per_item,
                    upsert_us,
                    c.share * 100.0,
                );
                ceilings.push(ceiling);
            }
            rates[k].push(rate);
            ratios[k].push(rate / raw.rate);
            wrong_total += wrong;
        }
    }
    ceilings.sort_by(f64::total_cmp);
    if let Some(c) = ceilings.get(ceilings.len() / 2) {
        println!(
            "ceiling of the ratio for consume + bare upsert alone, median of {}: {c:.2}x",
            ceilings.len()
        );
    }
    let mut first_median = None;
    for (k, (size, _)) in dbs.iter().enumerate() {
        rates[k].sort_by(f64::total_cmp);
        ratios[k].sort_by(f64::total_cmp);
        let median = rates[k][rates[k].len() / 2];
        let table = if sized {
            format!(" (table of {size} users)")
        } else {
            String::new()
        };
        let against = match first_median {
            Some(f) => format!("; {:.2}x the first table size's", median / f),
            None => String::new(),
        };
        first_median.get_or_insert(median);
        println!(
            "c. worker drain{table}, median of {}: {median:.0} events/s; median ratio to the raw consume of the same run {:.2}x; {:.2}x raw upserts{against}",
            rates[k].len(),
            ratios[k][ratios[k].len() / 2],
            median / upsert_rate
        );
    }
    drop(fake);
    for (_, d) in dbs {
        d.teardown().await?;
    }
    let wrong = wrong_total;
    broker.close().await;
    conn.close(200, "bye".into()).await?;
    workos_sync_testkit::delete_topology(&topology).await?;
    db.teardown().await?;
    anyhow::ensure!(wrong == 0, "final table does not match the model");
    Ok(())
}
