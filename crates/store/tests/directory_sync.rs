//! Directory Sync through the one apply step, against a real Postgres: random histories
//! of directories, their users, groups and group memberships (1-2 lives each, a
//! directory deleted mid-history), delivered shuffled with 20 % duplicates to
//! concurrent appliers, against a model; and the rules one by one (deletes cascade by
//! rule, a membership's newest event wins, events of a deleted directory are dropped,
//! both state vocabularies are stored as sent). Each test in its own fresh database.

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

fn directory(id: &str, v: i64, state: &str) -> Value {
    json!({"object": "directory", "id": id, "organization_id": "org_1", "type": "okta scim v2.0",
           "state": state, "name": format!("{id} v{v}"), "external_key": "never-stored",
           "domains": [{"object": "organization_domain", "id": "org_domain_1", "domain": "x.io"}],
           "created_at": ts(0), "updated_at": ts(v)})
}

fn user(id: &str, dir: &str, v: i64, state: &str) -> Value {
    json!({"object": "directory_user", "id": id, "directory_id": dir, "organization_id": "org_1",
           "idp_id": format!("idp-{id}"), "email": null, "first_name": format!("F{v}"),
           "last_name": null, "state": state, "raw_attributes": {"v": v},
           "custom_attributes": {"department": "eng"}, "role": null, "roles": null,
           "created_at": ts(0), "updated_at": ts(v)})
}

fn group(id: &str, dir: &str, v: i64) -> Value {
    json!({"object": "directory_group", "id": id, "idp_id": format!("idp-{id}"),
           "directory_id": dir, "organization_id": "org_1", "name": format!("{id} v{v}"),
           "raw_attributes": {}, "created_at": ts(0), "updated_at": ts(v)})
}

fn member(dir: &str, g: &str, u: &str) -> Value {
    json!({"directory_id": dir, "user": user(u, dir, 1, "active"), "group": group(g, dir, 1)})
}

/// The model's final state.
#[derive(Debug, Default, PartialEq)]
struct Model {
    directories: BTreeMap<String, i64>,
    /// Id → (version, state).
    users: BTreeMap<String, (i64, String)>,
    groups: BTreeMap<String, i64>,
    /// `group:user` → the time of the add that stands.
    memberships: BTreeMap<String, i64>,
}

struct History {
    events: Vec<Event>,
    model: Model,
}

