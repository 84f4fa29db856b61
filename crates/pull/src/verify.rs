//! Drift detection: the mirror compared with WorkOS's own lists. Every enabled entity
//! is listed in full (users; organizations, with their domains from the organization
//! objects and, under each, its memberships of every status and its roles; environment
//! roles; permissions), and each key's `updated_at` is compared with the table's:
//! **missing** (in WorkOS, not here, or here only as a soft-deleted row), **extra** (a
//! live row here that WorkOS did not list), **stale** (here with an older version) and
//! **ahead** (here newer than WorkOS: reported only).
//!
//! Read-only: nothing is written. Failure model: any failed WorkOS call (after the
//! client's own retries of 429 and 5xx, within the shared rate budget) ends the run with
//! its [`SyncError`], so a partial listing is never reported as drift.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use workos_sync_core::{Entity, EntitySet, Record};
use workos_sync_store::Store;
use workos_sync_workos_api::{Client, MembershipsOf};

use crate::SyncError;

/// Page size asked of the list endpoints (their maximum).
const PAGE: u32 = 100;

/// One entity's drift, by kind, as sorted keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// Keys WorkOS listed.
    pub listed: u64,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub stale: Vec<String>,
    pub ahead: Vec<String>,
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
}

impl VerifyReport {
    /// True when some entity has drift of any kind.
    pub fn has_drift(&self) -> bool {
        self.entities.values().any(|d| !d.is_empty())
    }
}

/// Compares one entity: `remote` keys and versions as WorkOS listed them, `local` as the
/// table holds them (`None` version: an adopted row not reached yet; `true`:
/// soft-deleted).
pub fn compare(
    remote: &HashMap<String, DateTime<Utc>>,
    local: &HashMap<String, (Option<DateTime<Utc>>, bool)>,
) -> Drift {
    let mut d = Drift {
        listed: remote.len() as u64,
        ..Drift::default()
    };
    for (key, theirs) in remote {
        match local.get(key) {
            None | Some((_, true)) => d.missing.push(key.clone()),
            Some((None, false)) => d.stale.push(key.clone()),
            Some((Some(ours), false)) if ours < theirs => d.stale.push(key.clone()),
            Some((Some(ours), false)) if ours > theirs => d.ahead.push(key.clone()),
            Some(_) => {}
        }
    }
    for (key, (_, deleted)) in local {
        if !deleted && !remote.contains_key(key) {
            d.extra.push(key.clone());
        }
    }
    for v in [&mut d.missing, &mut d.extra, &mut d.stale, &mut d.ahead] {
        v.sort();
    }
    d
}

/// WorkOS's keys and versions of every wanted entity.
struct Listing<'a, P> {
    api: &'a Client,
    wanted: EntitySet,
    remote: HashMap<Entity, HashMap<String, DateTime<Utc>>>,
    progress: P,
    seen: u64,
}

impl<P: FnMut(u64)> Listing<'_, P> {
    fn add(&mut self, r: &Record) {
        if self.wanted.contains(r.entity()) {
            self.remote
                .entry(r.entity())
                .or_default()
                .insert(r.key(), r.updated_at());
            self.seen += 1;
        }
    }

    fn page_done(&mut self) {
        (self.progress)(self.seen);
    }

    async fn users(&mut self) -> Result<(), SyncError> {
        let mut after: Option<String> = None;
        loop {
            let page = self.api.list_users(after.as_deref(), PAGE).await?;
            for u in page.data {
                self.add(&Record::User(u));
            }
            self.page_done();
            match page.after {
                Some(a) => after = Some(a),
                None => return Ok(()),
            }
        }
    }

    async fn organizations(&mut self) -> Result<(), SyncError> {
        let mut after: Option<String> = None;
        loop {
            let page = self.api.list_organizations(after.as_deref(), PAGE).await?;
            for o in page.data {
                for d in &o.domains {
                    let mut r = Record::Domain(d.clone());
                    // A domain inside an organization object may carry no times of its
                    // own: it is as new as the organization (what apply stores too).
                    r.fill_version(o.updated_at);
                    self.add(&r);
                }
                let id = o.id.clone();
                self.add(&Record::Organization(o));
                if self.wanted.contains(Entity::OrganizationMemberships) {
                    self.memberships(&id).await?;
                }
                if self.wanted.contains(Entity::Roles) {
                    for r in self.api.list_organization_roles(&id).await? {
                        self.add(&Record::Role(r));
                    }
                }
            }
            self.page_done();
            match page.after {
                Some(a) => after = Some(a),
                None => return Ok(()),
            }
        }
    }

    async fn memberships(&mut self, org: &str) -> Result<(), SyncError> {
        let mut after: Option<String> = None;
        loop {
            let page = self
                .api
                .list_memberships(
                    MembershipsOf::Organization(org),
                    after.as_deref(),
                    PAGE,
                    None,
                )
                .await?;
            for m in page.data {
                self.add(&Record::Membership(m));
            }
            match page.after {
                Some(a) => after = Some(a),
                None => return Ok(()),
            }
        }
    }

    async fn permissions(&mut self) -> Result<(), SyncError> {
        let mut after: Option<String> = None;
        loop {
            let page = self.api.list_permissions(after.as_deref(), PAGE).await?;
            for p in page.data {
                self.add(&Record::Permission(p));
            }
            self.page_done();
            match page.after {
                Some(a) => after = Some(a),
                None => return Ok(()),
            }
        }
    }
}

