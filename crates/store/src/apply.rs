//! The apply transaction: the one idempotent step through which webhooks, lazy sync,
//! backfill and reconciliation all write (the steps are listed in the crate header).
//!
//! Failure model: see [`StoreError`]; a batch is one transaction, so a failure leaves
//! nothing half-written.

use std::{
    collections::{HashMap, HashSet},
    sync::atomic::{AtomicU8, Ordering},
    time::Instant,
};

use chrono::{DateTime, Utc};
use diesel::{prelude::*, sql_types::Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use workos_sync_core::{Entity, Event, EventKind, Record, User};

use crate::{
    Outcome, Store, StoreError,
    locks::{
        LOCK_DIRECTORY, LOCK_EVENT, LOCK_GROUP, LOCK_MEMBERSHIP, LOCK_ORG, LOCK_PERMISSION,
        LOCK_ROLE, LOCK_USER, LOCK_USERTAG,
    },
    plan::{self, Existing, Known, Write},
    schema::processed_events,
    sql, tables, usertag,
};

impl Store {
    /// What [`Store::apply_batch`] would return for `events`, without writing: the same
    /// reads and the same [`plan`], no locks taken (the answer may be stale by the time
    /// it is shown, which is fine for a dry run).
    pub async fn preview(&self, events: &[Event]) -> Result<Vec<Outcome>, StoreError> {
        let st = self.statements().await?;
        let mut conn = self.conn().await?;
        let n = events.len();
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let events = crate::parents::fill(&mut conn, events).await?;
        let events = expand(&events);
        let (known, _) = load_known(&conn, &st, &events).await?;
        let seen: HashSet<String> = processed_events::table
            .filter(processed_events::event_id.eq_any(&ids))
            .select(processed_events::event_id)
            .load::<String>(&mut conn)
            .await?
            .into_iter()
            .collect();
        let mut outcomes = plan::plan(&events, &known, &seen, self.entities).outcomes;
        outcomes.truncate(n);
        Ok(outcomes)
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
        self.apply_batch_archived(events, &[]).await
    }

    /// [`Store::apply_batch`], keeping the archived ones of `events` in the event archive
    /// (`bodies[i]` is `events[i]`'s body as received) in the same transaction.
    pub async fn apply_batch_archived(
        &self,
        events: &[Event],
        bodies: &[&[u8]],
    ) -> Result<Vec<Outcome>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let st = self.statements().await?;
        let archived = self.archive_rows(events, bodies);
        if let Some(rows) = &archived {
            self.archive_days(rows).await?;
        }
        self.processed_days().await?;
        let mut conn = self.conn().await?;
        let filled = crate::parents::fill(&mut conn, events).await?;
        let events = &*filled;
        // A connection whose network path silently drops packets hangs instead of
        // failing (TCP gives up after ~15 min). Dropping the future mid-transaction
        // leaves the connection's transaction open, so the pool discards it.
        let deletes_only = AtomicU8::new(0);
        let outcomes = tokio::time::timeout(
            self.apply_timeout,
            conn.transaction::<_, StoreError, _>(async |c| {
                let outcomes = apply_in_tx(c, &st, events, self.entities, &deletes_only).await?;
                let archived_new = match &archived {
                    Some(rows) => crate::archive::insert(c, rows).await?,
                    None => 0,
                };
                Ok((outcomes, archived_new))
            }),
        )
        .await
        .map_err(|_| StoreError::Timeout(self.apply_timeout))?
        .inspect_err(|e| {
            if e.is_missing_partition() {
                self.processed_forget();
                if let Some(a) = &self.archive {
                    a.forget();
                }
            }
        })
        .map_err(locked)
        .map_err(|e| blocked_delete(e, AtomicU8::load(&deletes_only, Ordering::Relaxed)))?;
        let (outcomes, archived_new) = outcomes;
        if archived_new > 0 {
            metrics::counter!(workos_sync_core::metric::ARCHIVE_EVENTS_TOTAL)
                .increment(archived_new as u64);
        }
        metrics::histogram!(workos_sync_core::metric::APPLY_BATCH_SECONDS)
            .record(started.elapsed().as_secs_f64());
        for (ev, outcome) in events.iter().zip(&outcomes) {
            metrics::counter!(
                workos_sync_core::metric::EVENTS_APPLIED_TOTAL,
                "entity" => ev.record().map_or("none", |r| r.entity().name()),
                "type" => workos_sync_core::event_type::metric_label(&ev.event_type),
                "outcome" => outcome.as_str()
            )
            .increment(1);
        }
        Ok(outcomes)
    }
}

