//! A whole test stack, the one copy every end-to-end test starts: a fresh database, a
//! queue prefix of its own, a receiver and a worker on that prefix and database (the
//! worker with the test's extra settings).
//!
//! Failure model: `start` fails with what could not be started (the database, the
//! receiver, the worker); whatever did start is cleaned up on drop (the database and
//! the prefix's queues go with their guards, even when a test panics). `teardown` stops
//! the worker and the receiver and drops the database, reporting the first failure.

use crate::{
    ReceiverOptions, TestDb, TestPrefix, TestReceiver, fresh_database, spawn_receiver,
    spawn_worker, unique_prefix,
};

/// A database, a prefix, a receiver and a worker (see the module header).
pub struct Stack {
    pub db: TestDb,
    pub receiver: TestReceiver,
    pub worker: workos_sync_worker::WorkerHandle,
    /// Deletes the prefix's queues and exchanges when dropped.
    pub prefix: TestPrefix,
}

impl Stack {
    /// A stack on a fresh migrated database; `worker_env` adds settings to the worker's
    /// (`WORKOS_SYNC__…` variables and the like).
    pub async fn start(worker_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::on(fresh_database().await?, worker_env).await
    }

    /// A stack on `db` (a database the test prepared: an application's schema, an
    /// adopted table); the worker's `DATABASE_URL` is its URL.
    pub async fn on(db: TestDb, worker_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let prefix = unique_prefix();
        let receiver = spawn_receiver(ReceiverOptions {
            prefix: Some(prefix.to_string()),
            ..Default::default()
        })
        .await?;
        let worker = spawn_worker(&prefix, &db.url, worker_env).await?;
        Ok(Self {
            db,
            receiver,
            worker,
            prefix,
        })
    }

    /// Stops the worker and the receiver (deleting the test's queues), then drops the
    /// database.
    pub async fn teardown(self) -> anyhow::Result<()> {
        self.worker.shutdown().await;
        let receiver = self.receiver.teardown().await;
        let db = self.db.teardown().await;
        receiver.and(db)
    }
}
