//! The WorkOS user, as found in `data` of user events and in API responses.
//!
//! Failure model: decoding is serde's; optional fields may be missing or null.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A WorkOS user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub profile_picture_url: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub last_sign_in_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub locale: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// A user known only by id (a deletion learnt from the API's 404), stamped `at`.
    pub fn stub(id: &str, at: DateTime<Utc>) -> Self {
        Self {
            id: id.to_owned(),
            email: String::new(),
            email_verified: false,
            first_name: None,
            last_name: None,
            name: None,
            profile_picture_url: None,
            external_id: None,
            metadata: None,
            last_sign_in_at: None,
            locale: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// First and last name joined by a space and trimmed; `None` when both are empty.
    pub fn display_name(&self) -> Option<String> {
        let joined = format!(
            "{} {}",
            self.first_name.as_deref().unwrap_or("").trim(),
            self.last_name.as_deref().unwrap_or("").trim()
        );
        let joined = joined.trim();
        (!joined.is_empty()).then(|| joined.to_owned())
    }
}
