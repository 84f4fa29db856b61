//! WorkOS roles and permissions, as found in `data` of `role.*`, `organization_role.*`
//! and `permission.*` events and in the authorization API's lists.
//!
//! The SDKs have dropped fields of these before (`id`, `organization_id`, the
//! timestamps), so only `slug` is required. A role is keyed by its slug within its
//! scope ([`Role::key`]): an environment role `admin` and organization `org_1`'s role
//! `admin` are two rows. A permission is keyed by its slug (unique per environment).
//!
//! Failure model: decoding is serde's; an `organization_role.*` event without an
//! `organization_id` cannot be keyed and is refused by the event decoder.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
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

/// A list of slugs, given as strings or as objects with a `slug`; null is empty.
fn slugs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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
