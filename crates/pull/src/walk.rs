//! The one walk of WorkOS's lists, shared by backfill, verify and lazy sync: which lists
//! hold each entity ([`List`]), the order they are walked in (users; organizations page
//! by page, and under each organization its memberships and its roles; environment
//! roles; permissions; directories page by page, and under each directory its groups
//! (under each group its users, as memberships) and its users; then each plain list:
//! invitations, connections), and the "next cursor or
//! stop" rule of every paged list ([`Cursors`]). What is done with each page is the
//! caller's ([`Sink`]). The lists under a page of directories are walked several
//! directories at once (WorkOS paces Directory Users per directory), their pages handed
//! to the sink one at a time.
//!
//! Failure model: a failed page (after the client's own retries) or a repeated cursor
//! ends the walk with its [`SyncError`]; what the sink did with earlier pages stays.

use std::time::Instant;

use chrono::Utc;
use workos_sync_core::{DirectoryGroupMembership, Entity, EntitySet, Record};
use workos_sync_workos_api::{Client, DirectoryUsersOf, MembershipsOf};

use crate::{SyncError, pages::Cursors};

/// Records per page asked of WorkOS (its maximum).
pub(crate) const PAGE: u32 = 100;
/// Directories per page: a resumed backfill walks the page it stopped in again, each
/// directory of it with its users and groups, so its pages are short.
const DIRECTORY_PAGE: u32 = 10;
/// Directories of a page whose lists are walked at once: WorkOS paces Directory Users
/// per directory, so one directory at a time would leave most of the read budget unused.
const DIRECTORIES_AT_ONCE: usize = 8;

/// One WorkOS list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum List {
    Users,
    /// Organizations, with the domains their objects carry.
    Organizations,
    /// One organization's memberships, every status.
    MembershipsOfOrganization(String),
    /// One user's memberships, every status.
    MembershipsOfUser(String),
    /// One organization's own roles (not paged).
    OrganizationRoles(String),
    /// The environment roles (not paged).
    Roles,
    Permissions,
    Directories,
    /// One directory's groups.
    DirectoryGroups(String),
    /// One directory's users (paced per directory by the client).
    DirectoryUsers(String),
    /// One group's users, as the group's memberships.
    GroupUsers {
        group: String,
        directory: String,
    },
    /// A plain list (`Declaration::plain_list`): invitations, connections.
    Plain(Entity),
}

impl List {
    /// The entity whose records the list holds (organizations: and their domains).
    pub fn entity(&self) -> Entity {
        match self {
            List::Users => Entity::Users,
            List::Organizations => Entity::Organizations,
            List::MembershipsOfOrganization(_) | List::MembershipsOfUser(_) => {
                Entity::OrganizationMemberships
            }
            List::OrganizationRoles(_) | List::Roles => Entity::Roles,
            List::Permissions => Entity::Permissions,
            List::Directories => Entity::Directories,
            List::DirectoryGroups(_) => Entity::DirectoryGroups,
            List::DirectoryUsers(_) => Entity::DirectoryUsers,
            List::GroupUsers { .. } => Entity::DirectoryGroupMemberships,
            List::Plain(e) => *e,
        }
    }

    /// A top-level list, walked whole: a run can resume it from a saved cursor.
    pub fn resumable(&self) -> bool {
        matches!(
            self,
            List::Users
                | List::Organizations
                | List::Permissions
                | List::Directories
                | List::Plain(_)
        )
    }

    /// The lists under one page of this one, as far as `wanted` asks for them.
    fn children(&self, records: &[Record], wanted: EntitySet) -> Vec<List> {
        let mut out = Vec::new();
        for r in records {
            match (self, r) {
                (List::Organizations, Record::Organization(o)) => {
                    if wanted.contains(Entity::OrganizationMemberships) {
                        out.push(List::MembershipsOfOrganization(o.id.clone()));
                    }
                    if wanted.contains(Entity::Roles) {
                        out.push(List::OrganizationRoles(o.id.clone()));
                    }
                }
                (List::Directories, Record::Directory(d)) => {
                    if wanted.contains(Entity::DirectoryGroups)
                        || wanted.contains(Entity::DirectoryGroupMemberships)
                    {
                        out.push(List::DirectoryGroups(d.id.clone()));
                    }
                    if wanted.contains(Entity::DirectoryUsers) {
                        out.push(List::DirectoryUsers(d.id.clone()));
                    }
                }
                (List::DirectoryGroups(directory), Record::DirectoryGroup(g))
                    if wanted.contains(Entity::DirectoryGroupMemberships) =>
                {
                    out.push(List::GroupUsers {
                        group: g.id.clone(),
                        directory: directory.clone(),
                    });
                }
                _ => {}
            }
        }
        out
    }

