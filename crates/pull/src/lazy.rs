//! Lazy sync: fetch one user (with its memberships) or one organization (with its
//! domains) from WorkOS now and apply them as snapshots; WorkOS's own `entity_not_found`
//! for that id removes and tombstones it locally (with what depends on it). Any other
//! answer leaves the rows untouched ([`SyncError::Api`]).
//!
//! A user's memberships are listed for every status and applied under the same guards;
//! a membership missing from that list is not removed (a list is no proof that an
//! object is gone: only its own delete event, or its user's or organization's, is).

use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use workos_sync_core::{
    DirectoryUser, Entity, EntitySet, Event, EventKind, Organization, Record, User, event_type,
};
use workos_sync_store::{DomainRow, MembershipRow, OrganizationRow, Outcome, Store, UserRow};
use workos_sync_workos_api::{ApiError, Client};

use crate::{
    SyncError,
    walk::{List, Sink, walk_list},
};

/// A user row with its memberships, as `POST /v1/users/{id}/sync` answers.
#[derive(Debug, Serialize)]
pub struct UserWithMemberships {
    #[serde(flatten)]
    pub user: UserRow,
    pub memberships: Vec<MembershipRow>,
}

/// An organization row with its domains, as `POST /v1/organizations/{id}/sync` answers.
#[derive(Debug, Serialize)]
pub struct OrganizationWithDomains {
    #[serde(flatten)]
    pub organization: OrganizationRow,
    pub domains: Vec<DomainRow>,
}

/// What lazy sync found.
#[derive(Debug)]
pub enum SyncResult<T> {
    /// The record as now stored.
    Synced(Box<T>),
    /// WorkOS has no such record (or it was deleted): no local row either.
    Gone,
}

/// A deletion learnt from WorkOS's `entity_not_found` (lazy sync, repair), as an event
/// for the store. Its id is unique (`sync-deleted:<entity>:<key>:<uuid>`): a fixed id
/// would make the next such deletion of the same key a duplicate once an operator has
/// removed the tombstone (`workos-sync tombstones remove`), and the row would stay.
pub(crate) fn deletion_event(record: Record) -> Event {
    // The entity's own deletion type, from its declaration.
    let ty = record
        .entity()
        .declaration()
        .event_types
        .iter()
        .find(|t| event_type::DELETIONS.contains(t))
        .copied()
        .unwrap_or(event_type::USER_DELETED);
    Event {
        id: format!(
            "sync-deleted:{}:{}:{}",
            record.entity().name(),
            record.key(),
            uuid::Uuid::new_v4().simple()
        ),
        event_type: ty.into(),
        created_at: Utc::now(),
        kind: EventKind::Delete(record),
    }
}

/// The time left of `deadline`, if any.
fn left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// Fetches one user (and, when memberships are enabled, its memberships of every status)
/// from WorkOS and applies them. With a `budget`, the WorkOS calls give up with
/// [`ApiError::OutOfTime`] rather than wait past it (the store step is bounded by its
/// own apply timeout). Only WorkOS's own `entity_not_found` removes the row.
pub async fn sync_user(
    api: &Client,
    store: &Store,
    id: &str,
    budget: Option<Duration>,
) -> Result<SyncResult<UserWithMemberships>, SyncError> {
    let deadline = budget.map(|b| Instant::now() + b);
    let fetched = match left(deadline) {
        Some(b) => api.get_user_within(id, b).await,
        None => api.get_user(id).await,
    };
    let user = match fetched {
        Ok(user) => user,
        Err(ApiError::NotFound) => {
            let now = Utc::now();
            store
                .apply(&deletion_event(Record::User(User::stub(id, now))))
                .await?;
            return Ok(SyncResult::Gone);
        }
        Err(e) => return Err(e.into()),
    };
    let mut events = vec![Event::user_snapshot(user)];
    if store.entities().contains(Entity::OrganizationMemberships) {
        let list = List::MembershipsOfUser(id.to_owned());
        let wanted = EntitySet::NONE;
        walk_list(api, list, wanted, deadline, &mut Snapshots(&mut events)).await?;
    }
    let outcomes = store.apply_batch(&events).await?;
    if outcomes.first() == Some(&Outcome::Tombstoned) {
        return Ok(SyncResult::Gone);
    }
    let Some(user) = store.get_user(id).await? else {
        return Ok(SyncResult::Gone);
    };
    let memberships = store.memberships_of_user(id).await?;
    Ok(SyncResult::Synced(Box::new(UserWithMemberships {
        user,
        memberships,
    })))
}

