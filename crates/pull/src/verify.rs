//! Drift detection: the mirror compared with WorkOS's own lists. Every enabled entity
//! is listed in full (users; organizations, with their domains from the organization
//! objects and, under each, its memberships of every status and its roles; environment
//! roles; permissions; Directory Sync's directories, each one's groups and users, and
//! each group's users as memberships), and each key's `updated_at` is compared with the table's:
//! **missing** (in WorkOS, not here, or here only as a row sync soft-deleted),
//! **extra** (a live row sync wrote that WorkOS did not list), **stale** (here with an
//! older version) and **ahead** (here newer than WorkOS: reported only). A row with no
//! WorkOS version that WorkOS did not list is the application's own (an adopted
//! table's user that sync never wrote): reported as **unsynced**, never drift, never
//! removed.
//!
//! Without `repair` nothing is written. With it, missing and stale rows are applied as
//! snapshots of what WorkOS listed (the one locked, version-guarded apply step, so a
//! webhook applied meanwhile wins if newer); an extra row is asked for by id and removed
//! (and tombstoned) only when WorkOS answers `entity_not_found` for that id (a Directory
//! Sync membership, which has no id, through its group's and user's ids and a fresh
//! listing of its group's users), never
//! because a list missed it, and never when the row was written after the verify began
//! (an event may have created it meanwhile). Ahead rows are left alone.
//!
//! Memory: the listing is spooled to Postgres a page at a time and compared there
//! (`store::spool`), so the process holds a page and the keys that differ, whatever the
//! number of records; a repair walks the lists holding missing or stale rows a second
//! time and applies just those (the first walk keeps no objects), in batches.
//!
//! A bulk removal is bounded ([`RemovalBound`]): when an entity's extra rows exceed it
//! (a typical cause: an API key of another WorkOS environment, whose lists hold none of
//! ours), the repair writes nothing at all and says so ([`VerifyReport::refused`]).
//!
//! Failure model: a failed listing (after the client's own retries of 429 and 5xx,
//! within the shared rate budget) ends the run with its [`SyncError`] before anything is
//! repaired, so a partial listing is never reported as drift nor acted on. During the
//! repair, an extra row WorkOS cannot confirm either way (a 5xx after retries, an id
//! that cannot be a WorkOS id) is left as it is and listed in [`Repair::failed`]; the
//! other rows are repaired.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use workos_sync_core::{DirectoryGroupMembership, Entity, EntitySet, Event, Membership, Record};
use workos_sync_store::{
    Outcome, Store,
    spool::{Difference, Spool},
};
use workos_sync_workos_api::{ApiError, Client, DirectoryUsersOf};

use crate::{
    SyncError,
    walk::{List, Sink, walk},
};

/// One entity's drift, by kind, as sorted keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// Keys WorkOS listed.
    pub listed: u64,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub stale: Vec<String>,
    pub ahead: Vec<String>,
    /// Live rows with no WorkOS version that WorkOS did not list: the application's own,
    /// never written by sync. Not drift; never removed.
    #[serde(default)]
    pub unsynced: Vec<String>,
    /// What `repair` did (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<Repair>,
}

/// What a repair did for one entity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Repair {
    /// Missing and stale rows written from WorkOS's objects (created or updated).
    pub applied: u64,
    /// Extra rows WorkOS said were gone (by id): removed and tombstoned.
    pub removed: Vec<String>,
    /// Extra rows WorkOS still has when asked by id (a list missed them): re-applied.
    pub still_in_workos: Vec<String>,
    /// Left alone: written after the verify began, or of an entity WorkOS cannot be
    /// asked about one by one (domains, roles, permissions).
    pub left: Vec<String>,
    /// Extra rows WorkOS could not confirm either way: left as they are.
    pub failed: Vec<Failed>,
}

/// An extra row whose check failed, and why (no internals: the error's own text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    pub key: String,
    pub reason: String,
}

/// How many extra rows one repair may remove per entity: at most `max` and at most
/// `percent` % of the entity's rows that sync wrote (more than that removes nothing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemovalBound {
    pub max: u64,
    pub percent: f64,
}

