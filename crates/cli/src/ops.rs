//! Operator commands: `send-test-event` (the local equivalent of WorkOS's "send test
//! event" button), `status` (queues, consumers, oldest dead-letter, cursors) and
//! `prune` (old processed-event ids, never inside WorkOS's 3-day retry window unless
//! forced).

use std::{io::Write, time::Duration};

use anyhow::Context;
use chrono::{DateTime, Utc};
use lapin::{options::QueueDeclareOptions, types::FieldTable};
use serde::Serialize;
use workos_sync_core::{Settings, now_ms, signature};
use workos_sync_queue::{Broker, dlq};

/// WorkOS retries failed deliveries for up to 3 days: an event id younger than that may
/// still arrive again, so its dedupe record must stay.
pub const RETRY_WINDOW: Duration = Duration::from_secs(3 * 24 * 3600);

/// Parses `30d`, `72h`, `90m`, `3600s` (or plain seconds).
pub fn parse_age(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("not a duration: {s:?} (use e.g. 30d, 72h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        "w" => n * 7 * 86_400,
        other => anyhow::bail!("unknown unit {other:?} in {s:?} (use s, m, h, d, w)"),
    };
    Ok(Duration::from_secs(secs))
}

/// A realistic signed event body for `event_type`.
pub fn test_event(event_type: &str, user_id: &str) -> (String, String) {
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let id = format!("event_test_{}", uuid::Uuid::new_v4().simple());
    let body = workos_sync_core::event::sample_user_event(&id, event_type, user_id, &now, &now);
    (id, body)
}

pub async fn send_test_event(
    settings: &Settings,
    event_type: &str,
    user_id: Option<String>,
    url: Option<String>,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    anyhow::ensure!(
        workos_sync_core::event_type::USER_EVENTS.contains(&event_type),
        "--type must be user.created, user.updated or user.deleted"
    );
    let secrets = settings.webhook_secrets();
    let secret = secrets
        .first()
        .context("no webhook secret configured; set WORKOS_WEBHOOK_SECRET")?;
    let url = url.unwrap_or_else(|| {
        let port = settings.receiver.bind.rsplit(':').next().unwrap_or("8080");
        format!("http://127.0.0.1:{port}{}", settings.receiver.path)
    });
    let user_id = user_id.unwrap_or_else(|| {
        format!(
            "user_test_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        )
    });
    let (id, body) = test_event(event_type, &user_id);
    let sig = signature::signature_header(secret, now_ms(), body.as_bytes());
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?
        .post(&url)
        .header("content-type", "application/json")
        .header("WorkOS-Signature", sig)
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    writeln!(
        out,
        "{event_type} {id} for {user_id} → {} {}",
        status.as_u16(),
        text.trim()
    )?;
    anyhow::ensure!(status.is_success(), "receiver answered {}", status.as_u16());
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
pub struct Status {
    pub queues: Vec<QueueStatus>,
    pub cursors: Vec<CursorStatus>,
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
    Ok(Status { queues, cursors })
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
    Ok(())
}

/// Deletes processed-event ids older than `older_than`.
pub async fn prune(
    store: &workos_sync_store::Store,
    older_than: Duration,
    force_short_window: bool,
) -> anyhow::Result<u64> {
    anyhow::ensure!(
        older_than >= RETRY_WINDOW || force_short_window,
        "refusing to prune ids younger than 3 days (WorkOS may still redeliver them); pass --force-short-window to override"
    );
    let cutoff = Utc::now() - chrono::Duration::from_std(older_than)?;
    Ok(store.prune_processed(cutoff, 10_000).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_age("72h").unwrap(), RETRY_WINDOW);
        assert_eq!(parse_age("90").unwrap(), Duration::from_secs(90));
        assert!(parse_age("abc").is_err());
        assert!(parse_age("3y").is_err());
    }
}