/// Three directories, each with users and groups of one or two lives (a delete, and a
/// new id), and memberships of random pairs added and removed (one or two lives); one
/// directory is deleted. Every delete is an entity's last event, as WorkOS sends them.
fn history(seed: u64) -> History {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events = Vec::new();
    let mut n = 0;
    let mut id = |p: &str| {
        n += 1;
        format!("evt_{p}_{n:05}")
    };
    let mut model = Model::default();
    let deleted_dir = rng.random_range(0..3);
    for d in 0..3 {
        let dir = format!("directory_{seed}_{d}");
        // Activated, sometimes again later (a re-activation carries a newer version),
        // in either state vocabulary.
        let lives = rng.random_range(1..3);
        for v in 1..=lives {
            let state = ["active", "linked"][rng.random_range(0..2)];
            events.push(body(
                &id("da"),
                "dsync.activated",
                directory(&dir, v, state),
                v,
            ));
        }
        model.directories.insert(dir.clone(), lives);
        let (mut users, mut groups) = (Vec::new(), Vec::new());
        for u in 0..6 {
            let lives = rng.random_range(1..3);
            for life in 0..lives {
                let uid = format!("directory_user_{seed}_{d}_{u}_{life}");
                let versions = rng.random_range(1..4);
                let mut state = "active";
                for v in 1..=versions {
                    let ty = if v == 1 {
                        "dsync.user.created"
                    } else {
                        "dsync.user.updated"
                    };
                    // Older environments send `updated` with state inactive.
                    state = ["active", "inactive", "suspended"][rng.random_range(0..3)];
                    events.push(body(&id("u"), ty, user(&uid, &dir, v * 10, state), v * 10));
                }
                let gone = life + 1 < lives || rng.random_bool(0.15);
                if gone {
                    let at = 500 + u;
                    let last = user(&uid, &dir, versions * 10, state);
                    events.push(body(&id("ud"), "dsync.user.deleted", last, at));
                } else {
                    model
                        .users
                        .insert(uid.clone(), (versions * 10, state.to_owned()));
                    users.push(uid.clone());
                }
                // Memberships are made only for a user's last life before its delete:
                // keep the ids of every life to pair with groups.
                if gone {
                    users.push(format!("-{uid}"));
                }
            }
        }
        for g in 0..3 {
            let gid = format!("directory_group_{seed}_{d}_{g}");
            let versions = rng.random_range(1..4);
            for v in 1..=versions {
                let ty = if v == 1 {
                    "dsync.group.created"
                } else {
                    "dsync.group.updated"
                };
                events.push(body(&id("g"), ty, group(&gid, &dir, v * 10), v * 10));
            }
            if rng.random_bool(0.2) {
                let last = group(&gid, &dir, versions * 10);
                events.push(body(&id("gd"), "dsync.group.deleted", last, 600 + g));
                groups.push(format!("-{gid}"));
            } else {
                model.groups.insert(gid.clone(), versions * 10);
                groups.push(gid);
            }
        }
        // Memberships: each (group, user) pair with probability 1/2; one or two lives
        // (added, removed, added again), sometimes removed at the end. Every time is
        // before the user's and the group's deletes.
        for g in &groups {
            for u in &users {
                if !rng.random_bool(0.5) {
                    continue;
                }
                let (gid, uid) = (g.trim_start_matches('-'), u.trim_start_matches('-'));
                let lives = rng.random_range(1..3);
                let mut t = rng.random_range(20..100);
                let mut stands = None;
                for life in 0..lives {
                    events.push(body(
                        &id("ma"),
                        "dsync.group.user_added",
                        member(&dir, gid, uid),
                        t,
                    ));
                    stands = Some(t);
                    t += rng.random_range(1..50);
                    if life + 1 < lives || rng.random_bool(0.25) {
                        events.push(body(
                            &id("mr"),
                            "dsync.group.user_removed",
                            member(&dir, gid, uid),
                            t,
                        ));
                        stands = None;
                        t += rng.random_range(1..50);
                    }
                }
                let alive = !g.starts_with('-') && !u.starts_with('-');
                if let (Some(at), true) = (stands, alive) {
                    model.memberships.insert(format!("{gid}:{uid}"), at);
                }
            }
        }
        if d == deleted_dir {
            events.push(body(
                &id("dd"),
                "dsync.deleted",
                directory(&dir, lives, "deleting"),
                700,
            ));
            model.directories.remove(&dir);
            let (users_of, groups_of) = (
                format!("directory_user_{seed}_{d}_"),
                format!("directory_group_{seed}_{d}_"),
            );
            model.users.retain(|k, _| !k.starts_with(&users_of));
            model.groups.retain(|k, _| !k.starts_with(&groups_of));
            // A membership's key starts with its group's id.
            model.memberships.retain(|k, _| !k.starts_with(&groups_of));
        }
    }
    History { events, model }
}

