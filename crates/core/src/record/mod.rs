//! The WorkOS objects workos-sync mirrors, one file each, and [`Record`], the one type
//! the store applies whatever the entity: its key, version and the objects it refers to.
//!
//! Decoding is tolerant (unknown fields ignored, optional fields may be missing or
//! null); secrets WorkOS sends (a domain's `verification_token`) are not fields, so they
//! are dropped while decoding and can never be stored.

pub mod api_key;
pub mod connection;
pub mod directory;
pub mod directory_group;
pub mod directory_group_membership;
pub mod directory_user;
pub mod domain;
pub mod group;
pub mod group_membership;
pub mod invitation;
mod key_only;
pub mod membership;
pub mod organization;
pub mod permission;
mod raw;
pub mod role;
pub mod user;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

pub use api_key::ApiKey;
pub use connection::Connection;
pub use directory::Directory;
pub use directory_group::DirectoryGroup;
pub use directory_group_membership::DirectoryGroupMembership;
pub use directory_user::DirectoryUser;
pub use domain::Domain;
pub use group::Group;
pub use group_membership::GroupMembership;
pub use invitation::Invitation;
pub use membership::{Membership, RoleRef};
pub use organization::Organization;
pub use permission::Permission;
pub use raw::Raw;
pub use role::Role;
pub use user::{User, UserRow};

use crate::{
    declare::{Source, Value},
    entity::Entity,
};

/// One object of any entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    User(User),
    Organization(Organization),
    Domain(Domain),
    Membership(Membership),
    Role(Role),
    Permission(Permission),
    Directory(Directory),
    DirectoryUser(DirectoryUser),
    DirectoryGroup(DirectoryGroup),
    DirectoryMembership(DirectoryGroupMembership),
    Invitation(Invitation),
    Connection(Connection),
    Group(Group),
    GroupMembership(GroupMembership),
    ApiKey(ApiKey),
}

impl Record {
    pub fn entity(&self) -> Entity {
        match self {
            Record::User(_) => Entity::Users,
            Record::Organization(_) => Entity::Organizations,
            Record::Domain(_) => Entity::OrganizationDomains,
            Record::Membership(_) => Entity::OrganizationMemberships,
            Record::Role(_) => Entity::Roles,
            Record::Permission(_) => Entity::Permissions,
            Record::Directory(_) => Entity::Directories,
            Record::DirectoryUser(_) => Entity::DirectoryUsers,
            Record::DirectoryGroup(_) => Entity::DirectoryGroups,
            Record::DirectoryMembership(_) => Entity::DirectoryGroupMemberships,
            Record::Invitation(_) => Entity::Invitations,
            Record::Connection(_) => Entity::Connections,
            Record::Group(_) => Entity::Groups,
            Record::GroupMembership(_) => Entity::GroupMemberships,
            Record::ApiKey(_) => Entity::ApiKeys,
        }
    }

    /// The row key within its entity's table (the WorkOS id, or for roles and
    /// permissions the scoped slug: see [`Role::key`]).
    pub fn key(&self) -> String {
        match self {
            Record::User(u) => u.id.clone(),
            Record::Organization(o) => o.id.clone(),
            Record::Domain(d) => d.id.clone(),
            Record::Membership(m) => m.id.clone(),
            Record::Role(r) => r.key(),
            Record::Permission(p) => p.slug.clone(),
            Record::Directory(d) => d.id.clone(),
            Record::DirectoryUser(u) => u.id.clone(),
            Record::DirectoryGroup(g) => g.id.clone(),
            Record::DirectoryMembership(m) => m.key(),
            Record::Invitation(i) => i.id.clone(),
            Record::Connection(c) => c.id.clone(),
            Record::Group(g) => g.id.clone(),
            Record::GroupMembership(m) => m.key(),
            Record::ApiKey(k) => k.id.clone(),
        }
    }

    /// WorkOS's object as received ([`Raw`]; none for a record not decoded from one).
    pub fn raw(&self) -> &Raw {
        match self {
            Record::User(x) => &x.raw,
            Record::Organization(x) => &x.raw,
            Record::Domain(x) => &x.raw,
            Record::Membership(x) => &x.raw,
            Record::Role(x) => &x.raw,
            Record::Permission(x) => &x.raw,
            Record::Directory(x) => &x.raw,
            Record::DirectoryUser(x) => &x.raw,
            Record::DirectoryGroup(x) => &x.raw,
            Record::DirectoryMembership(x) => &x.raw,
            Record::Invitation(x) => &x.raw,
            Record::Connection(x) => &x.raw,
            Record::Group(x) => &x.raw,
            Record::GroupMembership(x) => &x.raw,
            Record::ApiKey(x) => &x.raw,
        }
    }

