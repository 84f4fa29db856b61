//! The B2B entities through the one apply step, against a real Postgres: random
//! histories of users, organizations and memberships delivered shuffled, with
//! duplicates, to concurrent appliers, against a model; and the cross-entity rules
//! (children before parents, cascades, re-created memberships, secrets never stored,
//! role keys, entities switched off). Each test in its own fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use workos_sync_core::{Entity, EntitySet, Event};
use workos_sync_store::Outcome;
use workos_sync_testkit::{
    fresh_database,
    history::{apply_concurrently, deliveries},
};

fn ts(v: i64) -> String {
    (DateTime::from_timestamp(1_767_225_600, 0).unwrap() + chrono::Duration::seconds(v))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn secs(t: DateTime<Utc>) -> i64 {
    t.timestamp() - 1_767_225_600
}

fn body(id: &str, ty: &str, data: Value, at: i64) -> Event {
    let b = json!({"object": "event", "id": id, "event": ty, "data": data, "created_at": ts(at)});
    Event::decode(b.to_string().as_bytes()).unwrap()
}

fn user(id: &str, v: i64) -> Value {
    json!({"object": "user", "id": id, "email": format!("{id}@x.io"), "first_name": "F",
           "created_at": ts(0), "updated_at": ts(v)})
}

fn org(id: &str, v: i64, domains: Value) -> Value {
    json!({"object": "organization", "id": id, "name": format!("{id} v{v}"), "external_id": null,
           "metadata": {"tier": format!("t{v}")}, "domains": domains,
           "created_at": ts(0), "updated_at": ts(v)})
}

fn membership(
    id: &str,
    user: &str,
    org: &str,
    created: i64,
    v: i64,
    status: &str,
    role: &str,
) -> Value {
    json!({"object": "organization_membership", "id": id, "user_id": user, "organization_id": org,
           "status": status, "role": {"slug": role}, "roles": [{"slug": role}],
           "custom_attributes": {}, "directory_managed": false,
           "created_at": ts(created), "updated_at": ts(v)})
}

/// What one membership must look like at the end.
#[derive(Debug, Clone, PartialEq)]
struct Want {
    version: i64,
    status: String,
    role: String,
}

/// A random history: users and organizations created and updated, some deleted;
/// memberships created, updated (status, role), deleted, and re-created for the same
/// pair with a new id after a delete. Returns the events and the model's final state.
struct History {
    events: Vec<Event>,
    users: HashMap<String, i64>,
    orgs: HashMap<String, i64>,
    memberships: HashMap<String, Want>,
}

fn history(seed: u64) -> History {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events = Vec::new();
    let mut n = 0;
    let mut next_id = |p: &str| {
        n += 1;
        format!("evt_{p}_{n:05}")
    };
    let (mut users, mut orgs) = (HashMap::new(), HashMap::new());
    let mut deleted_users = HashSet::new();
    let mut deleted_orgs = HashSet::new();
    for u in 0..12 {
        let id = format!("user_{u:02}");
        let versions = rng.random_range(1..4);
        for v in 1..=versions {
            let ty = if v == 1 {
                "user.created"
            } else {
                "user.updated"
            };
            events.push(body(&next_id("u"), ty, user(&id, v * 10), v * 10));
        }
        users.insert(id.clone(), versions * 10);
        if rng.random_bool(0.15) {
            events.push(body(
                &next_id("ud"),
                "user.deleted",
                user(&id, versions * 10),
                500,
            ));
            deleted_users.insert(id);
        }
    }
    for o in 0..5 {
        let id = format!("org_{o:02}");
        let versions = rng.random_range(1..4);
        for v in 1..=versions {
            let ty = if v == 1 {
                "organization.created"
            } else {
                "organization.updated"
            };
            events.push(body(&next_id("o"), ty, org(&id, v * 10, json!([])), v * 10));
        }
        orgs.insert(id.clone(), versions * 10);
        if rng.random_bool(0.2) {
            events.push(body(
                &next_id("od"),
                "organization.deleted",
                org(&id, versions * 10, json!([])),
                600,
            ));
            deleted_orgs.insert(id);
        }
    }
    let mut memberships = HashMap::new();
    let mut m = 0;
    for u in 0..12 {
        for o in 0..5 {
            if !rng.random_bool(0.5) {
                continue;
            }
            let (uid, oid) = (format!("user_{u:02}"), format!("org_{o:02}"));
            // One or two lives of this pair's membership (a delete, then a new id).
            let lives = if rng.random_bool(0.3) { 2 } else { 1 };
            let mut created = rng.random_range(1..50);
            for life in 0..lives {
                m += 1;
                let id = format!("om_{m:04}");
                let mut want = None;
                let versions = rng.random_range(1..5);
                let mut v = created;
                for k in 0..versions {
                    v += rng.random_range(1..20);
                    let status = ["active", "inactive", "pending"][rng.random_range(0..3)];
                    let role = ["admin", "member"][rng.random_range(0..2)];
                    let ty = if k == 0 {
                        "organization_membership.created"
                    } else {
                        "organization_membership.updated"
                    };
                    events.push(body(
                        &next_id("m"),
                        ty,
                        membership(&id, &uid, &oid, created, v, status, role),
                        v,
                    ));
                    want = Some(Want {
                        version: v,
                        status: status.into(),
                        role: role.into(),
                    });
                }
                let last = life + 1 == lives;
                let gone = !last || rng.random_bool(0.2);
                if gone {
                    let w = want.clone().unwrap();
                    events.push(body(
                        &next_id("md"),
                        "organization_membership.deleted",
                        membership(&id, &uid, &oid, created, w.version, &w.status, &w.role),
                        v + 1,
                    ));
                } else if !deleted_users.contains(&uid) && !deleted_orgs.contains(&oid) {
                    memberships.insert(id.clone(), want.unwrap());
                }
                created = v + 2;
            }
        }
    }
    for id in &deleted_users {
        users.remove(id);
    }
    for id in &deleted_orgs {
        orgs.remove(id);
    }
    History {
        events,
        users,
        orgs,
        memberships,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_histories_of_users_organizations_and_memberships_converge_to_the_model() {
    let db = fresh_database().await.unwrap();
    for seed in 0..6u64 {
        db.exec(
            "TRUNCATE users, organizations, organization_memberships, tombstones, processed_events",
        )
        .await
        .unwrap();
        let h = history(seed);
        let deliveries = deliveries(&h.events, seed);
        apply_concurrently(&db.store, deliveries, 4, seed)
            .await
            .unwrap();

        let users: HashMap<String, i64> = db
            .store
            .all_users()
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id, secs(r.workos_updated_at.unwrap())))
            .collect();
        assert_eq!(users, h.users, "seed {seed}: users");
        let orgs: HashMap<String, i64> = db
            .store
            .all_organizations()
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id, secs(r.workos_updated_at)))
            .collect();
        assert_eq!(orgs, h.orgs, "seed {seed}: organizations");
        let memberships: HashMap<String, Want> = db
            .store
            .all_memberships()
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let want = Want {
                    version: secs(r.workos_updated_at),
                    status: r.status,
                    role: r.role_slug.unwrap_or_default(),
                };
                (r.id, want)
            })
            .collect();
        assert_eq!(memberships, h.memberships, "seed {seed}: memberships");
    }
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_before_parents_cascades_and_recreated_memberships() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    // A membership before its user and its organization: stored.
    let m1 = body(
        "e_m1",
        "organization_membership.created",
        membership("om_1", "user_a", "org_a", 1, 1, "pending", "member"),
        1,
    );
    assert_eq!(s.apply(&m1).await.unwrap(), Outcome::Created);
    s.apply(&body("e_u", "user.created", user("user_a", 1), 1))
        .await
        .unwrap();
    s.apply(&body(
        "e_o",
        "organization.created",
        org("org_a", 1, json!([])),
        1,
    ))
    .await
    .unwrap();
    assert_eq!(s.memberships_of_user("user_a").await.unwrap().len(), 1);

    // Re-created for the same pair: whatever the order, only the new one stays.
    let m2 = body(
        "e_m2",
        "organization_membership.created",
        membership("om_2", "user_a", "org_a", 10, 10, "active", "admin"),
        10,
    );
    let m1_del = body(
        "e_m1d",
        "organization_membership.deleted",
        membership("om_1", "user_a", "org_a", 1, 1, "pending", "member"),
        9,
    );
    assert_eq!(s.apply(&m2).await.unwrap(), Outcome::Created);
    let late_m1 = body(
        "e_m1u",
        "organization_membership.updated",
        membership("om_1", "user_a", "org_a", 1, 5, "active", "member"),
        5,
    );
    assert_eq!(s.apply(&late_m1).await.unwrap(), Outcome::Tombstoned);
    assert_eq!(s.apply(&m1_del).await.unwrap(), Outcome::Tombstoned);
    let rows = s.memberships_of_user("user_a").await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["om_2"]
    );
    assert_eq!(rows[0].role_slugs, vec![Some("admin".to_string())]);
    // The other order, for another pair: the old one arriving after the new one.
    let new = body(
        "e_n",
        "organization_membership.created",
        membership("om_new", "user_b", "org_a", 20, 20, "active", "member"),
        20,
    );
    let old = body(
        "e_o2",
        "organization_membership.created",
        membership("om_old", "user_b", "org_a", 2, 2, "active", "member"),
        2,
    );
    s.apply(&new).await.unwrap();
    assert_eq!(s.apply(&old).await.unwrap(), Outcome::Superseded);
    assert_eq!(
        s.memberships_of_user("user_b").await.unwrap()[0].id,
        "om_new"
    );

    // The organization is deleted: its memberships and domains go with it, without
    // their own delete events, and a late membership event never brings one back.
    let dom = json!({"object": "organization_domain", "id": "org_domain_a", "organization_id": "org_a",
                     "domain": "a.io", "state": "verified", "verification_strategy": "dns",
                     "verification_token": "tok", "created_at": ts(1), "updated_at": ts(1)});
    s.apply(&body("e_d", "organization_domain.created", dom, 1))
        .await
        .unwrap();
    assert_eq!(s.domains_of("org_a").await.unwrap().len(), 1);
    assert_eq!(
        s.apply(&body(
            "e_od",
            "organization.deleted",
            org("org_a", 30, json!([])),
            30
        ))
        .await
        .unwrap(),
        Outcome::Deleted
    );
    assert!(s.all_memberships().await.unwrap().is_empty());
    assert!(s.domains_of("org_a").await.unwrap().is_empty());
    let late = body(
        "e_late",
        "organization_membership.updated",
        membership("om_2", "user_a", "org_a", 10, 40, "active", "admin"),
        40,
    );
    assert_eq!(s.apply(&late).await.unwrap(), Outcome::Tombstoned);
    let fresh = body(
        "e_fresh",
        "organization_membership.created",
        membership("om_9", "user_c", "org_a", 50, 50, "active", "admin"),
        50,
    );
    assert_eq!(s.apply(&fresh).await.unwrap(), Outcome::Tombstoned);
    assert!(s.all_memberships().await.unwrap().is_empty());
    assert!(
        s.is_tombstoned_in(Entity::Organizations, "org_a")
            .await
            .unwrap()
    );

    // A deleted user: its memberships elsewhere go too.
    s.apply(&body(
        "e_m5",
        "organization_membership.created",
        membership("om_5", "user_d", "org_b", 1, 1, "active", "member"),
        1,
    ))
    .await
    .unwrap();
    s.apply(&body("e_ud", "user.deleted", user("user_d", 1), 2))
        .await
        .unwrap();
    assert!(s.memberships_of_user("user_d").await.unwrap().is_empty());
    db.teardown().await.unwrap();
}

