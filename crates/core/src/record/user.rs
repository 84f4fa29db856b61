//! Users, declared once: the WorkOS user as found in `data` of user events and in API
//! responses, its table's columns and how each is filled ([`DECLARATION`]), and a
//! stored row as reads return it ([`UserRow`]). Adding a field WorkOS sends is a field
//! here, a column in [`DECLARATION`] and in [`UserRow`], plus a migration.
//!
//! Failure model: decoding is serde's; optional fields may be missing or null.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Raw;
use crate::{
    Entity, Record,
    declare::{Clear, Column, ColumnType as T, Declaration, Refresh, Source, Value},
    event_type, get,
};

/// A WorkOS user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// WorkOS's object as received ([`Raw`]).
    #[serde(skip)]
    pub raw: Raw,
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
            raw: Default::default(),
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

/// WorkOS personal data: cleared by a soft delete.
const fn personal(c: Column) -> Column {
    c.cleared(Clear::Empty)
}

pub const DECLARATION: Declaration = Declaration {
    entity: Entity::Users,
    table: "users",
    key: "id",
    adoptable: true,
    columns: &[
        Column::key("id", get!(User, u => Value::text(&u.id))),
        Column::new("email", T::Text, get!(User, u => Value::text(&u.email)))
            .not_null()
            .must_exist()
            .cleared(Clear::Undeliverable),
        personal(Column::new(
            "name",
            T::Text,
            get!(User, u => Value::Text(u.display_name().map(Into::into))),
        )),
        // Set once, when sync creates the row; kept by a soft delete (the application
        // may show it).
        Column::new("usertag", T::Text, get!(User, _u => Value::Text(None)))
            .from(Source::Usertag)
            .not_null()
            .set_once(),
        personal(Column::new(
            "avatar_url",
            T::Text,
            get!(User, u => Value::opt_text(u.profile_picture_url.as_deref())),
        )),
        personal(Column::new(
            "first_name",
            T::Text,
            get!(User, u => Value::opt_text(u.first_name.as_deref())),
        )),
        personal(Column::new(
            "last_name",
            T::Text,
            get!(User, u => Value::opt_text(u.last_name.as_deref())),
        )),
        personal(
            Column::new(
                "email_verified",
                T::Bool,
                get!(User, u => Value::Bool(u.email_verified)),
            )
            .not_null(),
        ),
        personal(Column::new(
            "external_id",
            T::Text,
            get!(User, u => Value::opt_text(u.external_id.as_deref())),
        )),
        personal(
            Column::new(
                "metadata",
                T::Json,
                get!(User, u => Value::Json(u.metadata.as_ref())),
            )
            .not_null(),
        ),
        personal(Column::new(
            "locale",
            T::Text,
            get!(User, u => Value::opt_text(u.locale.as_deref())),
        )),
        personal(Column::new(
            "last_sign_in_at",
            T::Time,
            get!(User, u => Value::Time(u.last_sign_in_at)),
        )),
        // Personal data like the rest; on an adopted table only if asked.
        Column::RAW.cleared(Clear::Empty).asked(),
        Column::CREATED,
        Column::VERSION,
    ],
    parents: &[],
    delete_setting: Some("user_delete"),
    refresh: Some(Refresh {
        column: "last_sign_in_at",
        get: |r| match r {
            Record::User(u) => u.last_sign_in_at,
            _ => None,
        },
        set: |r, t| {
            if let Record::User(u) = r {
                u.last_sign_in_at = Some(t);
            }
        },
    }),
    app_columns: &[("bio", T::Text), ("details", T::Json)],
    list_path: Some("/user_management/users"),
    event_types: event_type::USER_EVENTS,
    key_reused: false,
    own_version: true,
    events_only: false,
    plain_list: false,
    includes: &[],
};

/// A row of `users` as reads return it (the lazy-sync answer, verify): every column of
/// [`DECLARATION`] under our names (an adopted table's are mapped back), the
/// application's `bio` and `details` when the table has them, and the stamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRow {
    pub id: String,
    /// Empty for a user soft-deleted in a table whose email column allows NULL.
    pub email: String,
    pub name: Option<String>,
    /// Empty for an adopted row that had none (sync sets it only when it creates a row).
    pub usertag: String,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    pub details: Option<serde_json::Value>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email_verified: bool,
    pub external_id: Option<String>,
    pub metadata: serde_json::Value,
    pub locale: Option<String>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// NULL only in an adopted table's rows that no event or backfill has reached yet.
    pub workos_created_at: Option<DateTime<Utc>>,
    pub workos_updated_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Set by a soft delete (`sync.user_delete = "soft"`).
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A realistic user event body in WorkOS's current shape, for `send-test-event`, the
/// tests and the benchmarks. The user is `Test User <{user_id}@example.com>`, created at
/// `created_at` and last updated (and the event created) at `updated_at`.
pub fn sample_event(
    event_id: &str,
    event_type: &str,
    user_id: &str,
    created_at: &str,
    updated_at: &str,
) -> String {
    serde_json::json!({
        "object": "event",
        "id": event_id,
        "event": event_type,
        "data": {
            "object": "user",
            "id": user_id,
            "email": format!("{user_id}@example.com"),
            "email_verified": true,
            "first_name": "Test",
            "last_name": "User",
            "profile_picture_url": null,
            "external_id": null,
            "metadata": {},
            "last_sign_in_at": null,
            "locale": "en-US",
            "created_at": created_at,
            "updated_at": updated_at,
        },
        "created_at": updated_at,
        "context": null,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, EventKind};

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/fixtures/workos/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn current_shape_fields() {
        let ev = Event::decode(&fixture("user.created.sdk-fixture.json")).unwrap();
        let EventKind::Upsert(Record::User(u)) = ev.kind else {
            panic!("wrong kind")
        };
        assert_eq!(u.display_name().as_deref(), Some("Marcelina Davis"));
        assert_eq!(u.locale.as_deref(), Some("en-US"));
        assert_eq!(
            u.metadata.unwrap()["timezone"],
            serde_json::json!("America/New_York")
        );
        assert_eq!(ev.created_at.to_rfc3339(), "2026-01-15T12:00:00+00:00");
    }

    #[test]
    fn name_handles_missing_parts() {
        let mut u: User =
            serde_json::from_slice(&fixture("user.get-response.sdk-fixture.json")).unwrap();
        u.first_name = Some("  Ada ".into());
        u.last_name = None;
        assert_eq!(u.display_name().as_deref(), Some("Ada"));
        u.first_name = None;
        assert_eq!(u.display_name(), None);
    }
}
