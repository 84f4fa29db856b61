//! Fault-injection run: the receiver and two workers (release binaries, separate
//! processes) against the local Postgres and RabbitMQ, fed signed events over HTTP while
//! faults are injected; then the final `users` table is checked against the model
//! computed from the log of every event that got a 200.
//!
//! Faults (each can be turned off): a broker connection cut (every AMQP connection goes
//! through a proxy that drops them), a database outage (the workers reach Postgres
//! through a proxy), `kill -9` of a worker (restarted each time), a receiver restart,
//! and optionally a real broker restart (`rabbitmqctl stop_app/start_app`).
//!
//! The cluster profile (`--cluster`) runs on the three-node test cluster of
//! `scripts/rabbit-cluster.sh` instead: the receiver and the two workers each start on
//! a different node (each given all three), and at a steady rate (`--rate`) the node
//! that leads the events queue is stopped (`rabbitmqctl stop_app`) and brought back,
//! later another node's VM is killed (`kill -9`) and booted again; per fault it reports
//! the 503s, the longest window without a 200, how long processing stalled and how long
//! until both workers consumed again (`node_faults`).
//!
//! Like WorkOS, the sender retries every event that did not get a 2xx, with backoff,
//! until it does. Exit status 1 on any lost event, stale overwrite, resurrection,
//! double application or dead-lettered event.

#![allow(clippy::print_stdout)] // a benchmark reports its figures on stdout

mod node_faults;

use std::{
    collections::{HashMap, HashSet},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Parser;
use tokio::sync::Mutex;
use workos_sync_bench::generate_history;
use workos_sync_core::{now_ms, signature};
use workos_sync_testkit::{
    Cluster, TcpProxy, amqp_addr, amqp_url_via, postgres_addr, postgres_url_via,
};

#[derive(Parser, Clone)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    #[arg(long, default_value_t = 5_000)]
    users: usize,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Broker connection cut, seconds (0: off).
    #[arg(long, default_value_t = 20)]
    broker_cut_secs: u64,
    /// Database outage, seconds (0: off).
    #[arg(long, default_value_t = 60)]
    db_outage_secs: u64,
    /// The workers' `worker.park_after_secs`: shorter than the outage, so the run also
    /// covers handing held deliveries back and resuming.
    #[arg(long, default_value_t = 20)]
    park_after_secs: u64,
    /// kill -9 of a worker, this many times.
    #[arg(long, default_value_t = 3)]
    worker_kills: usize,
    /// Restart the receiver once.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    receiver_restart: bool,
    /// Also restart the real RabbitMQ node (stop_app/start_app). Off by default: it
    /// disturbs everything else using the broker.
    #[arg(long)]
    allow_broker_restart: bool,
    /// Run on the three-node test cluster (its URLs in WST_CLUSTER_URLS, see
    /// scripts/rabbit-cluster.sh) with node faults instead of the broker cut.
    #[arg(long)]
    cluster: bool,
    /// Cluster profile: how long each node stays down, seconds (0: no node faults).
    #[arg(long, default_value_t = 20)]
    node_down_secs: u64,
    /// New deliveries per second (0: as fast as the senders go); a steady load lets the
    /// faults meet traffic.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Keep each process's log (warn and above) in this folder.
    #[arg(long)]
    log_dir: Option<String>,
    /// Directory with the release binaries.
    #[arg(long)]
    bin_dir: String,
}

const SECRET: &str = "whsec_fault_run_secret";

/// The processes under test.
struct Stack {
    bin_dir: String,
    prefix: String,
    /// The AMQP_URL of each process started, in turn (a receiver takes the first, the
    /// n-th worker started the n+1-th, round the list).
    amqp_urls: Vec<String>,
    workers_started: usize,
    log_dir: Option<String>,
    logs_opened: AtomicUsize,
    db_url: String,
    receiver_port: u16,
    receiver: Option<Child>,
    workers: Vec<Child>,
    park_after_secs: u64,
}

