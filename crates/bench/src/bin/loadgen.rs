//! HTTP load generator for the receiver: `--concurrency` connections each posting
//! freshly signed `user.updated` events with unique ids for `--seconds`. Prints
//! requests/s, p50/p99 latency and the status codes seen.

#![allow(clippy::print_stdout)] // a benchmark reports its figures on stdout

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use clap::Parser;
use workos_sync_bench::{ms, summarize};
use workos_sync_core::{now_ms, signature};

#[derive(Parser)]
struct Args {
    /// Full URL of the webhook endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/api/webhooks/workos")]
    url: String,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(
        long,
        env = "WORKOS_WEBHOOK_SECRET",
        default_value = "whsec_testkit_secret"
    )]
    secret: String,
    /// Label printed with the figures.
    #[arg(long, default_value = "receiver")]
    label: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let client = client.clone();
        let url = args.url.clone();
        let secret = args.secret.clone();
        let run_id = run_id.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut codes: BTreeMap<u16, u64> = BTreeMap::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let id = format!("event_{run_id}_{worker}_{i}");
                let body = workos_sync_testkit::user_event(
                    &id,
                    "user.updated",
                    &format!("user_{}", i % 1000),
                    "2026-01-01T00:00:00.000Z",
                );
                let sig = signature::signature_header(secret.as_bytes(), now_ms(), body.as_bytes());
                let t = Instant::now();
                let code = match client
                    .post(&url)
                    .header("WorkOS-Signature", sig)
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                lat.push(t.elapsed());
                *codes.entry(code).or_default() += 1;
            }
            (lat, codes)
        }));
    }
    let mut lat = Vec::new();
    let mut codes: BTreeMap<u16, u64> = BTreeMap::new();
    for t in tasks {
        let (l, c) = t.await?;
        lat.extend(l);
        for (k, v) in c {
            *codes.entry(k).or_default() += v;
        }
    }
    let elapsed = started.elapsed();
    let s = summarize(lat);
    println!(
        "{} concurrency={} requests={} rate={:.0}/s p50={:.2}ms p99={:.2}ms max={:.1}ms codes={:?}",
        args.label,
        args.concurrency,
        s.count,
        s.count as f64 / elapsed.as_secs_f64(),
        ms(s.p50),
        ms(s.p99),
        ms(s.max),
        codes
    );
    Ok(())
}
