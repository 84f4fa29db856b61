//! `workos-sync doctor --user <id>`: "why is this user not synced?". Gathers the row,
//! its tombstone, its events in `processed_events` (newest first), the DLQ messages
//! that name it and what WorkOS says about it now, then one verdict line: synced,
//! deleted, dead-lettered, behind, never received, or gone in WorkOS but still here,
//! each with what to do. Exit 0 for synced and deleted (the table agrees with WorkOS),
//! 3 otherwise (as `verify`'s drift).
//!
//! Failure model: each source that cannot be read (the database, the broker, the API)
//! is said on its line and the verdict is drawn from the rest; an invalid id is an
//! error (exit 1) before anything is read.

use std::{io::Write, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;
use workos_sync_core::{Entity, Settings, UserRow};
use workos_sync_queue::dlq::{self, DeadMessage};
use workos_sync_store::{Store, Tombstone, diagnose::UserEvents};
use workos_sync_workos_api::{ApiError, Client};

/// Longest the scan of `processed_events` for one user may take (it has no index on
/// `user_id`).
const EVENTS_SCAN: Duration = Duration::from_secs(10);
/// Events shown.
const EVENTS_SHOWN: i64 = 20;
/// Largest DLQ read for messages naming the user.
const DLQ_READ_MAX: u32 = 1000;

/// What WorkOS says about the user now.
#[derive(Debug, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum InWorkos {
    Present { updated_at: DateTime<Utc> },
    Gone,
    Unknown { why: String },
}

/// The final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    Synced,
    Deleted,
    DeadLettered,
    Behind,
    NeverReceived,
    StillHere,
    Tombstoned,
    Unknown,
}

#[derive(Debug, Serialize)]
struct Answer {
    user: String,
    row: Option<UserRow>,
    tombstone: Option<Tombstone>,
    events: Option<UserEvents>,
    dead_letters: Vec<DeadSummary>,
    workos: InWorkos,
    verdict: Verdict,
    advice: String,
    /// Sources that could not be read.
    unread: Vec<String>,
}

#[derive(Debug, Serialize)]
struct DeadSummary {
    id: String,
    event_type: String,
    reason: String,
    error: String,
    attempts: i64,
}

/// True when dead message `m` is about user `id` (its body names the id as a value).
fn names(m: &DeadMessage, id: &str) -> bool {
    m.body.contains(&format!("\"{id}\""))
}

pub async fn run(
    settings: &Settings,
    id: &str,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    workos_sync_core::ids::check_object_id(id)
        .map_err(|e| anyhow::anyhow!("--user {id:?}: {e}"))?;
    let mut unread = Vec::new();
    let (row, tombstone, events) = match Store::from_settings(&settings.database) {
        Ok(store) => {
            let store = store.with_sync(&settings.sync);
            local(&store, id, &mut unread).await
        }
        Err(e) => {
            unread.push(format!("database: {e}"));
            (None, None, None)
        }
    };
    let dead_letters = dead_letters(settings, id, &mut unread).await;
    let workos = in_workos(settings, id).await;
    let (verdict, advice) = judge(
        id,
        row.as_ref(),
        tombstone.as_ref(),
        events.as_ref(),
        &dead_letters,
        &workos,
    );
    let answer = Answer {
        user: id.to_owned(),
        row,
        tombstone,
        events,
        dead_letters,
        workos,
        verdict,
        advice,
        unread,
    };
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
    } else {
        render(&answer, out)?;
    }
    if !matches!(verdict, Verdict::Synced | Verdict::Deleted) {
        return Err(crate::Exit(3).into());
    }
    Ok(())
}