impl RemovalBound {
    /// An absolute bound only (`verify --repair --max-removals N`: an operator who has
    /// checked the extra rows and proceeds knowingly).
    pub fn absolute(max: u64) -> Self {
        Self {
            max,
            percent: 100.0,
        }
    }

    /// Whether removing `n` of `synced` rows stays within the bound.
    pub fn allows(&self, n: u64, synced: u64) -> bool {
        n <= self.max && (n as f64) <= self.percent / 100.0 * synced as f64
    }
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.stale.is_empty()
            && self.ahead.is_empty()
    }
}

/// Every checked entity's drift.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub entities: BTreeMap<Entity, Drift>,
    /// Why a repair wrote nothing: the removals it would make exceed the bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl VerifyReport {
    /// True when some entity has drift of any kind.
    pub fn has_drift(&self) -> bool {
        self.entities.values().any(|d| !d.is_empty())
    }

    /// Extra rows a repair could not check, of every entity.
    pub fn failed(&self) -> usize {
        self.entities
            .values()
            .filter_map(|d| d.repair.as_ref())
            .map(|r| r.failed.len())
            .sum()
    }
}

/// Buffers one page of WorkOS's keys and versions per entity and hands it to the spool:
/// the listing is held by Postgres, never here (`store::spool`).
struct Listing<'s, P> {
    wanted: EntitySet,
    spool: &'s mut Spool,
    progress: P,
    seen: u64,
}

/// The records a page holds: each record, and an organization's domains (which may carry
/// no times of their own: as new as the organization, what apply stores too).
fn with_domains(records: Vec<Record>) -> impl Iterator<Item = Record> {
    records.into_iter().flat_map(|r| {
        let domains: Vec<Record> = match &r {
            Record::Organization(o) => o
                .domains
                .iter()
                .map(|d| {
                    let mut d = Record::Domain(d.clone());
                    d.fill_version(o.updated_at);
                    d
                })
                .collect(),
            _ => Vec::new(),
        };
        domains.into_iter().chain(std::iter::once(r))
    })
}

impl<P: FnMut(u64)> Sink for Listing<'_, P> {
    async fn records(&mut self, _list: &List, records: Vec<Record>) -> Result<(), SyncError> {
        let mut page: BTreeMap<Entity, (Vec<String>, Vec<DateTime<Utc>>)> = BTreeMap::new();
        for r in with_domains(records).filter(|r| self.wanted.contains(r.entity())) {
            let (keys, versions) = page.entry(r.entity()).or_default();
            keys.push(r.key());
            versions.push(r.updated_at());
            self.seen += 1;
        }
        for (e, (keys, versions)) in page {
            self.spool.add(e, &keys, &versions).await?;
        }
        Ok(())
    }

    async fn advance(&mut self, _list: &List, _next: Option<&str>) -> Result<(), SyncError> {
        (self.progress)(self.seen);
        Ok(())
    }
}

/// The repair's second walk: applies, as snapshots in batches, the records whose keys
/// the comparison found missing or stale (each at most once).
struct Applier<'a> {
    store: &'a Store,
    needed: HashMap<Entity, HashSet<String>>,
    batch: Vec<Event>,
    applied: HashMap<Entity, u64>,
}

impl Applier<'_> {
    async fn flush(&mut self) -> Result<(), SyncError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let outcomes = self.store.apply_batch(&batch).await?;
        for (ev, o) in batch.iter().zip(outcomes) {
            if let (Some(r), Outcome::Created | Outcome::Updated) = (ev.record(), o) {
                *self.applied.entry(r.entity()).or_default() += 1;
            }
        }
        Ok(())
    }
}

impl Sink for Applier<'_> {
    async fn records(&mut self, _list: &List, records: Vec<Record>) -> Result<(), SyncError> {
        for r in with_domains(records) {
            let wanted = self
                .needed
                .get_mut(&r.entity())
                .is_some_and(|keys| keys.remove(&r.key()));
            if wanted {
                self.batch.push(Event::snapshot(r));
                if self.batch.len() >= REPAIR_BATCH {
                    self.flush().await?;
                }
            }
        }
        Ok(())
    }

    async fn advance(&mut self, _list: &List, _next: Option<&str>) -> Result<(), SyncError> {
        self.flush().await
    }
}

