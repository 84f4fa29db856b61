//! Backfill of organizations and their memberships against a fake WorkOS API (wiremock,
//! paging like the real one: `limit`, `after`, `list_metadata.after`) and the real
//! Postgres: every membership of every status is stored, and a run that dies half way
//! resumes from its saved cursor to the same result.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path, path_regex},
};
use workos_sync_core::Entity;
use workos_sync_pull as sync;
use workos_sync_testkit::fresh_database;
use workos_sync_workos_api::{ApiConfig, Client};

fn ts(v: u64) -> String {
    format!("2026-02-01T00:{:02}:{:02}.000Z", v / 60 % 60, v % 60)
}

fn query(req: &Request, key: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.to_string())
}

/// One page of `items` after the item whose `id` is the request's `after`.
fn page(items: &[Value], req: &Request) -> ResponseTemplate {
    let limit: usize = query(req, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10);
    let start = match query(req, "after") {
        None => 0,
        Some(a) => items
            .iter()
            .position(|i| i["id"] == a.as_str())
            .map_or(items.len(), |i| i + 1),
    };
    let data: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
    let after = (start + data.len() < items.len())
        .then(|| data.last().map(|i| i["id"].clone()))
        .flatten();
    ResponseTemplate::new(200).set_body_json(json!({
        "object": "list", "data": data, "list_metadata": {"before": null, "after": after}
    }))
}

struct Orgs {
    orgs: Vec<Value>,
    asked: Arc<Mutex<Vec<Option<String>>>>,
}

impl Respond for Orgs {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.asked.lock().unwrap().push(query(req, "after"));
        page(&self.orgs, req)
    }
}

/// Memberships by organization, like WorkOS: only active ones unless every status is
/// asked for. Fails (once, with a non-retryable 401) on the `fail_at`-th request.
struct Memberships {
    by_org: HashMap<String, Vec<Value>>,
    calls: AtomicUsize,
    fail_at: Mutex<Option<usize>>,
}

