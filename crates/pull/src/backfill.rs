//! Backfill: page through every enabled entity in WorkOS and apply what is found as
//! snapshots (the same locked, version-guarded step as webhooks), in the order of the
//! one walk ([`crate::walk`]): users, then the organizations with, per organization, its
//! domains (from the organization object), its memberships of every status and its own
//! roles, then the environment roles and the permissions.
//!
//! Resumable: each paged list has a cursor of its own (`backfill` for users,
//! `backfill:organizations`, `backfill:permissions`), saved after a page and everything
//! under it (an organization's memberships and roles) was applied, so a killed run
//! resumes at the page it was on and re-applies at most that page (snapshots are
//! idempotent). Failures are [`SyncError`]s; a cursor never moves past a page that was
//! not applied, and a finished list's cursor is cleared so the next run starts over.

use std::collections::BTreeMap;

use serde::Serialize;
use workos_sync_core::{Entity, EntitySet, Event, Record};
use workos_sync_store::{Outcome, Store};
use workos_sync_workos_api::Client;

use crate::{
    BACKFILL_CURSOR, SyncError,
    walk::{List, Sink, walk},
};

/// What to backfill.
#[derive(Debug, Clone, Copy)]
pub struct BackfillOptions {
    /// Start every list from the beginning (clears the saved cursors).
    pub restart: bool,
    /// Write nothing (cursors included); report what would change.
    pub dry_run: bool,
    /// Only these entities (default: every enabled one).
    pub only: Option<Entity>,
}

/// Counts of one entity in a backfill run.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub fetched: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Deleted in WorkOS before (a tombstone here): not brought back.
    pub tombstoned: u64,
}

/// Counts of a backfill run, per entity.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BackfillReport {
    /// WorkOS list pages read.
    pub pages: u64,
    pub entities: BTreeMap<Entity, Counts>,
}

impl BackfillReport {
    /// The counts of `e` (zero when none was seen).
    pub fn of(&self, e: Entity) -> Counts {
        self.entities.get(&e).cloned().unwrap_or_default()
    }

    /// Every entity's fetched records.
    pub fn fetched(&self) -> u64 {
        self.entities.values().map(|c| c.fetched).sum()
    }

    fn count(&mut self, events: &[Event], outcomes: &[Outcome]) {
        for (ev, o) in events.iter().zip(outcomes) {
            let Some(r) = ev.record() else { continue };
            let c = self.entities.entry(r.entity()).or_default();
            c.fetched += 1;
            match o {
                Outcome::Created => c.created += 1,
                Outcome::Updated | Outcome::Refreshed => c.updated += 1,
                Outcome::Tombstoned | Outcome::Superseded => c.tombstoned += 1,
                _ => c.unchanged += 1,
            }
        }
    }
}

/// The cursor name of a paged list.
pub fn cursor_name(e: Entity) -> String {
    match e {
        Entity::Users => BACKFILL_CURSOR.to_owned(),
        e => format!("{BACKFILL_CURSOR}:{}", e.name()),
    }
}

struct Run<'a, P> {
    store: &'a Store,
    opts: BackfillOptions,
    wanted: EntitySet,
    report: BackfillReport,
    progress: P,
}

impl<P: FnMut(&BackfillReport)> Run<'_, P> {
    /// Applies (or previews) a batch of snapshots and counts them. Records of entities
    /// not wanted are left out; an organization's domains go with it (applied by the
    /// store from the organization object), or alone when only domains are wanted.
    async fn apply(&mut self, records: Vec<Record>) -> Result<(), SyncError> {
        let (orgs, domains) = (
            self.wanted.contains(Entity::Organizations),
            self.wanted.contains(Entity::OrganizationDomains),
        );
        let mut embedded = 0u64;
        let mut events = Vec::with_capacity(records.len());
        for r in records {
            match r {
                Record::Organization(mut o) if orgs => {
                    if !domains {
                        o.domains.clear();
                    }
                    embedded += o.domains.len() as u64;
                    events.push(Event::snapshot(Record::Organization(o)));
                }
                Record::Organization(o) if domains => events.extend(
                    o.domains
                        .into_iter()
                        .map(|d| Event::snapshot(Record::Domain(d))),
                ),
                r if self.wanted.contains(r.entity()) => events.push(Event::snapshot(r)),
                _ => {}
            }
        }
        if events.is_empty() {
            return Ok(());
        }
        let outcomes = if self.opts.dry_run {
            self.store.preview(&events).await?
        } else {
            self.store.apply_batch(&events).await?
        };
        self.report.count(&events, &outcomes);
        if embedded > 0 {
            let c = self
                .report
                .entities
                .entry(Entity::OrganizationDomains)
                .or_default();
            c.fetched += embedded;
        }
        (self.progress)(&self.report);
        Ok(())
    }
}

impl<P: FnMut(&BackfillReport)> Sink for Run<'_, P> {
    async fn start(&mut self, list: &List) -> Result<Option<String>, SyncError> {
        if !list.resumable() || self.opts.dry_run {
            return Ok(None);
        }
        let name = cursor_name(list.entity());
        if self.opts.restart {
            self.store.set_cursor(&name, None).await?;
            return Ok(None);
        }
        Ok(self.store.cursor(&name).await?)
    }

    async fn records(&mut self, _list: &List, records: Vec<Record>) -> Result<(), SyncError> {
        self.apply(records).await
    }

    /// After a page and everything under it: save where the next one starts, or clear
    /// the cursor at the end.
    async fn advance(&mut self, list: &List, next: Option<&str>) -> Result<(), SyncError> {
        self.report.pages += 1;
        if list.resumable() && !self.opts.dry_run {
            self.store
                .set_cursor(&cursor_name(list.entity()), next)
                .await?;
        }
        Ok(())
    }
}

/// Pages through every enabled entity (or `opts.only`) and applies it. Resumes each list
/// from its saved cursor unless `opts.restart`; with `opts.dry_run` nothing is written
/// and the report says what would change.
pub async fn backfill(
    api: &Client,
    store: &Store,
    opts: BackfillOptions,
    progress: impl FnMut(&BackfillReport),
) -> Result<BackfillReport, SyncError> {
    let wanted = store.entities().only(opts.only);
    let mut run = Run {
        store,
        opts,
        wanted,
        report: BackfillReport::default(),
        progress,
    };
    walk(api, wanted, &mut run).await?;
    Ok(run.report)
}