/// A domain's verification token is never stored, whether it came in a domain event,
/// an organization's `domains[]` or a snapshot: no column of any table holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_tokens_are_never_stored() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    let secret = "VERIFY_SECRET_7f3a9";
    let domain = |id: &str, v: i64| {
        json!({"object": "organization_domain", "id": id, "organization_id": "org_t", "domain": format!("{id}.io"),
               "state": "pending", "verification_strategy": "dns", "verification_token": secret,
               "verification_prefix": "workos-verify", "created_at": ts(1), "updated_at": ts(v)})
    };
    s.apply(&body(
        "e1",
        "organization.created",
        org("org_t", 1, json!([domain("org_domain_1", 1)])),
        1,
    ))
    .await
    .unwrap();
    s.apply(&body(
        "e2",
        "organization_domain.verified",
        domain("org_domain_2", 2),
        2,
    ))
    .await
    .unwrap();
    // verification_failed wraps the domain ({reason, organization_domain}).
    let failed = json!({"reason": "domain_verification_period_expired", "organization_domain": domain("org_domain_3", 3)});
    s.apply(&body(
        "e3",
        "organization_domain.verification_failed",
        failed,
        3,
    ))
    .await
    .unwrap();
    let snap = Event::snapshot(workos_sync_core::Record::Organization(
        serde_json::from_value(org("org_t", 5, json!([domain("org_domain_4", 5)]))).unwrap(),
    ));
    s.apply(&snap).await.unwrap();
    let domains = s.domains_of("org_t").await.unwrap();
    assert_eq!(domains.len(), 4, "{domains:?}");
    for table in [
        "users",
        "organizations",
        "organization_domains",
        "organization_memberships",
        "roles",
        "permissions",
        "tombstones",
        "processed_events",
        "sync_cursors",
    ] {
        let n = db
            .exec(&format!(
                "SELECT 1 FROM {table} t WHERE row_to_json(t)::text LIKE '%{secret}%'"
            ))
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} holds the token");
    }
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_keyed_by_scope_and_disabled_entities_are_ignored() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    let role = |org: Option<&str>, v: i64| {
        let mut r = json!({"object": "role", "slug": "admin", "permissions": ["read", {"slug": "write"}],
                           "created_at": ts(1), "updated_at": ts(v)});
        if let Some(o) = org {
            r["organization_id"] = json!(o);
            r["object"] = json!("organization_role");
        }
        r
    };
    s.apply(&body("r1", "role.created", role(None, 1), 1))
        .await
        .unwrap();
    s.apply(&body(
        "r2",
        "organization_role.created",
        role(Some("org_r"), 1),
        1,
    ))
    .await
    .unwrap();
    // An organization role without its organization cannot be keyed: refused.
    let bad = json!({"object": "event", "id": "r3", "event": "organization_role.created",
                     "data": {"slug": "x"}, "created_at": ts(1)});
    assert!(Event::decode(bad.to_string().as_bytes()).is_err());
    s.apply(&body("p1", "permission.created", json!({"object": "permission", "id": "perm_1", "slug": "read", "name": "Read", "system": false, "created_at": ts(1), "updated_at": ts(1)}), 1)).await.unwrap();
    let n = db.exec("SELECT 1 FROM roles").await.unwrap();
    assert_eq!(n, 2);
    let n = db
        .exec("SELECT 1 FROM roles WHERE key = 'org_r:admin' AND permissions = '{read,write}'")
        .await
        .unwrap();
    assert_eq!(n, 1);
    // Deleting the environment role leaves the organization's role.
    s.apply(&body("r4", "role.deleted", role(None, 2), 2))
        .await
        .unwrap();
    assert_eq!(
        db.exec("SELECT 1 FROM roles WHERE key = 'org_r:admin'")
            .await
            .unwrap(),
        1
    );
    assert_eq!(db.exec("SELECT 1 FROM roles").await.unwrap(), 1);
    assert_eq!(
        db.exec("SELECT 1 FROM permissions WHERE key = 'read'")
            .await
            .unwrap(),
        1
    );

    // Users only: an organization event is recorded as ignored and writes nothing.
    let users_only = s.clone().with_entities(EntitySet::of(&[Entity::Users]));
    let o = body("o1", "organization.created", org("org_x", 1, json!([])), 1);
    assert_eq!(users_only.apply(&o).await.unwrap(), Outcome::Ignored);
    assert!(s.get_organization("org_x").await.unwrap().is_none());
    db.teardown().await.unwrap();
}

