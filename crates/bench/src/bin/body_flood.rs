//! Memory before authentication: floods a running receiver with `--connections`
//! concurrent requests, each declaring and sending a `--body-bytes` body under a fresh,
//! well-formed but wrong signature (the one kind of request only its body can refute),
//! `--rounds` times per connection. Meanwhile a valid signed webhook is sent every 50 ms.
//! Prints the receiver's resident memory (before, peak, after) next to the valid
//! requests' statuses and latency, before the flood (the baseline) and during it.

#![allow(clippy::print_stdout)] // a benchmark reports its figures on stdout

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Parser;
use tokio::io::AsyncWriteExt;
use workos_sync_bench::{ms, peak_rss_kib, rss_kib, signed_update, summarize};

#[derive(Parser)]
struct Args {
    /// Full URL of the webhook endpoint.
    #[arg(long, default_value = "http://127.0.0.1:18081/api/webhooks/workos")]
    url: String,
    /// Process id of the receiver (its memory is read from /proc).
    #[arg(long)]
    pid: u32,
    #[arg(long, default_value_t = 200)]
    connections: usize,
    #[arg(long, default_value_t = 1_048_576)]
    body_bytes: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(
        long,
        env = "WORKOS_WEBHOOK_SECRET",
        default_value = "whsec_testkit_secret"
    )]
    secret: String,
    /// The receiver's queue prefix: its topology is deleted at the end.
    #[arg(long)]
    prefix: Option<String>,
}

/// One flood request on a fresh connection; the status code, 0 when none came.
async fn hog(addr: &str, path: &str, body_bytes: usize) -> u16 {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {body_bytes}\r\nWorkOS-Signature: t={}, v1={}\r\nConnection: close\r\n\r\n",
        workos_sync_core::now_ms(),
        "0".repeat(64)
    );
    if s.write_all(head.as_bytes()).await.is_err() {
        return 0;
    }
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < body_bytes {
        let n = chunk.len().min(body_bytes - sent);
        // The receiver may answer (503) and close before the body is all sent.
        if s.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        sent += n;
    }
    workos_sync_testkit::read_status(&mut s, Duration::from_secs(30)).await
}

/// Sends valid webhooks every 50 ms until `stop`; latencies and statuses.
async fn valid_requests(
    url: String,
    secret: String,
    stop: Arc<AtomicBool>,
) -> (Vec<Duration>, BTreeMap<u16, u64>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    let mut lat = Vec::new();
    let mut codes = BTreeMap::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let (body, sig) = signed_update(
            &format!("event_flood_{}_{i}", std::process::id()),
            "user_flood",
            &secret,
        );
        let started = Instant::now();
        let code = client
            .post(&url)
            .header("WorkOS-Signature", sig)
            .body(body)
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        lat.push(started.elapsed());
        *codes.entry(code).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (lat, codes)
}

fn line(label: &str, lat: Vec<Duration>, codes: &BTreeMap<u16, u64>) -> String {
    let s = summarize(lat);
    format!(
        "{label}: {} valid requests, statuses {codes:?}, p50={:.1}ms max={:.1}ms",
        s.count,
        ms(s.p50),
        ms(s.max)
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rest = args.url.split("://").nth(1).unwrap_or(&args.url);
    let (addr, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (addr, path) = (addr.to_owned(), format!("/{path}"));

    // Baseline: valid requests on an idle receiver.
    let stop = Arc::new(AtomicBool::new(false));
    let base = tokio::spawn(valid_requests(
        args.url.clone(),
        args.secret.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let (base_lat, base_codes) = base.await?;
    let before = rss_kib(args.pid).unwrap_or(0);

    let peak = Arc::new(AtomicU64::new(before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop, pid) = (peak.clone(), stop.clone(), args.pid);
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) = rss_kib(pid) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let valid = tokio::spawn(valid_requests(
        args.url.clone(),
        args.secret.clone(),
        stop.clone(),
    ));
    let started = Instant::now();
    let mut hogs = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let (addr, path, n, rounds) = (addr.clone(), path.clone(), args.body_bytes, args.rounds);
        hogs.spawn(async move {
            let mut codes = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                codes.push(hog(&addr, &path, n).await);
            }
            codes
        });
    }
    let mut flood_codes = BTreeMap::<u16, u64>::new();
    while let Some(codes) = hogs.join_next().await {
        for c in codes.unwrap_or_default() {
            *flood_codes.entry(c).or_default() += 1;
        }
    }
    let flood_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (lat, codes) = valid.await?;
    let _ = sampler.await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(args.pid).unwrap_or(0);
    println!(
        "flood: {} connections x {} rounds of {} KiB bodies with a fresh wrong signature in {flood_secs:.1}s; answers {flood_codes:?}",
        args.connections,
        args.rounds,
        args.body_bytes / 1024
    );
    println!("{}", line("baseline (idle)", base_lat, &base_codes));
    println!("{}", line("during the flood", lat, &codes));
    println!(
        "receiver RSS: before {:.1} MiB, peak {:.1} MiB (sampled every 10 ms; VmHWM {:.1} MiB), 1 s after {:.1} MiB",
        before as f64 / 1024.0,
        peak.load(Ordering::Relaxed) as f64 / 1024.0,
        peak_rss_kib(args.pid).unwrap_or(0) as f64 / 1024.0,
        after as f64 / 1024.0
    );
    if let Some(prefix) = &args.prefix {
        let topology = workos_sync_testkit::test_topology(prefix)?;
        workos_sync_testkit::delete_topology(&topology).await?;
    }
    Ok(())
}
