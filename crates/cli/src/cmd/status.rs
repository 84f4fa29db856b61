//! `workos-sync status`: depths and consumers of the events queue, the delay tiers and
//! the DLQ (with the DLQ's oldest message), the stored cursors, and the rows of each
//! entity's table (`disabled` beside an entity left out of `sync.entities`).

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, Utc};
use lapin::{options::QueueDeclareOptions, types::FieldTable};
use serde::Serialize;
use workos_sync_core::Settings;
use workos_sync_queue::{Broker, dlq};

use super::connect;

pub async fn run(
    settings: &Settings,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let broker = connect(settings).await?;
    let store = workos_sync_store::Store::from_settings(&settings.database)
        .ok()
        .map(|s| s.with_sync(&settings.sync));
    let status = status(&broker, store.as_ref()).await;
    broker.close().await;
    let status = status?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&status)?)?;
    } else {
        print_status(&status, out)?;
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct QueueStatus {
    pub queue: String,
    pub messages: u32,
    pub consumers: u32,
    /// Age of the oldest message, only for queues without consumers (reading the head
    /// of a consumed queue would take a message from a worker).
    pub oldest_age_secs: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct CursorStatus {
    pub name: String,
    pub cursor: Option<String>,
    pub last_run_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct TableStatus {
    pub entity: workos_sync_core::Entity,
    pub rows: i64,
    pub enabled: bool,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub queues: Vec<QueueStatus>,
    pub cursors: Vec<CursorStatus>,
    pub tables: Vec<TableStatus>,
}

/// Largest DLQ whose oldest message `status` reads (walking it republishes each one).
const DLQ_AGE_MAX: u32 = 1000;

pub async fn status(
    broker: &Broker,
    store: Option<&workos_sync_store::Store>,
) -> anyhow::Result<Status> {
    let t = broker.topology();
    let mut names = vec![t.events_queue()];
    names.extend(t.retry_queues());
    names.push(t.dead_queue());
    let live = broker.live().await.context("broker unavailable")?;
    let ch = live.connection.create_channel().await?;
    let mut queues = Vec::new();
    for q in names {
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let info = ch
            .queue_declare(q.as_str().into(), passive, FieldTable::default())
            .await?;
        // Only the DLQ's oldest message is read, by a lossless walk (see `dlq::walk`),
        // and only while it is small. A `basic.get` handed back counts as a delivery of
        // a quorum queue, so peeking at the events queue would push its head toward the
        // delivery limit (and the DLQ) with every `status`.
        let mut oldest_age_secs = None;
        if q == t.dead_queue() && info.message_count() > 0 && info.message_count() <= DLQ_AGE_MAX {
            let seen = dlq::list(broker)
                .await?
                .iter()
                .filter_map(|m| m.first_seen_at_ms)
                .min();
            oldest_age_secs = seen.map(|ms| (dlq::now_ms_i64() - ms).max(0) / 1000);
        }
        queues.push(QueueStatus {
            queue: q,
            messages: info.message_count(),
            consumers: info.consumer_count(),
            oldest_age_secs,
        });
    }
    ch.close(200, "status".into()).await?;
    let cursors = match store {
        Some(s) => s
            .cursors()
            .await?
            .into_iter()
            .map(|(name, cursor, last_run_at)| CursorStatus {
                name,
                cursor,
                last_run_at,
            })
            .collect(),
        None => Vec::new(),
    };
    let tables = match store {
        Some(s) => s
            .row_counts()
            .await?
            .into_iter()
            .map(|(entity, rows)| TableStatus {
                entity,
                rows,
                enabled: s.entities().contains(entity),
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(Status {
        queues,
        cursors,
        tables,
    })
}

pub fn print_status(s: &Status, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<32} {:>10} {:>10} {:>12}",
        "QUEUE", "MESSAGES", "CONSUMERS", "OLDEST"
    )?;
    for q in &s.queues {
        let age = q
            .oldest_age_secs
            .map_or_else(|| "-".to_string(), |a| format!("{a}s"));
        writeln!(
            out,
            "{:<32} {:>10} {:>10} {:>12}",
            q.queue, q.messages, q.consumers, age
        )?;
    }
    if s.cursors.is_empty() {
        writeln!(out, "no cursors (reconciler and backfill have not run)")?;
    }
    for c in &s.cursors {
        let at = c
            .last_run_at
            .map_or_else(|| "never".to_string(), |t| t.to_rfc3339());
        writeln!(
            out,
            "cursor {:<10} {:<40} last run {at}",
            c.name,
            c.cursor.as_deref().unwrap_or("-")
        )?;
    }
    for t in &s.tables {
        let note = if t.enabled { "" } else { " (disabled)" };
        writeln!(
            out,
            "table {:<26} {:>10} rows{note}",
            t.entity.name(),
            t.rows
        )?;
    }
    Ok(())
}
