//! Backfill and verify of the plain lists (invitations, SSO connections) against a fake
//! WorkOS API (wiremock, paging like the real one, secrets in its answers as the real
//! one has them) and the real Postgres: a run killed half way resumes from its saved
//! cursor to the exact tables; verify finds them in step, then repairs missing, stale and
//! extra rows (an extra row removed only on WorkOS's `entity_not_found` for its id); no
//! secret reaches any table.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path, path_regex},
};
use workos_sync_core::Entity;
use workos_sync_pull as sync;
use workos_sync_testkit::{TestDb, fresh_database};
use workos_sync_workos_api::{ApiConfig, Client};

fn query(req: &Request, key: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.to_string())
}

/// A list answered page by page after `after`; the `fail_page`-th request fails once
/// with a non-retryable 401 (a crash).
struct Listed {
    items: Vec<Value>,
    asked: Arc<Mutex<Vec<Option<String>>>>,
    fail_page: Mutex<Option<usize>>,
}

impl Respond for Listed {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let n = {
            let mut asked = self.asked.lock().unwrap();
            asked.push(query(req, "after"));
            asked.len()
        };
        if *self.fail_page.lock().unwrap() == Some(n) {
            *self.fail_page.lock().unwrap() = None;
            return ResponseTemplate::new(401).set_body_json(json!({"message": "crash"}));
        }
        let limit: usize = query(req, "limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(10);
        let start = match query(req, "after") {
            None => 0,
            Some(a) => self
                .items
                .iter()
                .position(|i| i["id"] == a.as_str())
                .map_or(self.items.len(), |i| i + 1),
        };
        let data: Vec<Value> = self.items.iter().skip(start).take(limit).cloned().collect();
        let after = (start + data.len() < self.items.len())
            .then(|| data.last().map(|i| i["id"].clone()))
            .flatten();
        ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "data": data, "list_metadata": {"before": null, "after": after}
        }))
    }
}

/// `GET …/{id}`: the object from `known`, else WorkOS's `entity_not_found`.
struct ById(HashMap<String, Value>);

impl Respond for ById {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let id = req.url.path().rsplit('/').next().unwrap_or_default();
        match self.0.get(id) {
            Some(v) => ResponseTemplate::new(200).set_body_json(v),
            None => ResponseTemplate::new(404).set_body_json(json!({
                "code": "entity_not_found", "entity_id": id, "message": "not found"
            })),
        }
    }
}

fn invitation(i: usize) -> Value {
    let id = format!("invitation_bp{i:04}");
    let state = ["pending", "accepted", "revoked", "expired"][i % 4];
    let org = if i.is_multiple_of(5) {
        Value::Null
    } else {
        json!(format!("org_{}", i % 7))
    };
    json!({"object": "invitation", "id": id, "email": format!("i{i}@example.com"),
           "state": state, "organization_id": org,
           "inviter_user_id": "user_1", "accepted_user_id": null, "role_slug": "member",
           "expires_at": "2026-01-05T00:00:00.000Z", "accepted_at": null, "revoked_at": null,
           "token": format!("SECRET-TOKEN-{i}"),
           "accept_invitation_url": format!("https://app.example/accept?token=SECRET-TOKEN-{i}"),
           "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-02T00:00:00.000Z"})
}

fn connection(c: usize) -> Value {
    json!({"object": "connection", "id": format!("conn_bp{c:04}"),
           "organization_id": format!("org_{}", c % 7), "connection_type": "OktaSAML",
           "name": format!("C{c}"), "state": "active", "status": "linked",
           "oidc_client_secret": "SECRET-OIDC", "oauth_secret": null,
           "saml_relying_party_private_key": "SECRET-PRIVATE-KEY",
           "domains": [{"object": "connection_domain", "id": format!("org_domain_{c}"),
                        "domain": format!("c{c}.example")}],
           "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-02T00:00:00.000Z"})
}