impl Respond for Memberships {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        {
            let mut fail = self.fail_at.lock().unwrap();
            if *fail == Some(n) {
                *fail = None;
                return ResponseTemplate::new(401)
                    .set_body_json(json!({"message": "simulated crash"}));
            }
        }
        let org = query(req, "organization_id").unwrap_or_default();
        let all = self.by_org.get(&org).cloned().unwrap_or_default();
        let every_status = query(req, "statuses").as_deref() == Some("active,inactive,pending");
        let items: Vec<Value> = all
            .into_iter()
            .filter(|m| every_status || m["status"] == "active")
            .collect();
        page(&items, req)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_of_150_organizations_stores_every_membership_and_resumes() {
    let workos = MockServer::start().await;
    let db = fresh_database().await.unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let mut orgs = Vec::new();
    let mut by_org: HashMap<String, Vec<Value>> = HashMap::new();
    let mut statuses: HashMap<String, String> = HashMap::new();
    for o in 0..150 {
        let id = format!("org_bf{o:04}");
        orgs.push(json!({"object": "organization", "id": id, "name": format!("Org {o}"), "external_id": null,
            "metadata": {}, "created_at": ts(0), "updated_at": ts(1),
            "domains": [{"object": "organization_domain", "id": format!("org_domain_bf{o:04}"), "domain": format!("o{o}.test"),
                         "state": "verified", "verification_strategy": "dns", "verification_token": "secret-token"}]}));
        let n = rng.random_range(20..=150);
        let members: Vec<Value> = (0..n)
            .map(|k| {
                let status = ["active", "inactive", "pending"][rng.random_range(0..3)];
                let mid = format!("om_bf{o:04}_{k:03}");
                statuses.insert(mid.clone(), status.to_owned());
                json!({"object": "organization_membership", "id": mid, "user_id": format!("user_bf{k:03}"),
                       "organization_id": id, "status": status, "role": {"slug": "member"},
                       "created_at": ts(2), "updated_at": ts(3)})
            })
            .collect();
        by_org.insert(id, members);
    }
    let asked = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("GET"))
        .and(path("/organizations"))
        .respond_with(Orgs {
            orgs: orgs.clone(),
            asked: asked.clone(),
        })
        .mount(&workos)
        .await;
    // Dies on the membership request of organization ~120 (on the second page of
    // organizations); the first page's organizations and memberships are in.
    let calls_before_120: usize = (0..120)
        .map(|o| by_org[&format!("org_bf{o:04}")].len().div_ceil(100))
        .sum();
    Mock::given(method("GET"))
        .and(path("/user_management/organization_memberships"))
        .respond_with(Memberships {
            by_org: by_org.clone(),
            calls: AtomicUsize::new(0),
            fail_at: Mutex::new(Some(calls_before_120)),
        })
        .mount(&workos)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/authorization/(organizations/[^/]+/)?roles$"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": []})),
        )
        .mount(&workos)
        .await;
    Mock::given(method("GET"))
        .and(path("/user_management/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [], "list_metadata": {"before": null, "after": null}}),
        ))
        .mount(&workos)
        .await;
    // No directories, invitations or connections (walked too: empty lists).
    for list in ["/user_management/invitations", "/connections"] {
        Mock::given(method("GET"))
            .and(path(list))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"object": "list", "data": [], "list_metadata": {"before": null, "after": null}}),
            ))
            .mount(&workos)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/directories"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [], "list_metadata": {"before": null, "after": null}}),
        ))
        .mount(&workos)
        .await;
    Mock::given(method("GET"))
        .and(path("/authorization/permissions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [], "list_metadata": {"before": null, "after": null}}),
        ))
        .mount(&workos)
        .await;
    let mut cfg = ApiConfig::new(workos.uri(), SecretString::from("sk_test_fake"));
    cfg.backoff_base = Duration::from_millis(10);
    let api = Client::new(cfg).unwrap();
    let opts = sync::BackfillOptions {
        restart: false,
        dry_run: false,
        only: None,
    };

    let first = sync::backfill(&api, &db.store, opts, |_| {}).await;
    assert!(first.is_err(), "the simulated crash must end the run");
    let cursor = db
        .store
        .cursor(&sync::cursor_name(Entity::Organizations))
        .await
        .unwrap();
    assert_eq!(
        cursor.as_deref(),
        Some("org_bf0099"),
        "saved after the first page"
    );
    let partial = db.store.all_memberships().await.unwrap().len();
    assert!(partial > 0 && partial < statuses.len(), "{partial}");

    asked.lock().unwrap().clear();
    let report = sync::backfill(&api, &db.store, opts, |_| {}).await.unwrap();
    assert_eq!(
        asked.lock().unwrap().first().cloned().flatten().as_deref(),
        Some("org_bf0099"),
        "the restarted run resumes at the saved page"
    );
    let rows = db.store.all_memberships().await.unwrap();
    let stored: HashMap<String, String> = rows.into_iter().map(|r| (r.id, r.status)).collect();
    assert_eq!(stored, statuses, "every membership, every status");
    for s in ["active", "inactive", "pending"] {
        assert!(stored.values().any(|v| v == s), "no {s} membership");
    }
    assert_eq!(db.store.all_organizations().await.unwrap().len(), 150);
    assert_eq!(
        db.exec("SELECT 1 FROM organization_domains").await.unwrap(),
        150
    );
    assert_eq!(
        db.exec(
            "SELECT 1 FROM organization_domains d WHERE row_to_json(d)::text LIKE '%secret-token%'"
        )
        .await
        .unwrap(),
        0
    );
    assert_eq!(report.of(Entity::Organizations).fetched, 50);
    assert!(
        db.store
            .cursor(&sync::cursor_name(Entity::Organizations))
            .await
            .unwrap()
            .is_none()
    );

    // From the start again: the same rows, nothing created or updated.
    let again = sync::backfill(
        &api,
        &db.store,
        sync::BackfillOptions {
            restart: true,
            ..opts
        },
        |_| {},
    )
    .await
    .unwrap();
    let m = again.of(Entity::OrganizationMemberships);
    assert_eq!(
        (m.fetched as usize, m.created, m.updated),
        (statuses.len(), 0, 0)
    );
    db.teardown().await.unwrap();
}