/// Lists every enabled entity (or `only`) from WorkOS and compares it with the tables.
/// `progress` is called with the number of records listed so far after each page.
pub async fn verify(
    api: &Client,
    store: &Store,
    only: Option<Entity>,
    progress: impl FnMut(u64),
) -> Result<VerifyReport, SyncError> {
    let enabled = store.entities();
    let wanted = match only {
        Some(e) if enabled.contains(e) => EntitySet::of(&[e]),
        Some(_) => EntitySet::NONE,
        None => enabled,
    };
    let mut l = Listing {
        api,
        wanted,
        remote: HashMap::new(),
        progress,
        seen: 0,
    };
    if wanted.contains(Entity::Users) {
        l.users().await?;
    }
    let under_orgs = [
        Entity::Organizations,
        Entity::OrganizationDomains,
        Entity::OrganizationMemberships,
        Entity::Roles,
    ];
    if under_orgs.iter().any(|e| wanted.contains(*e)) {
        l.organizations().await?;
    }
    if wanted.contains(Entity::Roles) {
        for r in api.list_roles().await? {
            l.add(&Record::Role(r));
        }
    }
    if wanted.contains(Entity::Permissions) {
        l.permissions().await?;
    }
    // The tables are read after the listing: a row that changed meanwhile shows as
    // ahead or stale, never as missing or extra, unless it was created or removed
    // meanwhile (a second verify tells).
    let mut report = VerifyReport::default();
    for e in Entity::ALL.into_iter().filter(|e| wanted.contains(*e)) {
        let local: HashMap<String, (Option<DateTime<Utc>>, bool)> = store
            .versions(e)
            .await?
            .into_iter()
            .map(|v| (v.key, (v.updated_at, v.deleted)))
            .collect();
        let remote = l.remote.remove(&e).unwrap_or_default();
        report.entities.insert(e, compare(&remote, &local));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap_or_default()
    }

    #[test]
    fn each_kind_of_drift() {
        let remote: HashMap<String, DateTime<Utc>> = [
            ("same", 5),
            ("missing", 5),
            ("stale", 5),
            ("ahead", 5),
            ("unversioned", 5),
            ("soft", 5),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), t(v)))
        .collect();
        let local: HashMap<String, (Option<DateTime<Utc>>, bool)> = [
            ("same", (Some(t(5)), false)),
            ("stale", (Some(t(4)), false)),
            ("ahead", (Some(t(6)), false)),
            ("unversioned", (None, false)),
            ("soft", (Some(t(5)), true)),
            ("extra", (Some(t(1)), false)),
            ("gone_soft", (Some(t(1)), true)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let d = compare(&remote, &local);
        assert_eq!(d.listed, 6);
        assert_eq!(d.missing, ["missing", "soft"]);
        assert_eq!(d.extra, ["extra"]);
        assert_eq!(d.stale, ["stale", "unversioned"]);
        assert_eq!(d.ahead, ["ahead"]);
        assert!(!d.is_empty());
        assert!(compare(&HashMap::new(), &HashMap::new()).is_empty());
    }
}