/// A statement cancelled by `lock_timeout` (SQLSTATE 55P03, which diesel reports as an
/// unknown database error with Postgres's own message) is [`StoreError::Locked`].
pub(crate) fn locked(err: StoreError) -> StoreError {
    if err.is_lock_timeout() {
        StoreError::Locked
    } else {
        err
    }
}

/// A foreign key violation of a batch that only removes rows is the application's key
/// forbidding a delete WorkOS made (our own tables have no foreign keys): a permanent
/// [`StoreError::DeleteBlocked`]. With upserts in the batch it may be an application
/// key on an insert whose parent has not arrived yet: left as a failed statement (the
/// worker retries the events one by one, and a lone delete is then classified here).
fn blocked_delete(err: StoreError, deletes_only: u8) -> StoreError {
    use diesel::result::{DatabaseErrorKind, Error};
    let setting = match Entity::ALL.get(usize::from(deletes_only).wrapping_sub(1)) {
        // Domains, roles and permissions have no soft mode.
        Some(e) => e.declaration().delete_setting,
        None => return err,
    };
    match err {
        StoreError::Query(Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info)) => {
            StoreError::DeleteBlocked {
                constraint: info.constraint_name().unwrap_or("?").to_owned(),
                table: info.table_name().unwrap_or("?").to_owned(),
                setting,
            }
        }
        other => other,
    }
}

#[derive(QueryableByName)]
struct StateRow {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    tomb: bool,
    #[diesel(sql_type = Text)]
    entity: String,
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    updated_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    usertag: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    refresh_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    user_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    organization_id: Option<String>,
}

/// Further tries to lock users rows another session held, [`ROW_LOCK_PAUSE`] apart,
/// before their events are deferred (at most ~150 ms more for a batch that meets one).
const ROW_LOCK_RETRIES: usize = 3;
const ROW_LOCK_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

#[derive(QueryableByName)]
struct UserIdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    event_id: String,
}

/// A batch with the domains its organization objects carry appended, as snapshots
/// (unrecorded, each under its own version guard): an organization event brings its
/// domains up to date too. The appended events have no outcome of their own.
fn expand(events: &[Event]) -> std::borrow::Cow<'_, [Event]> {
    let domains: Vec<Event> = events
        .iter()
        .filter_map(|ev| match &ev.kind {
            EventKind::Upsert(Record::Organization(o))
            | EventKind::Snapshot(Record::Organization(o)) => Some(o),
            _ => None,
        })
        .flat_map(|o| {
            o.domains.iter().map(move |d| {
                let mut r = Record::Domain(d.clone());
                r.fill_version(o.updated_at);
                Event::snapshot(r)
            })
        })
        .collect();
    if domains.is_empty() {
        return std::borrow::Cow::Borrowed(events);
    }
    let mut all = events.to_vec();
    all.extend(domains);
    std::borrow::Cow::Owned(all)
}

/// The lock scopes of a record: (namespace, key) pairs ([`crate::locks`]).
fn scopes(r: &Record) -> Vec<(i32, String)> {
    let mut s = Vec::with_capacity(2);
    match r {
        Record::User(u) => s.push((LOCK_USER, u.id.clone())),
        Record::Membership(m) => {
            s.push((LOCK_USER, m.user_id.clone()));
            s.push((LOCK_ORG, m.organization_id.clone()));
            s.push((LOCK_MEMBERSHIP, m.id.clone()));
        }
        Record::Group(g) => s.push((LOCK_GROUP, g.id.clone())),
        Record::GroupMembership(m) => {
            s.push((LOCK_GROUP, m.group_id.clone()));
            s.push((LOCK_MEMBERSHIP, m.organization_membership_id.clone()));
        }
        // Scoped by their organization (below), when they have one.
        Record::Organization(_)
        | Record::Domain(_)
        | Record::Invitation(_)
        | Record::Connection(_)
        | Record::ApiKey(_) => {}
        Record::Role(role) => s.push((LOCK_ROLE, role.key())),
        Record::Permission(p) => s.push((LOCK_PERMISSION, p.slug.clone())),
        Record::Directory(_)
        | Record::DirectoryUser(_)
        | Record::DirectoryGroup(_)
        | Record::DirectoryMembership(_) => {
            if let Some(dir) = r.directory_id() {
                s.push((LOCK_DIRECTORY, dir.to_owned()));
            }
        }
    }
    if let (Some(org), false) = (r.organization_id(), matches!(r, Record::Membership(_))) {
        s.push((LOCK_ORG, org.to_owned()));
    }
    s
}

