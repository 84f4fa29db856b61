//! The rest of the WorkOS model as recorded and generated bodies show it
//! (`tests/fixtures/workos/`, provenance in its README) decodes: invitations, SSO
//! connections, AuthKit groups and their memberships, API keys; events into the right
//! record and kind, list answers through `Record::from_object`; and no secret the bodies
//! carry (invitation tokens and accept URLs, connection secrets, external keys) survives
//! into a record.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use workos_sync_core::{Entity, Event, EventKind, Record};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../tests/fixtures/workos/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn events_decode_to_their_entity_and_kind() {
    for (name, entity, delete) in [
        ("invitation.created.sdk-fixture", Entity::Invitations, false),
        (
            "invitation.accepted.sdk-fixture",
            Entity::Invitations,
            false,
        ),
        ("invitation.revoked.sdk-fixture", Entity::Invitations, false),
        (
            "invitation.created.legacy-kotlin",
            Entity::Invitations,
            false,
        ),
        (
            "connection.activated.sdk-fixture",
            Entity::Connections,
            false,
        ),
        (
            "connection.deactivated.sdk-fixture",
            Entity::Connections,
            false,
        ),
        ("connection.deleted.sdk-fixture", Entity::Connections, true),
        ("group.created.sdk-fixture", Entity::Groups, false),
        (
            "group.member_added.sdk-fixture",
            Entity::GroupMemberships,
            false,
        ),
        ("api_key.created.sdk-fixture", Entity::ApiKeys, false),
        ("api_key.revoked.sdk-fixture", Entity::ApiKeys, true),
        ("api_key.created.legacy-kotlin", Entity::ApiKeys, false),
    ] {
        let ev = Event::decode(&fixture(name)).unwrap();
        let r = ev
            .record()
            .unwrap_or_else(|| panic!("{name}: {:?}", ev.kind));
        assert_eq!(r.entity(), entity, "{name}");
        assert_eq!(matches!(ev.kind, EventKind::Delete(_)), delete, "{name}");
        let text = format!("{r:?}");
        for secret in ["ext_01", "token", "secret"] {
            assert!(!text.contains(secret), "{name}: {secret} in {text}");
        }
    }
    let ev = Event::decode(&fixture("group.member_added.sdk-fixture")).unwrap();
    let Some(Record::GroupMembership(m)) = ev.record() else {
        panic!()
    };
    assert_eq!(m.at, Some(ev.created_at), "its version is the event's time");
    let ev = Event::decode(&fixture("connection.activated.sdk-fixture")).unwrap();
    let Some(Record::Connection(c)) = ev.record() else {
        panic!()
    };
    assert_eq!(c.domains, vec!["acme.com".to_owned()]);
    assert_eq!(c.state.as_deref(), Some("active"));
    let ev = Event::decode(&fixture("api_key.created.sdk-fixture")).unwrap();
    let Some(Record::ApiKey(k)) = ev.record() else {
        panic!()
    };
    assert_eq!(k.organization_id(), Some("org_01EHWNCE74X7JSDV0X3SZ3KJNY"));
    assert_eq!(k.obfuscated_value.as_deref(), Some("sk_test_...1234"));
}

#[test]
fn list_answers_decode_without_their_secrets() {
    for (name, entity) in [
        ("invitations.list-response.sdk-fixture", Entity::Invitations),
        (
            "invitations.list-response.node-fixture",
            Entity::Invitations,
        ),
        ("connections.list-response.sdk-fixture", Entity::Connections),
        ("connections.list-response.ruby-vcr", Entity::Connections),
    ] {
        let v: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
        let items = v["data"].as_array().unwrap();
        assert!(!items.is_empty(), "{name}");
        for item in items {
            let r = Record::from_object(entity, &item.to_string()).unwrap();
            assert_eq!(r.entity(), entity);
            let text = format!("{r:?}");
            if let Some(token) = item["token"].as_str() {
                assert!(!text.contains(token), "{name}: the token survived");
            }
            assert!(!text.contains("accept_invitation_url") && !text.contains("secret"));
        }
    }
}
