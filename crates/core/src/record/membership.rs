//! The WorkOS organization membership, as found in `data` of `organization_membership.*`
//! events and in API responses: one user in one organization, with a status and roles.
//! WorkOS holds at most one membership per user and organization.
//!
//! Failure model: decoding is serde's; optional fields may be missing or null.

use std::collections::BTreeMap;

use super::Raw;
use crate::{
    Entity,
    declare::{Column, ColumnType as T, Declaration, Value},
    event_type, get,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A role as a membership names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRef {
    pub slug: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// WorkOS's object as received ([`Raw`]).
    #[serde(skip)]
    pub raw: Raw,
    pub id: String,
    pub user_id: String,
    pub organization_id: String,
    /// `active`, `inactive` or `pending` (kept as sent: WorkOS may add states).
    pub status: String,
    #[serde(default)]
    pub role: Option<RoleRef>,
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub roles: Vec<RoleRef>,
    #[serde(default)]
    pub custom_attributes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub directory_managed: Option<bool>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Membership {
    /// A membership known only by its keys (a deletion learnt by id, or named by a
    /// trimmed event), stamped `at`; `status` empty, no roles.
    pub fn stub(id: &str, user_id: &str, organization_id: &str, at: DateTime<Utc>) -> Self {
        Self {
            raw: Default::default(),
            id: id.to_owned(),
            user_id: user_id.to_owned(),
            organization_id: organization_id.to_owned(),
            status: String::new(),
            role: None,
            roles: Vec::new(),
            custom_attributes: None,
            directory_managed: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// The slugs of every role, `role` first when `roles` is empty (older payloads).
    pub fn role_slugs(&self) -> Vec<String> {
        if self.roles.is_empty() {
            self.role.iter().map(|r| r.slug.clone()).collect()
        } else {
            self.roles.iter().map(|r| r.slug.clone()).collect()
        }
    }
}

pub const DECLARATION: Declaration = Declaration {
    entity: Entity::OrganizationMemberships,
    table: "organization_memberships",
    key: "id",
    adoptable: false,
    columns: &[
        Column::key("id", get!(Membership, m => Value::text(&m.id))),
        Column::new(
            "user_id",
            T::Text,
            get!(Membership, m => Value::text(&m.user_id)),
        )
        .not_null(),
        Column::new(
            "organization_id",
            T::Text,
            get!(Membership, m => Value::text(&m.organization_id)),
        )
        .not_null(),
        Column::new(
            "status",
            T::Text,
            get!(Membership, m => Value::text(&m.status)),
        )
        .not_null(),
        Column::new(
            "role_slug",
            T::Text,
            get!(Membership, m => Value::opt_text(m.role.as_ref().map(|r| r.slug.as_str()))),
        ),
        Column::new(
            "role_slugs",
            T::TextList,
            get!(Membership, m => Value::TextList(m.role_slugs().into())),
        )
        .not_null(),
        Column::new(
            "custom_attributes",
            T::Json,
            get!(Membership, m => Value::Json(m.custom_attributes.as_ref())),
        )
        .not_null(),
        Column::new(
            "directory_managed",
            T::Bool,
            get!(Membership, m => Value::Bool(m.directory_managed.unwrap_or(false))),
        )
        .not_null(),
        Column::RAW,
        Column::CREATED,
        Column::VERSION,
    ],
    parents: &[
        (Entity::Users, "user_id"),
        (Entity::Organizations, "organization_id"),
    ],
    delete_setting: Some("membership_delete"),
    refresh: None,
    app_columns: &[],
    list_path: Some("/user_management/organization_memberships"),
    event_types: event_type::MEMBERSHIP_EVENTS,
    key_reused: false,
    own_version: true,
    events_only: false,
    plain_list: false,
    includes: &[],
};
