//! Directory group memberships (Directory Sync), declared once: a (group, user) pair as
//! `dsync.group.user_added` / `dsync.group.user_removed` say it (`data` is
//! `{directory_id, user, group}`) and as listing a group's users shows it, and its table
//! ([`DECLARATION`]).
//!
//! A membership has no id and no version of its own: its key is `group:user` (`:` never
//! occurs in a WorkOS id) and its version is the time WorkOS said so (the event's
//! `created_at`, or the listing's time). Newest wins per pair: a removal is a tombstone
//! at its event's time, so an older add stays stopped and a newer add makes the pair
//! again (the key is reused, `Declaration::key_reused`); a removal older than the
//! stored add is stale. A user's or group's or directory's delete removes its
//! memberships by the declared parent rule, and none is made for them afterwards.
//!
//! Failure model: `data` without a user id or a group id is refused by the decoder
//! (`BadRecord`); a directory id is taken from the group, else the user, else `data`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Raw;
use crate::{
    Entity,
    declare::{Column, Declaration, Value},
    event_type, get,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectoryGroupMembership {
    /// WorkOS's object as received ([`Raw`]).
    #[serde(skip)]
    pub raw: Raw,
    pub directory_id: String,
    pub directory_group_id: String,
    pub directory_user_id: String,
    /// When WorkOS said so (`None` until the decoder fills it with the event's time).
    pub at: Option<DateTime<Utc>>,
}

impl DirectoryGroupMembership {
    pub fn new(directory_id: &str, group: &str, user: &str, at: DateTime<Utc>) -> Self {
        Self {
            raw: Default::default(),
            directory_id: directory_id.to_owned(),
            directory_group_id: group.to_owned(),
            directory_user_id: user.to_owned(),
            at: Some(at),
        }
    }

    /// The row key: `group:user`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.directory_group_id, self.directory_user_id)
    }
}

#[derive(Deserialize)]
struct IdOf {
    id: String,
    #[serde(default)]
    directory_id: Option<String>,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    directory_id: Option<String>,
    user: IdOf,
    group: IdOf,
}

impl<'de> Deserialize<'de> for DirectoryGroupMembership {
    /// From a `user_added` / `user_removed` event's `data`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
        let directory_id = nonempty(w.group.directory_id)
            .or_else(|| nonempty(w.user.directory_id))
            .or_else(|| nonempty(w.directory_id))
            .unwrap_or_default();
        if w.user.id.is_empty() || w.group.id.is_empty() {
            return Err(serde::de::Error::custom(
                "membership without a user or a group id",
            ));
        }
        Ok(Self {
            raw: Default::default(),
            directory_id,
            directory_group_id: w.group.id,
            directory_user_id: w.user.id,
            at: None,
        })
    }
}

pub const DECLARATION: Declaration = Declaration {
    entity: Entity::DirectoryGroupMemberships,
    table: "directory_group_memberships",
    key: "key",
    adoptable: false,
    columns: &[
        Column::key(
            "key",
            get!(DirectoryMembership, m => Value::Text(Some(m.key().into()))),
        ),
        Column::new(
            "directory_id",
            crate::declare::ColumnType::Text,
            get!(DirectoryMembership, m => Value::text(&m.directory_id)),
        )
        .not_null(),
        Column::new(
            "directory_group_id",
            crate::declare::ColumnType::Text,
            get!(DirectoryMembership, m => Value::text(&m.directory_group_id)),
        )
        .not_null(),
        Column::new(
            "directory_user_id",
            crate::declare::ColumnType::Text,
            get!(DirectoryMembership, m => Value::text(&m.directory_user_id)),
        )
        .not_null(),
        Column::RAW,
        Column::CREATED,
        Column::VERSION,
    ],
    parents: &[
        (Entity::DirectoryUsers, "directory_user_id"),
        (Entity::DirectoryGroups, "directory_group_id"),
        (Entity::Directories, "directory_id"),
    ],
    delete_setting: None,
    refresh: None,
    app_columns: &[],
    list_path: None,
    event_types: event_type::DIRECTORY_MEMBERSHIP_EVENTS,
    key_reused: true,
    own_version: false,
    events_only: false,
    plain_list: false,
    includes: &[],
};