    pub(crate) fn set_raw(&mut self, raw: Raw) {
        let slot = match self {
            Record::User(x) => &mut x.raw,
            Record::Organization(x) => &mut x.raw,
            Record::Domain(x) => &mut x.raw,
            Record::Membership(x) => &mut x.raw,
            Record::Role(x) => &mut x.raw,
            Record::Permission(x) => &mut x.raw,
            Record::Directory(x) => &mut x.raw,
            Record::DirectoryUser(x) => &mut x.raw,
            Record::DirectoryGroup(x) => &mut x.raw,
            Record::DirectoryMembership(x) => &mut x.raw,
            Record::Invitation(x) => &mut x.raw,
            Record::Connection(x) => &mut x.raw,
            Record::Group(x) => &mut x.raw,
            Record::GroupMembership(x) => &mut x.raw,
            Record::ApiKey(x) => &mut x.raw,
        };
        *slot = raw;
    }

    /// True for a key-only deletion whose key the body did not carry (a role or
    /// permission named by id alone, whose slug the store has not filled in).
    pub fn key_unknown(&self) -> bool {
        match self {
            Record::Role(r) => r.key_unknown(),
            Record::Permission(p) => p.slug.is_empty(),
            Record::DirectoryMembership(m) => {
                m.directory_group_id.is_empty() || m.directory_user_id.is_empty()
            }
            _ => false,
        }
    }

    /// The version: WorkOS's `updated_at` (for roles and permissions without one, the
    /// `created_at`, else the epoch; the event decoder fills it from the event's time).
    pub fn updated_at(&self) -> DateTime<Utc> {
        let or_epoch = |u: Option<DateTime<Utc>>, c: Option<DateTime<Utc>>| {
            u.or(c).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        };
        match self {
            Record::User(u) => u.updated_at,
            Record::Organization(o) => o.updated_at,
            Record::Domain(d) => or_epoch(d.updated_at, d.created_at),
            Record::Membership(m) => m.updated_at,
            Record::Role(r) => or_epoch(r.updated_at, r.created_at),
            Record::Permission(p) => or_epoch(p.updated_at, p.created_at),
            Record::Directory(d) => d.updated_at,
            Record::DirectoryUser(u) => u.updated_at,
            Record::DirectoryGroup(g) => g.updated_at,
            Record::DirectoryMembership(m) => or_epoch(m.at, None),
            Record::Invitation(i) => i.updated_at,
            Record::Connection(c) => c.updated_at,
            Record::Group(g) => g.updated_at,
            Record::GroupMembership(m) => or_epoch(m.at, None),
            Record::ApiKey(k) => k.updated_at,
        }
    }

    /// WorkOS's `created_at` (the version when there is none).
    pub fn created_at(&self) -> DateTime<Utc> {
        match self {
            Record::User(u) => u.created_at,
            Record::Organization(o) => o.created_at,
            Record::Membership(m) => m.created_at,
            Record::Directory(d) => d.created_at,
            Record::DirectoryUser(u) => u.created_at,
            Record::DirectoryGroup(g) => g.created_at,
            Record::Invitation(i) => i.created_at,
            Record::Connection(c) => c.created_at,
            Record::Group(g) => g.created_at,
            Record::ApiKey(k) => k.created_at,
            Record::GroupMembership(m) => m.at.unwrap_or_else(|| self.updated_at()),
            Record::DirectoryMembership(m) => m.at.unwrap_or_else(|| self.updated_at()),
            Record::Domain(Domain { created_at, .. })
            | Record::Role(Role { created_at, .. })
            | Record::Permission(Permission { created_at, .. }) => {
                created_at.unwrap_or_else(|| self.updated_at())
            }
        }
    }

    /// Gives a version to a record whose payload had no timestamps: `at` (the event's
    /// `created_at`) becomes its `updated_at` (and `created_at` when missing too).
    pub fn fill_version(&mut self, at: DateTime<Utc>) {
        let fill = |c: &mut Option<DateTime<Utc>>, u: &mut Option<DateTime<Utc>>| {
            if u.is_none() {
                *u = Some(c.unwrap_or(at));
            }
            c.get_or_insert(at);
        };
        match self {
            Record::Domain(d) => fill(&mut d.created_at, &mut d.updated_at),
            Record::Role(r) => fill(&mut r.created_at, &mut r.updated_at),
            Record::Permission(p) => fill(&mut p.created_at, &mut p.updated_at),
            Record::DirectoryMembership(m) => {
                m.at.get_or_insert(at);
            }
            Record::GroupMembership(m) => {
                m.at.get_or_insert(at);
            }
            Record::User(_)
            | Record::Organization(_)
            | Record::Membership(_)
            | Record::Directory(_)
            | Record::DirectoryUser(_)
            | Record::DirectoryGroup(_)
            | Record::Invitation(_)
            | Record::Connection(_)
            | Record::Group(_)
            | Record::ApiKey(_) => {}
        }
    }

