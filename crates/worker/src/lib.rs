//! The worker: consumes the events queue and applies events to Postgres through the
//! store, serves `/healthz`, `/readyz` (database and broker), `/metrics` and the lazy
//! sync endpoints (`POST /v1/users/{id}/sync`, `/v1/organizations/{id}/sync`: bearer
//! token, coalesced, bounded in flight and per second, see `lazy`), and runs the
//! periodic jobs whose leader it is: the Events API reconciler and the drift check
//! (verify, with its bounded repair), each behind a session lock per schema.
//!
//! [`start`] wires the parts and returns a [`WorkerHandle`]; [`run`] is the binary's
//! main loop (start, wait for SIGTERM/SIGINT, shut down gracefully: stop consuming,
//! apply and ack what was delivered, close the connection). Every background task runs
//! under [`supervise`]: a panic is logged, counted and the task restarted; the table
//! and queue gauges are refreshed by tasks of their own.

pub mod consumer;
pub mod http;
mod lazy;
pub mod openapi;

/// The WorkOS pull paths (lazy sync, backfill, reconcile), from their own crate.
pub use workos_sync_pull as sync;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use lapin::{options::QueueDeclareOptions, types::FieldTable};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use workos_sync_core::Settings;
use workos_sync_queue::{Broker, BrokerConfig};
use workos_sync_store::Store;

pub use consumer::{Consumer, ConsumerConfig};

/// A running worker.
pub struct WorkerHandle {
    pub http_addr: SocketAddr,
    pub broker: Broker,
    pub store: Store,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    http: actix_web::dev::ServerHandle,
}

impl WorkerHandle {
    /// Stops consuming, lets the current batches finish, closes everything.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        self.http.stop(true).await;
        self.broker.close().await;
    }

    /// A token that is cancelled when shutdown starts.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Starts consumers, the queue-depth sampler and the HTTP server.
pub async fn start(settings: &Settings) -> anyhow::Result<WorkerHandle> {
    let _ = workos_sync_core::metrics_setup::prometheus();
    let store = Store::from_settings(&settings.database)?
        .with_sync(&settings.sync)
        .with_archive(settings.archive.filter());
    // A users table that does not fit the settings is refused now, in one line, rather
    // than failing every event; a database not up yet is waited for as usual.
    match store.prepare().await {
        Err(e) if !e.is_unavailable() => {
            anyhow::bail!("database schema {}: {e}", store.schema())
        }
        Err(e) => {
            tracing::warn!(error = %e, "database not reachable yet; consumers hold until it is")
        }
        Ok(()) => {}
    }
    let broker = Broker::start(BrokerConfig::from_settings(
        &settings.amqp,
        "workos-sync-worker",
    ));
    if !broker.wait_connected(Duration::from_secs(10)).await {
        tracing::warn!("broker not reachable yet; consumers start when it is");
    }
    if settings.worker.park_after_secs >= 1800 {
        tracing::warn!(
            park_after_secs = settings.worker.park_after_secs,
            "worker.park_after_secs is not below RabbitMQ's default consumer_timeout (30 min): \
             in a long database outage the broker may requeue held deliveries first, and each \
             requeue counts toward the delivery limit"
        );
    }
    let shutdown = CancellationToken::new();
    let consumer = Arc::new(Consumer {
        broker: broker.clone(),
        store: store.clone(),
        config: ConsumerConfig {
            prefetch: settings.worker.prefetch,
            batch_size: settings.worker.batch_size,
            publish_timeout: Duration::from_millis(settings.receiver.confirm_timeout_ms),
            hold_backoff_max: Duration::from_secs(5),
            park_after: Duration::from_secs(settings.worker.park_after_secs),
            partitions: settings.worker.partitions,
        },
        shutdown: shutdown.clone(),
    });
    let mut tasks = Vec::new();
    tasks.push(supervise("consumer", shutdown.clone(), {
        let consumer = consumer.clone();
        move || consumer.clone().run()
    }));
    tasks.push(supervise("queue_depths", shutdown.clone(), {
        let (broker, shutdown) = (broker.clone(), shutdown.clone());
        move || sample_queue_depths(broker.clone(), shutdown.clone())
    }));
    tasks.push(supervise("table_rows", shutdown.clone(), {
        let (store, shutdown) = (store.clone(), shutdown.clone());
        move || sample_table_rows(store.clone(), shutdown.clone())
    }));
    if settings.archive.enabled {
        let retention_days = settings.archive.retention_days;
        tasks.push(supervise("archive_retention", shutdown.clone(), {
            let (store, shutdown) = (store.clone(), shutdown.clone());
            move || archive_retention_loop(store.clone(), retention_days, shutdown.clone())
        }));
    }
    let api = workos_sync_workos_api::Client::new(
        workos_sync_workos_api::ApiConfig::from_settings(&settings.workos),
    )
    .ok();
    {
        use secrecy::ExposeSecret;
        if !settings.worker.api_token.expose_secret().is_empty()
            && !api.as_ref().is_some_and(|a| a.has_key())
        {
            tracing::warn!(
                "lazy sync is on (worker.api_token) but no WorkOS API key is set: every call \
                 will answer 501 workos_api_not_configured; set WORKOS_API_KEY"
            );
        }
    }
    if let Some(api) = api.clone().filter(|a| a.has_key())
        && settings.reconcile.interval_secs > 0
    {
        let interval = Duration::from_secs(settings.reconcile.interval_secs);
        let pass_timeout = Duration::from_secs(settings.reconcile.pass_timeout_secs.max(1));
        tasks.push(supervise("reconciler", shutdown.clone(), {
            let (broker, store, shutdown) = (broker.clone(), store.clone(), shutdown.clone());
            move || {
                reconcile_loop(
                    api.clone(),
                    broker.clone(),
                    store.clone(),
                    interval,
                    pass_timeout,
                    shutdown.clone(),
                )
            }
        }));
    }
    if let Some(api) = api.clone().filter(|a| a.has_key())
        && settings.verify.interval_secs > 0
    {
        let interval = Duration::from_secs(settings.verify.interval_secs);
        let pass_timeout = Duration::from_secs(settings.verify.pass_timeout_secs.max(1));
        let repair = settings.verify.repair.then_some(sync::RemovalBound {
            max: settings.verify.max_removals,
            percent: settings.verify.max_removal_percent,
        });
        tasks.push(supervise("verifier", shutdown.clone(), {
            let (store, shutdown) = (store.clone(), shutdown.clone());
            move || {
                verify_loop(
                    api.clone(),
                    store.clone(),
                    interval,
                    pass_timeout,
                    repair,
                    shutdown.clone(),
                )
            }
        }));
    }
    let state = http::State {
        broker: broker.clone(),
        store: store.clone(),
        api,
        api_token: settings.worker.api_token.clone(),
        lazy_sync_timeout: settings.worker.lazy_sync_timeout(),
        admission: lazy::Admission::new(
            settings.worker.lazy_sync_max_in_flight,
            settings.worker.lazy_sync_per_second,
        ),
    };
    let (server, http_addr) =
        http::build(&settings.worker.http_bind, settings.worker_tls()?, state)?;
    let http = server.handle();
    tokio::spawn(server);
    tracing::info!(%http_addr, partitions = settings.worker.partitions, "worker started");
    Ok(WorkerHandle {
        http_addr,
        broker,
        store,
        shutdown,
        tasks,
        http,
    })
}

