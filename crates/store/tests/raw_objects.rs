//! The raw object on every synced table, against a real Postgres: every fixture event of
//! WorkOS's (real shapes, `tests/fixtures/workos/`) and one made for each entity no
//! fixture covers, each with a field WorkOS might add tomorrow, applied through the one
//! apply step; each row's `raw` holds the object as received, the new field included and
//! its secrets removed; an organization's domains keep their own objects; a newer
//! version replaces the raw object and an older one does not; a soft-deleted user's raw
//! object (personal data) is cleared. Each test in its own fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::collections::BTreeSet;

use serde_json::{Value, json};
use workos_sync_core::{Entity, Event, EventKind, event_type};
use workos_sync_testkit::{
    fresh_database,
    history::{body, ts},
};

/// A field no WorkOS object has today.
fn tomorrow() -> Value {
    json!({"added": "tomorrow", "n": [1, 2]})
}

/// Every fixture event that creates or updates an object, with [`tomorrow`] in `data`.
fn fixture_events() -> Vec<(String, Event)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/workos");
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    for name in names {
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{name}")).unwrap())
                .unwrap();
        let Some(ty) = v.get("event").and_then(Value::as_str).map(str::to_owned) else {
            continue; // a list or get answer
        };
        if event_type::DELETIONS.contains(&ty.as_str()) || Entity::of_event_type(&ty).is_none() {
            continue;
        }
        v["data"]["future_field"] = tomorrow();
        // Fixtures of one SDK share event ids: each its own, so none is a duplicate.
        v["id"] = json!(format!("evt_raw_{}", out.len()));
        let event = Event::decode(v.to_string().as_bytes()).unwrap();
        out.push((name, event));
    }
    out
}

/// One event for each entity no fixture creates or updates (and the domain wrapped as
/// `verification_failed` sends it).
fn made_events() -> Vec<Event> {
    let f = tomorrow();
    vec![
        body(
            "evt_raw_org",
            "organization.created",
            json!({"object": "organization", "id": "org_raw", "name": "Raw",
                   "domains": [{"object": "organization_domain", "id": "org_domain_raw",
                                "domain": "raw.example", "state": "pending",
                                "verification_token": "SECRET-VERIFY", "future_field": f}],
                   "future_field": f, "created_at": ts(0), "updated_at": ts(1)}),
            1,
        ),
        body(
            "evt_raw_domain",
            "organization_domain.verification_failed",
            json!({"reason": "domain_verification_period_expired",
                   "organization_domain": {"object": "organization_domain",
                        "id": "org_domain_failed", "organization_id": "org_raw",
                        "domain": "failed.example", "state": "failed",
                        "verification_token": "SECRET-VERIFY", "future_field": f,
                        "created_at": ts(0), "updated_at": ts(2)}}),
            2,
        ),
        body(
            "evt_raw_role",
            "role.created",
            json!({"object": "role", "slug": "raw_admin", "name": "Raw admin",
                   "permissions": ["raw:read"], "future_field": f,
                   "created_at": ts(0), "updated_at": ts(1)}),
            1,
        ),
        body(
            "evt_raw_org_role",
            "organization_role.created",
            json!({"object": "role", "slug": "raw_org_admin", "organization_id": "org_raw",
                   "permissions": [], "future_field": f,
                   "created_at": ts(0), "updated_at": ts(1)}),
            1,
        ),
        body(
            "evt_raw_permission",
            "permission.created",
            json!({"object": "permission", "id": "perm_raw", "slug": "raw:read",
                   "name": "Read", "future_field": f, "created_at": ts(0), "updated_at": ts(1)}),
            1,
        ),
    ]
}

