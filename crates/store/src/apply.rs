//! The apply transaction: the one idempotent step through which webhooks, lazy sync,
//! backfill and reconciliation all write (the steps are listed in the crate header).
//!
//! Failure model: see [`StoreError`]; a batch is one transaction, so a failure leaves
//! nothing half-written.

use std::{
    collections::{HashMap, HashSet},
    time::Instant,
};

use chrono::{DateTime, Utc};
use diesel::{prelude::*, sql_types::Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use workos_sync_core::{Event, EventKind, User};

use crate::{
    Outcome, Store, StoreError,
    locks::{LOCK_USER, LOCK_USERTAG},
    plan::{self, Existing, Write},
    schema::processed_events,
    sql, usertag,
};

impl Store {
    /// What [`Store::apply_batch`] would return for `events`, without writing: the same
    /// reads and the same [`plan`], no locks taken (the answer may be stale by the time
    /// it is shown, which is fine for a dry run).
    pub async fn preview(&self, events: &[Event]) -> Result<Vec<Outcome>, StoreError> {
        let mut conn = self.conn().await?;
        let (existing, _) = load_existing(&conn, &user_ids_of(events)).await?;
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let seen: HashSet<String> = processed_events::table
            .filter(processed_events::event_id.eq_any(&ids))
            .select(processed_events::event_id)
            .load::<String>(&mut conn)
            .await?
            .into_iter()
            .collect();
        Ok(plan::plan(events, &existing, &seen).outcomes)
    }

    /// Applies one event (a batch of one).
    pub async fn apply(&self, event: &Event) -> Result<Outcome, StoreError> {
        let outcomes = self.apply_batch(std::slice::from_ref(event)).await?;
        outcomes
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Invariant("a batch of one returned no outcome"))
    }

    /// Applies a batch in one transaction; returns one outcome per event, in order.
    pub async fn apply_batch(&self, events: &[Event]) -> Result<Vec<Outcome>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let mut conn = self.conn().await?;
        // A connection whose network path silently drops packets hangs instead of
        // failing (TCP gives up after ~15 min). Dropping the future mid-transaction
        // leaves the connection's transaction open, so the pool discards it.
        let outcomes = tokio::time::timeout(
            self.apply_timeout,
            conn.transaction::<_, StoreError, _>(async |c| apply_in_tx(c, events).await),
        )
        .await
        .map_err(|_| StoreError::Timeout(self.apply_timeout))??;
        metrics::histogram!(workos_sync_core::metric::APPLY_BATCH_SECONDS)
            .record(started.elapsed().as_secs_f64());
        for (ev, outcome) in events.iter().zip(&outcomes) {
            metrics::counter!(
                workos_sync_core::metric::EVENTS_APPLIED_TOTAL,
                "type" => workos_sync_core::event_type::metric_label(&ev.event_type),
                "outcome" => outcome.as_str()
            )
            .increment(1);
        }
        Ok(outcomes)
    }
}

#[derive(QueryableByName)]
struct StateRow {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    updated_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    usertag: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    last_sign_in_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    event_id: String,
}

/// What the database holds for `user_ids` (rows and tombstones, one round trip), and
/// the usertag of each existing row.
async fn load_existing(
    c: &AsyncPgConnection,
    user_ids: &[String],
) -> Result<(HashMap<String, Existing>, HashMap<String, String>), StoreError> {
    let mut existing: HashMap<String, Existing> = HashMap::new();
    let mut tags: HashMap<String, String> = HashMap::new();
    if user_ids.is_empty() {
        return Ok((existing, tags));
    }
    let rows: Vec<StateRow> = sql::LoadState { ids: user_ids }.load(&mut &*c).await?;
    for r in rows {
        let e = existing.entry(r.id.clone()).or_default();
        if r.kind == "t" {
            e.tombstoned = true;
        } else {
            e.updated_at = r.updated_at;
            e.last_sign_in_at = r.last_sign_in_at;
            if let Some(tag) = r.usertag {
                tags.insert(r.id, tag);
            }
        }
    }
    Ok((existing, tags))
}

/// The distinct user ids of a batch.
fn user_ids_of(events: &[Event]) -> Vec<String> {
    let set: HashSet<&str> = events.iter().filter_map(Event::user_id).collect();
    set.into_iter().map(str::to_owned).collect()
}

/// The usertag lock roots ([`usertag::lock_root`]) of every user the batch might create
/// (any event carrying user data but a delete: an update of an unknown user creates it
/// too).
fn creatable_roots(events: &[Event]) -> Vec<String> {
    let set: HashSet<String> = events
        .iter()
        .filter_map(|ev| match &ev.kind {
            EventKind::UserCreated(u) | EventKind::UserUpdated(u) | EventKind::UserSnapshot(u) => {
                Some(usertag::lock_root(&usertag::base(&u.email)).to_owned())
            }
            EventKind::UserDeleted(_) | EventKind::Other => None,
        })
        .collect();
    set.into_iter().collect()
}

