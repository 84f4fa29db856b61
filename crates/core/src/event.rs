//! The WorkOS event model: the envelope the receiver needs (id and type) and the full
//! decode the worker applies.
//!
//! Decoding is tolerant by design: unknown fields are ignored, `context` may be absent or
//! null, optional user fields may be missing, and the oldest bodies have no `id` (their id
//! becomes a hash of the raw bytes, so a redelivery of the same bytes dedupes). Unknown
//! event types decode fine and are reported as [`EventKind::Other`]. A body that is not a
//! JSON object with a string `event` is a [`DecodeError`], which the receiver answers
//! with 400 and the worker dead-letters.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{
    entity::Entity,
    event_type,
    record::{Domain, Organization, Raw, Record, Role, User},
};
use serde_json::value::RawValue;

/// Why a body could not be decoded. Always permanent: retrying the same bytes fails again.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("body is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("event type is empty")]
    EmptyType,
    #[error("event {id} has no usable {entity} record in data: {reason}")]
    BadRecord {
        id: String,
        entity: Entity,
        reason: String,
    },
    #[error("event {0} has no created_at")]
    MissingCreatedAt(String),
    /// The id and the type travel as AMQP short strings (message id, type, routing key),
    /// which hold [`MAX_FIELD_BYTES`] bytes; WorkOS's are a few dozen.
    #[error("event {field} is longer than {MAX_FIELD_BYTES} bytes")]
    FieldTooLong { field: &'static str },
}

/// Longest event id or type accepted: an AMQP short string.
pub const MAX_FIELD_BYTES: usize = 255;

/// Refuses an id or type that could not travel in the message properties.
fn check_lengths(id: &str, event_type: &str) -> Result<(), DecodeError> {
    if id.len() > MAX_FIELD_BYTES {
        return Err(DecodeError::FieldTooLong { field: "id" });
    }
    if event_type.len() > MAX_FIELD_BYTES {
        return Err(DecodeError::FieldTooLong { field: "type" });
    }
    Ok(())
}

/// The part of the body the receiver reads after verifying: enough to route and label.
/// The id and type borrow from the body unless it escaped them (or the id is a hash),
/// so reading them allocates nothing on the receiver's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub id: Cow<'a, str>,
    pub event_type: Cow<'a, str>,
    /// True when the body had no `id` and [`Envelope::id`] is a body hash.
    pub id_from_hash: bool,
}

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(default, borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    event: Text<'a>,
}

/// A JSON string borrowed from the body when it holds no escapes. (serde borrows a
/// `Cow<str>` only where it is a field's whole type, so `Option` needs this wrapper.)
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// The id used for a body without `id`: `sha256:<hex of the raw bytes>`.
pub fn body_hash_id(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

impl<'a> Envelope<'a> {
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let raw: RawEnvelope<'a> = serde_json::from_slice(body)?;
        let event_type = raw.event.0;
        if event_type.trim().is_empty() {
            return Err(DecodeError::EmptyType);
        }
        let (id, id_from_hash) = match raw.id.map(|t| t.0).filter(|id| !id.trim().is_empty()) {
            Some(id) => (id, false),
            None => (Cow::Owned(body_hash_id(body)), true),
        };
        check_lengths(&id, &event_type)?;
        Ok(Self {
            id,
            event_type,
            id_from_hash,
        })
    }
}

/// A realistic user event body in WorkOS's current shape (declared with users).
pub use crate::record::user::sample_event as sample_user_event;

/// What an event asks the store to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A `*.created`, `*.updated` (or domain `verified` / `verification_failed`) event:
    /// insert, or update under the version guard.
    Upsert(Record),
    /// A `*.deleted` event: the record as last sent; the deletion time is the event's
    /// `created_at`. Final: the key is tombstoned.
    Delete(Record),
    /// The object as the WorkOS API returns it now (lazy sync, backfill). Applied like an
    /// update, under the same version guard, but never deduplicated or recorded by id:
    /// a snapshot is idempotent by its `updated_at`, and it must be able to restore a
    /// row the application removed by hand.
    Snapshot(Record),
    /// Any other event type: verified and recorded as ignored.
    Other,
}

