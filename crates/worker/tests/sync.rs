//! Lazy sync, backfill and reconciliation against a fake WorkOS API (wiremock, serving
//! the documented shapes), the real Postgres and the real RabbitMQ.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{header, method, path, path_regex},
};
use workos_sync_pull::{self as sync, EVENTS_CURSOR, LOCK_RECONCILE};
use workos_sync_testkit::{
    TcpProxy, amqp_addr, amqp_url_via, close_and_delete, connected_broker, delete_topology,
    eventually, fresh_database, publish_event, spawn_worker, test_broker, unique_prefix,
};
use workos_sync_workos_api::{ApiConfig, Client};

fn ts(v: u64) -> String {
    format!("2026-03-01T00:{:02}:{:02}.000Z", (v / 60) % 60, v % 60)
}

fn user_json(id: &str, v: u64) -> Value {
    json!({
        "object": "user", "id": id, "email": format!("{id}.v{v}@example.com"),
        "email_verified": true, "first_name": "Grace", "last_name": "Hopper",
        "profile_picture_url": null, "last_sign_in_at": null, "external_id": null,
        "metadata": {}, "created_at": ts(0), "updated_at": ts(v)
    })
}

fn fast_client(base: &str) -> Client {
    let mut cfg = ApiConfig::new(base, SecretString::from("sk_test_fake"));
    cfg.backoff_base = Duration::from_millis(10);
    cfg.backoff_max = Duration::from_millis(50);
    cfg.timeout = Duration::from_secs(2);
    Client::new(cfg).unwrap()
}