/// Runs the task `make()` builds until it returns; a panic is logged, counted
/// (`workos_sync_task_restarts_total{task}`) and the task started again after a second,
/// unless shutdown began. No background task of the worker can die silently.
pub fn supervise<F, Fut>(task: &'static str, shutdown: CancellationToken, make: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match tokio::spawn(make()).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(task, error = %e, "worker task failed; restarting it");
                    metrics::counter!(workos_sync_core::metric::TASK_RESTARTS_TOTAL, "task" => task)
                        .increment(1);
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    })
}

/// The binary: start, wait for a signal, shut down.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let handle = start(&settings).await?;
    wait_for_signal().await;
    tracing::info!("shutting down: finishing the current batch");
    handle.shutdown().await;
    tracing::info!("worker stopped");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Reconciles every `interval` (the first pass right away). Failures are logged and
/// retried at the next interval; the cursor only moves after confirmed publishes.
async fn reconcile_loop(
    api: workos_sync_workos_api::Client,
    broker: Broker,
    store: Store,
    interval: Duration,
    pass_timeout: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let request = sync::ReconcileRequest::from_cursor(Duration::from_secs(10));
        let pass = tokio::time::timeout(
            pass_timeout,
            sync::reconcile_once(&api, &broker, &store, &request),
        );
        // Abandoned at the timeout: the pass's leader lock goes with its connection.
        let Ok(result) = pass.await else {
            tracing::warn!(
                timeout_secs = pass_timeout.as_secs(),
                "reconciliation pass took too long; abandoned"
            );
            metrics::counter!(workos_sync_core::metric::PASS_TIMEOUTS_TOTAL, "task" => "reconciler").increment(1);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            continue;
        };
        match result {
            Ok(Some(report)) => {
                metrics::gauge!(workos_sync_core::metric::RECONCILE_LAST_SUCCESS_TIMESTAMP_SECONDS)
                    .set(chrono::Utc::now().timestamp() as f64);
                tracing::debug!(events = report.events, "reconciled");
            }
            Ok(None) => {}
            Err(e @ sync::SyncError::CursorRejected { .. }) => {
                tracing::error!(error = %e, "reconciliation stopped");
            }
            Err(e) => tracing::warn!(error = %e, "reconciliation failed; will retry"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// How often the archive's retention runs (`archive.retention_days` counts whole days).
const ARCHIVE_RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Makes today's and tomorrow's archive partitions ahead of their first event (so no
/// batch waits on making one at midnight) and drops the partitions older than
/// `retention_days`, at start and then hourly (every worker may: both are under the
/// archive's lock and find nothing to do the second time). Failures are logged and
/// retried at the next run.
async fn archive_retention_loop(store: Store, retention_days: u32, shutdown: CancellationToken) {
    loop {
        let today = chrono::Utc::now().date_naive();
        if let Err(e) = store
            .make_partitions(&[today, today + chrono::Duration::days(1)])
            .await
        {
            tracing::warn!(error = %e, "event archive: making the next days' partitions failed; retried in an hour");
        }
        match store.archive_prune(retention_days, today).await {
            Ok(dropped) if !dropped.is_empty() => {
                tracing::info!(partitions = dropped.len(), oldest = %dropped[0], "event archive: old days dropped");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "event archive retention failed; retried in an hour")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(ARCHIVE_RETENTION_EVERY) => {}
        }
    }
}

/// Checks for drift every `interval` (the first check after one interval: a worker
/// that restarts does not list everything again at once). Failures are logged and
/// retried at the next interval; the gauges keep the last completed check's figures.
async fn verify_loop(
    api: workos_sync_workos_api::Client,
    store: Store,
    interval: Duration,
    pass_timeout: Duration,
    repair: Option<sync::RemovalBound>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let Ok(result) =
            tokio::time::timeout(pass_timeout, sync::verify_as_leader(&api, &store, repair)).await
        else {
            tracing::warn!(
                timeout_secs = pass_timeout.as_secs(),
                "drift check took too long; abandoned"
            );
            metrics::counter!(workos_sync_core::metric::PASS_TIMEOUTS_TOTAL, "task" => "verifier")
                .increment(1);
            continue;
        };
        match result {
            Ok(Some(report)) => {
                for (e, d) in &report.entities {
                    for (kind, n) in [
                        ("missing", d.missing.len()),
                        ("extra", d.extra.len()),
                        ("stale", d.stale.len()),
                        ("ahead", d.ahead.len()),
                    ] {
                        metrics::gauge!(workos_sync_core::metric::DRIFT_ROWS, "entity" => e.name(), "kind" => kind)
                            .set(n as f64);
                    }
                }
                metrics::gauge!(workos_sync_core::metric::VERIFY_LAST_SUCCESS_TIMESTAMP_SECONDS)
                    .set(chrono::Utc::now().timestamp() as f64);
                metrics::gauge!(workos_sync_core::metric::VERIFY_REPAIR_REFUSED)
                    .set(if report.refused.is_some() { 1.0 } else { 0.0 });
                metrics::gauge!(workos_sync_core::metric::VERIFY_REPAIR_FAILED_ROWS)
                    .set(report.failed() as f64);
                if let Some(why) = &report.refused {
                    tracing::error!(reason = %why, "periodic repair refused: nothing repaired");
                }
                if report.has_drift() {
                    tracing::warn!(
                        repair = repair.is_some(),
                        "drift found between the tables and WorkOS (workos-sync verify --json lists the ids)"
                    );
                } else {
                    tracing::info!("no drift between the tables and WorkOS");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "drift check failed; will retry"),
        }
    }
}

/// Every 10 s: ready messages and consumers of each queue, as gauges.
async fn sample_queue_depths(broker: Broker, shutdown: CancellationToken) {
    let t = broker.topology().clone();
    let mut queues = vec![t.events_queue(), t.dead_queue()];
    queues.extend(t.retry_queues());
    loop {
        if let Some(live) = broker.live().await
            && let Ok(ch) = live.connection.create_channel().await
        {
            for q in &queues {
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                };
                if let Ok(info) = ch
                    .queue_declare(q.as_str().into(), passive, FieldTable::default())
                    .await
                {
                    metrics::gauge!(workos_sync_core::metric::QUEUE_MESSAGES, "queue" => q.clone())
                        .set(f64::from(info.message_count()));
                    metrics::gauge!(workos_sync_core::metric::QUEUE_CONSUMERS, "queue" => q.clone())
                        .set(f64::from(info.consumer_count()));
                }
            }
            let _ = ch.close(200, "sampled".into()).await;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    }
}

/// Sets `workos_sync_table_rows{entity}` every minute from the planner's estimates (a
/// database that does not answer leaves the last values).
async fn sample_table_rows(store: Store, shutdown: CancellationToken) {
    loop {
        if let Ok(rows) = store.row_estimates().await {
            for (entity, n) in rows {
                metrics::gauge!(workos_sync_core::metric::TABLE_ROWS, "entity" => entity.name())
                    .set(n as f64);
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_restarted() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let task = supervise("test", CancellationToken::new(), move || {
            let runs = counted.clone();
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("first run fails");
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap_or_else(|_| panic!("not restarted"))
            .unwrap_or_else(|e| panic!("supervisor died: {e}"));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