/// The previous release's workers write and read `user_tombstones` during a rollout:
/// the view lands in `tombstones`, and what this release writes shows through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_tombstones_view_serves_the_previous_release() {
    let db = fresh_database().await.unwrap();
    let n = db
        .exec(
            "INSERT INTO user_tombstones (user_id, deleted_at, event_id) \
             VALUES ('user_old', now(), 'evt_old') ON CONFLICT DO NOTHING",
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(db.store.is_tombstoned("user_old").await.unwrap());
    let created = body("e_new", "user.created", user("user_old", 1), 1);
    assert_eq!(db.store.apply(&created).await.unwrap(), Outcome::Tombstoned);
    db.store
        .apply(&body("e_del", "user.deleted", user("user_new", 1), 1))
        .await
        .unwrap();
    let seen = db
        .exec("SELECT 1 FROM user_tombstones WHERE user_id = 'user_new'")
        .await
        .unwrap();
    assert_eq!(seen, 1);
    // Organizations' tombstones are not users'.
    db.store
        .apply(&body(
            "e_org",
            "organization.deleted",
            org("org_v", 1, json!([])),
            1,
        ))
        .await
        .unwrap();
    assert_eq!(db.exec("SELECT 1 FROM user_tombstones").await.unwrap(), 2);
    db.teardown().await.unwrap();
}

