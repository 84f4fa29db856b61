//! AuthKit group memberships, declared once: an (group, organization membership) pair as
//! `group.member_added` / `group.member_removed` say it (`data` is only `{group_id,
//! organization_membership_id}`), and its table ([`DECLARATION`]).
//!
//! Like a Directory Sync group membership it has no id and no version of its own: its
//! key is `group:organization_membership` and its version the event's `created_at`
//! (newest wins per pair; a removal is a tombstone at its time, so an older add stays
//! stopped and a newer add makes the pair again: `Declaration::key_reused`). The
//! group's or the organization membership's delete removes it. Mirrored from webhooks
//! and the Events API only (WorkOS serves no list of them).
//!
//! Failure model: `data` without either id is refused by the decoder (`BadRecord`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Raw;
use crate::{
    Entity,
    declare::{Column, ColumnType as T, Declaration, Value},
    event_type, get,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupMembership {
    /// WorkOS's object as received ([`Raw`]).
    #[serde(skip)]
    pub raw: Raw,
    pub group_id: String,
    pub organization_membership_id: String,
    /// When WorkOS said so (`None` until the decoder fills it with the event's time).
    pub at: Option<DateTime<Utc>>,
}

impl GroupMembership {
    /// The row key: `group:organization_membership`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.group_id, self.organization_membership_id)
    }
}

impl<'de> Deserialize<'de> for GroupMembership {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default)]
            group_id: String,
            #[serde(default)]
            organization_membership_id: String,
        }
        let w = Wire::deserialize(d)?;
        if w.group_id.trim().is_empty() || w.organization_membership_id.trim().is_empty() {
            return Err(serde::de::Error::custom(
                "group membership without group_id or organization_membership_id",
            ));
        }
        Ok(Self {
            raw: Default::default(),
            group_id: w.group_id,
            organization_membership_id: w.organization_membership_id,
            at: None,
        })
    }
}

pub const DECLARATION: Declaration = Declaration {
    entity: Entity::GroupMemberships,
    table: "group_memberships",
    key: "key",
    adoptable: false,
    columns: &[
        Column::key(
            "key",
            get!(GroupMembership, m => Value::Text(Some(m.key().into()))),
        ),
        Column::new(
            "group_id",
            T::Text,
            get!(GroupMembership, m => Value::text(&m.group_id)),
        )
        .not_null(),
        Column::new(
            "organization_membership_id",
            T::Text,
            get!(GroupMembership, m => Value::text(&m.organization_membership_id)),
        )
        .not_null(),
        Column::RAW,
        Column::CREATED,
        Column::VERSION,
    ],
    parents: &[
        (Entity::Groups, "group_id"),
        (
            Entity::OrganizationMemberships,
            "organization_membership_id",
        ),
    ],
    delete_setting: None,
    refresh: None,
    app_columns: &[],
    list_path: None,
    event_types: event_type::GROUP_MEMBERSHIP_EVENTS,
    key_reused: true,
    own_version: false,
    events_only: true,
    plain_list: false,
    includes: &[],
};