async fn apply_in_tx(
    c: &mut AsyncPgConnection,
    events: &[Event],
) -> Result<Vec<Outcome>, StoreError> {
    let user_ids = user_ids_of(events);
    let roots = creatable_roots(events);
    // Every lock of the transaction in one statement and one global order: the users,
    // then the usertag lock roots of users it might create (needed before their tags are
    // read, and taking them later could deadlock against another batch). The read is
    // pipelined behind it: Postgres runs the two in order, and the read's snapshot is
    // taken when it starts, after every lock is held.
    let (existing, tags) = if user_ids.is_empty() {
        Default::default()
    } else {
        let conn: &AsyncPgConnection = c;
        let lock = sql::LockKeys {
            user_ns: LOCK_USER,
            users: &user_ids,
            tag_ns: LOCK_USERTAG,
            roots: &roots,
        }
        .execute(&mut &*conn);
        let read = load_existing(conn, &user_ids);
        futures_util::try_join!(async { lock.await.map_err(StoreError::from) }, read)?.1
    };

    // Dedupe by writing: plan as if no id had been seen, and send the records and the
    // writes in one statement whose writes are conditional on their source event being
    // newly recorded. An id seen before has its effect in `existing` already, so it is
    // never the source of a write unless the table was changed behind our back (the
    // application deleted a row by hand); such users are re-planned with the seen ids
    // and written by a second statement, so the result is exactly that of planning with
    // the seen ids known. Other writes are the same either way: a seen event changes no
    // other event's outcome.
    let plan0 = plan::plan(events, &existing, &HashSet::new());
    let mut batch = sql::WriteBatch::default();
    for p in &plan0.processed {
        batch.event_ids.push(&p.event_id);
        batch.event_types.push(&p.event_type);
        batch.user_ids.push(p.user_id.as_deref());
        batch.outcomes.push(p.outcome.as_str());
    }
    add_writes(c, &mut batch, &plan0.writes, &tags, true).await?;
    if batch.is_empty() {
        return Ok(plan0.outcomes);
    }
    let inserted: HashSet<String> = batch
        .load::<IdRow>(c)
        .await?
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    if inserted.len() == plan0.processed.len() {
        return Ok(plan0.outcomes);
    }
    let seen: HashSet<String> = plan0
        .processed
        .iter()
        .filter(|p| !inserted.contains(&p.event_id))
        .map(|p| p.event_id.clone())
        .collect();
    let exact = plan::plan(events, &existing, &seen);
    let skipped: HashSet<&str> = plan0
        .writes
        .iter()
        .filter_map(|w| match w {
            Write::Upsert {
                user,
                source: Some(src),
                ..
            } if seen.contains(src) => Some(user.id.as_str()),
            Write::Delete {
                user_id, event_id, ..
            } if seen.contains(event_id) => Some(user_id.as_str()),
            _ => None,
        })
        .collect();
    let redo: Vec<Write> = exact
        .writes
        .iter()
        .filter(|w| skipped.contains(write_user(w)))
        .cloned()
        .collect();
    if !redo.is_empty() {
        let mut fix = sql::WriteBatch::default();
        add_writes(c, &mut fix, &redo, &tags, false).await?;
        fix.execute(c).await?;
    }
    Ok(exact.outcomes)
}

fn write_user(w: &Write) -> &str {
    match w {
        Write::Upsert { user, .. } => &user.id,
        Write::RefreshSignIn { user_id, .. } | Write::Delete { user_id, .. } => user_id,
    }
}

/// Adds `writes` to `batch`, allocating usertags for new users. With `conditional`,
/// each write carries its source event id (skipped if that id was recorded before);
/// otherwise every write is unconditional.
async fn add_writes<'a>(
    c: &mut AsyncPgConnection,
    batch: &mut sql::WriteBatch<'a>,
    writes: &'a [Write],
    tags: &HashMap<String, String>,
    conditional: bool,
) -> Result<(), StoreError> {
    let new_users: Vec<&User> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Upsert {
                user, new: true, ..
            } => Some(&**user),
            _ => None,
        })
        .collect();
    let mut new_tags = usertag::allocate_usertags(c, &new_users).await?.into_iter();
    for w in writes {
        match w {
            Write::Upsert {
                user: u,
                new,
                source,
            } => {
                let tag = if *new {
                    new_tags.next().unwrap_or_default()
                } else {
                    // Existing rows keep their usertag: it is not in the SET list.
                    tags.get(&u.id).cloned().unwrap_or_default()
                };
                batch.id.push(&u.id);
                batch.email.push(&u.email);
                batch.name.push(u.display_name());
                batch.usertag.push(tag);
                batch.avatar_url.push(u.profile_picture_url.as_deref());
                batch.first_name.push(u.first_name.as_deref());
                batch.last_name.push(u.last_name.as_deref());
                batch.email_verified.push(u.email_verified);
                batch.external_id.push(u.external_id.as_deref());
                batch.metadata.push(
                    u.metadata
                        .as_ref()
                        .and_then(|m| serde_json::to_value(m).ok())
                        .unwrap_or_else(|| serde_json::json!({})),
                );
                batch.locale.push(u.locale.as_deref());
                batch.last_sign_in_at.push(u.last_sign_in_at);
                batch.workos_created_at.push(u.created_at);
                batch.workos_updated_at.push(u.updated_at);
                batch.source.push(source.as_deref().filter(|_| conditional));
            }
            Write::RefreshSignIn {
                user_id,
                last_sign_in_at,
            } => {
                batch.refresh_id.push(user_id);
                batch.refresh_at.push(*last_sign_in_at);
            }
            Write::Delete {
                user_id,
                deleted_at,
                event_id,
            } => {
                batch.delete_id.push(user_id);
                batch.deleted_at.push(*deleted_at);
                batch.delete_event.push(event_id);
                batch
                    .delete_source
                    .push(Some(event_id.as_str()).filter(|_| conditional));
            }
        }
    }
    Ok(())
}
