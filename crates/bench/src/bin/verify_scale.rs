//! Verify at scale: the memory and time of `workos-sync backfill` and `verify --repair`
//! over `--users` users, for each CLI binary given (`--bin NAME=PATH`, e.g. the previous
//! release as the baseline and this one), in the same run, side by side.
//!
//! A fake WorkOS (in this process) serves `--users` generated users, 100 per page in id
//! order (`GET /user_management/users`), and each by id (`GET …/users/{id}`, WorkOS's
//! `entity_not_found` for an id it does not have). For each binary, in a database of
//! its own: `migrate`; `backfill --only users` (the table full); `verify --only users
//! --repair` in step; then with drift made in SQL (`--drift` per mille of the rows:
//! deleted, made older, and as many extra rows WorkOS does not have) `verify --only
//! users --repair --max-removals N` again, and a last `verify` that must find nothing.
//! Prints wall time and peak RSS (VmHWM, sampled every 20 ms) of each run. With
//! `--worker-bin`, last, the same drift is made again and the worker's periodic check
//! (`verify.interval_secs = 1`, `verify.repair = true`) runs it until it logs its
//! result: the worker process's peak RSS and the check's wall time.
//!
//! Usage: `verify-scale --users 1000000 --bin before=/tmp/cli-before --bin
//! after=target/release/workos-sync [--drift 10] [--worker-bin
//! target/release/workos-sync-worker]` with DATABASE_URL and AMQP_URL set (the
//! servers' URLs: the benchmark makes and drops its own databases and queues).

#![allow(clippy::print_stdout)] // a benchmark reports its figures on stdout

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use workos_sync_bench::fake_workos::{FakeWorkos, Sizes};

struct Run {
    secs: f64,
    peak_mib: f64,
    code: i32,
    out: String,
}

/// Runs `bin args` to its end, sampling its peak RSS.
fn run(bin: &str, db_url: &str, api: &str, args: &[&str]) -> anyhow::Result<Run> {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("WORKOS_API_BASE_URL", api)
        .env("WORKOS_API_KEY", "sk_test_scale")
        // The fake has no rate limit: measure ours, not WorkOS's.
        .env("WORKOS_SYNC__WORKOS__READS_PER_SECOND", "100000")
        .env("WORKOS_SYNC__LOG__FORMAT", "text")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {bin}"))?;
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = workos_sync_bench::peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(s) = child.try_wait()? {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        std::io::Read::read_to_string(&mut o, &mut out)?;
    }
    Ok(Run {
        secs: started.elapsed().as_secs_f64(),
        peak_mib: peak as f64 / 1024.0,
        code: status.code().unwrap_or(-1),
        out,
    })
}

/// Makes drift in SQL: `drift` per mille of the rows deleted, as many made older, and as
/// many extra rows WorkOS does not have (written an hour ago: a repair leaves rows
/// written after it began alone).
fn drift_rows(
    rt: &tokio::runtime::Runtime,
    db_url: &str,
    users: u64,
    drift: u64,
) -> anyhow::Result<()> {
    let changed = users * drift / 1000;
    let every = (1000 / drift.max(1)).max(1);
    exec(
        rt,
        db_url,
        &format!("DELETE FROM users WHERE substr(id, 6)::bigint % {every} = 1"),
    )?;
    exec(
        rt,
        db_url,
        &format!(
            "UPDATE users SET workos_updated_at = workos_updated_at - interval '1 day' \
             WHERE substr(id, 6)::bigint % {every} = 2"
        ),
    )?;
    exec(
        rt,
        db_url,
        &format!(
            "INSERT INTO users (id, email, usertag, workos_created_at, \
             workos_updated_at, created_at, updated_at) \
             SELECT 'user_' || lpad((i + {users})::text, 20, '0'), 'x' || i || '@extra', \
             'extra' || i, now(), now() - interval '1 day', now() - interval '1 hour', \
             now() - interval '1 hour' FROM generate_series(1, {changed}) i \
             ON CONFLICT (id) DO NOTHING"
        ),
    )?;
    Ok(())
}

