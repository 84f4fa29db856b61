//! The entities workos-sync mirrors, listed once; each is declared in its own file under
//! `record/` ([`Entity::declaration`]: its table, columns, delete setting, list endpoint
//! and WorkOS event types), from which its names here are read. Every other event type is verified, queued
//! and recorded as `ignored`, as are the events of an entity that is switched off.
//!
//! Failure model: none; [`Entity::parse`] refuses an unknown name with the list of known
//! ones.

use std::fmt;

use serde::Serialize;

use crate::{declare::Declaration, record};

/// One kind of WorkOS object with a table of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Users,
    Organizations,
    OrganizationDomains,
    OrganizationMemberships,
    Roles,
    Permissions,
    Directories,
    DirectoryUsers,
    DirectoryGroups,
    DirectoryGroupMemberships,
    Invitations,
    Connections,
    Groups,
    GroupMemberships,
    ApiKeys,
}

impl Entity {
    /// How many entities there are (the length of per-entity arrays).
    pub const COUNT: usize = 15;

    /// Every entity, in the order tables are written and reported.
    pub const ALL: [Entity; Self::COUNT] = [
        Entity::Users,
        Entity::Organizations,
        Entity::OrganizationDomains,
        Entity::OrganizationMemberships,
        Entity::Roles,
        Entity::Permissions,
        Entity::Directories,
        Entity::DirectoryUsers,
        Entity::DirectoryGroups,
        Entity::DirectoryGroupMemberships,
        Entity::Invitations,
        Entity::Connections,
        Entity::Groups,
        Entity::GroupMemberships,
        Entity::ApiKeys,
    ];

    /// The entity's one declaration (its file under `record/`).
    pub const fn declaration(self) -> &'static Declaration {
        match self {
            Entity::Users => &record::user::DECLARATION,
            Entity::Organizations => &record::organization::DECLARATION,
            Entity::OrganizationDomains => &record::domain::DECLARATION,
            Entity::OrganizationMemberships => &record::membership::DECLARATION,
            Entity::Roles => &record::role::DECLARATION,
            Entity::Permissions => &record::permission::DECLARATION,
            Entity::Directories => &record::directory::DECLARATION,
            Entity::DirectoryUsers => &record::directory_user::DECLARATION,
            Entity::DirectoryGroups => &record::directory_group::DECLARATION,
            Entity::DirectoryGroupMemberships => &record::directory_group_membership::DECLARATION,
            Entity::Invitations => &record::invitation::DECLARATION,
            Entity::Connections => &record::connection::DECLARATION,
            Entity::Groups => &record::group::DECLARATION,
            Entity::GroupMemberships => &record::group_membership::DECLARATION,
            Entity::ApiKeys => &record::api_key::DECLARATION,
        }
    }

    /// The name in settings (`sync.entities`), on the command line (`--only`), in metric
    /// labels and in the `tombstones.entity` column: also the table's name.
    pub const fn name(self) -> &'static str {
        self.declaration().table
    }

    /// True when the key is a name WorkOS lets be used again (`Declaration::key_reused`).
    pub const fn key_is_reused(self) -> bool {
        self.declaration().key_reused
    }

    /// Position in [`Entity::ALL`] (for per-entity arrays).
    pub const fn index(self) -> usize {
        self as usize
    }

    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|e| e.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|e| e.name()).collect();
                format!("unknown entity {name:?} (known: {})", known.join(", "))
            })
    }

    /// The WorkOS event types of this entity (what the reconciler asks the Events API for).
    pub const fn event_types(self) -> &'static [&'static str] {
        self.declaration().event_types
    }

    /// The entity an event type belongs to, if any.
    pub fn of_event_type(event_type: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|e| e.event_types().contains(&event_type))
    }
}

impl std::str::FromStr for Entity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for Entity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of entities (the enabled ones), cheap to copy and test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntitySet(u32);

impl EntitySet {
    pub const ALL: EntitySet = EntitySet((1 << Entity::COUNT) - 1);
    pub const NONE: EntitySet = EntitySet(0);

    pub fn of(entities: &[Entity]) -> Self {
        Self(entities.iter().fold(0, |m, e| m | (1 << e.index())))
    }

    pub fn contains(self, e: Entity) -> bool {
        self.0 & (1 << e.index()) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Entity> {
        Entity::ALL.into_iter().filter(move |e| self.contains(*e))
    }

    /// The event types a webhook endpoint subscribes to for these entities (their
    /// declared types but [`crate::event_type::NOT_SUBSCRIBABLE`]), in declaration order.
    pub fn subscribed_event_types(self) -> Vec<&'static str> {
        self.iter()
            .flat_map(|e| e.event_types().iter().copied())
            .filter(|t| !crate::event_type::NOT_SUBSCRIBABLE.contains(t))
            .collect()
    }

    /// What a command narrowed to `only` walks: that entity (with the ones its
    /// declaration includes: `--only directories` is all of Directory Sync) if this set
    /// holds it (none if it does not), or the whole set.
    pub fn only(self, only: Option<Entity>) -> Self {
        match only {
            Some(e) if self.contains(e) => {
                let family = std::iter::once(e).chain(e.declaration().includes.iter().copied());
                Self(
                    family
                        .filter(|x| self.contains(*x))
                        .fold(0, |m, x| m | (1 << x.index())),
                )
            }
            Some(_) => Self::NONE,
            None => self,
        }
    }
}

impl Default for EntitySet {
    fn default() -> Self {
        Self::ALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_event_types_are_disjoint() {
        for e in Entity::ALL {
            assert_eq!(Entity::parse(e.name()), Ok(e));
            assert_eq!(Entity::ALL[e.index()], e);
            assert_eq!(e.declaration().entity, e);
            for ty in e.event_types() {
                assert_eq!(Entity::of_event_type(ty), Some(e), "{ty}");
            }
        }
        assert!(Entity::parse("user").is_err());
        assert_eq!(Entity::of_event_type("session.created"), None);
    }

    #[test]
    fn sets() {
        let s = EntitySet::of(&[Entity::Users, Entity::Roles]);
        assert!(s.contains(Entity::Users) && s.contains(Entity::Roles));
        assert!(!s.contains(Entity::Organizations));
        assert_eq!(s.iter().count(), 2);
        assert_eq!(EntitySet::ALL.iter().count(), Entity::ALL.len());
        assert_eq!(s.only(Some(Entity::Roles)), EntitySet::of(&[Entity::Roles]));
        assert_eq!(s.only(Some(Entity::Organizations)), EntitySet::NONE);
        assert_eq!(s.only(None), s);
    }
}
