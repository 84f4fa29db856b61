//! The WorkOS organization domain, as found in `data` of `organization_domain.*` events
//! and in an organization's `domains[]`.
//!
//! `verification_token` is a secret (whoever holds it can prove the domain): it is not a
//! field of [`Domain`], so serde skips it while decoding and it is never stored, logged
//! or returned.
//!
//! Failure model: decoding is serde's; optional fields may be missing or null.

use super::Raw;
use crate::{
    Entity,
    declare::{Column, ColumnType as T, Declaration, Value},
    event_type, get,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// WorkOS's object as received ([`Raw`]).
    #[serde(skip)]
    pub raw: Raw,
    pub id: String,
    /// Absent in some organization objects' `domains[]`: filled from the organization.
    #[serde(default)]
    pub organization_id: String,
    pub domain: String,
    /// `pending`, `verified`, `failed`, `legacy_verified`… (kept as sent).
    #[serde(default)]
    pub state: Option<String>,
    /// `dns` or `manual` (kept as sent).
    #[serde(default)]
    pub verification_strategy: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// Domains come with their organization's object and list (no list of their own).
pub const DECLARATION: Declaration = Declaration {
    entity: Entity::OrganizationDomains,
    table: "organization_domains",
    key: "id",
    adoptable: false,
    columns: &[
        Column::key("id", get!(Domain, d => Value::text(&d.id))),
        Column::new(
            "organization_id",
            T::Text,
            get!(Domain, d => Value::text(&d.organization_id)),
        )
        .not_null(),
        Column::new("domain", T::Text, get!(Domain, d => Value::text(&d.domain))).not_null(),
        Column::new(
            "state",
            T::Text,
            get!(Domain, d => Value::opt_text(d.state.as_deref())),
        ),
        Column::new(
            "verification_strategy",
            T::Text,
            get!(Domain, d => Value::opt_text(d.verification_strategy.as_deref())),
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
    event_types: event_type::DOMAIN_EVENTS,
    key_reused: false,
    own_version: true,
    events_only: false,
    plain_list: false,
    includes: &[],
};
