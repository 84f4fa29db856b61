//! Invitations and SSO connections through the one apply step, against a real Postgres:
//! random histories (invitations created, resent, accepted or revoked; connections
//! created, activated, deactivated, some deleted; invitations to the application and to
//! organizations, one organization deleted mid-history), delivered shuffled with 20 %
//! duplicates to concurrent appliers, against a model; every table scanned for the
//! secrets WorkOS sends (invitation tokens and accept URLs, connection secrets); and the
//! rules one by one. Each test in its own fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use workos_sync_core::Event;
use workos_sync_store::Outcome;
use workos_sync_testkit::{
    TestDb, fresh_database,
    history::{apply_concurrently, body, deliveries, secs, ts},
};

fn organization(id: &str, v: i64) -> Value {
    json!({"object": "organization", "id": id, "name": format!("{id} v{v}"), "domains": [],
           "created_at": ts(0), "updated_at": ts(v)})
}

/// An invitation as WorkOS's emulator sends it: with its token and accept URL.
fn invitation(id: &str, org: Option<&str>, v: i64, state: &str) -> Value {
    let token = format!("SECRET-TOKEN-{id}-{v}");
    json!({"object": "invitation", "id": id, "email": format!("{id}@example.com"),
           "state": state, "organization_id": org, "inviter_user_id": "user_inviter",
           "accepted_user_id": if state == "accepted" { json!("user_accepted") } else { Value::Null },
           "role_slug": "member", "expires_at": ts(v + 3 * 86_400), "accepted_at": null,
           "revoked_at": null, "token": token,
           "accept_invitation_url": format!("https://app.example/accept?token={token}"),
           "created_at": ts(0), "updated_at": ts(v)})
}

/// A connection as old API answers and events carry it: secret-shaped keys included.
fn connection(id: &str, org: &str, v: i64, state: &str) -> Value {
    json!({"object": "connection", "id": id, "organization_id": org,
           "connection_type": "OktaSAML", "name": format!("{id} v{v}"), "state": state,
           "status": "linked", "external_key": "SECRET-EXTERNAL-KEY",
           "oidc_client_secret": "SECRET-OIDC", "oauth_secret": "SECRET-OAUTH",
           "saml_relying_party_private_key": "SECRET-PRIVATE-KEY",
           "domains": [{"object": "connection_domain", "id": format!("conn_domain_{id}"),
                        "domain": format!("{id}.example")}],
           "created_at": ts(0), "updated_at": ts(v)})
}

/// The model's final state: id → (version, state).
#[derive(Debug, Default, PartialEq)]
struct Model {
    invitations: BTreeMap<String, (i64, String)>,
    connections: BTreeMap<String, (i64, String)>,
}

struct History {
    events: Vec<Event>,
    model: Model,
}