async fn sync_post(
    c: &reqwest::Client,
    addr: std::net::SocketAddr,
    id: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = c.post(format!("http://{addr}/v1/users/{id}/sync"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

/// A worker on a fresh prefix whose WorkOS API is `workos`, lazy sync on with token
/// `tok`, the reconciler off.
async fn lazy_sync_worker(
    db: &workos_sync_testkit::TestDb,
    workos: &MockServer,
    extra: &[(&str, &str)],
) -> workos_sync_worker::WorkerHandle {
    let base = workos.uri();
    let mut env = vec![
        ("WORKOS_API_KEY", "sk_test_fake"),
        ("WORKOS_API_BASE_URL", base.as_str()),
        ("WORKOS_SYNC__WORKER__API_TOKEN", "tok"),
        ("WORKOS_SYNC__RECONCILE__INTERVAL_SECS", "0"),
    ];
    env.extend_from_slice(extra);
    spawn_worker(&unique_prefix().keep(), &db.url, &env)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lazy_sync_creates_updates_removes_and_guards() {
    let workos = MockServer::start().await;
    let db = fresh_database().await.unwrap();
    let w = lazy_sync_worker(&db, &workos, &[]).await;
    let c = reqwest::Client::new();
    let users_path = "/user_management/users/user_ls1";
    let mount = |body: Value| {
        let workos = &workos;
        async move {
            workos.reset().await;
            Mock::given(method("GET"))
                .and(path(users_path))
                .and(header("authorization", "Bearer sk_test_fake"))
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .mount(workos)
                .await;
            mount_memberships(workos, vec![]).await;
        }
    };
    mount(user_json("user_ls1", 1)).await;

    // The token is enforced.
    assert_eq!(sync_post(&c, w.http_addr, "user_ls1", None).await.0, 401);
    assert_eq!(
        sync_post(&c, w.http_addr, "user_ls1", Some("wrong"))
            .await
            .0,
        401
    );
    assert!(db.store.get_user("user_ls1").await.unwrap().is_none());

    let (s, row) = sync_post(&c, w.http_addr, "user_ls1", Some("tok")).await;
    assert_eq!(s, 200, "{row}");
    assert_eq!(row["email"], "user_ls1.v1@example.com");
    assert_eq!(row["name"], "Grace Hopper");
    assert_eq!(row["memberships"], json!([]));

    // Newer data updates; older data does not.
    mount(user_json("user_ls1", 5)).await;
    let (s, row) = sync_post(&c, w.http_addr, "user_ls1", Some("tok")).await;
    assert_eq!(
        (s, row["email"].as_str()),
        (200, Some("user_ls1.v5@example.com"))
    );
    mount(user_json("user_ls1", 3)).await;
    let (s, row) = sync_post(&c, w.http_addr, "user_ls1", Some("tok")).await;
    assert_eq!(
        (s, row["email"].as_str()),
        (200, Some("user_ls1.v5@example.com"))
    );

    // Concurrent calls for the same user are safe.
    mount(user_json("user_ls1", 6)).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let c = c.clone();
        let addr = w.http_addr;
        tasks.push(tokio::spawn(async move {
            sync_post(&c, addr, "user_ls1", Some("tok")).await.0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(db.store.all_users().await.unwrap().len(), 1);

    // WorkOS failures leave the row untouched: 500 → 502, malformed → 502, 429 → 503,
    // and every 404 that is not WorkOS's own entity_not_found about this id → 502 (a
    // wrong base URL, a proxy's page, an error about another object).
    let before = db.store.get_user("user_ls1").await.unwrap().unwrap();
    for (resp, want) in [
        (ResponseTemplate::new(500), 502),
        (
            ResponseTemplate::new(404)
                .set_body_raw("<html><body>Not Found</body></html>", "text/html"),
            502,
        ),
        (ResponseTemplate::new(404), 502),
        (
            ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})),
            502,
        ),
        (
            ResponseTemplate::new(404).set_body_json(json!({
                "message": "User not found 'user_other'",
                "code": "entity_not_found",
                "entity_id": "user_other"
            })),
            502,
        ),
        (ResponseTemplate::new(200).set_body_string("{not json"), 502),
        (
            ResponseTemplate::new(401).set_body_json(json!({"message": "bad key"})),
            502,
        ),
        (
            ResponseTemplate::new(429).insert_header("Retry-After", "0"),
            503,
        ),
    ] {
        workos.reset().await;
        Mock::given(method("GET"))
            .and(path(users_path))
            .respond_with(resp)
            .mount(&workos)
            .await;
        let (s, body) = sync_post(&c, w.http_addr, "user_ls1", Some("tok")).await;
        assert_eq!(s, want, "{body}");
        assert!(body["error"].is_string());
        assert_eq!(
            db.store.get_user("user_ls1").await.unwrap().unwrap(),
            before
        );
    }

    // An id that cannot be a WorkOS id is refused before anything is asked or written.
    workos.reset().await;
    for bad in ["user%20ls1", "_user", "user.ls1", &"u".repeat(101)] {
        let (s, body) = sync_post(&c, w.http_addr, bad, Some("tok")).await;
        assert_eq!(s, 400, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_id");
    }
    assert!(workos.received_requests().await.unwrap().is_empty());
    assert!(!db.store.is_tombstoned("user_ls1").await.unwrap());

    // WorkOS's own 404 (the documented error shape, about this id): the local row goes,
    // tombstoned, and the answer is 404.
    let mut not_found: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/workos/error.user-not-found.node-fixture.json"
    ))
    .unwrap();
    not_found["entity_id"] = json!("user_ls1");
    not_found["message"] = json!("User not found 'user_ls1'");
    Mock::given(method("GET"))
        .and(path(users_path))
        .respond_with(ResponseTemplate::new(404).set_body_json(not_found))
        .mount(&workos)
        .await;
    let (s, body) = sync_post(&c, w.http_addr, "user_ls1", Some("tok")).await;
    assert_eq!(s, 404, "{body}");
    assert!(db.store.get_user("user_ls1").await.unwrap().is_none());
    assert!(db.store.is_tombstoned("user_ls1").await.unwrap());

    // The tombstone undone by hand, the user synced back, then WorkOS's 404 again: the
    // second learnt deletion removes the row too (it is not a duplicate of the first).
    db.store
        .remove_tombstone(workos_sync_core::Entity::Users, "user_ls1")
        .await
        .unwrap()
        .unwrap();
    mount(user_json("user_ls1", 9)).await;
    let (s, _) = sync_post(&c, w.http_addr, "user_ls1", Some("tok")).await;
    assert_eq!(s, 200);
    assert!(db.store.get_user("user_ls1").await.unwrap().is_some());
    workos.reset().await;
    Mock::given(method("GET"))
        .and(path(users_path))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "code": "entity_not_found", "entity_id": "user_ls1",
            "message": "User not found 'user_ls1'"})))
        .mount(&workos)
        .await;
    let (s, body) = sync_post(&c, w.http_addr, "user_ls1", Some("tok")).await;
    assert_eq!(s, 404, "{body}");
    assert!(db.store.get_user("user_ls1").await.unwrap().is_none());
    assert!(db.store.is_tombstoned("user_ls1").await.unwrap());

    let topology = w.broker.topology().clone();
    w.shutdown().await;
    delete_topology(&topology).await.unwrap();
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lazy_sync_answers_within_its_budget() {
    let workos = MockServer::start().await;
    let db = fresh_database().await.unwrap();
    let w = lazy_sync_worker(
        &db,
        &workos,
        &[("WORKOS_SYNC__WORKER__LAZY_SYNC_TIMEOUT_MS", "1000")],
    )
    .await;
    let c = reqwest::Client::new();
    // WorkOS asks for 30 s (the client would honour up to 120 s, six times over), then
    // a WorkOS that answers only after 20 s: both end in a prompt 503 with Retry-After.
    for (id, resp, retry_after) in [
        (
            "user_rl",
            ResponseTemplate::new(429).insert_header("Retry-After", "30"),
            "30",
        ),
        (
            "user_slow",
            ResponseTemplate::new(200)
                .set_body_json(user_json("user_slow", 1))
                .set_delay(Duration::from_secs(20)),
            "5",
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/user_management/users/{id}")))
            .respond_with(resp)
            .mount(&workos)
            .await;
        let started = std::time::Instant::now();
        let resp = c
            .post(format!("http://{}/v1/users/{id}/sync", w.http_addr))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(resp.status().as_u16(), 503, "{id}");
        assert_eq!(
            resp.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some(retry_after),
            "{id}"
        );
        assert!(
            took < Duration::from_secs(3),
            "{id} held the caller {took:?}"
        );
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
        assert!(db.store.get_user(id).await.unwrap().is_none());
        assert!(!db.store.is_tombstoned(id).await.unwrap());
    }
    let topology = w.broker.topology().clone();
    w.shutdown().await;
    delete_topology(&topology).await.unwrap();
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_sync_is_off_without_a_token() {
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    let w = spawn_worker(&prefix, &db.url, &[]).await.unwrap();
    let (s, _) = sync_post(
        &reqwest::Client::new(),
        w.http_addr,
        "user_x",
        Some("anything"),
    )
    .await;
    assert_eq!(s, 404);
    let topology = w.broker.topology().clone();
    w.shutdown().await;
    delete_topology(&topology).await.unwrap();
    // A token but no WorkOS API key: a permanent misconfiguration, said as one (not a
    // 503 a caller would retry forever).
    let prefix = unique_prefix();
    let w = spawn_worker(
        &prefix,
        &db.url,
        &[
            ("WORKOS_SYNC__WORKER__API_TOKEN", "tok"),
            ("WORKOS_API_KEY", ""),
        ],
    )
    .await
    .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/users/user_x/sync", w.http_addr))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 501);
    assert!(resp.headers().get("retry-after").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "workos_api_not_configured");
    let topology = w.broker.topology().clone();
    w.shutdown().await;
    delete_topology(&topology).await.unwrap();
    db.teardown().await.unwrap();
}

/// Serves `users` 100 per page behind `after` cursors; fails once with 401 on the page
/// after `fail_after_page` (a crash half way), and records every `after` it was asked.
struct UserPages {
    users: Vec<Value>,
    fail_at: Mutex<Option<usize>>,
    asked: Arc<Mutex<Vec<Option<String>>>>,
}

impl Respond for UserPages {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let after = req
            .url
            .query_pairs()
            .find(|(k, _)| k == "after")
            .map(|(_, v)| v.to_string());
        self.asked.lock().unwrap().push(after.clone());
        let start = match &after {
            None => 0,
            Some(a) => self
                .users
                .iter()
                .position(|u| u["id"] == a.as_str())
                .map_or(self.users.len(), |i| i + 1),
        };
        let page_no = start / 100;
        {
            let mut fail = self.fail_at.lock().unwrap();
            if *fail == Some(page_no) {
                *fail = None;
                return ResponseTemplate::new(401)
                    .set_body_json(json!({"message": "simulated crash"}));
            }
        }
        let page: Vec<Value> = self.users.iter().skip(start).take(100).cloned().collect();
        let more = start + page.len() < self.users.len();
        let after = if more {
            page.last().map(|u| u["id"].clone())
        } else {
            None
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "data": page,
            "list_metadata": {"before": null, "after": after}
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_2500_users_resumes_after_a_crash() {
    let workos = MockServer::start().await;
    let db = fresh_database().await.unwrap();
    let users: Vec<Value> = (0..2500)
        .map(|i| user_json(&format!("user_bf{i:05}"), 1 + (i % 7) as u64))
        .collect();
    let asked = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("GET"))
        .and(path("/user_management/users"))
        .respond_with(UserPages {
            users: users.clone(),
            fail_at: Mutex::new(Some(13)),
            asked: asked.clone(),
        })
        .mount(&workos)
        .await;
    let api = fast_client(&workos.uri());

    // First run dies on page 14 (after 13 applied pages).
    let err = sync::backfill(&api, &db.store, users_only(false, false), |_| {}).await;
    assert!(err.is_err());
    assert_eq!(db.store.all_users().await.unwrap().len(), 1300);
    let cursor = db.store.cursor(sync::BACKFILL_CURSOR).await.unwrap();
    assert_eq!(cursor.as_deref(), Some("user_bf01299"));

    // Restarted, it resumes from the cursor and finishes.
    asked.lock().unwrap().clear();
    let report = sync::backfill(&api, &db.store, users_only(false, false), |_| {})
        .await
        .unwrap();
    assert_eq!(
        asked.lock().unwrap().first().cloned().flatten().as_deref(),
        Some("user_bf01299")
    );
    assert_eq!(report.pages, 12);
    assert_eq!(report.of(workos_sync_core::Entity::Users).fetched, 1200);
    let rows = db.store.all_users().await.unwrap();
    assert_eq!(rows.len(), 2500);
    for (row, u) in rows.iter().zip(&users) {
        assert_eq!(row.id, u["id"].as_str().unwrap());
        assert_eq!(row.email, u["email"].as_str().unwrap());
    }
    // Ten rows vanish locally: a dry run reports them, and writes nothing.
    db.exec("DELETE FROM users WHERE id < 'user_bf00010'")
        .await
        .unwrap();
    let dry = sync::backfill(&api, &db.store, users_only(false, true), |_| {})
        .await
        .unwrap();
    let d = dry.of(workos_sync_core::Entity::Users);
    assert_eq!(
        (d.fetched, d.created, d.updated, d.unchanged),
        (2500, 10, 0, 2490)
    );
    assert_eq!(db.store.all_users().await.unwrap().len(), 2490);
    // A full run from the start puts them back and changes nothing else.
    let again = sync::backfill(&api, &db.store, users_only(true, false), |_| {})
        .await
        .unwrap();
    let a = again.of(workos_sync_core::Entity::Users);
    assert_eq!((a.fetched, a.created, a.updated), (2500, 10, 0));
    assert_eq!(db.store.all_users().await.unwrap().len(), 2500);
    db.teardown().await.unwrap();
}

fn event_json(id: &str, ty: &str, user: &str, v: u64) -> Value {
    json!({"object": "event", "id": id, "event": ty, "data": user_json(user, v), "created_at": ts(v), "context": {}})
}

/// One reconciliation pass from the stored cursor, publishes confirmed within `secs`.
async fn reconcile_from_cursor(
    api: &Client,
    broker: &workos_sync_queue::Broker,
    store: &workos_sync_store::Store,
    secs: u64,
) -> Result<Option<sync::ReconcileReport>, sync::SyncError> {
    let request = sync::ReconcileRequest::from_cursor(Duration::from_secs(secs));
    sync::reconcile_once(api, broker, store, &request).await
}

/// Serves `events` 100 per page after an event-id cursor, as the Events API documents
/// it: the type filter as `events[]` (required here), and newest first unless
/// `order=asc` is asked for.
struct EventPages {
    events: Vec<Value>,
    /// Answer an unknown cursor with the first page (as WorkOS's emulator does) instead
    /// of an empty one.
    restart_on_unknown: bool,
}

impl Respond for EventPages {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let q: Vec<(String, String)> = req
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let types: Vec<&str> = q
            .iter()
            .filter(|(k, _)| k == "events[]")
            .map(|(_, v)| v.as_str())
            .collect();
        // Every enabled entity's types (all by default), users' first.
        let all: Vec<&str> = workos_sync_core::Entity::ALL
            .iter()
            .flat_map(|e| e.event_types().iter().copied())
            .collect();
        assert_eq!(types, all);
        let asc = q.iter().any(|(k, v)| k == "order" && v == "asc");
        let mut ordered = self.events.clone();
        if !asc {
            ordered.reverse();
        }
        let after = q.iter().find(|(k, _)| k == "after").map(|(_, v)| v.clone());
        let start = after.map_or(0, |a| {
            ordered.iter().position(|e| e["id"] == a.as_str()).map_or(
                if self.restart_on_unknown {
                    0
                } else {
                    ordered.len()
                },
                |i| i + 1,
            )
        });
        let page: Vec<Value> = ordered.iter().skip(start).take(100).cloned().collect();
        let after = page.last().map(|e| e["id"].clone());
        ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": page, "list_metadata": {"after": after}}),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_applies_missing_events_once_with_a_single_leader() {
    let workos = MockServer::start().await;
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    let broker = test_broker(&prefix).await.unwrap();
    let w = spawn_worker(
        &prefix,
        &db.url,
        &[("WORKOS_SYNC__RECONCILE__INTERVAL_SECS", "0")],
    )
    .await
    .unwrap();
    let events: Vec<Value> = (0..250u64)
        .map(|i| {
            event_json(
                &format!("event_rc{i:04}"),
                if i < 50 {
                    "user.created"
                } else {
                    "user.updated"
                },
                &format!("user_rc{}", i % 50),
                1 + i,
            )
        })
        .collect();
    // A 429 storm first (Retry-After honoured), then the pages.
    Mock::given(method("GET"))
        .and(path("/events"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&workos)
        .await;
    Mock::given(method("GET"))
        .and(path("/events"))
        .respond_with(EventPages {
            events: events.clone(),
            restart_on_unknown: false,
        })
        .with_priority(2)
        .mount(&workos)
        .await;
    let api = fast_client(&workos.uri());

    // 100 of the events already arrived as webhooks.
    for e in events.iter().take(100) {
        publish_event(
            &broker,
            e["id"].as_str().unwrap(),
            e["event"].as_str().unwrap(),
            e.to_string().as_bytes(),
        )
        .await
        .unwrap();
    }
    let store = db.store.clone();
    assert!(
        eventually(Duration::from_secs(20), || async {
            store.processed_count().await.unwrap() == 100
        })
        .await
    );
    let snapshot_before = db.store.get_user("user_rc0").await.unwrap().unwrap();

    // Another reconciler holds the lock: this one does nothing.
    let other = db
        .store
        .try_session_lock(LOCK_RECONCILE)
        .await
        .unwrap()
        .unwrap();
    let skipped = reconcile_from_cursor(&api, &broker, &db.store, 5)
        .await
        .unwrap();
    assert!(skipped.is_none());
    assert_eq!(db.store.cursor(EVENTS_CURSOR).await.unwrap(), None);
    // The holder crashes (its connection closes): the lock is free again.
    drop(other);

    let started = std::time::Instant::now();
    let report = reconcile_from_cursor(&api, &broker, &db.store, 5)
        .await
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "Retry-After was not honoured"
    );
    assert_eq!(report.events, 250);
    assert_eq!(report.cursor.as_deref(), Some("event_rc0249"));
    assert!(
        eventually(Duration::from_secs(30), || async {
            store.processed_count().await.unwrap() == 250
        })
        .await
    );
    let rows = db.store.all_users().await.unwrap();
    assert_eq!(rows.len(), 50);
    for r in rows {
        let n: u64 = r.id.trim_start_matches("user_rc").parse().unwrap();
        assert_eq!(r.email, format!("user_rc{n}.v{}@example.com", 201 + n));
    }
    assert_ne!(
        db.store.get_user("user_rc0").await.unwrap().unwrap(),
        snapshot_before
    );
    // It asked for every enabled entity's event types, Directory Sync's included.
    let asked: Vec<Vec<String>> = workos
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/events")
        .map(|r| {
            r.url
                .query_pairs()
                .filter(|(k, _)| k == "events[]")
                .map(|(_, v)| v.to_string())
                .collect()
        })
        .collect();
    assert!(!asked.is_empty());
    for ty in [
        "user.updated",
        "organization_membership.deleted",
        "dsync.activated",
        "dsync.deleted",
        "dsync.user.deleted",
        "dsync.group.user_added",
        "dsync.group.user_removed",
    ] {
        assert!(
            asked.iter().all(|a| a.iter().any(|t| t == ty)),
            "{ty} not asked for: {asked:?}"
        );
    }
    w.shutdown().await;
    close_and_delete(broker).await.unwrap();
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_cursor_moves_only_after_confirmed_publishes() {
    let workos = MockServer::start().await;
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    let events: Vec<Value> = (0..30u64)
        .map(|i| event_json(&format!("event_cc{i}"), "user.updated", "user_cc", 1 + i))
        .collect();
    Mock::given(method("GET"))
        .and(path_regex("^/events$"))
        .respond_with(EventPages {
            events,
            restart_on_unknown: false,
        })
        .mount(&workos)
        .await;
    let api = fast_client(&workos.uri());
    // The broker is reached through a proxy that we cut before the run.
    let proxy = TcpProxy::start(amqp_addr().unwrap()).await.unwrap();
    let mut settings = workos_sync_testkit::test_settings(&prefix, &[]).unwrap();
    settings.amqp.url = vec![amqp_url_via(proxy.addr()).into()];
    let broker = connected_broker(&settings.amqp, "t").await.unwrap();
    proxy.cut();
    assert!(
        eventually(Duration::from_secs(5), || async {
            !broker.is_ready().await
        })
        .await
    );
    let err = reconcile_from_cursor(&api, &broker, &db.store, 1).await;
    assert!(err.is_err());
    assert_eq!(
        db.store.cursor(EVENTS_CURSOR).await.unwrap(),
        None,
        "cursor moved without a confirm"
    );
    proxy.restore();
    assert!(broker.wait_connected(Duration::from_secs(15)).await);
    let report = reconcile_from_cursor(&api, &broker, &db.store, 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.events, 30);
    assert_eq!(
        db.store.cursor(EVENTS_CURSOR).await.unwrap().as_deref(),
        Some("event_cc29")
    );
    assert_eq!(
        workos_sync_testkit::queue_len(&broker.topology().events_queue())
            .await
            .unwrap(),
        30
    );
    close_and_delete(broker).await.unwrap();
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_cursor_only_moves_forward_and_a_refused_cursor_is_said() {
    let workos = MockServer::start().await;
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    let broker = test_broker(&prefix).await.unwrap();
    let mut events: Vec<Value> = (0..20u64)
        .map(|i| event_json(&format!("event_fw{i:02}"), "user.updated", "user_fw", 1 + i))
        .collect();
    // One event the API returns but that cannot travel in AMQP properties.
    let long_id = format!("event_{}", "x".repeat(300));
    events.insert(5, event_json(&long_id, "user.updated", "user_fw", 6));
    // A cursor the API no longer accepts (past its retention).
    Mock::given(method("GET"))
        .and(path("/events"))
        .and(wiremock::matchers::query_param("after", "event_expired"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "message": "Cursor is older than the retention period", "code": "invalid_cursor"
        })))
        .with_priority(1)
        .mount(&workos)
        .await;
    Mock::given(method("GET"))
        .and(path("/events"))
        .respond_with(EventPages {
            events,
            restart_on_unknown: true,
        })
        .with_priority(2)
        .mount(&workos)
        .await;
    let api = fast_client(&workos.uri());
    let since = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let request = |since, reset| sync::ReconcileRequest {
        since,
        reset,
        publish_timeout: Duration::from_secs(5),
    };

    // First run from a time: every event, the long one dead-lettered, cursor at the newest.
    let r = sync::reconcile_once(&api, &broker, &db.store, &request(Some(since), false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.start, sync::Start::Since(since));
    assert_eq!((r.events, r.dead_lettered), (20, 1));
    assert!(!r.since_ignored);
    assert_eq!(r.cursor.as_deref(), Some("event_fw19"));
    let dead = workos_sync_queue::dlq::list(&broker).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "undecodable");
    assert!(dead[0].body.contains(&long_id));

    // --since with a stored cursor: the cursor is used, and the report says so.
    let r = sync::reconcile_once(&api, &broker, &db.store, &request(Some(since), false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.start, sync::Start::Cursor("event_fw19".into()));
    assert!(r.since_ignored);
    assert_eq!(r.events, 0);

    // A cursor the API does not know (it named a newer event) is answered with its
    // first page (older events): they are published again (the store dedupes), but the
    // cursor stays where it was.
    db.store
        .set_cursor(EVENTS_CURSOR, Some("event_unknown"))
        .await
        .unwrap();
    db.store
        .set_cursor(sync::EVENTS_CURSOR_AT, Some("2026-03-01T01:00:00Z"))
        .await
        .unwrap();
    let r = reconcile_from_cursor(&api, &broker, &db.store, 5)
        .await
        .unwrap()
        .unwrap();
    assert!(r.events > 0);
    assert_eq!(
        db.store.cursor(EVENTS_CURSOR).await.unwrap().as_deref(),
        Some("event_unknown"),
        "the cursor moved back in time"
    );

    // A refused cursor is one clear error that names the way out.
    db.store
        .set_cursor(EVENTS_CURSOR, Some("event_expired"))
        .await
        .unwrap();
    let err = reconcile_from_cursor(&api, &broker, &db.store, 5)
        .await
        .unwrap_err();
    assert!(
        matches!(err, sync::SyncError::CursorRejected { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("event_expired") && text.contains("--reset"),
        "{text}"
    );
    // --reset starts again from --since.
    let r = sync::reconcile_once(&api, &broker, &db.store, &request(Some(since), true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.start, sync::Start::Since(since));
    assert_eq!(r.cursor.as_deref(), Some("event_fw19"));
    close_and_delete(broker).await.unwrap();
    db.teardown().await.unwrap();
}

/// Serves `GET /user_management/organization_memberships` with `data` on one page, but
/// only when every status is asked for (WorkOS returns only active ones otherwise).
async fn mount_memberships(workos: &MockServer, data: Vec<Value>) {
    Mock::given(method("GET"))
        .and(path("/user_management/organization_memberships"))
        .and(wiremock::matchers::query_param("statuses", "active,inactive,pending"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": data, "list_metadata": {"before": null, "after": null}}),
        ))
        .mount(workos)
        .await;
}

/// Lazy sync's budget: 300 concurrent calls for one user cost WorkOS one user read
/// (they join the call in flight); past `lazy_sync_max_in_flight` distinct calls are
/// answered at once with 503 `busy` and `Retry-After`; and a delete an application's
/// foreign key forbids answers 409 `delete_blocked` without naming its constraint or
/// table (retrying cannot help), leaving the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lazy_sync_coalesces_caps_and_names_each_failure() {
    let workos = MockServer::start().await;
    let db = fresh_database().await.unwrap();
    let w = lazy_sync_worker(
        &db,
        &workos,
        &[
            ("WORKOS_SYNC__WORKER__LAZY_SYNC_MAX_IN_FLIGHT", "4"),
            ("WORKOS_SYNC__WORKER__LAZY_SYNC_PER_SECOND", "1000"),
        ],
    )
    .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/user_management/users/[^/]+$"))
        .respond_with(|req: &Request| {
            let id = req.url.path().rsplit('/').next().unwrap_or("").to_owned();
            ResponseTemplate::new(200)
                .set_body_json(user_json(&id, 1))
                .set_delay(Duration::from_millis(800))
        })
        .mount(&workos)
        .await;
    mount_memberships(&workos, vec![]).await;
    let c = reqwest::Client::new();
    let calls: Vec<_> = (0..300)
        .map(|_| {
            let c = c.clone();
            let addr = w.http_addr;
            tokio::spawn(async move { sync_post(&c, addr, "user_co1", Some("tok")).await.0 })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    let reads = |p: &'static str| {
        let workos = &workos;
        async move {
            workos
                .received_requests()
                .await
                .unwrap()
                .iter()
                .filter(|r| r.url.path() == p)
                .count()
        }
    };
    let user_reads = reads("/user_management/users/user_co1").await;
    assert!(user_reads <= 2, "{user_reads} user reads for 300 calls");
    assert!(reads("/user_management/organization_memberships").await <= 2);

    // Distinct ids beyond the cap of 4 in flight: the rest are turned away at once.
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..12)
        .map(|i| {
            let c = c.clone();
            let addr = w.http_addr;
            tokio::spawn(async move {
                let resp = c
                    .post(format!("http://{addr}/v1/users/user_cap{i}/sync"))
                    .bearer_auth("tok")
                    .send()
                    .await
                    .unwrap();
                let retry = resp.headers().get("retry-after").is_some();
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                (
                    status,
                    retry,
                    body["error"].clone(),
                    std::time::Instant::now(),
                )
            })
        })
        .collect();
    let mut busy = 0;
    for call in calls {
        let (status, retry, code, at) = call.await.unwrap();
        match status {
            200 => {}
            503 => {
                assert!(retry, "busy without Retry-After");
                assert_eq!(code, "busy");
                assert!(
                    at.duration_since(started) < Duration::from_millis(700),
                    "not prompt"
                );
                busy += 1;
            }
            other => panic!("{other}"),
        }
    }
    assert!(busy >= 8, "{busy} busy answers");

    // A delete the application's foreign key forbids.
    db.exec("CREATE TABLE app_posts (id SERIAL PRIMARY KEY, author TEXT NOT NULL REFERENCES users(id) ON DELETE RESTRICT)")
        .await
        .unwrap();
    db.exec("INSERT INTO app_posts (author) VALUES ('user_co1')")
        .await
        .unwrap();
    workos.reset().await;
    Mock::given(method("GET"))
        .and(path("/user_management/users/user_co1"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "code": "entity_not_found", "entity_id": "user_co1", "message": "User not found"})))
        .mount(&workos)
        .await;
    let (status, body) = sync_post(&c, w.http_addr, "user_co1", Some("tok")).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "delete_blocked");
    let text = body.to_string();
    assert!(
        !text.contains("app_posts") && !text.contains("fkey"),
        "{text}"
    );
    assert!(db.store.get_user("user_co1").await.unwrap().is_some());

    let topology = w.broker.topology().clone();
    w.shutdown().await;
    delete_topology(&topology).await.unwrap();
    db.teardown().await.unwrap();
}

/// A WorkOS that never answers in time: the reconciler's and the drift check's passes
/// are abandoned at their pass timeouts (counted), their leader locks are free again
/// within seconds rather than held for the whole hung call, and a leader's lock
/// session runs with TCP keepalives (a vanished host loses the lead in ~25 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hung_passes_are_abandoned_and_their_leads_released() {
    let db = fresh_database().await.unwrap();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [], "list_metadata": {"after": null}}))
                .set_delay(Duration::from_secs(300)),
        )
        .mount(&server)
        .await;
    let prefix = unique_prefix();
    let w = spawn_worker(
        &prefix,
        &db.url,
        &[
            ("WORKOS_API_KEY", "sk_test_fake"),
            ("WORKOS_API_BASE_URL", &server.uri()),
            ("WORKOS_SYNC__SYNC__ENTITIES", "users"),
            ("WORKOS_SYNC__RECONCILE__INTERVAL_SECS", "1"),
            ("WORKOS_SYNC__RECONCILE__PASS_TIMEOUT_SECS", "2"),
            ("WORKOS_SYNC__VERIFY__INTERVAL_SECS", "1"),
            ("WORKOS_SYNC__VERIFY__PASS_TIMEOUT_SECS", "2"),
        ],
    )
    .await
    .unwrap();
    let url = format!("http://{}/metrics", w.http_addr);
    let abandoned = eventually(Duration::from_secs(20), || {
        let url = url.clone();
        async move {
            let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
            ["reconciler", "verifier"].iter().all(|t| {
                text.lines().any(|l| {
                    l.starts_with("workos_sync_pass_timeouts_total{")
                        && l.contains(&format!("task=\"{t}\""))
                })
            })
        }
    })
    .await;
    assert!(
        abandoned,
        "{}",
        reqwest::get(&url).await.unwrap().text().await.unwrap()
    );
    // Between passes each lock is free: another process can take the lead.
    for key in [LOCK_RECONCILE, workos_sync_store::locks::LOCK_VERIFY] {
        let store = db.store.clone();
        let lead = std::sync::Arc::new(tokio::sync::Mutex::new(None));
        let got = eventually(Duration::from_secs(10), || {
            let (store, lead) = (store.clone(), lead.clone());
            async move {
                match store.try_session_lock(key).await.unwrap() {
                    Some(l) => {
                        *lead.lock().await = Some(l);
                        true
                    }
                    None => false,
                }
            }
        })
        .await;
        assert!(got, "lock {key:#x} never free");
        let mut l = lead.lock().await.take().unwrap();
        assert_eq!(l.setting("tcp_keepalives_idle").await.unwrap(), "10");
        assert_eq!(l.setting("tcp_keepalives_count").await.unwrap(), "3");
        l.release().await;
    }
    let topology = w.broker.topology().clone();
    w.shutdown().await;
    delete_topology(&topology).await.unwrap();
    db.teardown().await.unwrap();
}