    /// One page from `after`: its records and the next page's cursor.
    async fn page(
        &self,
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
            List::Directories => {
                let p = api.list_directories(after, DIRECTORY_PAGE).await?;
                (records(p.data, Record::Directory), p.after)
            }
            List::DirectoryGroups(directory) => {
                let p = api.list_directory_groups(directory, after, PAGE).await?;
                (records(p.data, Record::DirectoryGroup), p.after)
            }
            List::DirectoryUsers(directory) => {
                let of = DirectoryUsersOf::Directory(directory);
                let p = api.list_directory_users(of, after, PAGE, deadline).await?;
                (records(p.data, Record::DirectoryUser), p.after)
            }
            List::GroupUsers { group, directory } => {
                // A membership's version is when WorkOS said so: no later than the
                // moment the page was asked for (a removal after it is newer).
                let asked = Utc::now();
                let of = DirectoryUsersOf::Group { group, directory };
                let p = api.list_directory_users(of, after, PAGE, deadline).await?;
                let members = p
                    .data
                    .into_iter()
                    .map(|u| {
                        Record::DirectoryMembership(DirectoryGroupMembership::new(
                            directory, group, &u.id, asked,
                        ))
                    })
                    .collect();
                (members, p.after)
            }
            List::Plain(e) => {
                let p = api.list_records(*e, after, PAGE).await?;
                (p.data, p.after)
            }
        })
    }
}

/// What a walk does with what it lists.
pub(crate) trait Sink {
    /// Where `list` starts (backfill: a resumable list's saved cursor).
    async fn start(&mut self, _list: &List) -> Result<Option<String>, SyncError> {
        Ok(None)
    }

    /// One page of `list`.
    async fn records(&mut self, list: &List, records: Vec<Record>) -> Result<(), SyncError>;

    /// After a page of `list` (and the lists under it): `next` is where the next page
    /// starts, `None` at the end.
    async fn advance(&mut self, _list: &List, _next: Option<&str>) -> Result<(), SyncError> {
        Ok(())
    }
}

/// Walks every list holding an entity of `wanted`, in the order of the module header.
pub(crate) async fn walk(
    api: &Client,
    wanted: EntitySet,
    sink: &mut impl Sink,
) -> Result<(), SyncError> {
    let any = |es: &[Entity]| es.iter().any(|e| wanted.contains(*e));
    let mut lists = Vec::new();
    if wanted.contains(Entity::Users) {
        lists.push(List::Users);
    }
    if any(&[
        Entity::Organizations,
        Entity::OrganizationDomains,
        Entity::OrganizationMemberships,
        Entity::Roles,
    ]) {
        lists.push(List::Organizations);
    }
    if wanted.contains(Entity::Roles) {
        lists.push(List::Roles);
    }
    if wanted.contains(Entity::Permissions) {
        lists.push(List::Permissions);
    }
    if any(&[
        Entity::Directories,
        Entity::DirectoryUsers,
        Entity::DirectoryGroups,
        Entity::DirectoryGroupMemberships,
    ]) {
        lists.push(List::Directories);
    }
    lists.extend(
        wanted
            .iter()
            .filter(|e| e.declaration().plain_list)
            .map(List::Plain),
    );
    for list in lists {
        walk_list(api, list, wanted, None, sink).await?;
    }
    Ok(())
}