async fn tables(db: &TestDb) -> Model {
    let mut m = Model::default();
    for r in db
        .rows("SELECT id, workos_updated_at FROM directories")
        .await
        .unwrap()
    {
        m.directories.insert(
            r["id"].as_str().unwrap().to_owned(),
            secs(&r["workos_updated_at"]),
        );
    }
    for r in db
        .rows("SELECT id, workos_updated_at, state FROM directory_users")
        .await
        .unwrap()
    {
        let state = r["state"].as_str().unwrap().to_owned();
        m.users.insert(
            r["id"].as_str().unwrap().to_owned(),
            (secs(&r["workos_updated_at"]), state),
        );
    }
    for r in db
        .rows("SELECT id, workos_updated_at FROM directory_groups")
        .await
        .unwrap()
    {
        m.groups.insert(
            r["id"].as_str().unwrap().to_owned(),
            secs(&r["workos_updated_at"]),
        );
    }
    for r in db
        .rows(
            "SELECT directory_group_id || ':' || directory_user_id AS key, workos_updated_at \
             FROM directory_group_memberships",
        )
        .await
        .unwrap()
    {
        m.memberships.insert(
            r["key"].as_str().unwrap().to_owned(),
            secs(&r["workos_updated_at"]),
        );
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_directory_sync_histories_converge_to_the_model() {
    let db = fresh_database().await.unwrap();
    for seed in 0..6u64 {
        let h = history(seed);
        let deliveries = deliveries(&h.events, seed);
        apply_concurrently(&db.store, deliveries, 4, seed)
            .await
            .unwrap();
        let got = tables(&db).await;
        let mine = |m: &BTreeMap<String, _>| m.keys().all(|k| k.contains(&format!("_{seed}_")));
        assert!(
            mine(&got.directories),
            "seed {seed}: left over from an earlier seed"
        );
        assert_eq!(got, h.model, "seed {seed}");
        db.exec(
            "TRUNCATE directories, directory_users, directory_groups, \
             directory_group_memberships, tombstones, processed_events",
        )
        .await
        .unwrap();
    }
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_sync_rules_one_by_one() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    let dir = "directory_r";
    // A membership before its user and its group: stored as it comes.
    let add = body(
        "evt_a1",
        "dsync.group.user_added",
        member(dir, "directory_group_r", "directory_user_r"),
        50,
    );
    assert_eq!(s.apply(&add).await.unwrap(), Outcome::Created);
    // An older removal of a newer add is stale; a newer one removes and is remembered,
    // so an add older than it stays stopped and a newer add makes the pair again.
    let old_rm = body(
        "evt_r0",
        "dsync.group.user_removed",
        member(dir, "directory_group_r", "directory_user_r"),
        40,
    );
    assert_eq!(s.apply(&old_rm).await.unwrap(), Outcome::Stale);
    let rm = body(
        "evt_r1",
        "dsync.group.user_removed",
        member(dir, "directory_group_r", "directory_user_r"),
        60,
    );
    assert_eq!(s.apply(&rm).await.unwrap(), Outcome::Deleted);
    let late_add = body(
        "evt_a0",
        "dsync.group.user_added",
        member(dir, "directory_group_r", "directory_user_r"),
        55,
    );
    assert_eq!(s.apply(&late_add).await.unwrap(), Outcome::Tombstoned);
    let again = body(
        "evt_a2",
        "dsync.group.user_added",
        member(dir, "directory_group_r", "directory_user_r"),
        70,
    );
    assert_eq!(s.apply(&again).await.unwrap(), Outcome::Created);
    let dbr = &db;
    let count = |sql: &'static str| async move { dbr.rows(sql).await.unwrap().len() };
    assert_eq!(count("SELECT 1 FROM directory_group_memberships").await, 1);
    // The user, in the event vocabulary's state; then a group; the directory in the
    // API's vocabulary. Nothing secret is stored (no external_key column).
    s.apply(&body(
        "evt_u1",
        "dsync.user.created",
        user("directory_user_r", dir, 10, "inactive"),
        10,
    ))
    .await
    .unwrap();
    s.apply(&body(
        "evt_g1",
        "dsync.group.created",
        group("directory_group_r", dir, 10),
        10,
    ))
    .await
    .unwrap();
    s.apply(&body(
        "evt_d1",
        "dsync.activated",
        directory(dir, 1, "linked"),
        1,
    ))
    .await
    .unwrap();
    let d = db.rows("SELECT * FROM directories").await.unwrap();
    assert_eq!(d[0]["state"], "linked");
    assert_eq!(d[0]["domains"], json!(["x.io"]));
    assert!(d[0].get("external_key").is_none(), "{d:?}");
    let u = db.rows("SELECT * FROM directory_users").await.unwrap();
    assert_eq!(u[0]["state"], "inactive");
    assert_eq!(u[0]["email"], Value::Null);
    // The group's delete removes its memberships (no user_removed comes for them).
    s.apply(&body(
        "evt_gd",
        "dsync.group.deleted",
        group("directory_group_r", dir, 10),
        80,
    ))
    .await
    .unwrap();
    assert_eq!(count("SELECT 1 FROM directory_group_memberships").await, 0);
    // The directory's delete removes its users and groups; a late event of it is
    // acknowledged and dropped.
    s.apply(&body(
        "evt_dd",
        "dsync.deleted",
        directory(dir, 1, "deleting"),
        90,
    ))
    .await
    .unwrap();
    assert_eq!(count("SELECT 1 FROM directory_users").await, 0);
    assert_eq!(count("SELECT 1 FROM directories").await, 0);
    let late = body(
        "evt_u2",
        "dsync.user.updated",
        user("directory_user_r", dir, 20, "active"),
        20,
    );
    assert_eq!(s.apply(&late).await.unwrap(), Outcome::Tombstoned);
    let late_group = body(
        "evt_g2",
        "dsync.group.created",
        group("directory_group_x", dir, 5),
        5,
    );
    assert_eq!(s.apply(&late_group).await.unwrap(), Outcome::Tombstoned);
    assert_eq!(count("SELECT 1 FROM directory_groups").await, 0);
    let ids: BTreeSet<String> = db
        .rows("SELECT entity FROM tombstones")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r["entity"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains("directories"), "{ids:?}");
    db.teardown().await.unwrap();
}