/// Fetches one organization (with the domains its object lists) from WorkOS and applies
/// it; `entity_not_found` removes it with its domains, memberships and roles. Budget and
/// 404 rules as [`sync_user`].
pub async fn sync_organization(
    api: &Client,
    store: &Store,
    id: &str,
    budget: Option<Duration>,
) -> Result<SyncResult<OrganizationWithDomains>, SyncError> {
    let fetched = match budget {
        Some(b) => api.get_organization_within(id, b).await,
        None => api.get_organization(id).await,
    };
    match fetched {
        Ok(org) => {
            let outcome = store
                .apply(&Event::snapshot(Record::Organization(org)))
                .await?;
            if outcome == Outcome::Tombstoned {
                return Ok(SyncResult::Gone);
            }
            let Some(organization) = store.get_organization(id).await? else {
                return Ok(SyncResult::Gone);
            };
            let domains = store.domains_of(id).await?;
            Ok(SyncResult::Synced(Box::new(OrganizationWithDomains {
                organization,
                domains,
            })))
        }
        Err(ApiError::NotFound) => {
            let now = Utc::now();
            store
                .apply(&deletion_event(Record::Organization(Organization::stub(
                    id, now,
                ))))
                .await?;
            Ok(SyncResult::Gone)
        }
        Err(e) => Err(e.into()),
    }
}

/// A directory user row with the groups it is a member of, as
/// `POST /v1/directory_users/{id}/sync` answers (every column of each row).
#[derive(Debug, Clone, Serialize)]
pub struct DirectoryUserWithGroups {
    pub directory_user: serde_json::Value,
    pub groups: Vec<serde_json::Value>,
}

/// Fetches one directory user from WorkOS and applies it; `entity_not_found` removes it
/// with its memberships. The call waits on the user's directory's budget when the row
/// names it. Budget and 404 rules as [`sync_user`].
pub async fn sync_directory_user(
    api: &Client,
    store: &Store,
    id: &str,
    budget: Option<Duration>,
) -> Result<SyncResult<DirectoryUserWithGroups>, SyncError> {
    let deadline = budget.map(|b| Instant::now() + b);
    let stored = store.row_json(Entity::DirectoryUsers, id).await?;
    let directory = stored
        .as_ref()
        .and_then(|r| r["directory_id"].as_str())
        .map(str::to_owned);
    match api
        .get_directory_user(id, directory.as_deref(), deadline)
        .await
    {
        Ok(user) => {
            let outcome = store
                .apply(&Event::snapshot(Record::DirectoryUser(user)))
                .await?;
            if outcome == Outcome::Tombstoned {
                return Ok(SyncResult::Gone);
            }
            let Some(directory_user) = store.row_json(Entity::DirectoryUsers, id).await? else {
                return Ok(SyncResult::Gone);
            };
            let groups = store.directory_groups_of_user(id).await?;
            Ok(SyncResult::Synced(Box::new(DirectoryUserWithGroups {
                directory_user,
                groups,
            })))
        }
        Err(ApiError::NotFound) => {
            let stub =
                DirectoryUser::stub(id, directory.as_deref().unwrap_or_default(), Utc::now());
            store
                .apply(&deletion_event(Record::DirectoryUser(stub)))
                .await?;
            Ok(SyncResult::Gone)
        }
        Err(e) => Err(e.into()),
    }
}

/// A walk's records as snapshot events.
struct Snapshots<'a>(&'a mut Vec<Event>);

impl Sink for Snapshots<'_> {
    async fn records(&mut self, _list: &List, records: Vec<Record>) -> Result<(), SyncError> {
        self.0.extend(records.into_iter().map(Event::snapshot));
        Ok(())
    }
}