/// `sync.*_delete = "soft"`: a user's, an organization's and a membership's rows stay
/// with `deleted_at` set (an application's foreign keys keep working), their keys are
/// tombstoned as with hard deletes, and a re-created membership is stored beside the
/// soft-deleted one (one live membership per pair).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_deletes_keep_rows_and_never_revive_them() {
    let db = fresh_database().await.unwrap();
    let s = db
        .store
        .clone()
        .with_deletes(workos_sync_store::layout::DeleteModes::all_soft());
    let dom = json!([{"object": "organization_domain", "id": "org_domain_s", "organization_id": "org_s",
                     "domain": "s.io", "state": "verified", "verification_strategy": "dns",
                     "created_at": ts(1), "updated_at": ts(1)}]);
    for ev in [
        body("e_u", "user.created", user("user_s", 1), 1),
        body("e_u2", "user.created", user("user_t", 1), 1),
        body("e_o", "organization.created", org("org_s", 1, dom), 1),
        body(
            "e_m1",
            "organization_membership.created",
            membership("om_s1", "user_s", "org_s", 1, 1, "active", "member"),
            1,
        ),
        body(
            "e_mt",
            "organization_membership.created",
            membership("om_t", "user_t", "org_s", 1, 1, "active", "member"),
            1,
        ),
    ] {
        assert_eq!(s.apply(&ev).await.unwrap(), Outcome::Created, "{}", ev.id);
    }
    // A membership deleted and re-created for the same pair: both rows, one live.
    let m1_del = body(
        "e_m1d",
        "organization_membership.deleted",
        membership("om_s1", "user_s", "org_s", 1, 1, "active", "member"),
        5,
    );
    assert_eq!(s.apply(&m1_del).await.unwrap(), Outcome::Deleted);
    let m2 = body(
        "e_m2",
        "organization_membership.created",
        membership("om_s2", "user_s", "org_s", 6, 6, "active", "admin"),
        6,
    );
    assert_eq!(s.apply(&m2).await.unwrap(), Outcome::Created);
    let rows = s.memberships_of_user("user_s").await.unwrap();
    let state: Vec<(&str, bool)> = rows
        .iter()
        .map(|r| (r.id.as_str(), r.deleted_at.is_some()))
        .collect();
    assert_eq!(state.len(), 2);
    assert!(state.contains(&("om_s1", true)) && state.contains(&("om_s2", false)));
    // Nothing brings the soft-deleted one back.
    let late = body(
        "e_m1u",
        "organization_membership.updated",
        membership("om_s1", "user_s", "org_s", 1, 9, "inactive", "member"),
        9,
    );
    assert_eq!(s.apply(&late).await.unwrap(), Outcome::Tombstoned);
    // A third life for the pair while the second is live: the soft-deleted first one
    // holds no pair, the live second one is replaced (one live membership per pair).
    let m3 = body(
        "e_m3",
        "organization_membership.created",
        membership("om_s3", "user_s", "org_s", 8, 8, "active", "member"),
        8,
    );
    assert_eq!(s.apply(&m3).await.unwrap(), Outcome::Created);
    let live: Vec<String> = s
        .memberships_of_user("user_s")
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.deleted_at.is_none())
        .map(|r| r.id)
        .collect();
    assert_eq!(live, ["om_s3"]);

    // The user soft-deleted: its row stays with the personal data cleared, its live
    // membership is soft-deleted with it.
    let u_del = body("e_ud", "user.deleted", user("user_s", 1), 10);
    assert_eq!(s.apply(&u_del).await.unwrap(), Outcome::Deleted);
    let u = s.get_user("user_s").await.unwrap().unwrap();
    assert!(u.deleted_at.is_some());
    assert_eq!(u.email, "user_s@deleted.invalid");
    assert_eq!((u.first_name, u.name), (None, None));
    assert!(s.is_tombstoned("user_s").await.unwrap());
    assert!(
        s.memberships_of_user("user_s")
            .await
            .unwrap()
            .iter()
            .all(|r| r.deleted_at.is_some())
    );
    assert_eq!(
        s.apply(&body("e_uu", "user.updated", user("user_s", 50), 50))
            .await
            .unwrap(),
        Outcome::Tombstoned
    );
    assert!(
        s.get_user("user_s")
            .await
            .unwrap()
            .unwrap()
            .deleted_at
            .is_some()
    );
    // A delete undone by hand (`tombstones remove`): the next snapshot rewrites the
    // soft-deleted row whatever its version, and it is live again.
    assert!(
        s.remove_tombstone(Entity::Users, "user_s")
            .await
            .unwrap()
            .is_some()
    );
    let snap = Event::user_snapshot(serde_json::from_value(user("user_s", 1)).unwrap());
    assert_eq!(s.apply(&snap).await.unwrap(), Outcome::Updated);
    let u = s.get_user("user_s").await.unwrap().unwrap();
    assert_eq!((u.deleted_at, u.email.as_str()), (None, "user_s@x.io"));
    assert_eq!(u.first_name.as_deref(), Some("F"));

    // The organization soft-deleted: its row stays, its domains go, user_t's
    // membership is soft-deleted; later events for either change nothing.
    let o_del = body(
        "e_od",
        "organization.deleted",
        org("org_s", 1, json!([])),
        11,
    );
    assert_eq!(s.apply(&o_del).await.unwrap(), Outcome::Deleted);
    let o = s.get_organization("org_s").await.unwrap().unwrap();
    assert!(o.deleted_at.is_some());
    assert!(s.domains_of("org_s").await.unwrap().is_empty());
    let t = s.memberships_of_user("user_t").await.unwrap();
    assert_eq!(t.len(), 1);
    assert!(t[0].deleted_at.is_some());
    assert_eq!(
        s.apply(&body(
            "e_ou",
            "organization.updated",
            org("org_s", 60, json!([])),
            60
        ))
        .await
        .unwrap(),
        Outcome::Tombstoned
    );
    // user_t is alive and untouched.
    assert!(
        s.get_user("user_t")
            .await
            .unwrap()
            .unwrap()
            .deleted_at
            .is_none()
    );
    db.teardown().await.unwrap();
}