/// Lists every enabled entity (or `only`) from WorkOS and compares it with the tables,
/// then, with `repair` (`Some` bound on removals), repairs what may be repaired (module
/// header). `progress` is called with the number of records listed so far after each
/// page.
pub async fn verify(
    api: &Client,
    store: &Store,
    only: Option<Entity>,
    repair: Option<RemovalBound>,
    progress: impl FnMut(u64),
) -> Result<VerifyReport, SyncError> {
    // A few seconds of margin for the clocks of this host and the database.
    let began = Utc::now() - chrono::Duration::seconds(2);
    verify_since(api, store, only, repair, began, progress).await
}

/// [`verify`], leaving alone every row written at or after `began` (it may come from an
/// event that arrived meanwhile), by the database's clock.
pub async fn verify_since(
    api: &Client,
    store: &Store,
    only: Option<Entity>,
    repair: Option<RemovalBound>,
    began: DateTime<Utc>,
    progress: impl FnMut(u64),
) -> Result<VerifyReport, SyncError> {
    // Entities WorkOS serves no list of cannot be compared with one.
    let wanted = EntitySet::of(
        &store
            .entities()
            .only(only)
            .iter()
            .filter(|e| !e.declaration().events_only)
            .collect::<Vec<_>>(),
    );
    let mut spool = store.spool().await?;
    let listed = walk(
        api,
        wanted,
        &mut Listing {
            wanted,
            spool: &mut spool,
            progress,
            seen: 0,
        },
    )
    .await;
    if let Err(e) = listed {
        spool.finish().await;
        return Err(e);
    }
    // The tables are read after the listing: a row that changed meanwhile shows as
    // ahead or stale, never as missing or extra, unless it was created or removed
    // meanwhile (a second verify tells).
    let mut report = VerifyReport::default();
    let mut written: HashMap<Entity, HashMap<String, Option<DateTime<Utc>>>> = HashMap::new();
    for e in Entity::ALL.into_iter().filter(|e| wanted.contains(*e)) {
        let c = match spool.compare(e, e.declaration().own_version).await {
            Ok(c) => c,
            Err(err) => {
                spool.finish().await;
                return Err(err.into());
            }
        };
        let mut d = Drift {
            listed: c.listed,
            ..Drift::default()
        };
        let w = written.entry(e).or_default();
        for row in c.differing {
            match row.difference {
                Difference::Missing => d.missing.push(row.key),
                Difference::Stale => d.stale.push(row.key),
                Difference::Ahead => d.ahead.push(row.key),
                Difference::Unsynced => d.unsynced.push(row.key),
                Difference::Extra => {
                    w.insert(row.key.clone(), row.written_at);
                    d.extra.push(row.key);
                }
            }
        }
        if let Some(bound) = repair {
            let removable = d
                .extra
                .iter()
                .filter(|k| askable(e) && !written_since(Some(w), k, began))
                .count() as u64;
            if report.refused.is_none() && !bound.allows(removable, c.synced) {
                report.refused = Some(format!(
                    "repair would remove {removable} of {synced} {e} (bound: at most {} and at \
                     most {}%); nothing was repaired. If WorkOS's lists are right (check that \
                     the API key is this environment's), run `workos-sync verify --repair \
                     --max-removals {removable}`",
                    bound.max,
                    bound.percent,
                    synced = c.synced,
                ));
            }
        }
        report.entities.insert(e, d);
    }
    spool.finish().await;
    if repair.is_none() || report.refused.is_some() {
        return Ok(report);
    }
    // Missing and stale rows: WorkOS's objects, from a second walk of just the lists
    // that hold them (the first kept no objects, only keys and versions).
    let needed: HashMap<Entity, HashSet<String>> = report
        .entities
        .iter()
        .filter(|(_, d)| !d.missing.is_empty() || !d.stale.is_empty())
        .map(|(e, d)| (*e, d.missing.iter().chain(&d.stale).cloned().collect()))
        .collect();
    let mut applier = Applier {
        store,
        needed,
        batch: Vec::new(),
        applied: HashMap::new(),
    };
    if !applier.needed.is_empty() {
        let lists = EntitySet::of(&applier.needed.keys().copied().collect::<Vec<_>>());
        walk(api, lists, &mut applier).await?;
        applier.flush().await?;
    }
    for (e, d) in &mut report.entities {
        let w = written.remove(e).unwrap_or_default();
        let mut r = repair_extra(api, store, *e, d, &w, began).await?;
        r.applied = applier.applied.get(e).copied().unwrap_or(0);
        d.repair = Some(r);
    }
    Ok(report)
}