/// What the database holds for the records of `events` (rows, memberships by pair, and
/// the tombstones of the records and their parents; one round trip), and the usertag of
/// each existing user row.
async fn load_known(
    c: &AsyncPgConnection,
    st: &sql::Statements,
    events: &[Event],
) -> Result<(Known, HashMap<String, String>), StoreError> {
    let mut keys: [Vec<String>; Entity::COUNT] = std::array::from_fn(|_| Vec::new());
    let mut seen: HashSet<(Entity, String)> = HashSet::new();
    let mut tomb: HashSet<(Entity, String)> = HashSet::new();
    let (mut pair_users, mut pair_orgs) = (Vec::new(), Vec::new());
    for r in events.iter().filter_map(Event::record) {
        let key = (r.entity(), r.key());
        if seen.insert(key.clone()) {
            keys[r.entity().index()].push(key.1.clone());
            if let Record::Membership(m) = r {
                pair_users.push(m.user_id.clone());
                pair_orgs.push(m.organization_id.clone());
            }
        }
        tomb.insert(key);
        for (e, id) in r.parents() {
            tomb.insert((e, id.to_owned()));
        }
    }
    let mut known = Known::default();
    let mut tags: HashMap<String, String> = HashMap::new();
    if seen.is_empty() {
        return Ok((known, tags));
    }
    let (tomb_entities, tomb_ids): (Vec<&'static str>, Vec<String>) =
        tomb.into_iter().map(|(e, id)| (e.name(), id)).unzip();
    let rows: Vec<StateRow> = sql::LoadState {
        st,
        keys: &keys,
        pair_users: &pair_users,
        pair_orgs: &pair_orgs,
        tomb_entities: &tomb_entities,
        tomb_ids: &tomb_ids,
    }
    .load(&mut &*c)
    .await?;
    for r in rows {
        let Ok(entity) = Entity::parse(&r.entity) else {
            return Err(StoreError::Invariant("state row of an unknown entity"));
        };
        if let (Some(u), Some(o), Some(created)) = (&r.user_id, &r.organization_id, r.created_at) {
            known
                .pairs
                .insert((u.clone(), o.clone()), (r.key.clone(), created));
        }
        let e = known
            .rows
            .entry((entity, r.key.clone()))
            .or_insert_with(Existing::default);
        if r.tomb {
            e.tombstoned = true;
            e.tombstoned_at = r.updated_at;
        } else {
            e.present = true;
            e.updated_at = r.updated_at;
            e.refresh_at = r.refresh_at;
            if let Some(tag) = r.usertag {
                tags.insert(r.key, tag);
            }
        }
    }
    Ok((known, tags))
}

/// The lock scopes of a batch, and the usertag lock roots ([`usertag::lock_root`]) of
/// every user it might create (any event carrying user data but a delete: an update of
/// an unknown user creates it too), as the two arrays of [`sql::LockKeys`]. A recorded
/// event with no scope (no record, or a record of no user, organization, directory…)
/// is locked by its id, so every delivery of every recorded event id takes the same
/// locks: the dedupe (a lookup across `processed_events`' partitions, [`sql`])
/// relies on it.
fn lock_keys(events: &[Event]) -> (Vec<i32>, Vec<String>) {
    let mut set: HashSet<(i32, String)> = HashSet::new();
    for ev in events {
        let recorded = !matches!(ev.kind, EventKind::Snapshot(_));
        let scoped = ev.record().map(scopes).unwrap_or_default();
        if scoped.is_empty() && recorded {
            set.insert((LOCK_EVENT, ev.id.clone()));
        }
        set.extend(scoped);
        let Some(r) = ev.record() else { continue };
        if let (Record::User(u), EventKind::Upsert(_) | EventKind::Snapshot(_)) = (r, &ev.kind) {
            set.insert((
                LOCK_USERTAG,
                usertag::lock_root(&usertag::base(&u.email)).to_owned(),
            ));
        }
    }
    set.into_iter().unzip()
}

async fn apply_in_tx(
    c: &mut AsyncPgConnection,
    st: &sql::Statements,
    events: &[Event],
    enabled: workos_sync_core::EntitySet,
    deletes_only: &AtomicU8,
) -> Result<Vec<Outcome>, StoreError> {
    let n = events.len();
    let events = expand(events);
    let (ns, keys) = lock_keys(&events);
    // Every lock of the transaction in one statement and one global order: the records'
    // scopes, then the usertag lock roots of users it might create (needed before their
    // tags are read, and taking them later could deadlock against another batch). The
    // read is pipelined behind it: Postgres runs the two in order, and the read's
    // snapshot is taken when it starts, after every lock is held.
    let (known, tags) = if keys.is_empty() {
        Default::default()
    } else {
        let conn: &AsyncPgConnection = c;
        let lock = sql::LockKeys {
            ns: &ns,
            keys: &keys,
        }
        .execute(&mut &*conn);
        let read = load_known(conn, st, &events);
        let users: Vec<String> = events
            .iter()
            .filter_map(|e| match e.record() {
                Some(Record::User(u)) => Some(u.id.clone()),
                _ => None,
            })
            .collect();
        let rows = async {
            if users.is_empty() {
                return Ok(Vec::new());
            }
            sql::LockUserRows { st, ids: &users }
                .load::<UserIdRow>(&mut &*conn)
                .await
                .map_err(StoreError::from)
        };
        let (_, (mut known, tags), got) =
            futures_util::try_join!(async { lock.await.map_err(StoreError::from) }, read, rows)?;
        // Existing users rows that did not come back are held by another session.
        let got: HashSet<String> = got.into_iter().map(|r| r.id).collect();
        known.locked = users
            .into_iter()
            .filter(|id| {
                !got.contains(id)
                    && known
                        .rows
                        .get(&(Entity::Users, id.clone()))
                        .is_some_and(|e| e.present)
            })
            .collect();
        // A row held for a moment (the application's own short UPDATE of a user, say a
        // last-seen time) is free again within milliseconds: ask again a few times
        // before deferring its events by a whole delay tier. A row still held after
        // that belongs to a long transaction.
        for _ in 0..ROW_LOCK_RETRIES {
            if known.locked.is_empty() {
                break;
            }
            tokio::time::sleep(ROW_LOCK_PAUSE).await;
            let ids: Vec<String> = known.locked.iter().cloned().collect();
            let freed = sql::LockUserRows { st, ids: &ids }
                .load::<UserIdRow>(c)
                .await?;
            for r in freed {
                known.locked.remove(&r.id);
            }
        }
        (known, tags)
    };

    // Dedupe by writing: plan as if no id had been seen, and send the records and the
    // writes in one statement whose writes are conditional on their source event being
    // newly recorded. An id seen before has its effect in `known` already, so it is
    // never the source of a write unless the table was changed behind our back (the
    // application deleted a row by hand); such keys are re-planned with the seen ids
    // and written by a second statement, so the result is exactly that of planning with
    // the seen ids known. Other writes are the same either way: a seen event changes no
    // other event's outcome.
    let plan0 = plan::plan(&events, &known, &HashSet::new(), enabled);
    // Deletes only: the first deleted entity (index + 1), which names the setting in a
    // blocked delete's message; 0 otherwise.
    let deletes = plan0
        .writes
        .iter()
        .all(|w| matches!(w, Write::Delete { .. }));
    let first = plan0.writes.iter().find_map(|w| match w {
        Write::Delete { key, .. } => Some(key.0.index() as u8 + 1),
        _ => None,
    });
    deletes_only.store(
        if deletes { first.unwrap_or(0) } else { 0 },
        Ordering::Relaxed,
    );
    let mut batch = sql::WriteBatch::new(st);
    // Every event the batch may record (a deferred or repeated one only widens the
    // range read).
    batch.since = crate::processed::since(
        events
            .iter()
            .filter(|e| !matches!(e.kind, EventKind::Snapshot(_)))
            .map(|e| e.created_at),
        Utc::now(),
    );
    let batch_since = batch.since;
    for p in &plan0.processed {
        batch.event_ids.push(&p.event_id);
        batch.event_types.push(&p.event_type);
        batch.user_ids.push(p.user_id.as_deref());
        batch.outcomes.push(p.outcome.as_str());
    }
    add_writes(c, st, &mut batch, &plan0.writes, &tags, true).await?;
    let mut outcomes = plan0.outcomes.clone();
    outcomes.truncate(n);
    if batch.is_empty() {
        return Ok(outcomes);
    }
    let inserted: HashSet<String> = batch
        .load::<IdRow>(c)
        .await?
        .into_iter()
        .map(|r| r.event_id)
        .collect();
    if inserted.len() == plan0.processed.len() {
        return Ok(outcomes);
    }
    let seen: HashSet<String> = plan0
        .processed
        .iter()
        .filter(|p| !inserted.contains(&p.event_id))
        .map(|p| p.event_id.clone())
        .collect();
    let exact = plan::plan(&events, &known, &seen, enabled);
    let skipped: HashSet<(Entity, String)> = plan0
        .writes
        .iter()
        .filter(|w| w.source().is_some_and(|s| seen.contains(s)))
        .map(Write::key)
        .collect();
    let redo: Vec<Write> = exact
        .writes
        .iter()
        .filter(|w| skipped.contains(&w.key()))
        .cloned()
        .collect();
    if !redo.is_empty() {
        let mut fix = sql::WriteBatch::new(st);
        fix.since = batch_since;
        add_writes(c, st, &mut fix, &redo, &tags, false).await?;
        fix.execute(c).await?;
    }
    let mut outcomes = exact.outcomes;
    outcomes.truncate(n);
    Ok(outcomes)
}

#[derive(serde::Serialize)]
struct DeleteRow<'a> {
    entity: &'static str,
    id: &'a str,
    at: DateTime<Utc>,
    ev: &'a str,
    src: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct RefreshRow<'a> {
    id: &'a str,
    t: DateTime<Utc>,
}