/// An application's foreign key that forbids a delete WorkOS made is a permanent error
/// naming the constraint and the setting of that entity; with the soft mode, the row
/// stays and the delete succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_an_application_key_forbids_is_permanent() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    s.apply(&body(
        "e_o",
        "organization.created",
        org("org_fk", 1, json!([])),
        1,
    ))
    .await
    .unwrap();
    db.exec(
        "CREATE TABLE invoices (id serial PRIMARY KEY, \
         org TEXT NOT NULL REFERENCES organizations(id) ON DELETE RESTRICT)",
    )
    .await
    .unwrap();
    db.exec("INSERT INTO invoices (org) VALUES ('org_fk')")
        .await
        .unwrap();
    let del = body(
        "e_od",
        "organization.deleted",
        org("org_fk", 1, json!([])),
        2,
    );
    let err = s.apply(&del).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("invoices_org_fkey") && msg.contains("sync.organization_delete"),
        "{msg}"
    );
    // Nothing was written: the organization is still there, not tombstoned.
    assert!(s.get_organization("org_fk").await.unwrap().is_some());
    assert!(
        !s.is_tombstoned_in(Entity::Organizations, "org_fk")
            .await
            .unwrap()
    );
    let soft = s
        .clone()
        .with_deletes(workos_sync_store::layout::DeleteModes::default().with(
            Entity::Organizations,
            workos_sync_core::settings::DeleteMode::Soft,
        ));
    assert_eq!(soft.apply(&del).await.unwrap(), Outcome::Deleted);
    assert!(
        soft.get_organization("org_fk")
            .await
            .unwrap()
            .unwrap()
            .deleted_at
            .is_some()
    );
    db.teardown().await.unwrap();
}