/// The entities whose extra rows can be asked about one by one (the others are left).
/// A Directory Sync membership has no id: it is asked about through its group and user
/// ([`check_directory_membership`]); a plain list's object by its id.
fn askable(e: Entity) -> bool {
    e.declaration().plain_list
        || matches!(
            e,
            Entity::Users
                | Entity::Organizations
                | Entity::OrganizationMemberships
                | Entity::Directories
                | Entity::DirectoryUsers
                | Entity::DirectoryGroups
                | Entity::DirectoryGroupMemberships
        )
}

/// True when `key` was written after the verify began (never removed by this run).
fn written_since(
    written: Option<&HashMap<String, Option<DateTime<Utc>>>>,
    key: &str,
    began: DateTime<Utc>,
) -> bool {
    written
        .and_then(|w| w.get(key).copied().flatten())
        .is_some_and(|w| w >= began)
}

/// [`verify`] as the leader of a periodic check: `None` when another process holds the
/// lock (it is released when the run ends, or dies with a crashed holder's connection).
pub async fn verify_as_leader(
    api: &Client,
    store: &Store,
    repair: Option<RemovalBound>,
) -> Result<Option<VerifyReport>, SyncError> {
    let Some(leader) = store
        .try_session_lock(workos_sync_store::locks::LOCK_VERIFY)
        .await?
    else {
        return Ok(None);
    };
    let report = verify(api, store, None, repair, |_| {}).await;
    leader.release().await;
    report.map(Some)
}

/// Snapshots per apply batch of a repair.
const REPAIR_BATCH: usize = 250;

/// The extra rows of one entity, each asked for by id (see the module header).
async fn repair_extra(
    api: &Client,
    store: &Store,
    e: Entity,
    d: &Drift,
    written: &HashMap<String, Option<DateTime<Utc>>>,
    began: DateTime<Utc>,
) -> Result<Repair, SyncError> {
    let mut r = Repair::default();
    for key in &d.extra {
        if !askable(e) || written_since(Some(written), key, began) {
            r.left.push(key.clone());
            continue;
        }
        match check_extra(api, store, e, key).await {
            Ok(true) => r.removed.push(key.clone()),
            Ok(false) => r.still_in_workos.push(key.clone()),
            // The database failing is the run's failure; WorkOS failing for one id
            // costs that id only.
            Err(SyncError::Store(err)) => return Err(err.into()),
            Err(err) => {
                tracing::warn!(entity = e.name(), key = %key, error = %err, "extra row not checked; left as it is");
                r.failed.push(Failed {
                    key: key.clone(),
                    reason: err.to_string(),
                });
            }
        }
    }
    Ok(r)
}

/// Asks WorkOS for the extra row `key` by id: `true` when WorkOS said it is gone (the
/// row was removed and tombstoned), `false` when WorkOS has it (it was re-applied).
async fn check_extra(api: &Client, store: &Store, e: Entity, key: &str) -> Result<bool, SyncError> {
    if e == Entity::DirectoryGroupMemberships {
        return check_directory_membership(api, store, key).await;
    }
    workos_sync_core::ids::check_object_id(key)
        .map_err(|err| SyncError::NotAnId(format!("{key:?}: {err}")))?;
    if e.declaration().plain_list || matches!(e, Entity::Directories | Entity::DirectoryGroups) {
        return check_by_id(api, store, e, key).await;
    }
    Ok(match e {
        Entity::DirectoryUsers => matches!(
            crate::sync_directory_user(api, store, key, None).await?,
            crate::SyncResult::Gone
        ),
        Entity::Users => matches!(
            crate::sync_user(api, store, key, None).await?,
            crate::SyncResult::Gone
        ),
        Entity::Organizations => matches!(
            crate::sync_organization(api, store, key, None).await?,
            crate::SyncResult::Gone
        ),
        _ => match api.get_membership(key).await {
            Ok(m) => reapply(store, Record::Membership(m)).await?,
            Err(ApiError::NotFound) => {
                remove_membership(store, key).await?;
                true
            }
            Err(other) => return Err(other.into()),
        },
    })
}

