//! The WorkOS organization domain, as found in `data` of `organization_domain.*` events
//! and in an organization's `domains[]`.
//!
//! `verification_token` is a secret (whoever holds it can prove the domain): it is not a
//! field of [`Domain`], so serde skips it while decoding and it is never stored, logged
//! or returned.
//!
//! Failure model: decoding is serde's; optional fields may be missing or null.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
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