/// Adds `writes` to `batch`, allocating usertags for new users. With `conditional`,
/// each write carries its source event id (skipped if that id was recorded before);
/// otherwise every write is unconditional.
async fn add_writes<'a>(
    c: &mut AsyncPgConnection,
    st: &sql::Statements,
    batch: &mut sql::WriteBatch<'a>,
    writes: &'a [Write],
    tags: &HashMap<String, String>,
    conditional: bool,
) -> Result<(), StoreError> {
    let new_users: Vec<&User> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Upsert {
                record, new: true, ..
            } => match &**record {
                Record::User(u) => Some(u),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let mut new_tags = usertag::allocate_usertags(c, st, &new_users)
        .await?
        .into_iter();
    let mut deletes = Vec::new();
    let mut refresh = Vec::new();
    for w in writes {
        let src = w.source().filter(|_| conditional);
        match w {
            Write::Upsert { record, new, .. } => {
                let tag = match &**record {
                    Record::User(_) if *new => new_tags.next().unwrap_or_default(),
                    // Existing rows keep their usertag: it is not in the SET list.
                    Record::User(u) => tags.get(&u.id).cloned().unwrap_or_default(),
                    _ => String::new(),
                };
                let t = tables::table(record.entity());
                batch.rows[t.entity.index()].push(t, record, &tag, src);
            }
            // Only users declare a refresh column (a test checks).
            Write::Refresh { key, at } if key.0 == Entity::Users => {
                refresh.push(RefreshRow { id: &key.1, t: *at })
            }
            Write::Refresh { .. } => {
                return Err(StoreError::Invariant("a refresh of an entity without one"));
            }
            Write::Delete {
                key,
                deleted_at,
                event_id,
                ..
            } => {
                batch.deleted |= 1 << key.0.index();
                deletes.push(DeleteRow {
                    entity: key.0.name(),
                    id: &key.1,
                    at: *deleted_at,
                    ev: event_id,
                    src,
                });
            }
        }
    }
    for (slot, r) in batch.upserts.iter_mut().zip(&batch.rows) {
        if let tables::Rows::Json(rows) = r
            && !rows.is_empty()
        {
            *slot = rows.to_json()?;
        }
    }
    if !deletes.is_empty() {
        batch.deletes = deletes.to_json()?;
    }
    if !refresh.is_empty() {
        batch.refresh = refresh.to_json()?;
    }
    Ok(())
}

/// JSON text of a row list, as a bind of the write statement.
trait ToJson {
    fn to_json(&self) -> Result<String, StoreError>;
}

impl<T: serde::Serialize> ToJson for T {
    fn to_json(&self) -> Result<String, StoreError> {
        serde_json::to_string(self)
            .map_err(|_| StoreError::Invariant("a row did not serialise to JSON"))
    }
}
