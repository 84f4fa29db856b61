//! AuthKit groups, declared once: the WorkOS group (`object: group`, `group_…` ids, an
//! organization's) as found in `data` of `group.created|updated|deleted`, and its table
//! ([`DECLARATION`]).
//!
//! WorkOS serves no list of groups that backfill or verify could walk here: groups are
//! mirrored from webhooks and the Events API (reconcile) only. A group's delete removes
//! its memberships by the parent rule; an organization's delete removes its groups.
//!
//! Failure model: decoding is serde's; every field but `id` and the timestamps may be
//! missing or null.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Raw;
use crate::{
    Entity,
    declare::{Column, ColumnType as T, Declaration, Value},
    event_type, get,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// WorkOS's object as received ([`Raw`]).
    #[serde(skip)]
    pub raw: Raw,
    pub id: String,
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Group {
    /// A group known only by id (a key-only deletion).
    pub fn stub(id: &str, at: DateTime<Utc>) -> Self {
        Self {
            raw: Default::default(),
            id: id.to_owned(),
            organization_id: None,
            name: None,
            description: None,
            created_at: at,
            updated_at: at,
        }
    }
}

pub const DECLARATION: Declaration = Declaration {
    entity: Entity::Groups,
    table: "groups",
    key: "id",
    adoptable: false,
    columns: &[
        Column::key("id", get!(Group, g => Value::text(&g.id))),
        Column::new(
            "organization_id",
            T::Text,
            get!(Group, g => Value::opt_text(g.organization_id.as_deref())),
        ),
        Column::new(
            "name",
            T::Text,
            get!(Group, g => Value::opt_text(g.name.as_deref())),
        ),
        Column::new(
            "description",
            T::Text,
            get!(Group, g => Value::opt_text(g.description.as_deref())),
        ),
        Column::RAW,
        Column::CREATED,
        Column::VERSION,
    ],
    parents: &[(Entity::Organizations, "organization_id")],
    delete_setting: None,
    refresh: None,
    app_columns: &[],
    list_path: None,
    event_types: event_type::GROUP_EVENTS,
    key_reused: false,
    own_version: true,
    events_only: true,
    plain_list: false,
    includes: &[],
};
