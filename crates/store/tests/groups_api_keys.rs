//! AuthKit groups, their memberships and API keys through the one apply step, against a
//! real Postgres: random histories (groups with versions, some deleted; memberships
//! added and removed, one or two lives each; keys created, updated, some revoked; an
//! organization membership and an organization deleted), delivered shuffled with 20 %
//! duplicates to concurrent appliers, against a model; and the rules one by one. Each
//! test in its own fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use workos_sync_core::Event;
use workos_sync_store::Outcome;
use workos_sync_testkit::{
    TestDb, fresh_database,
    history::{apply_concurrently, body, deliveries, secs, ts},
};

fn group(id: &str, org: &str, v: i64) -> Value {
    json!({"object": "group", "id": id, "organization_id": org, "name": format!("{id} v{v}"),
           "description": null, "created_at": ts(0), "updated_at": ts(v)})
}

fn member(g: &str, om: &str) -> Value {
    json!({"group_id": g, "organization_membership_id": om})
}

fn api_key(id: &str, org: &str, v: i64) -> Value {
    json!({"object": "api_key", "id": id, "owner": {"type": "organization", "id": org},
           "name": format!("{id} v{v}"), "obfuscated_value": "sk_test_...1234",
           "value": "sk_test_SECRET_FULL_VALUE", "last_used_at": null, "expires_at": null,
           "permissions": ["users:read"], "created_at": ts(0), "updated_at": ts(v)})
}

fn membership(id: &str, user: &str, org: &str, v: i64) -> Value {
    json!({"object": "organization_membership", "id": id, "user_id": user,
           "organization_id": org, "status": "active", "role": {"slug": "member"},
           "created_at": ts(0), "updated_at": ts(v)})
}

#[derive(Debug, Default, PartialEq)]
struct Model {
    groups: BTreeMap<String, i64>,
    /// `group:om` → time of the add that stands.
    members: BTreeMap<String, i64>,
    keys: BTreeMap<String, i64>,
}

fn history(seed: u64) -> (Vec<Event>, Model) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events = Vec::new();
    let mut n = 0;
    let mut id = |p: &str| {
        n += 1;
        format!("evt_{p}_{n:05}")
    };
    let mut m = Model::default();
    let org = format!("org_{seed}");
    let gone_org = format!("org_{seed}_gone");
    // Organization memberships: om 0 is deleted at the end.
    let oms: Vec<String> = (0..6).map(|i| format!("om_{seed}_{i}")).collect();
    for (i, om) in oms.iter().enumerate() {
        events.push(body(
            &id("om"),
            "organization_membership.created",
            membership(om, &format!("user_{seed}_{i}"), &org, 1),
            1,
        ));
    }
    for g in 0..4 {
        let gid = format!("group_{seed}_{g}");
        let versions = rng.random_range(1..4);
        for v in 1..=versions {
            let ty = if v == 1 {
                "group.created"
            } else {
                "group.updated"
            };
            events.push(body(&id("g"), ty, group(&gid, &org, v * 10), v * 10));
        }
        let deleted = rng.random_bool(0.25);
        for om in &oms {
            let mut t = 100 + rng.random_range(0..50);
            let lives = rng.random_range(0..3);
            let mut stands = None;
            for life in 0..lives {
                events.push(body(&id("ma"), "group.member_added", member(&gid, om), t));
                stands = Some(t);
                t += rng.random_range(1..20);
                let removed = life + 1 < lives || rng.random_bool(0.3);
                if removed {
                    events.push(body(&id("mr"), "group.member_removed", member(&gid, om), t));
                    stands = None;
                    t += rng.random_range(1..20);
                }
            }
            if let Some(at) = stands {
                m.members.insert(format!("{gid}:{om}"), at);
            }
        }
        if deleted {
            events.push(body(
                &id("gd"),
                "group.deleted",
                group(&gid, &org, versions * 10),
                500,
            ));
            m.members.retain(|k, _| !k.starts_with(&format!("{gid}:")));
        } else {
            m.groups.insert(gid, versions * 10);
        }
    }
    // The first organization membership goes: its group memberships with it.
    events.push(body(
        &id("omd"),
        "organization_membership.deleted",
        membership(&oms[0], &format!("user_{seed}_0"), &org, 2),
        600,
    ));
    let before = m.members.len();
    m.members
        .retain(|k, _| !k.ends_with(&format!(":{}", oms[0])));
    assert!(
        seed > 0 || m.members.len() < before,
        "seed 0 must exercise the cascade"
    );
    for (o, owner) in [&org, &gone_org].into_iter().enumerate() {
        for k in 0..4 {
            let kid = format!("api_key_{seed}_{o}_{k}");
            let versions = rng.random_range(1..3);
            for v in 1..=versions {
                let ty = if v == 1 {
                    "api_key.created"
                } else {
                    "api_key.updated"
                };
                events.push(body(&id("k"), ty, api_key(&kid, owner, v * 10), v * 10));
            }
            if rng.random_bool(0.3) {
                events.push(body(
                    &id("kr"),
                    "api_key.revoked",
                    api_key(&kid, owner, versions * 10 + 1),
                    versions * 10 + 1,
                ));
            } else if owner == &org {
                m.keys.insert(kid, versions * 10);
            }
        }
    }
    // An organization's delete takes its keys (and groups) with it.
    events.push(body(
        &id("od"),
        "organization.deleted",
        json!({"object": "organization",
        "id": gone_org, "name": "Gone", "domains": [], "created_at": ts(0), "updated_at": ts(700)}),
        700,
    ));
    (events, m)
}