/// Three organizations with invitations and connections, invitations to the
/// application (no organization), one organization deleted after everything else.
fn history(seed: u64) -> History {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events = Vec::new();
    let mut n = 0;
    let mut id = |p: &str| {
        n += 1;
        format!("evt_{p}_{n:05}")
    };
    let mut model = Model::default();
    let deleted_org = rng.random_range(0..3);
    let invite = |events: &mut Vec<Event>,
                  model: &mut Model,
                  rng: &mut StdRng,
                  id: &mut dyn FnMut(&str) -> String,
                  iid: String,
                  org: Option<&str>| {
        let versions = rng.random_range(1..5);
        let mut state = "pending";
        for v in 1..=versions {
            let ty = match v {
                1 => "invitation.created",
                _ if v == versions => [
                    "invitation.accepted",
                    "invitation.revoked",
                    "invitation.resent",
                ][rng.random_range(0..3)],
                _ => "invitation.resent",
            };
            state = match ty {
                "invitation.accepted" => "accepted",
                "invitation.revoked" => "revoked",
                _ => "pending",
            };
            events.push(body(
                &id("i"),
                ty,
                invitation(&iid, org, v * 10, state),
                v * 10,
            ));
        }
        model
            .invitations
            .insert(iid, (versions * 10, state.to_owned()));
    };
    for o in 0..3 {
        let org = format!("org_{seed}_{o}");
        events.push(body(
            &id("o"),
            "organization.created",
            organization(&org, 1),
            1,
        ));
        for i in 0..5 {
            let iid = format!("invitation_{seed}_{o}_{i}");
            invite(&mut events, &mut model, &mut rng, &mut id, iid, Some(&org));
        }
        for c in 0..4 {
            let cid = format!("conn_{seed}_{o}_{c}");
            let versions = rng.random_range(1..4);
            let mut state = "draft";
            for v in 1..=versions {
                // The API's names, and the emulator's.
                let (ty, s) = [
                    ("connection.activated", "active"),
                    ("connection.deactivated", "inactive"),
                    ("connection.created", "active"),
                    ("connection.updated", "validating"),
                ][rng.random_range(0..4)];
                state = s;
                events.push(body(
                    &id("c"),
                    ty,
                    connection(&cid, &org, v * 10, s),
                    v * 10,
                ));
            }
            if rng.random_bool(0.3) {
                let at = versions * 10 + 5;
                events.push(body(
                    &id("cd"),
                    "connection.deleted",
                    connection(&cid, &org, versions * 10, "deleting"),
                    at,
                ));
            } else {
                model
                    .connections
                    .insert(cid, (versions * 10, state.to_owned()));
            }
        }
        if o == deleted_org {
            events.push(body(
                &id("od"),
                "organization.deleted",
                organization(&org, 2),
                700,
            ));
            let prefix = |p: &str| format!("{p}_{seed}_{o}_");
            model
                .invitations
                .retain(|k, _| !k.starts_with(&prefix("invitation")));
            model
                .connections
                .retain(|k, _| !k.starts_with(&prefix("conn")));
        }
    }
    for i in 0..4 {
        let iid = format!("invitation_{seed}_app_{i}");
        invite(&mut events, &mut model, &mut rng, &mut id, iid, None);
    }
    History { events, model }
}

async fn tables(db: &TestDb) -> Model {
    let mut m = Model::default();
    for (table, map) in [
        ("invitations", &mut m.invitations),
        ("connections", &mut m.connections),
    ] {
        for r in db
            .rows(&format!("SELECT id, workos_updated_at, state FROM {table}"))
            .await
            .unwrap()
        {
            map.insert(
                r["id"].as_str().unwrap().to_owned(),
                (
                    secs(&r["workos_updated_at"]),
                    r["state"].as_str().unwrap().to_owned(),
                ),
            );
        }
    }
    m
}

