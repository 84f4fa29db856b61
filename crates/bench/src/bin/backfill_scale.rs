//! Backfill at scale (issue #30, item 4): `workos-sync backfill` of `--users` users, then
//! of `--orgs` organizations with `--memberships-per-org` memberships each, against a
//! fake WorkOS in this process (`workos_sync_bench::fake_workos`, no rate limit of its
//! own), each run's wall time, peak RSS, requests and request rate printed beside the
//! figure it is compared with:
//! - users with no budget of ours to speak of (`workos.reads_per_second = 100000`): our
//!   own ceiling, in requests per second;
//! - users again with the default budget (`--budget`, 40 reads/s): the request rate
//!   against the budget — the wall time should be the budget's (pages ÷ budget), not
//!   ours;
//! - users killed (SIGKILL) once `--kill-at` of them are in the table, then run again:
//!   the second run's requests against the pages left (a resumed backfill lists again
//!   at most the page it was on), and the table exactly complete;
//! - organizations, then their memberships (`--only organizations`, `--only
//!   organization_memberships`), and `verify --repair` of each: time and peak RSS.
//!
//! Usage: `backfill-scale --bin target/release/workos-sync [--users 1000000] [--orgs
//! 10000] [--memberships-per-org 100] [--budget 40] [--kill-at 0.6]` with DATABASE_URL
//! set (the server's URL: the benchmark makes and drops its own databases).

#![allow(clippy::print_stdout)] // a benchmark reports its figures on stdout

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
use diesel::{QueryableByName, sql_types::BigInt};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use workos_sync_bench::fake_workos::{FakeWorkos, Sizes};

#[derive(clap::Parser)]
struct Args {
    /// The workos-sync CLI binary to measure.
    #[arg(long)]
    bin: String,
    #[arg(long, default_value_t = 100_000)]
    users: u64,
    #[arg(long, default_value_t = 1_000)]
    orgs: u64,
    #[arg(long, default_value_t = 100)]
    memberships_per_org: u64,
    /// `workos.reads_per_second` of the budgeted run (the default setting's).
    #[arg(long, default_value_t = 40)]
    budget: u64,
    /// Share of the users in the table at which the killed run is killed.
    #[arg(long, default_value_t = 0.6)]
    kill_at: f64,
}

#[derive(QueryableByName)]
struct Num {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(url: &str, table: &str) -> anyhow::Result<i64> {
    let mut c = AsyncPgConnection::establish(url).await?;
    let r: Num = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .get_result(&mut c)
        .await?;
    Ok(r.n)
}

async fn admin(sql: &str) -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let mut c = AsyncPgConnection::establish(&url).await?;
    diesel::sql_query(sql).execute(&mut c).await?;
    Ok(())
}

fn db_url(db: &str) -> anyhow::Result<String> {
    let mut u = url::Url::parse(&std::env::var("DATABASE_URL").context("DATABASE_URL")?)?;
    u.set_path(&format!("/{db}"));
    Ok(u.to_string())
}

/// One CLI run's figures.
struct Run {
    secs: f64,
    peak_mib: f64,
    requests: u64,
    code: i32,
    /// Set when the run was killed.
    killed_at: Option<i64>,
}