/// A role or permission deleted and made again under the same slug (a new object,
/// created after the deletion) is stored, under both scopes; the old object's late
/// events stay stopped, and deleting the new one deletes it for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_or_permission_made_again_under_its_slug_is_stored() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    let role = |org: Option<&str>, id: &str, created: i64, v: i64| {
        let mut r = json!({"object": "role", "id": id, "slug": "admin", "permissions": [],
                           "created_at": ts(created), "updated_at": ts(v)});
        if let Some(o) = org {
            r["organization_id"] = json!(o);
        }
        r
    };
    for (org, prefix, key) in [
        (None, "role", "admin"),
        (Some("org_r"), "organization_role", "org_r:admin"),
    ] {
        let ev = |n: &str, ty: &str, data: Value, at: i64| {
            body(
                &format!("{prefix}_{n}"),
                &format!("{prefix}.{ty}"),
                data,
                at,
            )
        };
        let count = format!("SELECT 1 FROM roles WHERE key = '{key}'");
        let new_one = format!("SELECT 1 FROM roles WHERE key = '{key}' AND id = 'role_2'");
        assert_eq!(
            s.apply(&ev("c1", "created", role(org, "role_1", 1, 1), 1))
                .await
                .unwrap(),
            Outcome::Created
        );
        assert_eq!(
            s.apply(&ev("d1", "deleted", role(org, "role_1", 1, 1), 5))
                .await
                .unwrap(),
            Outcome::Deleted
        );
        assert_eq!(db.exec(&count).await.unwrap(), 0);
        // Made again with a new id after the deletion: stored.
        assert_eq!(
            s.apply(&ev("c2", "created", role(org, "role_2", 6, 6), 6))
                .await
                .unwrap(),
            Outcome::Created
        );
        assert_eq!(db.exec(&new_one).await.unwrap(), 1, "{key}");
        // The old object's late update changes nothing; the new one's update applies.
        assert_eq!(
            s.apply(&ev("u1", "updated", role(org, "role_1", 1, 4), 4))
                .await
                .unwrap(),
            Outcome::Tombstoned
        );
        assert_eq!(
            s.apply(&ev("u2", "updated", role(org, "role_2", 6, 7), 7))
                .await
                .unwrap(),
            Outcome::Updated
        );
        assert_eq!(db.exec(&new_one).await.unwrap(), 1);
        // Deleting the new one is final for it too.
        assert_eq!(
            s.apply(&ev("d2", "deleted", role(org, "role_2", 6, 7), 8))
                .await
                .unwrap(),
            Outcome::Deleted
        );
        assert_eq!(
            s.apply(&ev("u3", "updated", role(org, "role_2", 6, 8), 8))
                .await
                .unwrap(),
            Outcome::Tombstoned
        );
        assert_eq!(db.exec(&count).await.unwrap(), 0);
    }
    let perm = |id: &str, created: i64| json!({"object": "permission", "id": id, "slug": "read", "created_at": ts(created), "updated_at": ts(created)});
    s.apply(&body("p1", "permission.created", perm("perm_1", 1), 1))
        .await
        .unwrap();
    s.apply(&body("p2", "permission.deleted", perm("perm_1", 1), 2))
        .await
        .unwrap();
    assert_eq!(
        s.apply(&body("p3", "permission.created", perm("perm_2", 3), 3))
            .await
            .unwrap(),
        Outcome::Created
    );
    assert_eq!(
        db.exec("SELECT 1 FROM permissions WHERE key = 'read' AND id = 'perm_2'")
            .await
            .unwrap(),
        1
    );
    db.teardown().await.unwrap();
}