/// A fully decoded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    pub kind: EventKind,
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(default)]
    id: Option<String>,
    event: String,
    /// Kept as raw text and parsed once, straight into the entity's type.
    #[serde(default, borrow)]
    data: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
}

/// Decodes `data` of an event of `entity` (typed `event_type`), keeping the object as
/// received ([`crate::record::Raw`]; a domain's within an organization too).
fn decode_record(entity: Entity, event_type: &str, data: &RawValue) -> Result<Record, String> {
    let e = |e: serde_json::Error| e.to_string();
    let text = data.get();
    let mut record = match entity {
        Entity::Users => Record::User(serde_json::from_str(text).map_err(e)?),
        Entity::Organizations => {
            let mut org: Organization = serde_json::from_str(text).map_err(e)?;
            for d in &mut org.domains {
                if d.organization_id.is_empty() {
                    d.organization_id.clone_from(&org.id);
                }
            }
            if !org.domains.is_empty() {
                #[derive(Deserialize)]
                struct Domains<'a> {
                    #[serde(default, borrow)]
                    domains: Option<Vec<&'a RawValue>>,
                }
                if let Ok(Domains {
                    domains: Some(raws),
                }) = serde_json::from_str(text)
                {
                    for (d, raw) in org.domains.iter_mut().zip(raws) {
                        d.raw = Raw::of(raw);
                    }
                }
            }
            Record::Organization(org)
        }
        Entity::OrganizationDomains => {
            // `organization_domain.verification_failed` wraps the domain:
            // `{"reason", "organization_domain": {...}}`; the others carry it bare. The
            // raw object is the domain's either way.
            #[derive(Deserialize)]
            struct Wrapped<'a> {
                #[serde(borrow)]
                organization_domain: &'a RawValue,
            }
            let inner = match serde_json::from_str::<Wrapped>(text) {
                Ok(w) => w.organization_domain,
                Err(_) => data,
            };
            let d: Domain = serde_json::from_str(inner.get()).map_err(e)?;
            if d.organization_id.is_empty() {
                return Err("organization domain without organization_id".into());
            }
            let mut r = Record::Domain(d);
            r.set_raw(Raw::of(inner));
            return Ok(r);
        }
        Entity::OrganizationMemberships => {
            Record::Membership(serde_json::from_str(text).map_err(e)?)
        }
        Entity::Roles => {
            let mut role: Role = serde_json::from_str(text).map_err(e)?;
            if event_type.starts_with("organization_role.") {
                if role.organization_id.as_deref().is_none_or(str::is_empty) {
                    return Err("organization role without organization_id".into());
                }
            } else {
                // An environment role: its key is its slug alone, whatever else is sent.
                role.organization_id = None;
            }
            Record::Role(role)
        }
        Entity::Permissions => Record::Permission(serde_json::from_str(text).map_err(e)?),
        Entity::Directories => Record::Directory(serde_json::from_str(text).map_err(e)?),
        Entity::DirectoryUsers => Record::DirectoryUser(serde_json::from_str(text).map_err(e)?),
        Entity::DirectoryGroups => Record::DirectoryGroup(serde_json::from_str(text).map_err(e)?),
        // Its version is the event's time, filled in by the caller.
        Entity::DirectoryGroupMemberships => {
            Record::DirectoryMembership(serde_json::from_str(text).map_err(e)?)
        }
        Entity::Invitations => Record::Invitation(serde_json::from_str(text).map_err(e)?),
        Entity::Connections => Record::Connection(serde_json::from_str(text).map_err(e)?),
        Entity::Groups => Record::Group(serde_json::from_str(text).map_err(e)?),
        // Its version is the event's time, filled in by the caller.
        Entity::GroupMemberships => Record::GroupMembership(serde_json::from_str(text).map_err(e)?),
        Entity::ApiKeys => Record::ApiKey(serde_json::from_str(text).map_err(e)?),
    };
    record.set_raw(Raw::of(data));
    Ok(record)
}