/// Runs the CLI with `args` to its end (or, with `kill_at`, until that many rows of
/// `users` are in the table, then SIGKILL), sampling its peak RSS every 20 ms.
async fn run(
    a: &Args,
    fake: &FakeWorkos,
    url: &str,
    reads_per_second: u64,
    args: &[&str],
    kill_at: Option<i64>,
) -> anyhow::Result<Run> {
    let before = fake.requests();
    let started = Instant::now();
    let mut child = Command::new(&a.bin)
        .args(args)
        .env("DATABASE_URL", url)
        .env("WORKOS_API_BASE_URL", &fake.url)
        .env("WORKOS_API_KEY", "sk_test_scale")
        .env(
            "WORKOS_SYNC__WORKOS__READS_PER_SECOND",
            reads_per_second.to_string(),
        )
        .env("WORKOS_SYNC__LOG__FORMAT", "text")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", a.bin))?;
    let pid = child.id();
    let mut peak = 0;
    let mut last_count = Instant::now();
    let mut killed_at = None;
    let code = loop {
        if let Some(kib) = workos_sync_bench::peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(s) = child.try_wait()? {
            break s.code().unwrap_or(-1);
        }
        if let Some(target) = kill_at
            && last_count.elapsed() >= Duration::from_millis(100)
        {
            last_count = Instant::now();
            let n = count(url, "users").await?;
            if n >= target {
                child.kill()?;
                let _ = child.wait();
                killed_at = Some(n);
                break -9;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Ok(Run {
        secs: started.elapsed().as_secs_f64(),
        peak_mib: peak as f64 / 1024.0,
        requests: fake.requests() - before,
        code,
        killed_at,
    })
}

fn row(label: &str, r: &Run, rows: i64, note: &str) {
    println!(
        "| {label} | {:.1} s | {:.1} MiB | {} | {:.0}/s | {rows} | {} | {note} |",
        r.secs,
        r.peak_mib,
        r.requests,
        r.requests as f64 / r.secs.max(0.001),
        r.code
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = <Args as clap::Parser>::parse();
    let fake = FakeWorkos::start(Sizes {
        users: a.users,
        orgs: a.orgs,
        memberships_per_org: a.memberships_per_org,
    })?;
    let pid = std::process::id();
    let names = ["full", "budget", "killed"].map(|n| format!("wsb_backfill_{n}_{pid}"));
    for db in &names {
        admin(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await?;
        admin(&format!("CREATE DATABASE {db}")).await?;
    }
    let result = bench(&a, &fake, &names).await;
    for db in &names {
        let _ = admin(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
    }
    result
}

async fn bench(a: &Args, fake: &FakeWorkos, names: &[String; 3]) -> anyhow::Result<()> {
    const UNLIMITED: u64 = 100_000;
    let [full, budget, killed] = [db_url(&names[0])?, db_url(&names[1])?, db_url(&names[2])?];
    for url in [&full, &budget, &killed] {
        let r = run(a, fake, url, UNLIMITED, &["migrate"], None).await?;
        anyhow::ensure!(r.code == 0, "migrate failed");
    }
    let pages = a.users.div_ceil(100);
    println!(
        "backfill-scale: {} users ({pages} pages), {} organizations × {} memberships; budget {} reads/s",
        a.users, a.orgs, a.memberships_per_org, a.budget
    );
    println!("| run | wall | peak RSS | requests | request rate | rows | exit | against |");
    println!("|---|---|---|---|---|---|---|---|");

    let mut wrong: Vec<String> = Vec::new();
    let users = ["backfill", "--only", "users"];
    let r = run(a, fake, &full, UNLIMITED, &users, None).await?;
    let n = count(&full, "users").await?;
    if n as u64 != a.users {
        wrong.push(format!("users: {n} rows"));
    }
    row(
        "users, no budget (our ceiling)",
        &r,
        n,
        &format!("{} users expected", a.users),
    );
    let ceiling = r.requests as f64 / r.secs.max(0.001);

    let r = run(a, fake, &budget, a.budget, &users, None).await?;
    let n = count(&budget, "users").await?;
    row(
        &format!("users, budget {} reads/s", a.budget),
        &r,
        n,
        &format!(
            "the budget's wall time: {:.1} s ({} requests ÷ {}/s); our ceiling {ceiling:.0} requests/s",
            r.requests as f64 / a.budget as f64,
            r.requests,
            a.budget
        ),
    );

    let target = (a.users as f64 * a.kill_at) as i64;
    let r = run(a, fake, &killed, UNLIMITED, &users, Some(target)).await?;
    row(
        &format!("users, killed at {:.0} %", a.kill_at * 100.0),
        &r,
        r.killed_at.unwrap_or(0),
        "SIGKILL",
    );
    let first = r.requests;
    let r = run(a, fake, &killed, UNLIMITED, &users, None).await?;
    let n = count(&killed, "users").await?;
    let left = pages.saturating_sub(first.saturating_sub(1));
    if n as u64 != a.users {
        wrong.push(format!("users after the resume: {n} rows"));
    }
    row(
        "users, resumed",
        &r,
        n,
        &format!(
            "{} requests for the ~{left} pages left; both runs {} for {pages} pages; table {}",
            r.requests,
            first + r.requests,
            if n as u64 == a.users {
                "complete"
            } else {
                "INCOMPLETE"
            }
        ),
    );

    for (label, args, table) in [
        (
            "organizations",
            vec!["backfill", "--only", "organizations"],
            "organizations",
        ),
        (
            "memberships",
            vec!["backfill", "--only", "organization_memberships"],
            "organization_memberships",
        ),
        (
            "verify --repair organizations",
            vec!["verify", "--only", "organizations", "--repair"],
            "organizations",
        ),
        (
            "verify --repair memberships",
            vec!["verify", "--only", "organization_memberships", "--repair"],
            "organization_memberships",
        ),
    ] {
        let r = run(a, fake, &full, UNLIMITED, &args, None).await?;
        let n = count(&full, table).await?;
        let want = if table == "organizations" {
            a.orgs
        } else {
            a.orgs * a.memberships_per_org
        };
        if n as u64 != want || r.code != 0 {
            wrong.push(format!("{label}: {n} rows, exit {}", r.code));
        }
        row(
            label,
            &r,
            n,
            &format!(
                "{want} expected; at the budget {:.0} s",
                r.requests as f64 / a.budget as f64
            ),
        );
    }
    anyhow::ensure!(wrong.is_empty(), "not as WorkOS has it: {wrong:?}");
    Ok(())
}