/// Walks one list page by page until no cursor comes back (a page is followed by the
/// wanted lists under it: [`List::children`]); `deadline` bounds each page's wait where
/// the client supports one.
pub(crate) async fn walk_list(
    api: &Client,
    list: List,
    wanted: EntitySet,
    deadline: Option<Instant>,
    sink: &mut impl Sink,
) -> Result<(), SyncError> {
    let mut after = sink.start(&list).await?;
    let mut cursors = Cursors::new(list.entity().name());
    loop {
        let (records, next) = list.page(api, after.as_deref(), deadline).await?;
        let children = list.children(&records, wanted);
        sink.records(&list, records).await?;
        if list == List::Directories {
            each_directory_at_once(api, children, wanted, deadline, sink).await?;
        } else {
            for child in children {
                Box::pin(walk_list(api, child, wanted, deadline, sink)).await?;
            }
        }
        let next = cursors.next(next)?;
        sink.advance(&list, next.as_deref()).await?;
        match next {
            Some(a) => after = Some(a),
            None => return Ok(()),
        }
    }
}

/// What a directory's walk found, for the one sink that takes it in arrival order.
enum Found {
    Page(List, Vec<Record>),
    Advanced(List, Option<String>),
    Failed(SyncError),
}

/// A directory walk's sink: hands every page on to the walk's own sink.
struct Forward(tokio::sync::mpsc::Sender<Found>);

impl Sink for Forward {
    async fn records(&mut self, list: &List, records: Vec<Record>) -> Result<(), SyncError> {
        // A closed channel: the walk already ended (an error elsewhere); stop quietly.
        let _ = self.0.send(Found::Page(list.clone(), records)).await;
        Ok(())
    }

    async fn advance(&mut self, list: &List, next: Option<&str>) -> Result<(), SyncError> {
        let _ = self
            .0
            .send(Found::Advanced(list.clone(), next.map(str::to_owned)))
            .await;
        Ok(())
    }
}

/// Walks the lists under a page of directories, [`DIRECTORIES_AT_ONCE`] directories at a
/// time (each directory's lists in order, in a task of its own), handing their pages to
/// `sink` one at a time as they come: the sink stays single-threaded, and a bounded
/// channel keeps what is fetched ahead small. The first failure ends the walk (the other
/// directories' tasks are aborted).
async fn each_directory_at_once(
    api: &Client,
    children: Vec<List>,
    wanted: EntitySet,
    deadline: Option<Instant>,
    sink: &mut impl Sink,
) -> Result<(), SyncError> {
    let mut by_directory: Vec<(String, Vec<List>)> = Vec::new();
    for child in children {
        let dir = match &child {
            List::DirectoryGroups(d) | List::DirectoryUsers(d) => d.clone(),
            _ => String::new(),
        };
        match by_directory.last_mut() {
            Some((d, lists)) if *d == dir => lists.push(child),
            _ => by_directory.push((dir, vec![child])),
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(2 * DIRECTORIES_AT_ONCE);
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(DIRECTORIES_AT_ONCE));
    let mut tasks = tokio::task::JoinSet::new();
    for (_, lists) in by_directory {
        let (api, tx, permits) = (api.clone(), tx.clone(), permits.clone());
        tasks.spawn(walk_forwarded(api, lists, wanted, deadline, tx, permits));
    }
    drop(tx);
    // Every sender gone (every task done) ends the loop; an early return drops the
    // JoinSet, which aborts the tasks still running.
    while let Some(found) = rx.recv().await {
        match found {
            Found::Page(list, records) => sink.records(&list, records).await?,
            Found::Advanced(list, next) => sink.advance(&list, next.as_deref()).await?,
            Found::Failed(e) => return Err(e),
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| SyncError::WalkAborted(e.to_string()))?;
    }
    Ok(())
}

/// One directory's lists, in order, with their pages forwarded (a task of
/// [`each_directory_at_once`]). Its future's type is written out: the walk it runs may
/// itself reach [`each_directory_at_once`], and an inferred type would be recursive.
fn walk_forwarded(
    api: Client,
    lists: Vec<List>,
    wanted: EntitySet,
    deadline: Option<Instant>,
    tx: tokio::sync::mpsc::Sender<Found>,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async move {
        let Ok(_permit) = permits.acquire_owned().await else {
            return;
        };
        let mut forward = Forward(tx.clone());
        for list in lists {
            if let Err(e) = walk_list(&api, list, wanted, deadline, &mut forward).await {
                let _ = tx.send(Found::Failed(e)).await;
                return;
            }
        }
    })
}

/// A page's objects as records.
fn records<T>(v: Vec<T>, f: fn(T) -> Record) -> Vec<Record> {
    v.into_iter().map(f).collect()
}
