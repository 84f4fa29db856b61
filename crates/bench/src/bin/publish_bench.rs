//! Baseline for the receiver: raw persistent publishes with `mandatory` and a confirm
//! per message, `--inflight` at a time on one channel, into the same topology (quorum
//! events queue) the receiver uses. Prints msgs/s and confirm latency.

#![allow(clippy::print_stdout)] // a benchmark reports its figures on stdout

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use tokio::sync::Semaphore;
use workos_sync_bench::{CpuSample, ProcCpu, cpu_note, ms, summarize};
use workos_sync_queue::{Broker, BrokerConfig, Outgoing, Topology, event_properties};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 64)]
    inflight: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value = "wst-bench-pub")]
    prefix: String,
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let topology = Topology::new(args.prefix.clone(), 10, &[5]);
    let broker = Broker::start(BrokerConfig {
        urls: vec![args.amqp_url.clone()],
        topology: topology.clone(),
        connection_name: "publish-bench".into(),
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(5),
    });
    anyhow::ensure!(
        broker.wait_connected(Duration::from_secs(10)).await,
        "broker unreachable"
    );
    let body = workos_sync_testkit::user_event(
        "event_x",
        "user.updated",
        "user_1",
        "2026-01-01T00:00:00.000Z",
    );
    let body = Arc::new(body.into_bytes());
    let sem = Arc::new(Semaphore::new(args.inflight));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let (cpu, procs) = (CpuSample::now(), ProcCpu::now());
    let mut tasks = Vec::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        let permit = sem.clone().acquire_owned().await?;
        let broker = broker.clone();
        let body = body.clone();
        let exchange = topology.events_exchange();
        n += 1;
        let id = format!("event_pub_{n}");
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = broker
                .publish(
                    Outgoing {
                        exchange: &exchange,
                        routing_key: "user.updated",
                        body: &body,
                        properties: event_properties(&id, "user.updated", 0, false),
                    },
                    Duration::from_secs(5),
                )
                .await;
            drop(permit);
            (r.is_ok(), t.elapsed())
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    let mut failed = 0;
    for t in tasks {
        let (ok, d) = t.await?;
        if ok {
            lat.push(d);
        } else {
            failed += 1;
        }
    }
    let elapsed = started.elapsed();
    let s = summarize(lat);
    println!(
        "publish-confirm inflight={} msgs={} failed={} rate={:.0}/s p50={:.2}ms p99={:.2}ms",
        args.inflight,
        s.count,
        failed,
        s.count as f64 / elapsed.as_secs_f64(),
        ms(s.p50),
        ms(s.p99)
    );
    println!(
        "   CPU{}; µs per message by process: {}",
        cpu_note(cpu.and_then(|c| c.since(s.count))),
        ProcCpu::now().per_item_since(&procs, s.count, 5)
    );
    let ch = broker.live().await.map(|l| l.connection.clone());
    broker.close().await;
    drop(ch);
    workos_sync_testkit::delete_topology(&topology).await?;
    Ok(())
}
