//! Roles, declared once: the WorkOS role as found in `data` of `role.*` and
//! `organization_role.*` events and in the authorization API's lists, and its table
//! ([`DECLARATION`]).
//!
//! The SDKs have dropped fields of these before (`id`, `organization_id`, the
//! timestamps), so only `slug` is required. A role is keyed by its slug within its
//! scope ([`Role::key`]): an environment role `admin` and organization `org_1`'s role
//! `admin` are two rows.
//!
//! Failure model: decoding is serde's; an `organization_role.*` event without an
//! `organization_id` cannot be keyed and is refused by the event decoder.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::Raw;
use crate::{
    Entity,
    declare::{Column, ColumnType as T, Declaration, Value},
    event_type, get,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// WorkOS's object as received ([`Raw`]).
    #[serde(skip)]
    pub raw: Raw,
    #[serde(default)]
    pub id: Option<String>,
    pub slug: String,
    /// Set for organization roles; `None` for environment roles.
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// `EnvironmentRole` or `OrganizationRole` when WorkOS says so.
    #[serde(default, rename = "type")]
    pub role_type: Option<String>,
    /// Permission slugs (some payloads send objects with a `slug`).
    #[serde(default, deserialize_with = "slugs")]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

impl Role {
    /// True for a role named by id alone (a trimmed deletion) whose slug or
    /// organization is not known yet.
    pub fn key_unknown(&self) -> bool {
        self.slug.is_empty() || self.organization_id.as_deref().is_some_and(str::is_empty)
    }

    /// The row key: `slug` for an environment role, `organization_id:slug` for an
    /// organization role (`:` never occurs in a WorkOS id).
    pub fn key(&self) -> String {
        match &self.organization_id {
            Some(org) => format!("{org}:{}", self.slug),
            None => self.slug.clone(),
        }
    }
}

/// A list of slugs, given as strings or as objects with a `slug`; null is empty.
pub(crate) fn slugs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Slug(String),
        Object { slug: String },
    }
    let items: Option<Vec<Item>> = Option::deserialize(d)?;
    Ok(items
        .unwrap_or_default()
        .into_iter()
        .map(|i| match i {
            Item::Slug(s) | Item::Object { slug: s } => s,
        })
        .collect())
}

/// Environment roles and organization roles share the table; the key is the scoped slug
/// ([`Role::key`]).
pub const DECLARATION: Declaration = Declaration {
    entity: Entity::Roles,
    table: "roles",
    key: "key",
    adoptable: false,
    columns: &[
        Column::key("key", get!(Role, r => Value::Text(Some(r.key().into())))),
        Column::new(
            "id",
            T::Text,
            get!(Role, r => Value::opt_text(r.id.as_deref())),
        ),
        Column::new("slug", T::Text, get!(Role, r => Value::text(&r.slug))).not_null(),
        Column::new(
            "organization_id",
            T::Text,
            get!(Role, r => Value::opt_text(r.organization_id.as_deref())),
        ),
        Column::new(
            "name",
            T::Text,
            get!(Role, r => Value::opt_text(r.name.as_deref())),
        ),
        Column::new(
            "description",
            T::Text,
            get!(Role, r => Value::opt_text(r.description.as_deref())),
        ),
        Column::new(
            "type",
            T::Text,
            get!(Role, r => Value::opt_text(r.role_type.as_deref())),
        ),
        Column::new(
            "permissions",
            T::TextList,
            get!(Role, r => Value::TextList(r.permissions.as_slice().into())),
        )
        .not_null(),
        Column::RAW,
        Column::CREATED,
        Column::VERSION,
    ],
    parents: &[(Entity::Organizations, "organization_id")],
    delete_setting: None,
    refresh: None,
    app_columns: &[],
    list_path: Some("/authorization/roles"),
    event_types: event_type::ROLE_EVENTS,
    key_reused: true,
    own_version: true,
    events_only: false,
    plain_list: false,
    includes: &[],
};
