//! The WorkOS organization membership, as found in `data` of `organization_membership.*`
//! events and in API responses: one user in one organization, with a status and roles.
//! WorkOS holds at most one membership per user and organization.
//!
//! Failure model: decoding is serde's; optional fields may be missing or null.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A role as a membership names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRef {
    pub slug: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
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
