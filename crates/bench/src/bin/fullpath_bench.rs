//! Full-path benchmark: the receiver and one worker (release binaries) together, fed
//! freshly signed webhooks at a steady open-loop rate. Reports receiver latency (send →
//! 200), end-to-end latency (200 → row committed, from `processed_events.processed_at`),
//! queue depth over time and the peak RSS of each process; then steps the rate up to
//! find the saturation point (highest rate whose end-to-end p99 stays under 50 ms).

#![allow(clippy::print_stdout)] // a benchmark reports its figures on stdout

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use diesel::{QueryableByName, sql_types::BigInt, sql_types::Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::{Mutex, Semaphore};
use workos_sync_bench::{ms, peak_rss_kib, summarize};
use workos_sync_core::now_ms;

#[derive(Parser)]
struct Args {
    /// Steady rate of the main run, requests per second.
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Rates tried for the saturation search, each for `--step-seconds`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2000,3000,4000,5000,6000,8000"
    )]
    steps: Vec<u64>,
    #[arg(long, default_value_t = 10)]
    step_seconds: u64,
    #[arg(long)]
    bin_dir: String,
}

const SECRET: &str = "whsec_fullpath_secret";

#[derive(QueryableByName)]
struct Processed {
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = BigInt)]
    at_ms: i64,
}

struct RunResult {
    sent: usize,
    ok: usize,
    /// Non-2xx answers by status (0: no answer: connection error or client timeout).
    failures: std::collections::BTreeMap<u16, usize>,
    receiver: workos_sync_bench::Summary,
    e2e: workos_sync_bench::Summary,
    achieved: f64,
}