async fn local(
    store: &Store,
    id: &str,
    unread: &mut Vec<String>,
) -> (Option<UserRow>, Option<Tombstone>, Option<UserEvents>) {
    if let Err(e) = store.ping().await {
        unread.push(format!("database: {e}"));
        return (None, None, None);
    }
    let row = store.get_user(id).await.unwrap_or_else(|e| {
        unread.push(format!("users row: {e}"));
        None
    });
    let tombstone = store
        .tombstone_of(Entity::Users, id)
        .await
        .unwrap_or_else(|e| {
            unread.push(format!("tombstone: {e}"));
            None
        });
    let events = match store.processed_of_user(id, EVENTS_SHOWN, EVENTS_SCAN).await {
        Ok(e) => Some(e),
        Err(e) => {
            unread.push(format!("processed events: {e}"));
            None
        }
    };
    (row, tombstone, events)
}

async fn dead_letters(settings: &Settings, id: &str, unread: &mut Vec<String>) -> Vec<DeadSummary> {
    let broker = match super::connect(settings).await {
        Ok(b) => b,
        Err(e) => {
            unread.push(format!("DLQ: {e}"));
            return Vec::new();
        }
    };
    let depth = super::status::status(&broker, None)
        .await
        .ok()
        .and_then(|s| {
            let dead = broker.topology().dead_queue();
            s.queues
                .into_iter()
                .find(|q| q.queue == dead)
                .map(|q| q.messages)
        });
    let listed = match depth {
        Some(0) => Ok(Vec::new()),
        Some(n) if n <= DLQ_READ_MAX => dlq::list(&broker).await.map_err(|e| e.to_string()),
        Some(n) => Err(format!("{n} messages, more than the {DLQ_READ_MAX} read")),
        None => Err("the DLQ could not be read".to_owned()),
    };
    broker.close().await;
    match listed {
        Ok(messages) => messages
            .into_iter()
            .filter(|m| names(m, id))
            .map(|m| DeadSummary {
                id: m.id,
                event_type: m.event_type,
                reason: m.reason,
                error: m.error,
                attempts: m.attempts,
            })
            .collect(),
        Err(e) => {
            unread.push(format!("DLQ: {e}"));
            Vec::new()
        }
    }
}

async fn in_workos(settings: &Settings, id: &str) -> InWorkos {
    let mut config = workos_sync_workos_api::ApiConfig::from_settings(&settings.workos);
    config.timeout = Duration::from_secs(5);
    config.max_attempts = 2;
    let client = match Client::new(config) {
        Ok(c) if c.has_key() => c,
        Ok(_) => {
            return InWorkos::Unknown {
                why: "no WORKOS_API_KEY".into(),
            };
        }
        Err(e) => return InWorkos::Unknown { why: e.to_string() },
    };
    match client.get_user(id).await {
        Ok(u) => InWorkos::Present {
            updated_at: u.updated_at,
        },
        Err(ApiError::NotFound) => InWorkos::Gone,
        Err(e) => InWorkos::Unknown { why: e.to_string() },
    }
}