/// The periodic repair against another environment's key (its lists hold none of our
/// users, and it answers `entity_not_found` for each): it never proceeds past the
/// removal bound; it sets `workos_sync_verify_repair_refused` (the alert's input) and
/// removes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_periodic_repair_refuses_a_mass_removal_and_says_so() {
    let db = fresh_database().await.unwrap();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user_management/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [], "list_metadata": {"after": null}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/user_management/users/[^/]+$"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "code": "entity_not_found", "message": "not found"})))
        .mount(&server)
        .await;
    for i in 0..20 {
        db.store
            .apply(&workos_sync_core::Event::user_snapshot(
                serde_json::from_value(user_json(&format!("user_env{i:02}"), 5)).unwrap(),
            ))
            .await
            .unwrap();
    }
    db.exec("UPDATE users SET updated_at = updated_at - interval '1 hour'")
        .await
        .unwrap();
    let prefix = unique_prefix();
    let w = spawn_worker(
        &prefix,
        &db.url,
        &[
            ("WORKOS_API_KEY", "sk_test_other_environment"),
            ("WORKOS_API_BASE_URL", &server.uri()),
            ("WORKOS_SYNC__SYNC__ENTITIES", "users"),
            ("WORKOS_SYNC__RECONCILE__INTERVAL_SECS", "0"),
            ("WORKOS_SYNC__VERIFY__INTERVAL_SECS", "1"),
            ("WORKOS_SYNC__VERIFY__REPAIR", "true"),
        ],
    )
    .await
    .unwrap();
    let url = format!("http://{}/metrics", w.http_addr);
    let refused = eventually(Duration::from_secs(20), || {
        let url = url.clone();
        async move {
            let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
            text.lines()
                .any(|l| l.starts_with("workos_sync_verify_repair_refused ") && l.ends_with(" 1"))
        }
    })
    .await;
    assert!(
        refused,
        "{}",
        reqwest::get(&url).await.unwrap().text().await.unwrap()
    );
    assert_eq!(db.store.all_users().await.unwrap().len(), 20);
    assert!(db.store.tombstones(None, 10).await.unwrap().is_empty());
    let asked = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().starts_with("/user_management/users/"))
        .count();
    assert_eq!(asked, 0, "no id asked for once refused");
    let topology = w.broker.topology().clone();
    w.shutdown().await;
    delete_topology(&topology).await.unwrap();
    db.teardown().await.unwrap();
}