/// What no table may hold: the secrets the bodies above carry, and their key names.
const SECRETS: &str = "(SECRET-|token=|accept_invitation_url|oidc_client_secret|oauth_secret|private_key|external_key)";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_invitation_and_connection_histories_converge_to_the_model() {
    let db = fresh_database().await.unwrap();
    for seed in 0..6u64 {
        let h = history(seed);
        let deliveries = deliveries(&h.events, seed);
        apply_concurrently(&db.store, deliveries, 4, seed)
            .await
            .unwrap();
        let got = tables(&db).await;
        assert_eq!(got, h.model, "seed {seed}");
        assert!(!got.connections.is_empty() && !got.invitations.is_empty());
        // Nothing secret reached any table (events' bodies are not stored either).
        let leaked = db.rows_matching(SECRETS).await.unwrap();
        assert!(leaked.is_empty(), "seed {seed}: {leaked:#?}");
        db.exec("TRUNCATE organizations, invitations, connections, tombstones, processed_events")
            .await
            .unwrap();
    }
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitation_and_connection_rules_one_by_one() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    // A connection's delete is final: an older event, or the same version again, does
    // not bring it back.
    let c = "conn_rules";
    s.apply(&body(
        "e1",
        "connection.activated",
        connection(c, "org_r", 10, "active"),
        10,
    ))
    .await
    .unwrap();
    let del = body(
        "e2",
        "connection.deleted",
        json!({"object": "connection", "id": c}),
        20,
    );
    assert_eq!(s.apply(&del).await.unwrap(), Outcome::Deleted);
    let late = body(
        "e3",
        "connection.deactivated",
        connection(c, "org_r", 15, "inactive"),
        15,
    );
    assert_eq!(s.apply(&late).await.unwrap(), Outcome::Tombstoned);
    assert!(
        db.rows("SELECT 1 FROM connections")
            .await
            .unwrap()
            .is_empty()
    );

    // Domains are kept as names; the deprecated status is not kept.
    s.apply(&body(
        "e4",
        "connection.created",
        connection("conn_d", "org_r", 10, "draft"),
        10,
    ))
    .await
    .unwrap();
    let row = db
        .rows("SELECT domains, state, connection_type FROM connections WHERE id = 'conn_d'")
        .await
        .unwrap();
    assert_eq!(row[0]["domains"], json!(["conn_d.example"]));
    // The secret scan sees what is stored (a scan that matched nothing would prove
    // nothing).
    let seen = db.rows_matching("conn_d\\.EXAMPLE").await.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(row[0]["state"], "draft");
    assert_eq!(row[0]["connection_type"], "OktaSAML");

    // An invitation's newer state wins in any order; its row keeps no token.
    let i = "invitation_rules";
    let accepted = body(
        "e5",
        "invitation.accepted",
        invitation(i, Some("org_r"), 30, "accepted"),
        30,
    );
    let created = body(
        "e6",
        "invitation.created",
        invitation(i, Some("org_r"), 10, "pending"),
        10,
    );
    s.apply(&accepted).await.unwrap();
    assert_eq!(s.apply(&created).await.unwrap(), Outcome::Stale);
    let row = db
        .rows("SELECT state, accepted_user_id, email FROM invitations")
        .await
        .unwrap();
    assert_eq!(row[0]["state"], "accepted");
    assert_eq!(row[0]["accepted_user_id"], "user_accepted");

    // There is no expired event: the view reads a pending invitation past its expiry as
    // expired, and the table keeps what WorkOS sent.
    let mut old = invitation("invitation_old", None, 10, "pending");
    old["expires_at"] = json!("2020-01-01T00:00:00.000Z");
    s.apply(&body("e7", "invitation.created", old, 10))
        .await
        .unwrap();
    let mut fresh = invitation("invitation_fresh", None, 10, "pending");
    fresh["expires_at"] = json!("2999-01-01T00:00:00.000Z");
    s.apply(&body("e8", "invitation.created", fresh, 10))
        .await
        .unwrap();
    let states: BTreeMap<String, String> = db
        .rows("SELECT id, state FROM invitation_states")
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(states["invitation_old"], "expired");
    assert_eq!(states["invitation_fresh"], "pending");
    assert_eq!(states["invitation_rules"], "accepted");
    let stored = db
        .rows("SELECT state FROM invitations WHERE id = 'invitation_old'")
        .await
        .unwrap();
    assert_eq!(stored[0]["state"], "pending");

    // An organization's delete removes its invitations and connections, and nothing of
    // it is made afterwards; an invitation to the application is left alone.
    s.apply(&body(
        "e9",
        "organization.deleted",
        organization("org_r", 40),
        40,
    ))
    .await
    .unwrap();
    let left: Vec<String> = db
        .rows("SELECT id FROM invitations UNION ALL SELECT id FROM connections ORDER BY 1")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, vec!["invitation_fresh", "invitation_old"]);
    let again = body(
        "e10",
        "invitation.resent",
        invitation("invitation_new", Some("org_r"), 50, "pending"),
        50,
    );
    assert_eq!(s.apply(&again).await.unwrap(), Outcome::Tombstoned);
    db.teardown().await.unwrap();
}