/// Runs the worker with its periodic check every second (repairing, removals bounded
/// by `max`) until it logs the check's result; wall time from start and peak RSS.
fn worker_check(
    rt: &tokio::runtime::Runtime,
    bin: &str,
    db_url: &str,
    api: &str,
    max: u64,
) -> anyhow::Result<Run> {
    use std::io::BufRead;
    let started = Instant::now();
    let prefix = format!("wst-bench-verify-{}", std::process::id());
    let mut child = Command::new(bin)
        .env("DATABASE_URL", db_url)
        .env(
            "AMQP_URL",
            std::env::var("AMQP_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        )
        .env("WORKOS_SYNC__AMQP__PREFIX", &prefix)
        .env("WORKOS_SYNC__WORKER__HTTP_BIND", "127.0.0.1:0")
        .env("WORKOS_API_BASE_URL", api)
        .env("WORKOS_API_KEY", "sk_test_scale")
        .env("WORKOS_SYNC__WORKOS__READS_PER_SECOND", "100000")
        // The users check, as the CLI's `--only users` (the fake serves no other list).
        .env("WORKOS_SYNC__SYNC__ENTITIES", "users")
        .env("WORKOS_SYNC__VERIFY__INTERVAL_SECS", "1")
        .env("WORKOS_SYNC__VERIFY__REPAIR", "true")
        .env("WORKOS_SYNC__VERIFY__MAX_REMOVALS", max.to_string())
        .env("WORKOS_SYNC__LOG__FORMAT", "text")
        .env("RUST_LOG", "info,lapin=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {bin}"))?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().context("worker stdout")?;
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains("drift") {
                let _ = tx.send(line);
            }
        }
    });
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(1800);
    let line = loop {
        if let Some(kib) = workos_sync_bench::peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Ok(line) = rx.try_recv() {
            break line;
        }
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            break "no result (worker exited or timed out)".to_owned();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let secs = started.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    // The worker declared its queues under `prefix`: removed again.
    rt.block_on(async {
        let broker = workos_sync_testkit::test_broker(&prefix).await?;
        let topology = broker.topology().clone();
        broker.close().await;
        workos_sync_testkit::delete_topology(&topology).await
    })?;
    Ok(Run {
        secs,
        peak_mib: peak as f64 / 1024.0,
        code: 0,
        out: line,
    })
}

/// Runs `sql` on the database at `url`.
fn exec(rt: &tokio::runtime::Runtime, url: &str, sql: &str) -> anyhow::Result<()> {
    rt.block_on(async {
        let mut c = AsyncPgConnection::establish(url).await?;
        diesel::sql_query(sql).execute(&mut c).await?;
        Ok(())
    })
}

fn main() -> anyhow::Result<()> {
    let mut users: u64 = 100_000;
    let mut drift: u64 = 10;
    let mut bins: Vec<(String, String)> = Vec::new();
    let mut worker_bin: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--users" => users = args.next().context("--users N")?.parse()?,
            "--drift" => drift = args.next().context("--drift PER_MILLE")?.parse()?,
            "--worker-bin" => worker_bin = Some(args.next().context("--worker-bin PATH")?),
            "--bin" => {
                let b = args.next().context("--bin NAME=PATH")?;
                let (name, path) = b.split_once('=').context("--bin NAME=PATH")?;
                bins.push((name.to_owned(), path.to_owned()));
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if bins.is_empty() {
        bail!("give at least one --bin NAME=PATH");
    }
    let server_url = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let base = server_url
        .rsplit_once('/')
        .map_or(server_url.as_str(), |(b, _)| b)
        .to_owned();

    let rt = tokio::runtime::Runtime::new()?;
    let fake = FakeWorkos::start(Sizes {
        users,
        orgs: 0,
        memberships_per_org: 0,
    })?;
    let api = fake.url.clone();
    println!("verify-scale: {users} users, drift {drift}‰ (deleted, older, extra each)");
    println!("| binary | run | wall | peak RSS | exit | output |");
    println!("|---|---|---|---|---|---|");
    let changed = users * drift / 1000;
    for (name, bin) in &bins {
        let db = format!("verify_scale_{}_{name}", std::process::id());
        exec(
            &rt,
            &server_url,
            &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        )?;
        exec(&rt, &server_url, &format!("CREATE DATABASE \"{db}\""))?;
        let db_url = format!("{base}/{db}");
        let max = (changed + 1).to_string();
        let steps: Vec<(&str, Vec<&str>)> = vec![
            ("migrate", vec!["migrate"]),
            ("backfill", vec!["backfill", "--only", "users"]),
            (
                "verify --repair, in step",
                vec!["verify", "--only", "users", "--repair"],
            ),
            ("drift", vec![]),
            (
                "verify --repair, drifted",
                vec![
                    "verify",
                    "--only",
                    "users",
                    "--repair",
                    "--max-removals",
                    &max,
                ],
            ),
            ("verify after the repair", vec!["verify", "--only", "users"]),
        ];
        for (label, args) in steps {
            if args.is_empty() {
                drift_rows(&rt, &db_url, users, drift)?;
                continue;
            }
            let r = run(bin, &db_url, &api, &args)?;
            let summary: String = r
                .out
                .lines()
                .filter(|l| !l.trim().is_empty())
                .take(3)
                .collect::<Vec<_>>()
                .join(" / ");
            println!(
                "| {name} | {label} | {:.1} s | {:.1} MiB | {} | {} |",
                r.secs, r.peak_mib, r.code, summary
            );
        }
        if let Some(w) = &worker_bin {
            drift_rows(&rt, &db_url, users, drift)?;
            let r = worker_check(&rt, w, &db_url, &api, changed + 1)?;
            println!(
                "| {name} | worker's periodic check (repair), drifted | {:.1} s | {:.1} MiB | - | {} |",
                r.secs, r.peak_mib, r.out
            );
        }
        exec(
            &rt,
            &server_url,
            &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        )?;
    }
    drop(fake);
    Ok(())
}