async fn ids(db: &TestDb, table: &str) -> BTreeSet<String> {
    db.rows(&format!("SELECT id FROM {table}"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_lists_backfill_resume_verify_and_repair_without_secrets() {
    let db = fresh_database().await.unwrap();
    let workos = MockServer::start().await;
    let invitations: Vec<Value> = (0..250).map(invitation).collect();
    let connections: Vec<Value> = (0..120).map(connection).collect();
    // WorkOS still has one object its list misses.
    let kept_invitation = invitation(9999);
    let mut known: HashMap<String, Value> = HashMap::new();
    for v in invitations
        .iter()
        .chain(&connections)
        .chain([&kept_invitation])
    {
        known.insert(v["id"].as_str().unwrap().to_owned(), v.clone());
    }
    let mut asked = HashMap::new();
    for (list, items, fail) in [
        ("/user_management/invitations", invitations.clone(), Some(2)),
        ("/connections", connections.clone(), None),
    ] {
        let a = Arc::new(Mutex::new(Vec::new()));
        asked.insert(list, a.clone());
        Mock::given(method("GET"))
            .and(path(list))
            .respond_with(Listed {
                items,
                asked: a,
                fail_page: Mutex::new(fail),
            })
            .mount(&workos)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(format!("^{list}/[^/]+$")))
            .respond_with(ById(known.clone()))
            .mount(&workos)
            .await;
    }
    let mut cfg = ApiConfig::new(workos.uri(), SecretString::from("sk_test_fake"));
    cfg.backoff_base = Duration::from_millis(10);
    let api = Client::new(cfg).unwrap();
    let opts = |only| sync::BackfillOptions {
        restart: false,
        dry_run: false,
        only: Some(only),
    };

    // Killed on the second page of invitations, resumed from the first page's cursor.
    let first = sync::backfill(&api, &db.store, opts(Entity::Invitations), |_| {}).await;
    assert!(first.is_err(), "the simulated crash must end the run");
    assert_eq!(ids(&db, "invitations").await.len(), 100);
    let cursor = db
        .store
        .cursor(&sync::cursor_name(Entity::Invitations))
        .await
        .unwrap();
    assert_eq!(cursor.as_deref(), Some("invitation_bp0099"));
    asked["/user_management/invitations"]
        .lock()
        .unwrap()
        .clear();
    sync::backfill(&api, &db.store, opts(Entity::Invitations), |_| {})
        .await
        .unwrap();
    assert_eq!(
        asked["/user_management/invitations"]
            .lock()
            .unwrap()
            .first(),
        Some(&Some("invitation_bp0099".to_owned())),
        "the resumed run starts at the saved page"
    );
    assert!(
        asked["/connections"].lock().unwrap().is_empty(),
        "--only invitations lists nothing else"
    );
    sync::backfill(&api, &db.store, opts(Entity::Connections), |_| {})
        .await
        .unwrap();
    let listed = |items: &[Value]| -> BTreeSet<String> {
        items
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&db, "invitations").await, listed(&invitations));
    assert_eq!(ids(&db, "connections").await, listed(&connections));
    let row = db
        .rows("SELECT state, organization_id, domains FROM connections WHERE id = 'conn_bp0003'")
        .await
        .unwrap();
    assert_eq!(row[0]["domains"], json!(["c3.example"]));
    // Each row keeps the listed object as received (minus its secrets): a field no
    // column holds is there.
    let raw = db
        .rows("SELECT raw FROM connections WHERE id = 'conn_bp0003'")
        .await
        .unwrap();
    assert_eq!(raw[0]["raw"]["id"], "conn_bp0003");
    assert_eq!(raw[0]["raw"]["status"], "linked", "{raw:?}");
    assert!(raw[0]["raw"].get("oidc_client_secret").is_none(), "{raw:?}");

    // Verify: in step.
    for e in [Entity::Invitations, Entity::Connections] {
        let check = sync::verify(&api, &db.store, Some(e), None, |_| {})
            .await
            .unwrap();
        assert!(!check.has_drift(), "{e}: {check:?}");
    }

    // Drift of each kind, then a repair.
    db.exec("DELETE FROM invitations WHERE id = 'invitation_bp0007'")
        .await
        .unwrap();
    db.exec(
        "UPDATE connections SET name = 'old', workos_updated_at = '2025-01-01Z' \
         WHERE id = 'conn_bp0011'",
    )
    .await
    .unwrap();
    let mut gone = connection(5000);
    gone["id"] = json!("conn_gone");
    for (ty, data) in [
        ("connection.activated", gone),
        ("invitation.created", kept_invitation.clone()),
    ] {
        let b = json!({"id": format!("evt_{ty}"), "event": ty, "data": data,
                       "created_at": "2026-01-02T00:00:00.000Z"});
        let e = workos_sync_core::Event::decode(b.to_string().as_bytes()).unwrap();
        db.store.apply(&e).await.unwrap();
    }
    db.exec("UPDATE invitations SET updated_at = updated_at - interval '1 hour'")
        .await
        .unwrap();
    db.exec("UPDATE connections SET updated_at = updated_at - interval '1 hour'")
        .await
        .unwrap();
    let began = db.now().await.unwrap();
    for e in [Entity::Invitations, Entity::Connections] {
        let report = sync::verify_since(
            &api,
            &db.store,
            Some(e),
            Some(sync::RemovalBound::absolute(10)),
            began,
            |_| {},
        )
        .await
        .unwrap();
        let d = &report.entities[&e];
        let r = d.repair.as_ref().unwrap();
        match e {
            Entity::Invitations => {
                assert_eq!(d.missing, vec!["invitation_bp0007".to_owned()]);
                assert_eq!(r.still_in_workos, vec!["invitation_bp9999".to_owned()]);
            }
            _ => {
                assert_eq!(d.stale, vec!["conn_bp0011".to_owned()]);
                assert_eq!(r.removed, vec!["conn_gone".to_owned()]);
            }
        }
    }
    let mut want = listed(&invitations);
    want.insert("invitation_bp9999".into());
    assert_eq!(ids(&db, "invitations").await, want);
    assert_eq!(ids(&db, "connections").await, listed(&connections));
    let name = db
        .rows("SELECT name FROM connections WHERE id = 'conn_bp0011'")
        .await
        .unwrap();
    assert_eq!(name[0]["name"], "C11");
    let t = db
        .store
        .tombstones(Some(Entity::Connections), 10)
        .await
        .unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].id, "conn_gone");

    // Groups have no list: verify leaves them out rather than calling every row extra.
    let b = json!({"id": "evt_group", "event": "group.created", "created_at": "2026-01-02T00:00:00.000Z",
                   "data": {"object": "group", "id": "group_bp", "organization_id": "org_1",
                            "name": "G", "created_at": "2026-01-01T00:00:00.000Z",
                            "updated_at": "2026-01-02T00:00:00.000Z"}});
    let e = workos_sync_core::Event::decode(b.to_string().as_bytes()).unwrap();
    db.store.apply(&e).await.unwrap();
    let check = sync::verify(&api, &db.store, Some(Entity::Groups), None, |_| {})
        .await
        .unwrap();
    assert!(!check.has_drift() && check.entities.is_empty(), "{check:?}");

    // No secret of any answer reached any table.
    let leaked = db
        .rows_matching("(SECRET-|token|accept_invitation_url|client_secret|private_key)")
        .await
        .unwrap();
    assert!(leaked.is_empty(), "{leaked:#?}");
    db.teardown().await.unwrap();
}