/// Backfill options for users alone (the fake serves no other list).
fn users_only(restart: bool, dry_run: bool) -> sync::BackfillOptions {
    sync::BackfillOptions {
        restart,
        dry_run,
        only: Some(workos_sync_core::Entity::Users),
    }
}

/// The worker's HTTP port over TLS (lazy sync carries a bearer token): HTTPS answers,
/// with the certificate given in `worker.tls_cert` / `tls_key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_port_speaks_https_when_given_a_certificate() {
    let db = fresh_database().await.unwrap();
    let dir = std::env::temp_dir().join(format!("wst-wtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    let prefix = unique_prefix();
    let w = spawn_worker(
        &prefix,
        &db.url,
        &[
            ("WORKOS_SYNC__WORKER__TLS_CERT", cert.to_str().unwrap()),
            ("WORKOS_SYNC__WORKER__TLS_KEY", key.to_str().unwrap()),
            ("WORKOS_SYNC__RECONCILE__INTERVAL_SECS", "0"),
        ],
    )
    .await
    .unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(c.cert.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/healthz", w.http_addr.port());
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    assert!(
        reqwest::get(format!("http://{}/healthz", w.http_addr))
            .await
            .is_err()
    );
    drop(w);
    std::fs::remove_dir_all(&dir).unwrap();
    db.teardown().await.unwrap();
}

/// The periodic drift check (`verify.interval_secs`): the leader lists WorkOS (a fake
/// here) and sets `workos_sync_drift_rows{entity,kind}` and the last-success time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn periodic_drift_check_sets_the_gauges() {
    let db = fresh_database().await.unwrap();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user_management/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [user_json("user_dr1", 5), user_json("user_dr2", 5), user_json("user_dr3", 5)],
            "list_metadata": {"after": null}
        })))
        .mount(&server)
        .await;
    // Here: dr1 as WorkOS has it, dr2 older, dr3 missing, and one WorkOS lacks.
    for (id, v) in [("user_dr1", 5), ("user_dr2", 4), ("user_drx", 1)] {
        db.store
            .apply(&workos_sync_core::Event::user_snapshot(
                serde_json::from_value(user_json(id, v)).unwrap(),
            ))
            .await
            .unwrap();
    }
    let prefix = unique_prefix();
    let w = spawn_worker(
        &prefix,
        &db.url,
        &[
            ("WORKOS_API_KEY", "sk_test_fake"),
            ("WORKOS_API_BASE_URL", &server.uri()),
            ("WORKOS_SYNC__SYNC__ENTITIES", "users"),
            ("WORKOS_SYNC__RECONCILE__INTERVAL_SECS", "0"),
            ("WORKOS_SYNC__VERIFY__INTERVAL_SECS", "1"),
        ],
    )
    .await
    .unwrap();
    let url = format!("http://{}/metrics", w.http_addr);
    let gauge = |text: &str, kind: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("workos_sync_drift_rows{")
                    && l.contains("entity=\"users\"")
                    && l.contains(&format!("kind=\"{kind}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    };
    let ok = eventually(Duration::from_secs(20), || {
        let url = url.clone();
        async move {
            let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
            text.contains("workos_sync_verify_last_success_timestamp_seconds ")
        }
    })
    .await;
    let last = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(ok, "{last}");
    for (kind, n) in [
        ("missing", "1"),
        ("extra", "1"),
        ("stale", "1"),
        ("ahead", "0"),
    ] {
        assert_eq!(gauge(&last, kind).as_deref(), Some(n), "{kind}: {last}");
    }
    // Report only: nothing was repaired.
    assert!(db.store.get_user("user_dr3").await.unwrap().is_none());
    assert!(db.store.get_user("user_drx").await.unwrap().is_some());
    w.shutdown().await;
    db.teardown().await.unwrap();
}

/// `POST /v1/directory_users/{id}/sync`: the row with its groups; WorkOS's own
/// `entity_not_found` removes the user and its memberships (and tombstones it); the
/// token and the id are checked as for users.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lazy_sync_of_a_directory_user_answers_the_row_with_its_groups() {
    let workos = MockServer::start().await;
    let db = fresh_database().await.unwrap();
    let w = lazy_sync_worker(&db, &workos, &[]).await;
    let c = reqwest::Client::new();
    let id = "directory_user_ls1";
    let post = |token: &'static str| {
        let c = c.clone();
        let addr = w.http_addr;
        async move {
            let resp = c
                .post(format!("http://{addr}/v1/directory_users/{id}/sync"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Already a member of one group (from a webhook).
    let added = json!({"object": "event", "id": "evt_ls_add", "event": "dsync.group.user_added",
        "created_at": ts(5), "data": {"directory_id": "directory_ls",
        "user": {"id": id, "directory_id": "directory_ls"},
        "group": {"id": "directory_group_ls", "directory_id": "directory_ls"}}});
    let group = json!({"object": "event", "id": "evt_ls_group", "event": "dsync.group.created",
        "created_at": ts(5), "data": {"object": "directory_group", "id": "directory_group_ls",
        "directory_id": "directory_ls", "name": "Engineering", "raw_attributes": {},
        "created_at": ts(1), "updated_at": ts(1)}});
    for e in [added, group] {
        let ev = workos_sync_core::Event::decode(e.to_string().as_bytes()).unwrap();
        db.store.apply(&ev).await.unwrap();
    }
    Mock::given(method("GET"))
        .and(path(format!("/directory_users/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "directory_user", "id": id, "directory_id": "directory_ls",
            "organization_id": "org_1", "idp_id": "7", "email": null, "first_name": "Ada",
            "state": "active", "raw_attributes": {"title": "x"}, "custom_attributes": {},
            "created_at": ts(1), "updated_at": ts(2)})))
        .up_to_n_times(1)
        .mount(&workos)
        .await;
    assert_eq!(post("wrong").await.0, 401);
    let (status, body) = post("tok").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["directory_user"]["first_name"], "Ada");
    assert_eq!(body["directory_user"]["email"], Value::Null);
    assert_eq!(body["groups"][0]["name"], "Engineering");
    // Gone in WorkOS: removed with its memberships, and tombstoned.
    Mock::given(method("GET"))
        .and(path(format!("/directory_users/{id}")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "code": "entity_not_found", "entity_id": id,
            "message": format!("Could not find a directory user with id '{id}'.")})))
        .mount(&workos)
        .await;
    let (status, body) = post("tok").await;
    assert_eq!(status, 404, "{body}");
    let left = db
        .rows("SELECT 1 FROM directory_users UNION ALL SELECT 1 FROM directory_group_memberships")
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        db.store
            .is_tombstoned_in(workos_sync_core::Entity::DirectoryUsers, id)
            .await
            .unwrap()
    );
    w.shutdown().await;
    db.teardown().await.unwrap();
}
