//! Directories (Directory Sync), declared once: the WorkOS directory as found in `data`
//! of `dsync.activated` / `dsync.deleted` and in `GET /directories`, and its table
//! ([`DECLARATION`]).
//!
//! Two state vocabularies reach us (API objects: `linked`/`unlinked`; events:
//! `active`/`inactive`; both: `validating`, `invalid_credentials`, `deleting`…): the
//! state is stored as sent, never refused. The API's `domain` and the event's
//! `domains[]` are stored as one list of domain names. `external_key` (the key of the
//! directory's SCIM endpoint) and `metadata` (user and group counts) are not kept.
//!
//! Failure model: decoding is serde's; every field but `id` may be missing or null.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Raw;
use crate::{
    Entity,
    declare::{Column, ColumnType as T, Declaration, Value},
    event_type, get,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// WorkOS's object as received ([`Raw`]).
    #[serde(skip)]
    pub raw: Raw,
    pub id: String,
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// The provider (`okta scim v2.0`, `gsuite directory`…).
    #[serde(default, rename = "type")]
    pub directory_type: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    /// The domain names: the API's `domain`, or the event's `domains[].domain`.
    #[serde(default, rename = "domains", deserialize_with = "super::domain_names")]
    pub domains: Vec<String>,
    #[serde(default, rename = "domain", skip_serializing)]
    domain: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Directory {
    /// A directory known only by id (a deletion learnt from the API's 404).
    pub fn stub(id: &str, at: DateTime<Utc>) -> Self {
        Self {
            raw: Default::default(),
            id: id.to_owned(),
            organization_id: None,
            name: None,
            directory_type: None,
            state: None,
            domains: Vec::new(),
            domain: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// Every domain name the object carried (`domain` and `domains[]`).
    pub fn domain_names(&self) -> Vec<String> {
        let mut names = self.domains.clone();
        if let Some(d) = &self.domain
            && !names.contains(d)
        {
            names.push(d.clone());
        }
        names
    }
}

pub const DECLARATION: Declaration = Declaration {
    entity: Entity::Directories,
    table: "directories",
    key: "id",
    adoptable: false,
    columns: &[
        Column::key("id", get!(Directory, d => Value::text(&d.id))),
        Column::new(
            "organization_id",
            T::Text,
            get!(Directory, d => Value::opt_text(d.organization_id.as_deref())),
        ),
        Column::new(
            "name",
            T::Text,
            get!(Directory, d => Value::opt_text(d.name.as_deref())),
        ),
        Column::new(
            "type",
            T::Text,
            get!(Directory, d => Value::opt_text(d.directory_type.as_deref())),
        ),
        Column::new(
            "state",
            T::Text,
            get!(Directory, d => Value::opt_text(d.state.as_deref())),
        ),
        Column::new(
            "domains",
            T::TextList,
            get!(Directory, d => Value::TextList(d.domain_names().into())),
        )
        .not_null(),
        Column::RAW,
        Column::CREATED,
        Column::VERSION,
    ],
    parents: &[],
    delete_setting: None,
    refresh: None,
    app_columns: &[],
    list_path: Some("/directories"),
    event_types: event_type::DIRECTORY_EVENTS,
    key_reused: false,
    own_version: true,
    events_only: false,
    plain_list: false,
    includes: &[
        Entity::DirectoryUsers,
        Entity::DirectoryGroups,
        Entity::DirectoryGroupMemberships,
    ],
};
