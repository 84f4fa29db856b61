//! Directory groups (Directory Sync), declared once: the WorkOS directory group as found
//! in `data` of `dsync.group.*` events, inside `dsync.group.user_added|user_removed`,
//! and in `GET /directory_groups`, and its table ([`DECLARATION`]). A group's delete
//! sends no `user_removed` for its members: its memberships go with it by the declared
//! parent rule.
//!
//! Failure model: decoding is serde's; every field but `id` may be missing or null.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Raw;
use super::null_as_default;
use crate::{
    Entity,
    declare::{Column, ColumnType as T, Declaration, Value},
    event_type, get,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryGroup {
    /// WorkOS's object as received ([`Raw`]).
    #[serde(skip)]
    pub raw: Raw,
    pub id: String,
    /// Empty only in a key-only deletion that did not name it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub directory_id: String,
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub idp_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub raw_attributes: Option<BTreeMap<String, serde_json::Value>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl DirectoryGroup {
    /// A directory group known only by id, stamped `at`.
    pub fn stub(id: &str, directory_id: &str, at: DateTime<Utc>) -> Self {
        Self {
            raw: Default::default(),
            id: id.to_owned(),
            directory_id: directory_id.to_owned(),
            organization_id: None,
            idp_id: None,
            name: None,
            raw_attributes: None,
            created_at: at,
            updated_at: at,
        }
    }
}

pub const DECLARATION: Declaration = Declaration {
    entity: Entity::DirectoryGroups,
    table: "directory_groups",
    key: "id",
    adoptable: false,
    columns: &[
        Column::key("id", get!(DirectoryGroup, g => Value::text(&g.id))),
        Column::new(
            "directory_id",
            T::Text,
            get!(DirectoryGroup, g => Value::text(&g.directory_id)),
        )
        .not_null(),
        Column::new(
            "organization_id",
            T::Text,
            get!(DirectoryGroup, g => Value::opt_text(g.organization_id.as_deref())),
        ),
        Column::new(
            "idp_id",
            T::Text,
            get!(DirectoryGroup, g => Value::opt_text(g.idp_id.as_deref())),
        ),
        Column::new(
            "name",
            T::Text,
            get!(DirectoryGroup, g => Value::opt_text(g.name.as_deref())),
        ),
        Column::new(
            "raw_attributes",
            T::Json,
            get!(DirectoryGroup, g => Value::Json(g.raw_attributes.as_ref())),
        )
        .not_null(),
        Column::RAW,
        Column::CREATED,
        Column::VERSION,
    ],
    parents: &[(Entity::Directories, "directory_id")],
    delete_setting: None,
    refresh: None,
    app_columns: &[],
    list_path: Some("/directory_groups"),
    event_types: event_type::DIRECTORY_GROUP_EVENTS,
    key_reused: false,
    own_version: true,
    events_only: false,
    plain_list: false,
    includes: &[],
};
