//! The one walk of WorkOS's lists, shared by backfill, verify and lazy sync: which lists
//! hold each entity ([`List`]), the order they are walked in (users; organizations page
//! by page, and under each organization its memberships and its roles; environment
//! roles; permissions), and the "next cursor or stop" rule of every paged list
//! ([`Cursors`]). What is done with each page is the caller's ([`Sink`]).
//!
//! Failure model: a failed page (after the client's own retries) or a repeated cursor
//! ends the walk with its [`SyncError`]; what the sink did with earlier pages stays.

use std::time::Instant;

use workos_sync_core::{Entity, EntitySet, Record};
use workos_sync_workos_api::{Client, MembershipsOf};

use crate::{SyncError, pages::Cursors};

/// Records per page asked of WorkOS (its maximum).
pub(crate) const PAGE: u32 = 100;

/// One WorkOS list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List<'a> {
    Users,
    /// Organizations, with the domains their objects carry.
    Organizations,
    /// One organization's memberships, every status.
    MembershipsOfOrganization(&'a str),
    /// One user's memberships, every status.
    MembershipsOfUser(&'a str),
    /// One organization's own roles (not paged).
    OrganizationRoles(&'a str),
    /// The environment roles (not paged).
    Roles,
    Permissions,
}

impl List<'_> {
    /// The entity whose records the list holds (organizations: and their domains).
    pub fn entity(self) -> Entity {
        match self {
            List::Users => Entity::Users,
            List::Organizations => Entity::Organizations,
            List::MembershipsOfOrganization(_) | List::MembershipsOfUser(_) => {
                Entity::OrganizationMemberships
            }
            List::OrganizationRoles(_) | List::Roles => Entity::Roles,
            List::Permissions => Entity::Permissions,
        }
    }

    /// A top-level list, walked whole: a run can resume it from a saved cursor.
    pub fn resumable(self) -> bool {
        matches!(self, List::Users | List::Organizations | List::Permissions)
    }

    /// One page from `after`: its records and the next page's cursor.
    async fn page(
        self,
        api: &Client,
        after: Option<&str>,
        deadline: Option<Instant>,
    ) -> Result<(Vec<Record>, Option<String>), SyncError> {
        Ok(match self {
            List::Users => {
                let p = api.list_users(after, PAGE).await?;
                (records(p.data, Record::User), p.after)
            }
            List::Organizations => {
                let p = api.list_organizations(after, PAGE).await?;
                (records(p.data, Record::Organization), p.after)
            }
            List::MembershipsOfOrganization(org) => {
                let of = MembershipsOf::Organization(org);
                let p = api.list_memberships(of, after, PAGE, deadline).await?;
                (records(p.data, Record::Membership), p.after)
            }
            List::MembershipsOfUser(user) => {
                let of = MembershipsOf::User(user);
                let p = api.list_memberships(of, after, PAGE, deadline).await?;
                (records(p.data, Record::Membership), p.after)
            }
            List::OrganizationRoles(org) => {
                let roles = api.list_organization_roles(org).await?;
                (records(roles, Record::Role), None)
            }
            List::Roles => (records(api.list_roles().await?, Record::Role), None),
            List::Permissions => {
                let p = api.list_permissions(after, PAGE).await?;
                (records(p.data, Record::Permission), p.after)
            }
        })
    }
}

/// What a walk does with what it lists.
pub(crate) trait Sink {
    /// Where `list` starts (backfill: a resumable list's saved cursor).
    async fn start(&mut self, _list: List<'_>) -> Result<Option<String>, SyncError> {
        Ok(None)
    }

    /// One page of `list`.
    async fn records(&mut self, list: List<'_>, records: Vec<Record>) -> Result<(), SyncError>;

    /// After a page of `list` (and the lists under it): `next` is where the next page
    /// starts, `None` at the end.
    async fn advance(&mut self, _list: List<'_>, _next: Option<&str>) -> Result<(), SyncError> {
        Ok(())
    }
}

/// Walks every list holding an entity of `wanted`, in the order of the module header.
pub(crate) async fn walk(
    api: &Client,
    wanted: EntitySet,
    sink: &mut impl Sink,
) -> Result<(), SyncError> {
    if wanted.contains(Entity::Users) {
        walk_list(api, List::Users, wanted, None, sink).await?;
    }
    let under_orgs = [
        Entity::Organizations,
        Entity::OrganizationDomains,
        Entity::OrganizationMemberships,
        Entity::Roles,
    ];
    if under_orgs.iter().any(|e| wanted.contains(*e)) {
        walk_list(api, List::Organizations, wanted, None, sink).await?;
    }
    if wanted.contains(Entity::Roles) {
        walk_list(api, List::Roles, wanted, None, sink).await?;
    }
    if wanted.contains(Entity::Permissions) {
        walk_list(api, List::Permissions, wanted, None, sink).await?;
    }
    Ok(())
}

/// Walks one list page by page until no cursor comes back (a page of organizations is
/// followed by the wanted lists of each of its organizations); `deadline` bounds each
/// page's wait where the client supports one.
pub(crate) async fn walk_list(
    api: &Client,
    list: List<'_>,
    wanted: EntitySet,
    deadline: Option<Instant>,
    sink: &mut impl Sink,
) -> Result<(), SyncError> {
    let mut after = sink.start(list).await?;
    let mut cursors = Cursors::new(list.entity().name());
    loop {
        let (records, next) = list.page(api, after.as_deref(), deadline).await?;
        let orgs: Vec<String> = match list {
            List::Organizations => records.iter().map(Record::key).collect(),
            _ => Vec::new(),
        };
        sink.records(list, records).await?;
        for org in &orgs {
            if wanted.contains(Entity::OrganizationMemberships) {
                let under = List::MembershipsOfOrganization(org);
                Box::pin(walk_list(api, under, wanted, deadline, sink)).await?;
            }
            if wanted.contains(Entity::Roles) {
                let under = List::OrganizationRoles(org);
                Box::pin(walk_list(api, under, wanted, deadline, sink)).await?;
            }
        }
        let next = cursors.next(next)?;
        sink.advance(list, next.as_deref()).await?;
        match next {
            Some(a) => after = Some(a),
            None => return Ok(()),
        }
    }
}

/// A page's objects as records.
fn records<T>(v: Vec<T>, f: fn(T) -> Record) -> Vec<Record> {
    v.into_iter().map(f).collect()
}