/// Re-applies what WorkOS still has (`false`: not gone).
async fn reapply(store: &Store, r: Record) -> Result<bool, SyncError> {
    store.apply(&Event::snapshot(r)).await?;
    Ok(false)
}

/// Removes (and tombstones) what WorkOS said is gone, through the apply step (`true`).
async fn remove(store: &Store, r: Record) -> Result<bool, SyncError> {
    store.apply(&crate::lazy::deletion_event(r)).await?;
    Ok(true)
}

/// Asks WorkOS for `key` of `e` at its declared path (`GET <list_path>/{id}`, decoded
/// as an event's `data` is): re-applied if WorkOS has it, removed (with what refers to
/// it, tombstoned) on WorkOS's `entity_not_found`, the deletion scoped by the stored
/// row's directory or organization (its locks).
async fn check_by_id(api: &Client, store: &Store, e: Entity, key: &str) -> Result<bool, SyncError> {
    match api.get_record(e, key).await {
        Ok(r) => reapply(store, r).await,
        Err(ApiError::NotFound) => {
            let row = store.row_json(e, key).await?.unwrap_or_default();
            let data = serde_json::json!({
                "id": key,
                "directory_id": row["directory_id"],
                "organization_id": row["organization_id"],
            });
            let gone = Record::key_only(e, false, &data.to_string(), Utc::now())
                .map_err(SyncError::NotAnId)?;
            remove(store, gone).await
        }
        Err(other) => Err(other.into()),
    }
}

/// An extra Directory Sync membership `group:user`, which has no id to ask for: the
/// group and the user are asked for by id (either gone removes it, by the parent rule,
/// with its other memberships); when both exist, the group's users are listed again,
/// now, in full, and the pair is removed only if that fresh listing lacks the user (an
/// add newer than the removal, from an event, still wins: the removal's version is this
/// moment). A listing that fails leaves the row.
async fn check_directory_membership(
    api: &Client,
    store: &Store,
    key: &str,
) -> Result<bool, SyncError> {
    let (group, user) = key
        .split_once(':')
        .ok_or_else(|| SyncError::NotAnId(format!("{key:?}: not group:user")))?;
    for id in [group, user] {
        workos_sync_core::ids::check_object_id(id)
            .map_err(|err| SyncError::NotAnId(format!("{key:?}: {err}")))?;
    }
    let directory = store
        .row_json(Entity::DirectoryGroupMemberships, key)
        .await?
        .and_then(|r| r["directory_id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    if check_by_id(api, store, Entity::DirectoryGroups, group).await? {
        return Ok(true);
    }
    if matches!(
        crate::sync_directory_user(api, store, user, None).await?,
        crate::SyncResult::Gone
    ) {
        return Ok(true);
    }
    let of = DirectoryUsersOf::Group {
        group,
        directory: &directory,
    };
    let mut after: Option<String> = None;
    loop {
        let page = api
            .list_directory_users(of, after.as_deref(), 100, None)
            .await?;
        if page.data.iter().any(|u| u.id == user) {
            let m = DirectoryGroupMembership::new(&directory, group, user, Utc::now());
            return reapply(store, Record::DirectoryMembership(m)).await;
        }
        match page.after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let m = DirectoryGroupMembership::new(&directory, group, user, Utc::now());
    remove(store, Record::DirectoryMembership(m)).await
}

/// Removes (and tombstones) the membership `id`, which WorkOS said is gone, through the
/// apply step: a deletion event built from the stored row (its user and organization
/// decide the locks).
async fn remove_membership(store: &Store, id: &str) -> Result<(), SyncError> {
    let Some(row) = store.get_membership(id).await? else {
        return Ok(());
    };
    let m = Membership {
        status: row.status,
        created_at: row.workos_created_at,
        ..Membership::stub(
            &row.id,
            &row.user_id,
            &row.organization_id,
            row.workos_updated_at,
        )
    };
    store
        .apply(&crate::lazy::deletion_event(Record::Membership(m)))
        .await?;
    Ok(())
}
