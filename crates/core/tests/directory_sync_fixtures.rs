//! Every Directory Sync fixture WorkOS's SDKs, spec and recorded responses show
//! (`tests/fixtures/workos/`, provenance in its README) decodes: events into the right
//! record and kind (old and new shapes, both state vocabularies, nulls where the spec
//! allows none), API objects and list pages into records.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use workos_sync_core::{
    Directory, DirectoryGroup, DirectoryUser, Entity, Event, EventKind, Record,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/workos/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixtures(prefix: &str) -> Vec<String> {
    let dir = format!("{}/../../tests/fixtures/workos", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_dsync_event_fixture_decodes_to_its_record() {
    let names = fixtures("dsync.");
    assert!(names.len() >= 20, "{names:?}");
    for name in names {
        let mut body: serde_json::Value = serde_json::from_slice(&fixture(&name)).unwrap();
        // One fixture (a hand-written SDK test body) has no envelope created_at; the
        // decoder rightly needs one for a delete.
        if body.get("created_at").is_none() {
            body["created_at"] = "2026-01-15T12:00:00.000Z".into();
        }
        let ev =
            Event::decode(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let r = ev.record().unwrap_or_else(|| panic!("{name}: no record"));
        let want = match ev.event_type.as_str() {
            "dsync.activated" | "dsync.deleted" | "dsync.deactivated" => Entity::Directories,
            t if t.starts_with("dsync.user.") => Entity::DirectoryUsers,
            "dsync.group.user_added" | "dsync.group.user_removed" => {
                Entity::DirectoryGroupMemberships
            }
            t if t.starts_with("dsync.group.") => Entity::DirectoryGroups,
            other => panic!("{name}: {other}"),
        };
        assert_eq!(r.entity(), want, "{name}");
        let deleted = ev.event_type.ends_with(".deleted") || ev.event_type.ends_with("_removed");
        assert_eq!(matches!(ev.kind, EventKind::Delete(_)), deleted, "{name}");
        assert!(!r.key().is_empty() && !r.key_unknown(), "{name}");
        if let Record::DirectoryMembership(m) = r {
            // Versioned by the event's own time.
            assert_eq!(m.at, Some(ev.created_at), "{name}");
            assert!(!m.directory_id.is_empty(), "{name}");
        }
    }
}

#[test]
fn states_of_both_vocabularies_and_nulls_are_kept_as_sent() {
    let ev = Event::decode(&fixture("dsync.activated.legacy-kotlin.json")).unwrap();
    let Some(Record::Directory(d)) = ev.record() else {
        panic!("not a directory")
    };
    assert_eq!(d.state.as_deref(), Some("linked"));
    let ev = Event::decode(&fixture("dsync.activated.sdk-fixture.json")).unwrap();
    let Some(Record::Directory(d)) = ev.record() else {
        panic!("not a directory")
    };
    assert_eq!(d.state.as_deref(), Some("active"));
    assert_eq!(d.domain_names(), ["acme.com"]);
    let u: DirectoryUser =
        serde_json::from_slice(&fixture("directory_user.nulls.dotnet-fixture.json")).unwrap();
    assert_eq!(u.email, None);
    assert!(u.roles.is_empty() && u.role.is_none());
    let ev = Event::decode(&fixture("dsync.user.updated.legacy-rust.json")).unwrap();
    let Some(Record::DirectoryUser(u)) = ev.record() else {
        panic!("not a directory user")
    };
    assert_eq!(u.state.as_deref(), Some("suspended"));
}

/// A list page's `data` as records of `T`.
fn page<T: serde::de::DeserializeOwned>(name: &str) -> Vec<T> {
    let v: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
    serde_json::from_value(v["data"].clone()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn list_responses_decode_old_and_new() {
    for name in fixtures("directories.") {
        let d: Vec<Directory> = page(&name);
        assert!(!d.is_empty(), "{name}");
    }
    for name in fixtures("directory_groups.") {
        let g: Vec<DirectoryGroup> = page(&name);
        assert!(g.iter().all(|g| !g.directory_id.is_empty()), "{name}");
    }
    for name in fixtures("directory_users.") {
        let u: Vec<DirectoryUser> = page(&name);
        assert!(u.iter().all(|u| !u.directory_id.is_empty()), "{name}");
    }
    let d: Vec<Directory> = page("directories.list-response.sdk-fixture.json");
    assert_eq!(d[0].state.as_deref(), Some("linked"));
    assert_eq!(d[0].domain_names(), ["foo-corp.com"]);
}
