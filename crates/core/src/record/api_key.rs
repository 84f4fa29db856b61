//! API keys (WorkOS-issued keys of an organization or a user), declared once: the
//! WorkOS API key as found in `data` of `api_key.created|updated|revoked`, and its table
//! ([`DECLARATION`]).
//!
//! Only `obfuscated_value` (`sk_…1234`) is kept: the full `value` exists only in the
//! answer that creates a key and is not a field here. The owner is `{type:
//! organization, id}` or `{type: user, id, organization_id}` (older bodies have none).
//! A revoked key is gone: `api_key.revoked` removes the row and tombstones it. An
//! organization's delete removes its keys. Mirrored from webhooks and the Events API
//! only (WorkOS serves no environment-wide list of keys).
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    #[serde(default, rename = "type")]
    pub owner_type: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub organization_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// WorkOS's object as received ([`Raw`]).
    #[serde(skip)]
    pub raw: Raw,
    pub id: String,
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub owner: Owner,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub obfuscated_value: Option<String>,
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ApiKey {
    /// The organization the key belongs to: its owner, or its user owner's.
    pub fn organization_id(&self) -> Option<&str> {
        match self.owner.owner_type.as_deref() {
            Some("organization") => self.owner.id.as_deref(),
            _ => self.owner.organization_id.as_deref(),
        }
    }

    /// A key known only by id (a key-only deletion).
    pub fn stub(id: &str, at: DateTime<Utc>) -> Self {
        Self {
            raw: Default::default(),
            id: id.to_owned(),
            owner: Owner::default(),
            name: None,
            obfuscated_value: None,
            permissions: Vec::new(),
            last_used_at: None,
            expires_at: None,
            created_at: at,
            updated_at: at,
        }
    }
}

pub const DECLARATION: Declaration = Declaration {
    entity: Entity::ApiKeys,
    table: "api_keys",
    key: "id",
    adoptable: false,
    columns: &[
        Column::key("id", get!(ApiKey, k => Value::text(&k.id))),
        Column::new(
            "owner_type",
            T::Text,
            get!(ApiKey, k => Value::opt_text(k.owner.owner_type.as_deref())),
        ),
        Column::new(
            "owner_id",
            T::Text,
            get!(ApiKey, k => Value::opt_text(k.owner.id.as_deref())),
        ),
        Column::new(
            "organization_id",
            T::Text,
            get!(ApiKey, k => Value::opt_text(k.organization_id())),
        ),
        Column::new(
            "name",
            T::Text,
            get!(ApiKey, k => Value::opt_text(k.name.as_deref())),
        ),
        Column::new(
            "obfuscated_value",
            T::Text,
            get!(ApiKey, k => Value::opt_text(k.obfuscated_value.as_deref())),
        ),
        Column::new(
            "permissions",
            T::TextList,
            get!(ApiKey, k => Value::TextList((&k.permissions[..]).into())),
        )
        .not_null(),
        Column::new(
            "last_used_at",
            T::Time,
            get!(ApiKey, k => Value::Time(k.last_used_at)),
        ),
        Column::new(
            "expires_at",
            T::Time,
            get!(ApiKey, k => Value::Time(k.expires_at)),
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
    event_types: event_type::API_KEY_EVENTS,
    key_reused: false,
    own_version: true,
    events_only: true,
    plain_list: false,
    includes: &[],
};