async fn run_at(
    http: &reqwest::Client,
    url: &str,
    db_url: &str,
    rate: u64,
    seconds: u64,
    tag: &str,
    depth: impl Fn() -> Option<u32>,
) -> anyhow::Result<RunResult> {
    let accepted: Arc<Mutex<Vec<(String, i64, Duration)>>> = Arc::new(Mutex::new(Vec::new()));
    let failures: Arc<Mutex<std::collections::BTreeMap<u16, usize>>> = Arc::default();
    let inflight = Arc::new(Semaphore::new(1024));
    let total = rate * seconds;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    let mut next_depth_print = Instant::now();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        if Instant::now() >= next_depth_print {
            if let Some(d) = depth() {
                println!(
                    "  t={:>4.1}s queue depth {d}",
                    started.elapsed().as_secs_f64()
                );
            }
            next_depth_print += Duration::from_secs(5);
        }
        let Ok(permit) = inflight.clone().acquire_owned().await else {
            break;
        };
        let http = http.clone();
        let url = url.to_owned();
        let accepted = accepted.clone();
        let failures = failures.clone();
        let id = format!("event_{tag}_{i}");
        tasks.push(tokio::spawn(async move {
            let (body, sig) =
                workos_sync_bench::signed_update(&id, &format!("user_{}", i % 5000), SECRET);
            let t = Instant::now();
            let status = http
                .post(&url)
                .header("WorkOS-Signature", sig)
                .body(body)
                .send()
                .await
                .map_or(0, |r| r.status().as_u16());
            let took = t.elapsed();
            drop(permit);
            if (200..300).contains(&status) {
                accepted
                    .lock()
                    .await
                    .push((id, i64::try_from(now_ms()).unwrap_or(0), took));
            } else {
                *failures.lock().await.entry(status).or_default() += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let achieved = total as f64 / started.elapsed().as_secs_f64();
    let accepted = std::mem::take(&mut *accepted.lock().await);
    // Wait until every accepted event is committed.
    let mut conn = AsyncPgConnection::establish(db_url).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let processed: HashMap<String, i64> = loop {
        let rows: Vec<Processed> = diesel::sql_query(
            "SELECT event_id, (extract(epoch from processed_at) * 1000)::bigint AS at_ms FROM processed_events WHERE event_id LIKE $1",
        )
        .bind::<Text, _>(format!("event_{tag}_%"))
        .load(&mut conn)
        .await?;
        if rows.len() >= accepted.len() || Instant::now() > deadline {
            break rows.into_iter().map(|r| (r.event_id, r.at_ms)).collect();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let e2e: Vec<Duration> = accepted
        .iter()
        .filter_map(|(id, ok_ms, _)| {
            processed
                .get(id)
                .map(|at| Duration::from_millis(u64::try_from(at - ok_ms).unwrap_or(0)))
        })
        .collect();
    let failures = std::mem::take(&mut *failures.lock().await);
    Ok(RunResult {
        sent: total as usize,
        ok: accepted.len(),
        failures,
        receiver: summarize(accepted.iter().map(|a| a.2).collect()),
        e2e: summarize(e2e),
        achieved,
    })
}

fn spawn(bin: &str, env: &[(&str, String)]) -> anyhow::Result<Child> {
    let mut c = Command::new(bin);
    for (k, v) in env {
        c.env(k, v);
    }
    Ok(c.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = workos_sync_testkit::fresh_database().await?;
    let prefix = format!("wst-fullpath-{}", std::process::id());
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let common = vec![
        ("AMQP_URL", workos_sync_testkit::amqp_url()),
        ("DATABASE_URL", db.url.clone()),
        ("WORKOS_WEBHOOK_SECRET", SECRET.to_string()),
        ("WORKOS_SYNC__AMQP__PREFIX", prefix.clone()),
        ("WORKOS_SYNC__LOG__FILTER", "error".to_string()),
        ("WORKOS_SYNC__RECONCILE__INTERVAL_SECS", "0".to_string()),
    ];
    let mut renv = common.clone();
    renv.push(("WORKOS_SYNC__RECEIVER__BIND", format!("127.0.0.1:{port}")));
    let mut wenv = common.clone();
    wenv.push(("WORKOS_SYNC__WORKER__HTTP_BIND", "127.0.0.1:0".to_string()));
    let mut receiver = spawn(&format!("{}/workos-sync-receiver", args.bin_dir), &renv)?;
    let mut worker = spawn(&format!("{}/workos-sync-worker", args.bin_dir), &wenv)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()?;
    let ready = workos_sync_testkit::eventually(Duration::from_secs(30), || async {
        http.get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    anyhow::ensure!(ready, "receiver not ready");
    let url = format!("http://127.0.0.1:{port}/api/webhooks/workos");
    let events_queue = format!("{prefix}.events");
    let depth = || {
        let out = Command::new("rabbitmqctl")
            .args(["-q", "list_queues", "name", "messages"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
            l.strip_prefix(&format!("{events_queue}\t"))
                .and_then(|n| n.trim().parse().ok())
        })
    };
    let (rpid, wpid) = (receiver.id(), worker.id());

    println!("== steady {} req/s for {} s", args.rate, args.seconds);
    let r = run_at(&http, &url, &db.url, args.rate, args.seconds, "main", depth).await?;
    println!(
        "steady: sent {} ok {} failures {:?} achieved {:.0}/s | receiver p50 {:.2} ms p99 {:.2} ms | end-to-end (200 → committed) p50 {:.1} ms p99 {:.1} ms max {:.1} ms ({} measured)",
        r.sent,
        r.ok,
        r.failures,
        r.achieved,
        ms(r.receiver.p50),
        ms(r.receiver.p99),
        ms(r.e2e.p50),
        ms(r.e2e.p99),
        ms(r.e2e.max),
        r.e2e.count
    );
    println!(
        "peak RSS: receiver {:.1} MiB, worker {:.1} MiB",
        peak_rss_kib(rpid).unwrap_or(0) as f64 / 1024.0,
        peak_rss_kib(wpid).unwrap_or(0) as f64 / 1024.0
    );

    println!(
        "== saturation search ({} s per step; criterion: end-to-end p99 < 50 ms, all accepted, rate held)",
        args.step_seconds
    );
    let mut best = 0;
    for (n, rate) in args.steps.iter().enumerate() {
        let r = run_at(
            &http,
            &url,
            &db.url,
            *rate,
            args.step_seconds,
            &format!("s{n}"),
            || None,
        )
        .await?;
        let held = r.achieved >= 0.95 * *rate as f64 && r.ok == r.sent;
        println!(
            "  {rate:>6}/s: achieved {:.0}/s ok {}/{} failures {:?} receiver p99 {:.1} ms e2e p99 {:.1} ms {}",
            r.achieved,
            r.ok,
            r.sent,
            r.failures,
            ms(r.receiver.p99),
            ms(r.e2e.p99),
            if held && r.e2e.p99 < Duration::from_millis(50) {
                "ok"
            } else {
                "over"
            }
        );
        if held && r.e2e.p99 < Duration::from_millis(50) {
            best = *rate;
        } else {
            // The first rate that does not hold ends the search: a later lucky step is
            // not a sustainable rate.
            break;
        }
    }
    println!(
        "saturation point: {best} req/s (highest step, with every lower step, holding end-to-end p99 < 50 ms)"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &rpid.to_string()])
        .status();
    let _ = Command::new("kill")
        .args(["-TERM", &wpid.to_string()])
        .status();
    let _ = receiver.wait();
    let _ = worker.wait();
    workos_sync_testkit::delete_topology(&workos_sync_testkit::test_topology(&prefix)?).await?;
    db.teardown().await?;
    Ok(())
}