impl Record {
    /// One WorkOS object of `entity`, as its list or get answer holds it (the same
    /// decoding as an event's `data`: unknown fields, secrets among them, are dropped
    /// from the typed fields; the object minus its secrets is kept as its raw object).
    pub fn from_object(entity: Entity, json: &str) -> Result<Record, String> {
        let data: &RawValue = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Self::from_raw(entity, data)
    }

    /// [`Record::from_object`] of an object already split out of its answer.
    pub fn from_raw(entity: Entity, data: &RawValue) -> Result<Record, String> {
        decode_record(entity, "", data)
    }
}

impl Event {
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let raw: RawEvent = serde_json::from_slice(body)?;
        if raw.event.trim().is_empty() {
            return Err(DecodeError::EmptyType);
        }
        let id = match raw.id.filter(|id| !id.trim().is_empty()) {
            Some(id) => id,
            None => body_hash_id(body),
        };
        check_lengths(&id, &raw.event)?;
        let Some(entity) = Entity::of_event_type(&raw.event) else {
            return Ok(Self {
                created_at: raw.created_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                id,
                event_type: raw.event,
                kind: EventKind::Other,
            });
        };
        let null = serde_json::value::RawValue::NULL;
        let data = raw.data.unwrap_or(null);
        let text = data.get();
        let delete = event_type::DELETIONS.contains(&raw.event.as_str());
        let bad = |reason| DecodeError::BadRecord {
            id: id.clone(),
            entity,
            reason,
        };
        let mut record = match (decode_record(entity, &raw.event, data), raw.created_at) {
            (Ok(r), _) => r,
            // A delete needs only the key: a trimmed `data` still deletes.
            (Err(full), Some(at)) if delete => {
                let org_role = raw.event.starts_with("organization_role.");
                Record::key_only(entity, org_role, text, at)
                    .map_err(|key| bad(format!("{full}; as a key only: {key}")))?
            }
            (Err(reason), _) => return Err(bad(reason)),
        };
        let created_at = match raw.created_at {
            Some(t) => t,
            // A deletion time is needed for the tombstone; other events can fall back to
            // the record's updated_at.
            None if delete => return Err(DecodeError::MissingCreatedAt(id)),
            None => record.updated_at(),
        };
        record.fill_version(created_at);
        Ok(Self {
            id,
            event_type: raw.event,
            created_at,
            kind: if delete {
                EventKind::Delete(record)
            } else {
                EventKind::Upsert(record)
            },
        })
    }

    /// An object as the WorkOS API returns it now (lazy sync, backfill), as an event for
    /// the store: see [`EventKind::Snapshot`].
    pub fn snapshot(record: Record) -> Self {
        let (prefix, event_type) = match record.entity() {
            Entity::Users => ("sync", event_type::USER_SNAPSHOT),
            e => (e.name(), event_type::SNAPSHOT),
        };
        Self {
            id: format!(
                "{prefix}:{}:{}",
                record.key(),
                record.updated_at().timestamp_millis()
            ),
            event_type: event_type.into(),
            created_at: Utc::now(),
            kind: EventKind::Snapshot(record),
        }
    }

    /// A user as the WorkOS API returns it now: [`Event::snapshot`] of a user.
    pub fn user_snapshot(user: User) -> Self {
        Self::snapshot(Record::User(user))
    }

    /// The record this event carries (none for other types).
    pub fn record(&self) -> Option<&Record> {
        match &self.kind {
            EventKind::Upsert(r) | EventKind::Delete(r) | EventKind::Snapshot(r) => Some(r),
            EventKind::Other => None,
        }
    }

    /// The WorkOS user this event is about: a user event's user, a membership event's.
    pub fn user_id(&self) -> Option<&str> {
        self.record().and_then(Record::user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/fixtures/workos/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn the_envelope_borrows_plain_strings_and_unescapes_escaped_ones() {
        let plain = br#"{"id":"event_1","event":"user.created","data":{}}"#;
        let env = Envelope::decode(plain).unwrap();
        assert!(matches!(env.id, Cow::Borrowed("event_1")), "{env:?}");
        assert!(
            matches!(env.event_type, Cow::Borrowed("user.created")),
            "{env:?}"
        );
        let escaped = br#"{"id":"event_\u0031","event":"user.\u0063reated","data":{}}"#;
        let env = Envelope::decode(escaped).unwrap();
        assert_eq!(env.id, "event_1");
        assert_eq!(env.event_type, "user.created");
        assert!(!env.id_from_hash);
        // A missing or blank id still becomes the body's hash, an owned string.
        let env = Envelope::decode(br#"{"id":" ","event":"user.created"}"#).unwrap();
        assert!(env.id_from_hash && env.id.starts_with("sha256:"));
    }

    #[test]
    fn a_deletion_carrying_only_its_key_is_a_delete_of_every_entity() {
        for (ty, data, key) in [
            (
                "user.deleted",
                r#"{"object":"user","id":"user_1"}"#,
                "user_1",
            ),
            (
                "organization.deleted",
                r#"{"object":"organization","id":"org_1"}"#,
                "org_1",
            ),
            (
                "organization_domain.deleted",
                r#"{"id":"org_domain_1"}"#,
                "org_domain_1",
            ),
            (
                "organization_membership.deleted",
                r#"{"id":"om_1"}"#,
                "om_1",
            ),
            (
                "role.deleted",
                r#"{"object":"role","slug":"admin"}"#,
                "admin",
            ),
            (
                "organization_role.deleted",
                r#"{"slug":"admin","organization_id":"org_1"}"#,
                "org_1:admin",
            ),
            ("permission.deleted", r#"{"slug":"read"}"#, "read"),
        ] {
            let body = format!(
                r#"{{"id":"event_1","event":"{ty}","data":{data},"created_at":"2026-01-15T12:00:00.000Z"}}"#
            );
            let ev = Event::decode(body.as_bytes()).unwrap();
            match &ev.kind {
                EventKind::Delete(r) => assert_eq!(r.key(), key, "{ty}"),
                other => panic!("{ty}: {other:?}"),
            }
        }
        // An update still needs the whole object, and a deletion its key.
        for body in [
            r#"{"id":"e","event":"user.updated","data":{"object":"user","id":"user_1"},"created_at":"2026-01-15T12:00:00.000Z"}"#,
            r#"{"id":"e","event":"user.deleted","data":{"object":"user"},"created_at":"2026-01-15T12:00:00.000Z"}"#,
        ] {
            assert!(matches!(
                Event::decode(body.as_bytes()),
                Err(DecodeError::BadRecord { .. })
            ));
        }
    }

    #[test]
    fn decodes_every_user_fixture() {
        for (file, ty) in [
            ("user.created.sdk-fixture.json", "user.created"),
            ("user.updated.sdk-fixture.json", "user.updated"),
            ("user.deleted.sdk-fixture.json", "user.deleted"),
            (
                "user.updated.context-null.dotnet-fixture.json",
                "user.updated",
            ),
            ("user.created.legacy-kotlin.json", "user.created"),
            ("user.deleted.legacy-kotlin.json", "user.deleted"),
        ] {
            let body = fixture(file);
            let env = Envelope::decode(&body).unwrap();
            assert_eq!(env.event_type, ty, "{file}");
            let ev = Event::decode(&body).unwrap();
            assert_eq!(ev.id, env.id);
            assert!(
                ev.user_id().is_some_and(|id| id.starts_with("user_")),
                "{file}"
            );
        }
    }

    #[test]
    fn legacy_wh_id_kept() {
        let body = fixture("user.created.legacy-kotlin.json");
        let env = Envelope::decode(&body).unwrap();
        assert_eq!(env.id, "wh_01FMXJ2W7T9VY7EAHHMBF2K07Y");
        assert!(!env.id_from_hash);
    }

    #[test]
    fn membership_fixtures() {
        for (file, delete) in [
            ("organization_membership.created.sdk-fixture.json", false),
            ("organization_membership.updated.sdk-fixture.json", false),
            ("organization_membership.deleted.sdk-fixture.json", true),
        ] {
            let ev = Event::decode(&fixture(file)).unwrap();
            let (EventKind::Upsert(Record::Membership(m))
            | EventKind::Delete(Record::Membership(m))) = &ev.kind
            else {
                panic!("{file}: {:?}", ev.kind)
            };
            assert_eq!(matches!(ev.kind, EventKind::Delete(_)), delete, "{file}");
            assert!(
                m.id.starts_with("om_") && m.user_id.starts_with("user_"),
                "{file}"
            );
            assert!(m.organization_id.starts_with("org_"), "{file}");
            assert_eq!(m.role_slugs(), vec!["admin".to_string()], "{file}");
            assert_eq!(ev.user_id(), Some(m.user_id.as_str()));
        }
        let other = br#"{"id":"event_c","event":"session.created","data":{}}"#;
        assert_eq!(Event::decode(other).unwrap().kind, EventKind::Other);
    }

    #[test]
    fn no_id_uses_body_hash() {
        let a = br#"{"event":"user.created","data":{"id":"user_1","email":"a@b.c","created_at":"2021-01-01T00:00:00.000Z","updated_at":"2021-01-01T00:00:00.000Z"}}"#;
        let env = Envelope::decode(a).unwrap();
        assert!(env.id_from_hash);
        assert!(env.id.starts_with("sha256:"));
        assert_eq!(Event::decode(a).unwrap().id, env.id);
        // Different bytes, different id.
        let b = br#"{"event":"user.created","data":{"id":"user_1","email":"a@b.c","created_at":"2021-01-01T00:00:00.000Z","updated_at":"2021-01-01T00:00:00.001Z"}}"#;
        assert_ne!(Envelope::decode(b).unwrap().id, env.id);
    }

    #[test]
    fn rejects_non_events() {
        for body in [
            &b"not json"[..],
            b"[]",
            b"{}",
            b"{\"event\":5}",
            b"{\"event\":\"\"}",
        ] {
            assert!(Envelope::decode(body).is_err(), "{body:?}");
        }
        // A user event whose data is not a user is a permanent decode error.
        let bad = br#"{"id":"event_1","event":"user.updated","data":{"id":"user_1"}}"#;
        assert!(matches!(
            Event::decode(bad),
            Err(DecodeError::BadRecord { .. })
        ));
    }

    #[test]
    fn ids_and_types_fit_a_short_string() {
        let body = |id: &str, ty: &str| {
            sample_user_event(
                id,
                ty,
                "user_1",
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:00Z",
            )
        };
        let long = "e".repeat(MAX_FIELD_BYTES + 1);
        let fits = "e".repeat(MAX_FIELD_BYTES);
        assert!(Envelope::decode(body(&fits, "user.created").as_bytes()).is_ok());
        assert!(Event::decode(body(&fits, "user.created").as_bytes()).is_ok());
        for (id, ty, field) in [
            (long.as_str(), "user.created", "id"),
            ("e1", long.as_str(), "type"),
        ] {
            let b = body(id, ty);
            for r in [
                Envelope::decode(b.as_bytes()).err(),
                Event::decode(b.as_bytes()).err(),
            ] {
                assert!(
                    matches!(r, Some(DecodeError::FieldTooLong { field: f }) if f == field),
                    "{r:?}"
                );
            }
        }
    }
}
