//! SSO connections, declared once: the WorkOS connection as found in `data` of
//! `connection.activated|deactivated|deleted` (WorkOS's emulator says
//! `connection.created|updated`: both are accepted) and in `GET /connections`, and its
//! table ([`DECLARATION`]).
//!
//! Kept: type, `state` as sent (`draft`, `active`, `inactive`, `validating`,
//! `deleting`…; the deprecated `status` is not kept), organization, name, and the
//! domain names (`domains[].domain`). Nothing secret-shaped is a field: old answers
//! carried `oidc_client_secret`, `oauth_secret`, `saml_relying_party_private_key`…, and
//! the events an `external_key`; all are dropped while decoding. `connection.deleted`
//! removes the row (and tombstones it); an organization's deletion removes its
//! connections by the parent rule.
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
pub struct Connection {
    /// WorkOS's object as received ([`Raw`]).
    #[serde(skip)]
    pub raw: Raw,
    pub id: String,
    #[serde(default)]
    pub organization_id: Option<String>,
    /// `OktaSAML`, `GoogleOAuth`, `GenericOIDC`…
    #[serde(default)]
    pub connection_type: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    /// The domain names of `domains[]` (objects with a `domain`, or plain names).
    #[serde(default, deserialize_with = "super::domain_names")]
    pub domains: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Connection {
    /// A connection known only by id (a deletion learnt from the API's 404).
    pub fn stub(id: &str, at: DateTime<Utc>) -> Self {
        Self {
            raw: Default::default(),
            id: id.to_owned(),
            organization_id: None,
            connection_type: None,
            name: None,
            state: None,
            domains: Vec::new(),
            created_at: at,
            updated_at: at,
        }
    }
}

pub const DECLARATION: Declaration = Declaration {
    entity: Entity::Connections,
    table: "connections",
    key: "id",
    adoptable: false,
    columns: &[
        Column::key("id", get!(Connection, c => Value::text(&c.id))),
        Column::new(
            "organization_id",
            T::Text,
            get!(Connection, c => Value::opt_text(c.organization_id.as_deref())),
        ),
        Column::new(
            "connection_type",
            T::Text,
            get!(Connection, c => Value::opt_text(c.connection_type.as_deref())),
        ),
        Column::new(
            "name",
            T::Text,
            get!(Connection, c => Value::opt_text(c.name.as_deref())),
        ),
        Column::new(
            "state",
            T::Text,
            get!(Connection, c => Value::opt_text(c.state.as_deref())),
        ),
        Column::new(
            "domains",
            T::TextList,
            get!(Connection, c => Value::TextList((&c.domains[..]).into())),
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
    list_path: Some("/connections"),
    event_types: event_type::CONNECTION_EVENTS,
    key_reused: false,
    own_version: true,
    events_only: false,
    plain_list: true,
    includes: &[],
};
