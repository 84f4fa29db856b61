//! Permissions, declared once: the WorkOS permission as found in `data` of
//! `permission.*` events and in the authorization API's list, and its table
//! ([`DECLARATION`]). Keyed by its slug (unique per environment); only `slug` is
//! required (the SDKs have dropped the other fields before).
//!
//! Failure model: decoding is serde's; optional fields may be missing or null.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Raw;
use crate::{
    Entity,
    declare::{Column, ColumnType as T, Declaration, Value},
    event_type, get,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// WorkOS's object as received ([`Raw`]).
    #[serde(skip)]
    pub raw: Raw,
    #[serde(default)]
    pub id: Option<String>,
    pub slug: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub system: Option<bool>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

pub const DECLARATION: Declaration = Declaration {
    entity: Entity::Permissions,
    table: "permissions",
    key: "key",
    adoptable: false,
    columns: &[
        Column::key("key", get!(Permission, p => Value::text(&p.slug))),
        Column::new(
            "id",
            T::Text,
            get!(Permission, p => Value::opt_text(p.id.as_deref())),
        ),
        Column::new("slug", T::Text, get!(Permission, p => Value::text(&p.slug))).not_null(),
        Column::new(
            "name",
            T::Text,
            get!(Permission, p => Value::opt_text(p.name.as_deref())),
        ),
        Column::new(
            "description",
            T::Text,
            get!(Permission, p => Value::opt_text(p.description.as_deref())),
        ),
        Column::new(
            "system",
            T::Bool,
            get!(Permission, p => Value::Bool(p.system.unwrap_or(false))),
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
    list_path: Some("/authorization/permissions"),
    event_types: event_type::PERMISSION_EVENTS,
    key_reused: true,
    own_version: true,
    events_only: false,
    plain_list: false,
    includes: &[],
};