impl Stack {
    fn base_cmd(&self, bin: &str, amqp_url: &str) -> Command {
        let mut c = Command::new(format!("{}/{bin}", self.bin_dir));
        c.env("AMQP_URL", amqp_url)
            .env("DATABASE_URL", &self.db_url)
            .env("WORKOS_WEBHOOK_SECRET", SECRET)
            .env("WORKOS_SYNC__AMQP__PREFIX", &self.prefix)
            .env("WORKOS_SYNC__AMQP__RETRY_DELAYS_SECS", "1,2,5")
            .env("WORKOS_SYNC__RECONCILE__INTERVAL_SECS", "0");
        // Logs at warn into one file per process when asked (to see why a figure is
        // what it is); otherwise errors only, discarded.
        let log = self.log_dir.as_ref().and_then(|d| {
            let n = self.logs_opened.fetch_add(1, Ordering::Relaxed);
            std::fs::File::create(format!("{d}/{n:02}-{bin}.log")).ok()
        });
        match log {
            Some(f) => {
                c.env("WORKOS_SYNC__LOG__FILTER", "warn,lapin=warn")
                    .env("WORKOS_SYNC__LOG__FORMAT", "text")
                    .stdout(f)
                    .stderr(Stdio::null());
            }
            None => {
                c.env("WORKOS_SYNC__LOG__FILTER", "error")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
            }
        }
        c
    }

    fn start_receiver(&mut self) -> anyhow::Result<()> {
        let child = self
            .base_cmd("workos-sync-receiver", &self.amqp_urls[0])
            .env(
                "WORKOS_SYNC__RECEIVER__BIND",
                format!("127.0.0.1:{}", self.receiver_port),
            )
            .env("WORKOS_SYNC__RECEIVER__CONFIRM_TIMEOUT_MS", "3000")
            .env("WORKOS_SYNC__RECEIVER__SHUTDOWN_TIMEOUT_SECS", "5")
            .spawn()?;
        self.receiver = Some(child);
        Ok(())
    }

    fn start_worker(&mut self) -> anyhow::Result<()> {
        self.workers_started += 1;
        let url = &self.amqp_urls[self.workers_started % self.amqp_urls.len()];
        let child = self
            .base_cmd("workos-sync-worker", url)
            .env("WORKOS_SYNC__WORKER__HTTP_BIND", "127.0.0.1:0")
            .env(
                "WORKOS_SYNC__WORKER__PARK_AFTER_SECS",
                self.park_after_secs.to_string(),
            )
            .spawn()?;
        self.workers.push(child);
        Ok(())
    }

    fn stop_receiver(&mut self) {
        if let Some(mut r) = self.receiver.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &r.id().to_string()])
                .status();
            let _ = r.wait();
        }
    }

    fn kill9_worker(&mut self, i: usize) -> anyhow::Result<()> {
        let mut w = self.workers.remove(i % self.workers.len());
        let killed = w.kill(); // SIGKILL
        let _ = w.wait();
        killed?;
        self.start_worker()
    }

    fn stop_all(&mut self) {
        self.stop_receiver();
        for w in &mut self.workers {
            let _ = Command::new("kill")
                .args(["-TERM", &w.id().to_string()])
                .status();
            let _ = w.wait();
        }
        self.workers.clear();
    }
}

#[derive(Default)]
struct Counters {
    accepted: AtomicUsize,
    answered_503: AtomicU64,
    other_failures: AtomicU64,
}

/// Where the queues are asked about: the shared broker, or whichever cluster node
/// answers.
enum Queues {
    Shared,
    Cluster(Cluster),
}

impl Queues {
    async fn stats(&self, queue: &str) -> anyhow::Result<(u32, u32)> {
        match self {
            Self::Shared => workos_sync_testkit::queue_stats(queue).await,
            Self::Cluster(c) => c.queue_stats(queue).await,
        }
    }

    async fn len(&self, queue: &str) -> anyhow::Result<u32> {
        Ok(self.stats(queue).await?.0)
    }
}

/// Runs a cluster node command off the runtime's threads (it takes seconds, and the
/// senders share those threads).
async fn on_cluster<T: Send + 'static>(
    cluster: &Cluster,
    f: impl FnOnce(&Cluster) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || f(&c)).await?
}

