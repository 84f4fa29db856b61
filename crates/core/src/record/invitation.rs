//! Invitations (AuthKit), declared once: the WorkOS invitation as found in `data` of
//! `invitation.created|accepted|resent|revoked` and in `GET /user_management/invitations`,
//! and its table ([`DECLARATION`]).
//!
//! Secrets: WorkOS's list and get answers carry the invitation's `token` and
//! `accept_invitation_url` (which embeds the token), and WorkOS's emulator even puts the
//! token in its events. Neither is a field here, so both are dropped while decoding and
//! can never be stored or logged.
//!
//! Expiry: there is no `invitation.expired` event, and an invitation's `updated_at` does
//! not move when it expires, so the table keeps the state WorkOS last sent and its
//! `expires_at`; the view `invitation_states` reads a `pending` invitation past
//! `expires_at` as `expired` (migration `…_invitations_connections`).
//!
//! Invitations are never deleted by an event (a revoked one stays, `state = revoked`);
//! an organization's deletion removes its invitations by the parent rule.
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
pub struct Invitation {
    /// WorkOS's object as received ([`Raw`]).
    #[serde(skip)]
    pub raw: Raw,
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    /// As sent: `pending`, `accepted`, `expired`, `revoked`, or a state added later.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub inviter_user_id: Option<String>,
    #[serde(default)]
    pub accepted_user_id: Option<String>,
    #[serde(default)]
    pub role_slug: Option<String>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub accepted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Invitation {
    /// An invitation known only by id (a deletion learnt from the API's 404).
    pub fn stub(id: &str, at: DateTime<Utc>) -> Self {
        Self {
            raw: Default::default(),
            id: id.to_owned(),
            email: None,
            state: None,
            organization_id: None,
            inviter_user_id: None,
            accepted_user_id: None,
            role_slug: None,
            expires_at: None,
            accepted_at: None,
            revoked_at: None,
            created_at: at,
            updated_at: at,
        }
    }
}

pub const DECLARATION: Declaration = Declaration {
    entity: Entity::Invitations,
    table: "invitations",
    key: "id",
    adoptable: false,
    columns: &[
        Column::key("id", get!(Invitation, i => Value::text(&i.id))),
        Column::new(
            "email",
            T::Text,
            get!(Invitation, i => Value::opt_text(i.email.as_deref())),
        ),
        Column::new(
            "state",
            T::Text,
            get!(Invitation, i => Value::opt_text(i.state.as_deref())),
        ),
        Column::new(
            "organization_id",
            T::Text,
            get!(Invitation, i => Value::opt_text(i.organization_id.as_deref())),
        ),
        Column::new(
            "inviter_user_id",
            T::Text,
            get!(Invitation, i => Value::opt_text(i.inviter_user_id.as_deref())),
        ),
        Column::new(
            "accepted_user_id",
            T::Text,
            get!(Invitation, i => Value::opt_text(i.accepted_user_id.as_deref())),
        ),
        Column::new(
            "role_slug",
            T::Text,
            get!(Invitation, i => Value::opt_text(i.role_slug.as_deref())),
        ),
        Column::new(
            "expires_at",
            T::Time,
            get!(Invitation, i => Value::Time(i.expires_at)),
        ),
        Column::new(
            "accepted_at",
            T::Time,
            get!(Invitation, i => Value::Time(i.accepted_at)),
        ),
        Column::new(
            "revoked_at",
            T::Time,
            get!(Invitation, i => Value::Time(i.revoked_at)),
        ),
        Column::RAW,
        Column::CREATED,
        Column::VERSION,
    ],
    parents: &[(Entity::Organizations, "organization_id")],
    delete_setting: None,
    refresh: None,
    app_columns: &[],
    list_path: Some("/user_management/invitations"),
    event_types: event_type::INVITATION_EVENTS,
    key_reused: false,
    own_version: true,
    events_only: false,
    plain_list: true,
    includes: &[],
};