/// A deletion whose `data` carries only the key deletes, for a user, an organization,
/// a membership (its user and organization read from the stored row) and a domain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_carrying_only_its_key_deletes() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    s.apply(&body("u", "user.created", user("user_k", 1), 1))
        .await
        .unwrap();
    s.apply(&body("u2", "user.created", user("user_m", 1), 1))
        .await
        .unwrap();
    let domains = json!([{"object": "organization_domain", "id": "org_domain_k", "domain": "k.io",
                          "state": "verified", "created_at": ts(0), "updated_at": ts(1)}]);
    s.apply(&body(
        "o",
        "organization.created",
        org("org_k", 1, domains),
        1,
    ))
    .await
    .unwrap();
    s.apply(&body(
        "o2",
        "organization.created",
        org("org_m", 1, json!([])),
        1,
    ))
    .await
    .unwrap();
    s.apply(&body(
        "m",
        "organization_membership.created",
        membership("om_k", "user_m", "org_m", 1, 1, "active", "member"),
        1,
    ))
    .await
    .unwrap();
    let key_only = |id: &str, ty: &str, data: Value| body(id, ty, data, 5);
    for (ev, check) in [
        (
            key_only(
                "d1",
                "organization_membership.deleted",
                json!({"object": "organization_membership", "id": "om_k"}),
            ),
            "SELECT 1 FROM organization_memberships WHERE id = 'om_k'",
        ),
        (
            key_only(
                "d2",
                "organization_domain.deleted",
                json!({"object": "organization_domain", "id": "org_domain_k"}),
            ),
            "SELECT 1 FROM organization_domains WHERE id = 'org_domain_k'",
        ),
        (
            key_only(
                "d3",
                "user.deleted",
                json!({"object": "user", "id": "user_k"}),
            ),
            "SELECT 1 FROM users WHERE id = 'user_k'",
        ),
        (
            key_only(
                "d4",
                "organization.deleted",
                json!({"object": "organization", "id": "org_k"}),
            ),
            "SELECT 1 FROM organizations WHERE id = 'org_k'",
        ),
    ] {
        assert_eq!(
            s.apply(&ev).await.unwrap(),
            Outcome::Deleted,
            "{}",
            ev.event_type
        );
        assert_eq!(db.exec(check).await.unwrap(), 0, "{check}");
    }
    // The membership's tombstone stops its late update; its user and organization live.
    let late = body(
        "m2",
        "organization_membership.updated",
        membership("om_k", "user_m", "org_m", 1, 3, "inactive", "member"),
        3,
    );
    assert_eq!(s.apply(&late).await.unwrap(), Outcome::Tombstoned);
    assert!(s.get_user("user_m").await.unwrap().is_some());
    assert!(s.get_organization("org_m").await.unwrap().is_some());
    db.teardown().await.unwrap();
}

/// The application's own soft delete (its deleted-at column, a ban) is the
/// application's: with soft deletes no event or snapshot clears it, a WorkOS deletion
/// still clears the personal data and keeps the application's time, and `tombstones
/// remove` revives only what sync deleted; with hard deletes sync neither reads nor
/// writes the column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_applications_own_soft_delete_is_never_undone() {
    use workos_sync_core::settings::DeleteMode;
    let db = fresh_database().await.unwrap();
    let soft = db.store.clone().with_deletes(
        workos_sync_store::layout::DeleteModes::default().with(Entity::Users, DeleteMode::Soft),
    );
    let hard = db.store.clone();
    let banned_at = "2025-06-01T00:00:00+00:00";
    for (s, id) in [(&soft, "user_ban_soft"), (&hard, "user_ban_hard")] {
        s.apply(&body(&format!("{id}_c"), "user.created", user(id, 1), 1))
            .await
            .unwrap();
        db.exec(&format!(
            "UPDATE users SET deleted_at = '{banned_at}' WHERE id = '{id}'"
        ))
        .await
        .unwrap();
        // An update and an old snapshot (a repair's, dated before anything): applied
        // to the WorkOS columns, the ban stays.
        assert_eq!(
            s.apply(&body(&format!("{id}_u"), "user.updated", user(id, 2), 2))
                .await
                .unwrap(),
            Outcome::Updated
        );
        let mut old: serde_json::Value = user(id, 3);
        old["created_at"] = json!("2020-01-01T00:00:00.000Z");
        s.apply(&Event::user_snapshot(serde_json::from_value(old).unwrap()))
            .await
            .unwrap();
        let still = db
            .exec(&format!(
                "SELECT 1 FROM users WHERE id = '{id}' AND deleted_at = '{banned_at}'"
            ))
            .await
            .unwrap();
        assert_eq!(still, 1, "{id}: the application's deleted_at was changed");
    }
    // Hard mode: the column is not read either.
    assert_eq!(
        hard.get_user("user_ban_hard")
            .await
            .unwrap()
            .unwrap()
            .deleted_at,
        None
    );
    // Soft mode: WorkOS deletes the banned user: personal data cleared, the ban's time kept.
    assert_eq!(
        soft.apply(&body("ban_d", "user.deleted", user("user_ban_soft", 3), 9))
            .await
            .unwrap(),
        Outcome::Deleted
    );
    let u = soft.get_user("user_ban_soft").await.unwrap().unwrap();
    assert_eq!(u.email, "user_ban_soft@deleted.invalid");
    assert_eq!(u.first_name, None);
    assert_eq!(u.deleted_at.unwrap().to_rfc3339(), banned_at);
    // Removing the tombstone does not lift the application's ban.
    soft.remove_tombstone(Entity::Users, "user_ban_soft")
        .await
        .unwrap()
        .unwrap();
    soft.apply(&Event::user_snapshot(
        serde_json::from_value(user("user_ban_soft", 20)).unwrap(),
    ))
    .await
    .unwrap();
    let u = soft.get_user("user_ban_soft").await.unwrap().unwrap();
    assert_eq!(u.deleted_at.unwrap().to_rfc3339(), banned_at);
    assert_eq!(u.email, "user_ban_soft@x.io");
    db.teardown().await.unwrap();
}

