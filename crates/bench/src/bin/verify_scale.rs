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
//! Prints wall time and peak RSS (VmHWM, sampled every 20 ms) of each run.
//!
//! Usage: `verify-scale --users 1000000 --bin before=/tmp/cli-before --bin
//! after=target/release/workos-sync [--drift 10]` with DATABASE_URL set (the server's
//! URL: the benchmark makes and drops its own databases).

#![allow(clippy::print_stdout)] // a benchmark reports its figures on stdout

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::{Context, bail};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

/// The `i`-th user's id (ids sort as `i` does).
fn id(i: u64) -> String {
    format!("user_{i:020}")
}

fn index(id: &str) -> Option<u64> {
    id.strip_prefix("user_")?.parse().ok()
}

fn user(i: u64) -> serde_json::Value {
    let at = chrono::DateTime::from_timestamp(1_767_225_600 + i64::try_from(i).unwrap_or(0), 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({"object": "user", "id": id(i), "email": format!("u{i}@scale.example"),
           "first_name": "Scale", "last_name": format!("User {i}"), "email_verified": true,
           "profile_picture_url": null, "external_id": null, "metadata": {},
           "last_sign_in_at": null, "locale": null, "created_at": at, "updated_at": at})
}

async fn list(req: HttpRequest, n: web::Data<u64>) -> HttpResponse {
    let q = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let limit: u64 = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .min(100);
    let start = q.get("after").and_then(|a| index(a)).map_or(0, |i| i + 1);
    let end = (start + limit).min(**n);
    let data: Vec<_> = (start..end).map(user).collect();
    let after = (end < **n).then(|| id(end - 1));
    HttpResponse::Ok().json(json!({"object": "list", "data": data,
                                   "list_metadata": {"before": null, "after": after}}))
}

async fn get(path: web::Path<String>, n: web::Data<u64>) -> HttpResponse {
    match index(&path) {
        Some(i) if i < **n => HttpResponse::Ok().json(user(i)),
        _ => HttpResponse::NotFound().json(json!({"code": "entity_not_found",
            "message": "User not found", "entity_id": path.into_inner()})),
    }
}

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
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--users" => users = args.next().context("--users N")?.parse()?,
            "--drift" => drift = args.next().context("--drift PER_MILLE")?.parse()?,
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
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let api = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let n = web::Data::new(users);
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(n.clone())
                    .route("/user_management/users", web::get().to(list))
                    .route("/user_management/users/{id}", web::get().to(get))
            })
            .workers(1)
            .listen(listener)?
            .run();
            let _ = tx.send(server.handle());
            server.await
        })
    });
    let handle = rx.recv().context("the fake WorkOS did not start")?;

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
                let every = (1000 / drift.max(1)).max(1);
                exec(
                    &rt,
                    &db_url,
                    &format!("DELETE FROM users WHERE substr(id, 6)::bigint % {every} = 1"),
                )?;
                exec(
                    &rt,
                    &db_url,
                    &format!(
                        "UPDATE users SET workos_updated_at = workos_updated_at - interval '1 day' \
                         WHERE substr(id, 6)::bigint % {every} = 2"
                    ),
                )?;
                // Extra rows, written an hour ago (a repair leaves rows written after it
                // began alone).
                exec(
                    &rt,
                    &db_url,
                    &format!(
                        "INSERT INTO users (id, email, usertag, workos_created_at, \
                         workos_updated_at, created_at, updated_at) \
                         SELECT 'user_' || lpad((i + {users})::text, 20, '0'), 'x' || i || '@extra', \
                         'extra' || i, now(), now() - interval '1 day', now() - interval '1 hour', \
                         now() - interval '1 hour' FROM generate_series(1, {changed}) i"
                    ),
                )?;
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
        exec(
            &rt,
            &server_url,
            &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        )?;
    }
    rt.block_on(handle.stop(true));
    let _ = thread.join();
    Ok(())
}
