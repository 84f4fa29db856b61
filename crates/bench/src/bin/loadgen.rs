//! HTTP load generator for the receiver: `--concurrency` connections each posting
//! freshly signed `user.updated` events with unique ids for `--seconds`. Prints
//! requests/s, p50/p99 latency and the status codes seen.
//!
//! `--client raw` (default) speaks HTTP/1.1 keep-alive directly over one TCP stream per
//! connection, on one thread: on a 2-core machine the load generator shares the cores
//! with the server and RabbitMQ, and reqwest's client cost about as much CPU per request
//! as the receiver itself. `--client reqwest` keeps the general-purpose client for
//! comparison.

#![allow(clippy::print_stdout)] // a benchmark reports its figures on stdout

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use clap::Parser;
use workos_sync_bench::{ms, signed_update, summarize};

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
    /// `raw` (minimal HTTP/1.1 keep-alive client) or `reqwest`.
    #[arg(long, default_value = "raw")]
    client: String,
}

/// One result per request: latency and status code (0 = transport error).
type Results = (Vec<Duration>, BTreeMap<u16, u64>);

fn next_body(run_id: &str, worker: usize, i: u64, secret: &str) -> (String, String) {
    signed_update(
        &format!("event_{run_id}_{worker}_{i}"),
        &format!("user_{}", i % 1000),
        secret,
    )
}

/// A minimal HTTP/1.1 client on one keep-alive connection: writes a request, reads the
/// status line and headers, then `Content-Length` bytes of body. Reconnects when the
/// server closes the connection.
async fn raw_connection(
    addr: String,
    host: String,
    path: String,
    secret: String,
    run_id: String,
    worker: usize,
    deadline: Instant,
) -> Results {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut lat = Vec::new();
    let mut codes: BTreeMap<u16, u64> = BTreeMap::new();
    let mut stream: Option<tokio::net::TcpStream> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut req: Vec<u8> = Vec::with_capacity(4096);
    let mut i = 0u64;
    while Instant::now() < deadline {
        i += 1;
        let (body, sig) = next_body(&run_id, worker, i, &secret);
        req.clear();
        req.extend_from_slice(
            format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 WorkOS-Signature: {sig}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        req.extend_from_slice(body.as_bytes());
        let t = Instant::now();
        let code = async {
            if stream.is_none() {
                let s = tokio::net::TcpStream::connect(&addr).await.ok()?;
                s.set_nodelay(true).ok()?;
                stream = Some(s);
            }
            let s = stream.as_mut()?;
            s.write_all(&req).await.ok()?;
            buf.clear();
            // Headers.
            let header_end = loop {
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p + 4;
                }
                let mut chunk = [0u8; 4096];
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            };
            let head = std::str::from_utf8(&buf[..header_end]).ok()?;
            let code: u16 = head.get(9..12)?.parse().ok()?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let close = head.to_ascii_lowercase().contains("connection: close");
            while buf.len() < header_end + len {
                let mut chunk = [0u8; 4096];
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            if close {
                stream = None;
            }
            Some(code)
        }
        .await;
        if code.is_none() {
            stream = None;
        }
        lat.push(t.elapsed());
        *codes.entry(code.unwrap_or(0)).or_default() += 1;
    }
    (lat, codes)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The raw client runs on one thread (its work is syscalls); reqwest on the default
    // multi-thread runtime, as an application would use it.
    let rt = if args.client == "raw" {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    };
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.client == "raw" {
        let url = reqwest::Url::parse(&args.url)?;
        let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = format!("{host}:{port}");
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..args.concurrency {
            tasks.push(tokio::spawn(raw_connection(
                addr.clone(),
                format!("{host}:{port}"),
                url.path().to_owned(),
                args.secret.clone(),
                run_id.clone(),
                worker,
                deadline,
            )));
        }
        return report(&args, started, tasks).await;
    }
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
                let (body, sig) = next_body(&run_id, worker, i, &secret);
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
    report(&args, started, tasks).await
}

async fn report(
    args: &Args,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<Results>>,
) -> anyhow::Result<()> {
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
        "{} client={} concurrency={} requests={} rate={:.0}/s p50={:.2}ms p99={:.2}ms max={:.1}ms codes={:?}",
        args.label,
        args.client,
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
