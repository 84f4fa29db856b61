//! The WorkOS organization, as found in `data` of `organization.*` events and in API
//! responses. Its `domains[]` are organization domains (see [`super::Domain`]); the
//! verification token they may carry is a secret and is dropped while decoding.
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

use super::Domain;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// WorkOS's object as received ([`Raw`]).
    #[serde(skip)]
    pub raw: Raw,
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub stripe_customer_id: Option<String>,
    #[serde(default)]
    pub allow_profiles_outside_organization: Option<bool>,
    /// The organization's domains as the organization object lists them. Webhooks of
    /// an organization apply them too (each under its own version guard).
    #[serde(default, deserialize_with = "super::null_as_default")]
    pub domains: Vec<Domain>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Organization {
    /// An organization known only by id (a deletion learnt from the API's 404).
    pub fn stub(id: &str, at: DateTime<Utc>) -> Self {
        Self {
            raw: Default::default(),
            id: id.to_owned(),
            name: String::new(),
            external_id: None,
            metadata: None,
            stripe_customer_id: None,
            allow_profiles_outside_organization: None,
            domains: Vec::new(),
            created_at: at,
            updated_at: at,
        }
    }
}

pub const DECLARATION: Declaration = Declaration {
    entity: Entity::Organizations,
    table: "organizations",
    key: "id",
    adoptable: false,
    columns: &[
        Column::key("id", get!(Organization, o => Value::text(&o.id))),
        Column::new(
            "name",
            T::Text,
            get!(Organization, o => Value::text(&o.name)),
        )
        .not_null(),
        Column::new(
            "external_id",
            T::Text,
            get!(Organization, o => Value::opt_text(o.external_id.as_deref())),
        ),
        Column::new(
            "metadata",
            T::Json,
            get!(Organization, o => Value::Json(o.metadata.as_ref())),
        )
        .not_null(),
        Column::new(
            "stripe_customer_id",
            T::Text,
            get!(Organization, o => Value::opt_text(o.stripe_customer_id.as_deref())),
        ),
        Column::RAW,
        Column::CREATED,
        Column::VERSION,
    ],
    parents: &[],
    delete_setting: Some("organization_delete"),
    refresh: None,
    app_columns: &[],
    list_path: Some("/organizations"),
    event_types: event_type::ORGANIZATION_EVENTS,
    key_reused: false,
    own_version: true,
    events_only: false,
    plain_list: false,
    includes: &[],
};