async fn tables(db: &TestDb) -> Model {
    let mut m = Model::default();
    for (sql, map) in [
        (
            "SELECT id AS k, workos_updated_at AS v FROM groups",
            &mut m.groups,
        ),
        (
            "SELECT key AS k, workos_updated_at AS v FROM group_memberships",
            &mut m.members,
        ),
        (
            "SELECT id AS k, workos_updated_at AS v FROM api_keys",
            &mut m.keys,
        ),
    ] {
        for r in db.rows(sql).await.unwrap() {
            map.insert(r["k"].as_str().unwrap().to_owned(), secs(&r["v"]));
        }
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_group_and_api_key_histories_converge_to_the_model() {
    let db = fresh_database().await.unwrap();
    for seed in 0..6u64 {
        let (events, model) = history(seed);
        let deliveries = deliveries(&events, seed);
        apply_concurrently(&db.store, deliveries, 4, seed)
            .await
            .unwrap();
        assert_eq!(tables(&db).await, model, "seed {seed}");
        let leaked = db
            .rows("SELECT 1 FROM api_keys t WHERE row_to_json(t)::text LIKE '%SECRET_FULL%'")
            .await
            .unwrap();
        assert!(leaked.is_empty(), "an API key's full value was stored");
        db.exec(
            "TRUNCATE groups, group_memberships, api_keys, organization_memberships, \
             organizations, tombstones, processed_events",
        )
        .await
        .unwrap();
    }
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_and_api_key_rules_one_by_one() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    // A member_added before its group: kept as it comes.
    assert_eq!(
        s.apply(&body(
            "e1",
            "group.member_added",
            member("group_r", "om_r"),
            10
        ))
        .await
        .unwrap(),
        Outcome::Created
    );
    // A removal is remembered: an older add stays stopped, a newer one adds again.
    s.apply(&body(
        "e2",
        "group.member_removed",
        member("group_r", "om_r"),
        20,
    ))
    .await
    .unwrap();
    assert_eq!(
        s.apply(&body(
            "e3",
            "group.member_added",
            member("group_r", "om_r"),
            15
        ))
        .await
        .unwrap(),
        Outcome::Tombstoned
    );
    assert_eq!(
        s.apply(&body(
            "e4",
            "group.member_added",
            member("group_r", "om_r"),
            30
        ))
        .await
        .unwrap(),
        Outcome::Created
    );
    // A group's delete removes its memberships; nothing of it comes back.
    s.apply(&body(
        "e5",
        "group.created",
        group("group_r", "org_r", 5),
        5,
    ))
    .await
    .unwrap();
    s.apply(&body(
        "e6",
        "group.deleted",
        group("group_r", "org_r", 5),
        40,
    ))
    .await
    .unwrap();
    assert!(
        db.rows("SELECT 1 FROM group_memberships")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.apply(&body(
            "e7",
            "group.member_added",
            member("group_r", "om_x"),
            50
        ))
        .await
        .unwrap(),
        Outcome::Tombstoned
    );
    // A revoked key is gone for good; only its obfuscated value was ever kept.
    s.apply(&body(
        "e8",
        "api_key.created",
        api_key("api_key_r", "org_r", 10),
        10,
    ))
    .await
    .unwrap();
    let row = db
        .rows("SELECT obfuscated_value, organization_id, permissions FROM api_keys")
        .await
        .unwrap();
    assert_eq!(row[0]["obfuscated_value"], "sk_test_...1234");
    assert_eq!(row[0]["organization_id"], "org_r");
    assert_eq!(row[0]["permissions"], json!(["users:read"]));
    s.apply(&body(
        "e9",
        "api_key.revoked",
        api_key("api_key_r", "org_r", 11),
        11,
    ))
    .await
    .unwrap();
    assert_eq!(
        s.apply(&body(
            "e10",
            "api_key.updated",
            api_key("api_key_r", "org_r", 12),
            12
        ))
        .await
        .unwrap(),
        Outcome::Tombstoned
    );
    // A user-owned key names its organization through its owner; an old body without
    // an owner is kept without one.
    let mut user_key = api_key("api_key_u", "unused", 10);
    user_key["owner"] = json!({"type": "user", "id": "user_1", "organization_id": "org_u"});
    s.apply(&body("e11", "api_key.created", user_key, 10))
        .await
        .unwrap();
    let mut legacy = api_key("api_key_l", "unused", 10);
    legacy.as_object_mut().unwrap().remove("owner");
    s.apply(&body("e12", "api_key.created", legacy, 10))
        .await
        .unwrap();
    let owners: BTreeSet<String> = db
        .rows("SELECT id || '=' || coalesce(organization_id, '-') AS o FROM api_keys")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r["o"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        owners,
        ["api_key_l=-", "api_key_u=org_u"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    db.teardown().await.unwrap();
}