/// A role or permission deletion that names only the object's id: its slug and scope
/// come from the stored row; an id nothing stored has deletes nothing (recorded as
/// ignored, no tombstone of an empty key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_or_permission_deleted_by_id_alone() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    s.apply(&body(
        "r1",
        "organization_role.created",
        json!({"object": "role", "id": "role_o1", "slug": "admin", "organization_id": "org_r",
               "created_at": ts(1), "updated_at": ts(1)}),
        1,
    ))
    .await
    .unwrap();
    s.apply(&body(
        "p1",
        "permission.created",
        json!({"object": "permission", "id": "perm_1", "slug": "read", "created_at": ts(1), "updated_at": ts(1)}),
        1,
    ))
    .await
    .unwrap();
    for (id, ty, data) in [
        (
            "r2",
            "organization_role.deleted",
            json!({"object": "role", "id": "role_o1"}),
        ),
        (
            "p2",
            "permission.deleted",
            json!({"object": "permission", "id": "perm_1"}),
        ),
    ] {
        assert_eq!(
            s.apply(&body(id, ty, data, 5)).await.unwrap(),
            Outcome::Deleted,
            "{ty}"
        );
    }
    assert_eq!(db.exec("SELECT 1 FROM roles").await.unwrap(), 0);
    assert_eq!(db.exec("SELECT 1 FROM permissions").await.unwrap(), 0);
    assert_eq!(
        db.exec("SELECT 1 FROM tombstones WHERE (entity, id) IN (('roles', 'org_r:admin'), ('permissions', 'read'))")
            .await
            .unwrap(),
        2
    );
    let unknown = body(
        "r3",
        "role.deleted",
        json!({"object": "role", "id": "role_never"}),
        6,
    );
    assert_eq!(s.apply(&unknown).await.unwrap(), Outcome::Ignored);
    assert_eq!(
        db.exec("SELECT 1 FROM tombstones WHERE id = ''")
            .await
            .unwrap(),
        0
    );
    db.teardown().await.unwrap();
}

/// A users row another session holds: in a batch, only that user's event is deferred
/// (nothing written or recorded for it), the rest applies; a row held only for a moment
/// (the application's own short update) is waited for briefly and applied, not deferred.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_row_held_by_another_session_defers_only_its_events() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    for (ev, id) in [("c1", "user_h"), ("c2", "user_f")] {
        s.apply(&body(ev, "user.created", user(id, 1), 1))
            .await
            .unwrap();
    }
    let mut app = AsyncPgConnection::establish(&db.url).await.unwrap();
    app.batch_execute("BEGIN; SELECT 1 FROM users WHERE id = 'user_h' FOR UPDATE")
        .await
        .unwrap();
    let held = body("u1", "user.updated", user("user_h", 2), 2);
    let free = body("u2", "user.updated", user("user_f", 2), 2);
    let out = s.apply_batch(&[held.clone(), free]).await.unwrap();
    assert_eq!(out, [Outcome::Deferred, Outcome::Updated]);
    assert_eq!(
        db.exec("SELECT 1 FROM processed_events WHERE event_id = 'u1'")
            .await
            .unwrap(),
        0,
        "a deferred event is not recorded"
    );
    // Released a moment after the batch starts: applied, not deferred.
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        app.batch_execute("COMMIT").await.unwrap();
    });
    assert_eq!(s.apply(&held).await.unwrap(), Outcome::Updated);
    release.await.unwrap();
    db.teardown().await.unwrap();
}
