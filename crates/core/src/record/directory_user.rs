//! Directory users (Directory Sync), declared once: the WorkOS directory user as found in
//! `data` of `dsync.user.*` events, inside `dsync.group.user_added|user_removed`, and in
//! `GET /directory_users`, and its table ([`DECLARATION`]).
//!
//! Email and names may be null (the spec says so, and IdPs send users without them);
//! `role` and `roles` may be null too. `state` is stored as sent (`active`,
//! `inactive`, `suspended`…): environments created after 2023-10-19 delete inactive
//! users (`dsync.user.deleted`), older ones send `updated` with `state = inactive`, and
//! both end right by storing what arrives. `raw_attributes` and `custom_attributes` are
//! kept as JSON; the deprecated `emails[]`, `groups[]` and `previous_attributes` are not
//! (memberships have a table of their own; a shallow diff is never needed to apply).
//!
//! Failure model: decoding is serde's; every field but `id` may be missing or null.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Raw;
use super::{RoleRef, null_as_default};
use crate::{
    Entity,
    declare::{Column, ColumnType as T, Declaration, Value},
    event_type, get,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUser {
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
    pub email: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub raw_attributes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub custom_attributes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub role: Option<RoleRef>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub roles: Vec<RoleRef>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl DirectoryUser {
    /// A directory user known only by id, stamped `at`.
    pub fn stub(id: &str, directory_id: &str, at: DateTime<Utc>) -> Self {
        Self {
            raw: Default::default(),
            id: id.to_owned(),
            directory_id: directory_id.to_owned(),
            organization_id: None,
            idp_id: None,
            email: None,
            first_name: None,
            last_name: None,
            name: None,
            job_title: None,
            username: None,
            state: None,
            raw_attributes: None,
            custom_attributes: None,
            role: None,
            roles: Vec::new(),
            created_at: at,
            updated_at: at,
        }
    }

    /// The role slugs: `roles[]`, else the single `role`.
    pub fn role_slugs(&self) -> Vec<String> {
        if self.roles.is_empty() {
            self.role.iter().map(|r| r.slug.clone()).collect()
        } else {
            self.roles.iter().map(|r| r.slug.clone()).collect()
        }
    }
}

pub const DECLARATION: Declaration = Declaration {
    entity: Entity::DirectoryUsers,
    table: "directory_users",
    key: "id",
    adoptable: false,
    columns: &[
        Column::key("id", get!(DirectoryUser, u => Value::text(&u.id))),
        Column::new(
            "directory_id",
            T::Text,
            get!(DirectoryUser, u => Value::text(&u.directory_id)),
        )
        .not_null(),
        Column::new(
            "organization_id",
            T::Text,
            get!(DirectoryUser, u => Value::opt_text(u.organization_id.as_deref())),
        ),
        Column::new(
            "idp_id",
            T::Text,
            get!(DirectoryUser, u => Value::opt_text(u.idp_id.as_deref())),
        ),
        Column::new(
            "email",
            T::Text,
            get!(DirectoryUser, u => Value::opt_text(u.email.as_deref())),
        ),
        Column::new(
            "first_name",
            T::Text,
            get!(DirectoryUser, u => Value::opt_text(u.first_name.as_deref())),
        ),
        Column::new(
            "last_name",
            T::Text,
            get!(DirectoryUser, u => Value::opt_text(u.last_name.as_deref())),
        ),
        Column::new(
            "name",
            T::Text,
            get!(DirectoryUser, u => Value::opt_text(u.name.as_deref())),
        ),
        Column::new(
            "job_title",
            T::Text,
            get!(DirectoryUser, u => Value::opt_text(u.job_title.as_deref())),
        ),
        Column::new(
            "username",
            T::Text,
            get!(DirectoryUser, u => Value::opt_text(u.username.as_deref())),
        ),
        Column::new(
            "state",
            T::Text,
            get!(DirectoryUser, u => Value::opt_text(u.state.as_deref())),
        ),
        Column::new(
            "role_slug",
            T::Text,
            get!(DirectoryUser, u => Value::opt_text(u.role.as_ref().map(|r| r.slug.as_str()))),
        ),
        Column::new(
            "role_slugs",
            T::TextList,
            get!(DirectoryUser, u => Value::TextList(u.role_slugs().into())),
        )
        .not_null(),
        Column::new(
            "raw_attributes",
            T::Json,
            get!(DirectoryUser, u => Value::Json(u.raw_attributes.as_ref())),
        )
        .not_null(),
        Column::new(
            "custom_attributes",
            T::Json,
            get!(DirectoryUser, u => Value::Json(u.custom_attributes.as_ref())),
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
    list_path: Some("/directory_users"),
    event_types: event_type::DIRECTORY_USER_EVENTS,
    key_reused: false,
    own_version: true,
    events_only: false,
    plain_list: false,
    includes: &[],
};