/// The `raw` of `entity`'s row with `key`.
async fn raw_of(db: &workos_sync_testkit::TestDb, entity: Entity, key: &str) -> Option<Value> {
    let d = entity.declaration();
    let rows = db
        .rows(&format!(
            "SELECT raw FROM {} WHERE {} = '{}'",
            d.table,
            d.key,
            key.replace('\'', "''")
        ))
        .await
        .unwrap();
    rows.into_iter().next().map(|r| r["raw"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_keeps_the_object_as_received_without_its_secrets() {
    let db = fresh_database().await.unwrap();
    let mut events: Vec<(String, Event)> = fixture_events();
    events.extend(made_events().into_iter().map(|e| (e.id.clone(), e)));
    let mut covered = BTreeSet::new();
    let mut records = Vec::new();
    for (name, e) in &events {
        db.store.apply(e).await.unwrap();
        let EventKind::Upsert(r) = &e.kind else {
            panic!("{name}: not an upsert")
        };
        records.push((name.clone(), r.clone()));
        if let workos_sync_core::Record::Organization(o) = r {
            for d in &o.domains {
                records.push((
                    format!("{name} (domain)"),
                    workos_sync_core::Record::Domain(d.clone()),
                ));
            }
        }
    }
    for (name, r) in &records {
        let Some(raw) = raw_of(&db, r.entity(), &r.key()).await else {
            // An older fixture of the same object lost to a newer one's key: none here.
            panic!("{name}: no {} row {}", r.entity(), r.key())
        };
        assert_eq!(raw["future_field"], tomorrow(), "{name}: {raw}");
        covered.insert(r.entity());
    }
    let all: BTreeSet<Entity> = Entity::ALL.into_iter().collect();
    assert_eq!(covered, all, "every entity's table");
    // The object as sent: the wrapped domain's own object, the nested domain's own.
    let failed = raw_of(&db, Entity::OrganizationDomains, "org_domain_failed")
        .await
        .unwrap();
    assert_eq!(failed["domain"], "failed.example");
    assert!(failed.get("reason").is_none(), "{failed}");
    let nested = raw_of(&db, Entity::OrganizationDomains, "org_domain_raw")
        .await
        .unwrap();
    assert_eq!(nested["domain"], "raw.example");
    let org = raw_of(&db, Entity::Organizations, "org_raw").await.unwrap();
    assert_eq!(org["domains"][0]["domain"], "raw.example");
    // No secret in any table (the invitation fixtures carry tokens and accept URLs, the
    // domains their verification tokens, the API key fixtures their full values).
    for secret in [
        "SECRET-VERIFY",
        "\"token\"",
        "accept_invitation_url",
        "verification_token",
    ] {
        let found = db.rows_matching(&regex_escape(secret)).await.unwrap();
        assert!(found.is_empty(), "{secret} stored: {found:?}");
    }
    db.teardown().await.unwrap();
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

fn user(id: &str, v: i64, extra: &str) -> Value {
    json!({"object": "user", "id": id, "email": format!("{id}@example.com"),
           "first_name": "Raw", "last_name": "User", "email_verified": true,
           "profile_picture_url": null, "metadata": {}, "extra": extra,
           "created_at": ts(0), "updated_at": ts(v)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_object_wins_and_a_soft_delete_clears_a_users_raw_object() {
    let db = fresh_database().await.unwrap();
    let s = db
        .store
        .clone()
        .with_deletes(workos_sync_store::layout::DeleteModes::all_soft());
    s.apply(&body("e1", "user.created", user("user_raw", 10, "v10"), 10))
        .await
        .unwrap();
    s.apply(&body("e2", "user.updated", user("user_raw", 30, "v30"), 30))
        .await
        .unwrap();
    // Older: neither its fields nor its raw object are written.
    s.apply(&body("e3", "user.updated", user("user_raw", 20, "v20"), 20))
        .await
        .unwrap();
    let raw = raw_of(&db, Entity::Users, "user_raw").await.unwrap();
    assert_eq!(raw["extra"], "v30");
    assert_eq!(raw["object"], "user");
    s.apply(&body("e4", "user.deleted", user("user_raw", 40, "v40"), 40))
        .await
        .unwrap();
    let rows = db
        .rows("SELECT raw, deleted_at FROM users WHERE id = 'user_raw'")
        .await
        .unwrap();
    assert!(!rows[0]["deleted_at"].is_null());
    assert_eq!(rows[0]["raw"], json!({}), "personal data cleared");
    db.teardown().await.unwrap();
}