    /// The WorkOS user this record is about (a user, or a membership's user).
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Record::User(u) => Some(&u.id),
            Record::Membership(m) => Some(&m.user_id),
            _ => None,
        }
    }

    /// The organization this record belongs to (itself, or a domain's, membership's or
    /// organization role's).
    pub fn organization_id(&self) -> Option<&str> {
        match self {
            Record::Organization(o) => Some(&o.id),
            Record::Domain(d) => Some(&d.organization_id),
            Record::Membership(m) => Some(&m.organization_id),
            Record::Role(r) => r.organization_id.as_deref(),
            Record::Invitation(i) => i.organization_id.as_deref(),
            Record::Connection(c) => c.organization_id.as_deref(),
            Record::Group(g) => g.organization_id.as_deref(),
            Record::ApiKey(k) => k.organization_id(),
            // Directory Sync objects name an organization but are scoped by their
            // directory ([`Record::directory_id`]).
            Record::User(_)
            | Record::Permission(_)
            | Record::Directory(_)
            | Record::DirectoryUser(_)
            | Record::DirectoryGroup(_)
            | Record::DirectoryMembership(_)
            | Record::GroupMembership(_) => None,
        }
    }

    /// The directory a Directory Sync record belongs to (itself, or a user's, group's
    /// or membership's directory; empty in a key-only deletion that did not name it).
    pub fn directory_id(&self) -> Option<&str> {
        match self {
            Record::Directory(d) => Some(&d.id),
            Record::DirectoryUser(u) => Some(&u.directory_id),
            Record::DirectoryGroup(g) => Some(&g.directory_id),
            Record::DirectoryMembership(m) => Some(&m.directory_id),
            _ => None,
        }
    }

    /// The records whose deletion removes this one (and after which it is never created
    /// again): the parents its declaration names (`Declaration::parents`) that this
    /// record has (a membership's user and organization, a domain's or organization
    /// role's organization; an environment role has none).
    pub fn parents(&self) -> Vec<(Entity, &str)> {
        let decl = self.entity().declaration();
        decl.parents
            .iter()
            .filter_map(|(e, col)| match decl.column(col)?.source {
                Source::Record(get) => match get(self) {
                    Value::Text(Some(std::borrow::Cow::Borrowed(id))) => Some((*e, id)),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }
}

/// A field that may be absent or null, read as its default when so.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `domains[]` as objects with a `domain` (events) or as plain names; null is empty.
pub(crate) fn domain_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Name(String),
        Object { domain: String },
    }
    let items: Option<Vec<Item>> = Option::deserialize(d)?;
    Ok(items
        .unwrap_or_default()
        .into_iter()
        .map(|i| match i {
            Item::Name(s) | Item::Object { domain: s } => s,
        })
        .collect())
}

/// A WorkOS object type as an API answer holds it, decoded as an event's `data` is
/// ([`Record::from_raw`]: the same tolerance, the same secrets dropped, its [`Raw`] kept).
pub trait Object: Sized {
    fn decode(object: &serde_json::value::RawValue) -> Result<Self, String>;
}

/// An object kept as it came (the Events API's events).
impl Object for Box<serde_json::value::RawValue> {
    fn decode(object: &serde_json::value::RawValue) -> Result<Self, String> {
        Ok(object.to_owned())
    }
}

macro_rules! object {
    ($($ty:ident: $entity:ident => $variant:ident),* $(,)?) => {$(
        impl Object for $ty {
            fn decode(object: &serde_json::value::RawValue) -> Result<Self, String> {
                match Record::from_raw(Entity::$entity, object)? {
                    Record::$variant(x) => Ok(x),
                    other => Err(format!("decoded as {}", other.entity())),
                }
            }
        }
    )*};
}

object! {
    User: Users => User,
    Organization: Organizations => Organization,
    Domain: OrganizationDomains => Domain,
    Membership: OrganizationMemberships => Membership,
    Role: Roles => Role,
    Permission: Permissions => Permission,
    Directory: Directories => Directory,
    DirectoryUser: DirectoryUsers => DirectoryUser,
    DirectoryGroup: DirectoryGroups => DirectoryGroup,
    Invitation: Invitations => Invitation,
    Connection: Connections => Connection,
    Group: Groups => Group,
    ApiKey: ApiKeys => ApiKey,
}