/// Takes a node down with `take_down`, keeps it down for `hold`, brings it back, and
/// counts the 503s until 5 s after it serves again.
async fn node_down(
    c: &Cluster,
    take_down: impl FnOnce(&Cluster) -> anyhow::Result<workos_sync_testkit::cluster::NodeDown>
    + Send
    + 'static,
    hold: Duration,
    started: Instant,
    counters: &Counters,
    name: String,
) -> anyhow::Result<node_faults::Window> {
    let before = counters.answered_503.load(Ordering::Relaxed);
    let from = started.elapsed().as_secs_f64();
    let down = on_cluster(c, take_down).await?;
    tokio::time::sleep(hold).await;
    on_cluster(c, move |_| down.restore()).await?;
    let to = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(node_faults::Window {
        name,
        from,
        to,
        answered_503: counters.answered_503.load(Ordering::Relaxed) - before,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let history = generate_history(args.events, args.users, 11);
    println!(
        "fault-run: {} deliveries ({} unique events) over {} users, concurrency {}{}",
        history.deliveries.len(),
        history.unique,
        args.users,
        args.concurrency,
        if args.rate > 0 {
            format!(", {} new deliveries/s", args.rate)
        } else {
            String::new()
        }
    );
    let db = workos_sync_testkit::fresh_database().await?;
    let cluster = if args.cluster {
        Some(Cluster::from_env()?)
    } else {
        None
    };
    let broker_proxy = TcpProxy::start(amqp_addr()?).await?;
    let db_proxy = TcpProxy::start(postgres_addr(&db.url)?).await?;
    let receiver_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let prefix = format!("wst-fault-{}", std::process::id());
    let amqp_urls = match &cluster {
        // Each process starts on its own node and knows the other two.
        Some(c) => (1..=c.urls.len()).map(|n| c.url_list_from(n)).collect(),
        None => vec![amqp_url_via(broker_proxy.addr())],
    };
    let queues = match &cluster {
        Some(c) => Queues::Cluster(c.clone()),
        None => Queues::Shared,
    };
    let mut stack = Stack {
        bin_dir: args.bin_dir.clone(),
        prefix: prefix.clone(),
        amqp_urls,
        workers_started: 0,
        log_dir: args.log_dir.clone(),
        logs_opened: AtomicUsize::new(0),
        db_url: postgres_url_via(&db.url, db_proxy.addr()),
        receiver_port,
        receiver: None,
        workers: Vec::new(),
        park_after_secs: args.park_after_secs,
    };
    stack.start_receiver()?;
    stack.start_worker()?;
    stack.start_worker()?;
    let url = format!("http://127.0.0.1:{receiver_port}/api/webhooks/workos");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let ready = workos_sync_testkit::eventually(Duration::from_secs(30), || async {
        http.get(format!("http://127.0.0.1:{receiver_port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    anyhow::ensure!(ready, "receiver not ready");

    // The sender: every delivery until it gets a 2xx.
    let queue = Arc::new(Mutex::new(
        history
            .deliveries
            .clone()
            .into_iter()
            .enumerate()
            .collect::<Vec<_>>(),
    ));
    let accepted_log: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new(Vec::new()));
    let accepted_at: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let counters = Arc::new(Counters::default());
    let dispatched = Arc::new(AtomicUsize::new(0));
    let total = history.deliveries.len();
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..args.concurrency {
        let queue = queue.clone();
        let log = accepted_log.clone();
        let accepted_at = accepted_at.clone();
        let counters = counters.clone();
        let dispatched = dispatched.clone();
        let http = http.clone();
        let url = url.clone();
        let deliveries = history.deliveries.clone();
        let rate = args.rate;
        senders.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().await.pop();
                let Some((i, _)) = next else { return };
                if rate > 0 {
                    // The n-th new delivery goes out n/rate seconds into the run.
                    let n = dispatched.fetch_add(1, Ordering::Relaxed) as f64;
                    let at = started + Duration::from_secs_f64(n / rate as f64);
                    tokio::time::sleep_until(at.into()).await;
                }
                let body = &deliveries[i].body;
                let mut backoff = workos_sync_core::backoff::Backoff::new(
                    Duration::from_millis(50),
                    Duration::from_secs(2),
                );
                loop {
                    let sig = signature::signature_header(SECRET.as_bytes(), now_ms(), body);
                    match http
                        .post(&url)
                        .header("WorkOS-Signature", sig)
                        .body(body.clone())
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => {
                            log.lock().await.push(i);
                            accepted_at
                                .lock()
                                .await
                                .push(started.elapsed().as_secs_f64());
                            counters.accepted.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Ok(r) if r.status().as_u16() == 503 => {
                            counters.answered_503.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            counters.other_failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }));
    }

    // The faults, at fractions of the accepted count.
    let wait_for = |frac: f64| {
        let counters = counters.clone();
        async move {
            while (counters.accepted.load(Ordering::Relaxed) as f64) < frac * total as f64 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let topology = workos_sync_queue::Topology::new(prefix.clone(), 10, &[1, 2, 5]);
    let sampling = tokio_util::sync::CancellationToken::new();
    let sampler = cluster.as_ref().map(|c| {
        node_faults::spawn_sampler(
            db.store.clone(),
            c.clone(),
            topology.events_queue(),
            started,
            sampling.clone(),
        )
    });
    let mut faults = Vec::new();
    let mut windows: Vec<node_faults::Window> = Vec::new();
    let mut parked_ok = true;
    if args.broker_cut_secs > 0 && cluster.is_none() {
        wait_for(0.10).await;
        println!(
            "fault: broker connections cut for {} s",
            args.broker_cut_secs
        );
        broker_proxy.cut();
        tokio::time::sleep(Duration::from_secs(args.broker_cut_secs)).await;
        broker_proxy.restore();
        faults.push(format!("broker cut {} s", args.broker_cut_secs));
    }
    if let Some(c) = cluster.as_ref().filter(|_| args.node_down_secs > 0) {
        let hold = Duration::from_secs(args.node_down_secs);
        let events = topology.events_queue();
        wait_for(0.20).await;
        let q = events.clone();
        let leader = on_cluster(c, move |c| c.leader(&q)).await?;
        println!("fault: stop_app on node wst{leader} (leads {events}) for {hold:?}");
        windows.push(
            node_down(
                c,
                move |c| c.stop_app(leader),
                hold,
                started,
                &counters,
                format!("stop_app of wst{leader}, the events queue's leader"),
            )
            .await?,
        );
        faults.push(format!(
            "stop_app of the leader node {} s",
            args.node_down_secs
        ));

        wait_for(0.55).await;
        let q = events.clone();
        let now_leader = on_cluster(c, move |c| c.leader(&q)).await?;
        // Another node than the first fault's: the new leader, unless leadership went
        // back (then the next node).
        let victim = if now_leader == leader {
            leader % c.urls.len() + 1
        } else {
            now_leader
        };
        println!(
            "fault: kill -9 of node wst{victim} ({}) for {hold:?}",
            if victim == now_leader {
                "the events queue's new leader"
            } else {
                "a follower"
            }
        );
        windows.push(
            node_down(
                c,
                move |c| c.kill(victim),
                hold,
                started,
                &counters,
                format!("kill -9 of wst{victim}"),
            )
            .await?,
        );
        faults.push(format!("kill -9 of another node {} s", args.node_down_secs));
    }
    if args.db_outage_secs > 0 {
        wait_for(0.25).await;
        println!("fault: database unreachable for {} s", args.db_outage_secs);
        db_proxy.cut();
        tokio::time::sleep(Duration::from_secs(args.db_outage_secs)).await;
        // Events kept arriving, so every worker met the outage; one that outlasted
        // park_after has handed its deliveries back and stopped consuming.
        let (ready, consumers) = queues.stats(&topology.events_queue()).await?;
        println!("end of the outage: events queue {ready} ready, {consumers} consumers");
        if args.db_outage_secs > args.park_after_secs + 2 {
            parked_ok = consumers == 0;
        }
        db_proxy.restore();
        faults.push(format!(
            "database outage {} s (workers park after {} s)",
            args.db_outage_secs, args.park_after_secs
        ));
    }
    for k in 0..args.worker_kills {
        wait_for(0.40 + 0.1 * k as f64).await;
        println!("fault: kill -9 worker ({}/{})", k + 1, args.worker_kills);
        stack.kill9_worker(k)?;
        faults.push("worker kill -9".into());
    }
    if args.receiver_restart {
        wait_for(0.75).await;
        println!("fault: receiver restart");
        stack.stop_receiver();
        stack.start_receiver()?;
        faults.push("receiver restart".into());
    }
    if args.allow_broker_restart && cluster.is_none() {
        wait_for(0.85).await;
        println!("fault: RabbitMQ stop_app/start_app");
        let _ = Command::new("rabbitmqctl").arg("stop_app").status();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let _ = Command::new("rabbitmqctl").arg("start_app").status();
        faults.push("broker restart".into());
    }
    for s in senders {
        s.await?;
    }
    let send_secs = started.elapsed().as_secs_f64();
    println!(
        "all {total} deliveries accepted in {send_secs:.1} s; waiting for the queues to drain"
    );

    // Drain: every accepted unique event has a processed record, and the queues are empty.
    let accepted: HashSet<usize> = accepted_log.lock().await.iter().copied().collect();
    let accepted_ids: HashSet<&str> = accepted
        .iter()
        .map(|i| history.deliveries[*i].id.as_str())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let processed = db.store.processed_count().await? as usize;
        let events_left = queues
            .len(&topology.events_queue())
            .await
            .unwrap_or(u32::MAX);
        let mut retry_left = 0;
        for q in topology.retry_queues() {
            retry_left += queues.len(&q).await.unwrap_or(0);
        }
        if processed >= accepted_ids.len() && events_left == 0 && retry_left == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "did not drain: processed {processed}/{}, queued {events_left}, retrying {retry_left}",
            accepted_ids.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let drained_secs = started.elapsed().as_secs_f64();
    let dead = queues.len(&topology.dead_queue()).await.unwrap_or(0);
    stack.stop_all();
    sampling.cancel();
    let samples = match sampler {
        Some(s) => s.await?,
        None => Vec::new(),
    };

    // The model from what was accepted.
    let mut model: HashMap<&str, Option<i64>> = HashMap::new();
    let mut deleted: HashSet<&str> = HashSet::new();
    for i in &accepted {
        let d = &history.deliveries[*i];
        if d.deleted {
            deleted.insert(&d.user);
        } else {
            let e = model.entry(&d.user).or_insert(None);
            if e.is_none_or(|v| d.version > v) {
                *e = Some(d.version);
            }
        }
    }
    for u in &deleted {
        model.insert(u, None);
    }
    let rows = db.store.all_users().await?;
    let by_id: HashMap<&str, &workos_sync_store::UserRow> =
        rows.iter().map(|r| (r.id.as_str(), r)).collect();
    let (mut lost, mut stale, mut resurrected) = (0, 0, 0);
    for (user, want) in &model {
        let got = by_id
            .get(user)
            .and_then(|r| r.workos_updated_at)
            .map(|u| (u - history.epoch).num_milliseconds());
        match (want, got) {
            (None, Some(_)) => resurrected += 1,
            (Some(_), None) => lost += 1,
            (Some(w), Some(g)) if g < *w => lost += 1,
            (Some(w), Some(g)) if g > *w => stale += 1,
            _ => {}
        }
    }
    // Applied twice: a unique event id recorded more than once is impossible (primary
    // key); what can go wrong is an event recorded with an effect twice, which would show
    // as more effective outcomes than unique events.
    let processed = db.store.processed_count().await? as usize;
    let double = processed.saturating_sub(accepted_ids.len());
    println!("faults injected: {}", faults.join(", "));
    let times = node_faults::sorted(&accepted_at).await;
    if cluster.is_some() {
        for w in &windows {
            println!("{}", node_faults::describe(w, &samples, &times, 2));
        }
        println!(
            "whole run: longest window without a 200 {:.1} s, drained {:.1} s after the start",
            node_faults::longest_without_200(&times, 0.0, send_secs),
            drained_secs
        );
    }
    println!(
        "report: accepted {} deliveries ({} unique), 503 answers {}, other send failures {}, processed {}, lost {lost}, stale {stale}, resurrected {resurrected}, applied twice {double}, DLQ {dead}",
        counters.accepted.load(Ordering::Relaxed),
        accepted_ids.len(),
        counters.answered_503.load(Ordering::Relaxed),
        counters.other_failures.load(Ordering::Relaxed),
        processed
    );
    if cluster.is_none() {
        workos_sync_testkit::delete_topology(&topology)
            .await
            .context("cleanup")?;
    }
    db.teardown().await?;
    anyhow::ensure!(
        lost == 0 && stale == 0 && resurrected == 0 && double == 0 && dead == 0,
        "FAILED: guarantees violated"
    );
    anyhow::ensure!(
        parked_ok,
        "FAILED: workers kept consuming through a database outage longer than park_after"
    );
    println!("fault-run: OK");
    Ok(())
}