fn judge(
    id: &str,
    row: Option<&UserRow>,
    tombstone: Option<&Tombstone>,
    events: Option<&UserEvents>,
    dead: &[DeadSummary],
    workos: &InWorkos,
) -> (Verdict, String) {
    let live = row.filter(|r| r.deleted_at.is_none());
    if !dead.is_empty() {
        return (
            Verdict::DeadLettered,
            format!(
                "{} event(s) naming it are in the DLQ (first: {}); fix the cause, then `workos-sync dlq replay {}`",
                dead.len(),
                dead[0].reason,
                dead[0].id
            ),
        );
    }
    match (workos, live) {
        (InWorkos::Present { updated_at }, Some(r)) => match r.workos_updated_at {
            Some(at) if at >= *updated_at => (
                Verdict::Synced,
                "the row is as new as WorkOS's object".into(),
            ),
            at => (
                Verdict::Behind,
                format!(
                    "the row is at {}, WorkOS at {updated_at}: events are queued or were missed; `workos-sync sync-user {id}` applies it now",
                    at.map_or_else(|| "no version".to_owned(), |t| t.to_rfc3339())
                ),
            ),
        },
        (InWorkos::Present { .. }, None) if tombstone.is_some() => (
            Verdict::Tombstoned,
            format!(
                "WorkOS has this user but a tombstone says it was deleted; if that tombstone is wrong: `workos-sync tombstones remove {id}`, then `workos-sync sync-user {id}`"
            ),
        ),
        (InWorkos::Present { .. }, None) => {
            let seen = events.is_some_and(|e| !e.events.is_empty());
            let what = if seen {
                "events for it were processed but no row is live (an application's soft delete keeps it so)"
            } else {
                "no event for it reached the worker: check the webhook endpoint (`workos-sync doctor`)"
            };
            (
                Verdict::NeverReceived,
                format!("{what}; `workos-sync sync-user {id}` applies it now"),
            )
        }
        (InWorkos::Gone, Some(_)) => (
            Verdict::StillHere,
            format!(
                "WorkOS says it is gone but its row is live: the delete event was missed; `workos-sync sync-user {id}` removes it"
            ),
        ),
        (InWorkos::Gone, None) => (
            Verdict::Deleted,
            match tombstone {
                Some(t) => format!(
                    "deleted in WorkOS at {} (tombstone)",
                    t.deleted_at.to_rfc3339()
                ),
                None => "not in WorkOS and not here".into(),
            },
        ),
        (InWorkos::Unknown { why }, _) => (
            Verdict::Unknown,
            format!("WorkOS could not be asked ({why}); the local facts are above"),
        ),
    }
}

fn render(a: &Answer, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    writeln!(out, "user {}", a.user)?;
    match &a.row {
        Some(r) => writeln!(
            out,
            "  row:        {} {}, WorkOS version {}{}",
            r.email,
            r.name.as_deref().unwrap_or(""),
            r.workos_updated_at
                .map_or_else(|| "none".to_owned(), |t| t.to_rfc3339()),
            r.deleted_at.map_or_else(String::new, |t| format!(
                ", soft-deleted at {}",
                t.to_rfc3339()
            ))
        )?,
        None => writeln!(out, "  row:        none")?,
    }
    match &a.tombstone {
        Some(t) => writeln!(
            out,
            "  tombstone:  deleted at {} by {}",
            t.deleted_at.to_rfc3339(),
            t.event_id
        )?,
        None => writeln!(out, "  tombstone:  none")?,
    }
    match &a.events {
        Some(e) if e.timed_out => writeln!(
            out,
            "  events:     not read (processed_events is too large to scan within {}s)",
            EVENTS_SCAN.as_secs()
        )?,
        Some(e) if e.events.is_empty() => writeln!(out, "  events:     none processed")?,
        Some(e) => {
            writeln!(out, "  events:     {} (newest first)", e.events.len())?;
            for ev in &e.events {
                writeln!(
                    out,
                    "    {} {} {} {}",
                    ev.processed_at.to_rfc3339(),
                    ev.event_type,
                    ev.outcome,
                    ev.event_id
                )?;
            }
        }
        None => writeln!(out, "  events:     not read")?,
    }
    if a.dead_letters.is_empty() {
        writeln!(out, "  dlq:        none naming it")?;
    }
    for d in &a.dead_letters {
        writeln!(
            out,
            "  dlq:        {} {} ({}, {} attempts): {}",
            d.id, d.event_type, d.reason, d.attempts, d.error
        )?;
    }
    match &a.workos {
        InWorkos::Present { updated_at } => {
            writeln!(
                out,
                "  workos:     present, updated {}",
                updated_at.to_rfc3339()
            )?;
        }
        InWorkos::Gone => writeln!(out, "  workos:     not found (deleted)")?,
        InWorkos::Unknown { why } => writeln!(out, "  workos:     unknown ({why})")?,
    }
    for u in &a.unread {
        writeln!(out, "  unread:     {u}")?;
    }
    let label = serde_json::to_value(a.verdict)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default();
    writeln!(out, "{label}: {}", a.advice)?;
    Ok(())
}
