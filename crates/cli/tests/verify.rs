//! `workos-sync verify` against a fake WorkOS API (wiremock, WorkOS's documented list
//! shapes: `{data, list_metadata: {after}}`, pages of `limit` after a cursor) and a real
//! Postgres: 5,000 users and 200 organizations with 5 memberships each in the fake; the
//! tables perturbed by hand; the report names exactly those ids, `--json` lists them,
//! the exit code says drift (3) or none (0), a page failing once with 500 or 429 is
//! retried, and a listing that keeps failing is an error, never drift.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{path, path_regex},
};
use workos_sync_core::{Event, Record};
use workos_sync_testkit::{fresh_database, run_binary};

const USERS: usize = 5000;
const ORGS: usize = 200;
const PER_ORG: usize = 5;

fn ts(v: usize) -> String {
    (chrono::DateTime::from_timestamp(1_767_225_600 + v as i64, 0).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn user(i: usize) -> Value {
    json!({"object": "user", "id": format!("user_{i:05}"), "email": format!("u{i}@x.io"),
           "email_verified": true, "created_at": ts(0), "updated_at": ts(i + 10)})
}

fn org(j: usize) -> Value {
    json!({"object": "organization", "id": format!("org_{j:03}"), "name": format!("Org {j}"),
           "domains": [], "created_at": ts(0), "updated_at": ts(j + 10)})
}

fn membership(j: usize, k: usize) -> Value {
    let n = j * PER_ORG + k;
    json!({"object": "organization_membership", "id": format!("om_{n:05}"),
           "user_id": format!("user_{:05}", n % USERS), "organization_id": format!("org_{j:03}"),
           "status": "active", "role": {"slug": "member"},
           "created_at": ts(0), "updated_at": ts(n + 10)})
}

/// A list endpoint: `all` paged by `limit` after the `after` cursor (an id), as WorkOS
/// answers; `fail_first` requests answer `fail` before it works.
struct Pages {
    all: Vec<Value>,
    calls: Arc<AtomicUsize>,
    fail_first: usize,
    fail: u16,
}

impl Respond for Pages {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            return ResponseTemplate::new(self.fail)
                .insert_header("retry-after", "0")
                .set_body_json(json!({"message": "try again"}));
        }
        let q: std::collections::HashMap<String, String> =
            req.url.query_pairs().into_owned().collect();
        let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
        let mut items: Vec<&Value> = self.all.iter().collect();
        if let Some(org) = q.get("organization_id") {
            items.retain(|v| v["organization_id"] == org.as_str());
        }
        let start = q
            .get("after")
            .and_then(|a| {
                items
                    .iter()
                    .position(|v| v["id"] == a.as_str())
                    .map(|p| p + 1)
            })
            .unwrap_or(0);
        let page: Vec<&Value> = items.iter().skip(start).take(limit).copied().collect();
        let after = if start + page.len() < items.len() {
            page.last().map(|v| v["id"].clone()).unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        ResponseTemplate::new(200)
            .set_body_json(json!({"object": "list", "data": page, "list_metadata": {"before": null, "after": after}}))
    }
}

/// `GET …/{id}`: the object when WorkOS has it (`present`: objects its lists leave out,
/// as a list that missed one would), else its documented `entity_not_found`.
struct Gone {
    present: Vec<Value>,
}

impl Respond for Gone {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let id = req.url.path().rsplit('/').next().unwrap_or("");
        if let Some(obj) = self.present.iter().find(|o| o["id"] == id) {
            return ResponseTemplate::new(200).set_body_json(obj);
        }
        ResponseTemplate::new(404).set_body_json(json!({
            "code": "entity_not_found", "entity_id": id,
            "message": format!("Could not find entity with id '{id}'")
        }))
    }
}

async fn fake(users_fail_first: usize, fail: u16) -> MockServer {
    fake_with(users_fail_first, fail, Vec::new()).await
}

async fn fake_with(users_fail_first: usize, fail: u16, present: Vec<Value>) -> MockServer {
    let server = MockServer::start().await;
    let pages = |all: Vec<Value>, fail_first: usize| Pages {
        all,
        calls: Arc::new(AtomicUsize::new(0)),
        fail_first,
        fail,
    };
    Mock::given(path("/user_management/users"))
        .respond_with(pages((0..USERS).map(user).collect(), users_fail_first))
        .mount(&server)
        .await;
    Mock::given(path("/organizations"))
        .respond_with(pages((0..ORGS).map(org).collect(), 0))
        .mount(&server)
        .await;
    let members: Vec<Value> = (0..ORGS)
        .flat_map(|j| (0..PER_ORG).map(move |k| membership(j, k)))
        .collect();
    Mock::given(path("/user_management/organization_memberships"))
        .respond_with(pages(members, 0))
        .mount(&server)
        .await;
    // By id: only the extras are ever asked for, and WorkOS has none of them.
    for p in [
        r"^/user_management/users/[^/]+$",
        r"^/user_management/organization_memberships/[^/]+$",
    ] {
        Mock::given(path_regex(p))
            .respond_with(Gone {
                present: present.clone(),
            })
            .mount(&server)
            .await;
    }
    server
}

/// A WorkOS object as the snapshot lazy sync or backfill would apply.
fn snapshot(v: Value) -> Event {
    let r = match v["object"].as_str() {
        Some("user") => Record::User(serde_json::from_value(v).unwrap()),
        Some("organization") => Record::Organization(serde_json::from_value(v).unwrap()),
        _ => Record::Membership(serde_json::from_value(v).unwrap()),
    };
    Event::snapshot(r)
}

/// The CLI's settings for a fake at `uri`.
fn api_env(uri: &str) -> Vec<(&'static str, String)> {
    vec![
        ("WORKOS_API_KEY", "sk_test_fake".into()),
        ("WORKOS_API_BASE_URL", uri.into()),
        ("WORKOS_SYNC__SYNC__ENTITIES", ENTITIES.into()),
    ]
}

fn verify(db_url: &str, env: &[(&'static str, String)], args: &[&str]) -> (i32, String, String) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    run_binary(env!("CARGO_BIN_EXE_workos-sync"), db_url, &env, &all).unwrap()
}

const ENTITIES: &str = "users,organizations,organization_domains,organization_memberships";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_reports_exactly_the_drift_and_never_on_a_failed_listing() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    // The mirror in step: every object applied as WorkOS lists it.
    let mut all: Vec<Event> = (0..USERS).map(|i| snapshot(user(i))).collect();
    all.extend((0..ORGS).map(|j| snapshot(org(j))));
    all.extend((0..ORGS).flat_map(|j| (0..PER_ORG).map(move |k| snapshot(membership(j, k)))));
    for chunk in all.chunks(500) {
        s.apply_batch(chunk).await.unwrap();
    }
    let server = fake(0, 500).await;
    let env = api_env(&server.uri());
    let (code, out, err) = verify(&db.url, &env, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no drift"), "{out}");

    // Perturb: 50 users missing, 20 users and 10 memberships extra, 30 users and 10
    // organizations stale, 5 memberships ahead.
    let ids = |p: &str, r: std::ops::Range<usize>, w: usize| -> Vec<String> {
        r.map(|i| format!("{p}_{i:0w$}")).collect()
    };
    let list = |v: &[String]| {
        v.iter()
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let missing = ids("user", 100..150, 5);
    db.exec(&format!(
        "DELETE FROM users WHERE id IN ({})",
        list(&missing)
    ))
    .await
    .unwrap();
    let mut extra_events: Vec<Event> = (0..20)
        .map(|i| {
            let mut u = user(i);
            u["id"] = json!(format!("user_x{i:03}"));
            u["email"] = json!(format!("x{i}@x.io"));
            snapshot(u)
        })
        .collect();
    extra_events.extend((0..10).map(|i| {
        let mut m = membership(0, 0);
        m["id"] = json!(format!("om_x{i:03}"));
        m["user_id"] = json!(format!("user_{:05}", 4000 + i));
        snapshot(m)
    }));
    s.apply_batch(&extra_events).await.unwrap();
    let stale_users = ids("user", 1000..1030, 5);
    db.exec(&format!(
        "UPDATE users SET workos_updated_at = workos_updated_at - interval '1 second' WHERE id IN ({})",
        list(&stale_users)
    ))
    .await
    .unwrap();
    let stale_orgs = ids("org", 50..60, 3);
    db.exec(&format!(
        "UPDATE organizations SET workos_updated_at = workos_updated_at - interval '1 day' WHERE id IN ({})",
        list(&stale_orgs)
    ))
    .await
    .unwrap();
    let ahead = ids("om", 300..305, 5);
    db.exec(&format!(
        "UPDATE organization_memberships SET workos_updated_at = workos_updated_at + interval '1 hour' WHERE id IN ({})",
        list(&ahead)
    ))
    .await
    .unwrap();

    let (code, out, err) = verify(&db.url, &env, &["--json"]);
    assert_eq!(code, 3, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let kind = |e: &str, k: &str| -> BTreeSet<String> {
        report["entities"][e][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    assert_eq!(kind("users", "missing"), set(&missing));
    assert_eq!(kind("users", "stale"), set(&stale_users));
    let extra_users: Vec<String> = (0..20).map(|i| format!("user_x{i:03}")).collect();
    assert_eq!(kind("users", "extra"), set(&extra_users));
    assert_eq!(kind("organizations", "stale"), set(&stale_orgs));
    let extra_members: Vec<String> = (0..10).map(|i| format!("om_x{i:03}")).collect();
    assert_eq!(
        kind("organization_memberships", "extra"),
        set(&extra_members)
    );
    assert_eq!(kind("organization_memberships", "ahead"), set(&ahead));
    let total: usize = [
        "users",
        "organizations",
        "organization_domains",
        "organization_memberships",
    ]
    .iter()
    .flat_map(|e| ["missing", "extra", "stale", "ahead"].map(|k| kind(e, k).len()))
    .sum();
    assert_eq!(total, 50 + 30 + 40 + 5, "nothing else reported: {out}");
    assert_eq!(report["entities"]["users"]["listed"], USERS);
    // The plain report: one line per entity.
    let (code, out, _) = verify(&db.url, &env, &["--only", "users"]);
    assert_eq!(code, 3);
    assert!(
        out.contains("users: 5000 listed, missing 50, extra 20, stale 30, ahead 0"),
        "{out}"
    );

    // A page that fails once (500, then 429) is retried: the same report.
    for fail in [500, 429] {
        let flaky = fake(1, fail).await;
        let (code, out2, err) = verify(
            &db.url,
            &api_env(&flaky.uri()),
            &["--json", "--only", "users"],
        );
        assert_eq!(code, 3, "{fail}: {err}");
        let r2: Value = serde_json::from_str(&out2).unwrap();
        assert_eq!(
            r2["entities"]["users"], report["entities"]["users"],
            "{fail}"
        );
    }
    // A listing that keeps failing: an error (exit 1), no report of drift.
    let broken = fake(usize::MAX, 500).await;
    let (code, out, err) = verify(&db.url, &api_env(&broken.uri()), &["--only", "users"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(!out.contains("missing"), "{out}");

    // --repair: missing and stale written from WorkOS, extras removed after WorkOS said
    // by id they are gone; a second verify finds only the ahead rows.
    let (code, out, err) = verify(&db.url, &env, &["--repair"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains("users: 5000 listed, missing 50, extra 20, stale 30, ahead 0\n  repaired: 80 written from WorkOS, 20 removed (WorkOS: gone), 0 still in WorkOS, 0 left alone"),
        "{out}"
    );
    let (code, out, _) = verify(&db.url, &env, &["--json"]);
    assert_eq!(code, 3);
    let after: Value = serde_json::from_str(&out).unwrap();
    for e in [
        "users",
        "organizations",
        "organization_domains",
        "organization_memberships",
    ] {
        for k in ["missing", "extra", "stale"] {
            assert_eq!(after["entities"][e][k], json!([]), "{e} {k}: {out}");
        }
    }
    let still_ahead: BTreeSet<String> = after["entities"]["organization_memberships"]["ahead"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(still_ahead, set(&ahead));
    // The removed extras are tombstoned; nothing WorkOS has was removed.
    assert!(db.store.is_tombstoned("user_x000").await.unwrap());
    assert_eq!(db.store.all_users().await.unwrap().len(), USERS);
    assert_eq!(
        db.store.all_memberships().await.unwrap().len(),
        ORGS * PER_ORG
    );
    db.teardown().await.unwrap();
}

/// `--repair` while webhooks keep coming for the same users: the newest version wins
/// everywhere, users created meanwhile (not in WorkOS's listing) are left alone, and
/// nothing WorkOS has is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repair_while_webhooks_flow_converges_to_the_newest() {
    let db = fresh_database().await.unwrap();
    let s = db.store.clone();
    let all: Vec<Event> = (0..USERS).map(|i| snapshot(user(i))).collect();
    for chunk in all.chunks(500) {
        s.apply_batch(chunk).await.unwrap();
    }
    // Drift: 300 stale, 100 missing.
    db.exec("UPDATE users SET workos_updated_at = workos_updated_at - interval '1 second' WHERE id < 'user_00300'")
        .await
        .unwrap();
    db.exec("DELETE FROM users WHERE id >= 'user_04900'")
        .await
        .unwrap();
    // A user WorkOS has whose list page left it out: extra by the list, present by id.
    let mut listmiss = user(0);
    listmiss["id"] = json!("user_listmiss");
    listmiss["email"] = json!("listmiss@x.io");
    s.apply(&snapshot(listmiss.clone())).await.unwrap();
    // Written before the check begins (rows written after it are left alone): the
    // check begins now by the database's clock.
    let began: chrono::DateTime<chrono::Utc> = db.now().await.unwrap();
    let server = fake_with(0, 500, vec![listmiss]).await;
    let mut cfg =
        workos_sync_workos_api::ApiConfig::new(server.uri(), "sk_test_fake".to_owned().into());
    cfg.backoff_base = std::time::Duration::from_millis(10);
    let api = workos_sync_workos_api::Client::new(cfg).unwrap();
    let repair = {
        let s = s.clone();
        tokio::spawn(async move {
            workos_sync_pull::verify_since(
                &api,
                &s,
                Some(workos_sync_core::Entity::Users),
                Some(workos_sync_pull::RemovalBound {
                    max: 100,
                    percent: 25.0,
                }),
                began,
                |_| {},
            )
            .await
            .unwrap()
        })
    };
    // Webhooks meanwhile: newer versions of users 0..2000 (stale ones among them) and of
    // some missing ones, and 20 users WorkOS's listing never had.
    let newer = |i: usize| {
        let mut u = user(i);
        u["updated_at"] = json!(ts(i + 10 + 3600));
        u
    };
    let hooks = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut n = 0;
            let mut evs: Vec<Event> = (0..2000).chain(4950..5000).map(|i| {
                n += 1;
                let body = json!({"object": "event", "id": format!("evt_h{n}"), "event": "user.updated",
                                  "data": newer(i), "created_at": ts(i + 3600)});
                Event::decode(body.to_string().as_bytes()).unwrap()
            }).collect();
            evs.extend((0..20).map(|k| {
                let mut u = user(k);
                u["id"] = json!(format!("user_new{k:02}"));
                u["email"] = json!(format!("new{k}@x.io"));
                let body = json!({"object": "event", "id": format!("evt_new{k}"), "event": "user.created",
                                  "data": u, "created_at": ts(1)});
                Event::decode(body.to_string().as_bytes()).unwrap()
            }));
            for chunk in evs.chunks(50) {
                s.apply_batch(chunk).await.unwrap();
            }
        })
    };
    hooks.await.unwrap();
    let report = repair.await.unwrap();
    let done = report.entities[&workos_sync_core::Entity::Users]
        .repair
        .clone()
        .unwrap();
    assert_eq!(done.still_in_workos, ["user_listmiss"], "{done:?}");
    assert!(done.removed.is_empty(), "{done:?}");
    assert!(!s.is_tombstoned("user_listmiss").await.unwrap());
    let rows = s.all_users().await.unwrap();
    assert_eq!(
        rows.len(),
        USERS + 21,
        "nothing WorkOS has removed, new users kept"
    );
    for r in &rows {
        let Some(i) =
            r.id.strip_prefix("user_")
                .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let want = if !(2000..4950).contains(&i) {
            ts(i + 10 + 3600)
        } else {
            ts(i + 10)
        };
        let got = r
            .workos_updated_at
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        assert_eq!(got, want, "{}", r.id);
    }
    db.teardown().await.unwrap();
}

/// Every row as if written an hour ago (a repair leaves rows written after it began
/// alone).
async fn written_an_hour_ago(db: &workos_sync_testkit::TestDb) {
    for t in ["users", "organizations", "organization_memberships"] {
        db.exec(&format!(
            "UPDATE {t} SET updated_at = updated_at - interval '1 hour'"
        ))
        .await
        .unwrap();
    }
}

/// `GET …/{id}` for the bound and failure tests: 500 for the `failing` ids (every try),
/// else WorkOS's documented `entity_not_found`.
struct Failing {
    failing: Vec<String>,
}

impl Respond for Failing {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let id = req.url.path().rsplit('/').next().unwrap_or("");
        if self.failing.iter().any(|f| f == id) {
            return ResponseTemplate::new(500).set_body_json(json!({"message": "Internal"}));
        }
        ResponseTemplate::new(404).set_body_json(json!({
            "code": "entity_not_found", "entity_id": id,
            "message": format!("Could not find entity with id '{id}'")
        }))
    }
}

/// A fake WorkOS listing `users` and `orgs` (no memberships), answering by id as
/// [`Failing`].
async fn fake_lists(users: Vec<Value>, orgs: Vec<Value>, failing: Vec<String>) -> MockServer {
    let server = MockServer::start().await;
    let pages = |all: Vec<Value>| Pages {
        all,
        calls: Arc::new(AtomicUsize::new(0)),
        fail_first: 0,
        fail: 500,
    };
    Mock::given(path("/user_management/users"))
        .respond_with(pages(users))
        .mount(&server)
        .await;
    Mock::given(path("/organizations"))
        .respond_with(pages(orgs))
        .mount(&server)
        .await;
    Mock::given(path("/user_management/organization_memberships"))
        .respond_with(pages(Vec::new()))
        .mount(&server)
        .await;
    for p in [
        r"^/user_management/users/[^/]+$",
        r"^/organizations/[^/]+$",
        r"^/user_management/organization_memberships/[^/]+$",
    ] {
        Mock::given(path_regex(p))
            .respond_with(Failing {
                failing: failing.clone(),
            })
            .mount(&server)
            .await;
    }
    server
}

/// An API key of another WorkOS environment: its lists hold none of our 300 users, and
/// it answers `entity_not_found` for each. The repair removes nothing, exits 4 and says
/// how to proceed; with `--max-removals` it proceeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mass_removal_is_refused_unless_asked_for_knowingly() {
    let db = fresh_database().await.unwrap();
    let all: Vec<Event> = (0..300).map(|i| snapshot(user(i))).collect();
    db.store.apply_batch(&all).await.unwrap();
    written_an_hour_ago(&db).await;
    let other_env = fake_lists(Vec::new(), Vec::new(), Vec::new()).await;
    let env = api_env(&other_env.uri());
    let (code, out, err) = verify(&db.url, &env, &["--repair"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains("would remove 300 of 300 users"), "{err}");
    assert!(err.contains("--max-removals 300"), "{err}");
    assert_eq!(db.store.all_users().await.unwrap().len(), 300);
    assert!(db.store.tombstones(None, 10).await.unwrap().is_empty());
    assert_eq!(
        other_env
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path().starts_with("/user_management/users/"))
            .count(),
        0,
        "no id asked for once refused"
    );
    // The same through --json: the reason, and the extra ids to look at.
    let (code, out, _) = verify(&db.url, &env, &["--repair", "--json"]);
    assert_eq!(code, 4);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert!(report["refused"].as_str().unwrap().contains("bound"));
    assert_eq!(
        report["entities"]["users"]["extra"]
            .as_array()
            .unwrap()
            .len(),
        300
    );
    // A small share passes the default bound: 5 of 300.
    let most: Vec<Value> = (5..300).map(user).collect();
    let small = fake_lists(most, Vec::new(), Vec::new()).await;
    let (code, out, err) = verify(
        &db.url,
        &api_env(&small.uri()),
        &["--repair", "--only", "users"],
    );
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(db.store.all_users().await.unwrap().len(), 295);
    // Knowingly: every remaining one.
    let (code, out, err) = verify(&db.url, &env, &["--repair", "--max-removals", "295"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(db.store.all_users().await.unwrap().is_empty());
    db.teardown().await.unwrap();
}

/// WorkOS failing (500 after retries) for 3 of 30 extra users: those 3 are left and
/// reported, the other 27 removed, and the 20 missing and 15 stale organizations (an
/// entity checked after users) still repaired; exit 5 at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_row_workos_cannot_confirm_does_not_stop_the_repair() {
    let db = fresh_database().await.unwrap();
    let mut local: Vec<Event> = (0..400).map(|i| snapshot(user(i))).collect();
    local.extend((0..30).map(|i| {
        let mut u = user(i);
        u["id"] = json!(format!("user_x{i:03}"));
        u["email"] = json!(format!("x{i}@x.io"));
        snapshot(u)
    }));
    local.extend((0..30).map(|j| snapshot(org(j))));
    db.store.apply_batch(&local).await.unwrap();
    written_an_hour_ago(&db).await;
    db.exec("UPDATE organizations SET workos_updated_at = workos_updated_at - interval '1 day' WHERE id < 'org_015'")
        .await
        .unwrap();
    let failing: Vec<String> = ["user_x003", "user_x017", "user_x029"]
        .map(String::from)
        .to_vec();
    let server = fake_lists(
        (0..400).map(user).collect(),
        (0..50).map(org).collect(),
        failing.clone(),
    )
    .await;
    let (code, out, err) = verify(&db.url, &api_env(&server.uri()), &["--repair", "--json"]);
    assert_eq!(code, 5, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let users = &report["entities"]["users"]["repair"];
    assert_eq!(users["removed"].as_array().unwrap().len(), 27, "{users}");
    let failed: Vec<&str> = users["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(failed, failing);
    for id in &failing {
        assert!(db.store.get_user(id).await.unwrap().is_some(), "{id}");
        assert!(!db.store.is_tombstoned(id).await.unwrap(), "{id}");
    }
    assert_eq!(report["entities"]["organizations"]["repair"]["applied"], 35);
    // Only the three unchecked users remain as drift.
    let (code, out, _) = verify(&db.url, &api_env(&server.uri()), &["--json"]);
    assert_eq!(code, 3);
    let after: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(after["entities"]["users"]["extra"], json!(failing));
    assert_eq!(after["entities"]["organizations"]["missing"], json!([]));
    assert_eq!(after["entities"]["organizations"]["stale"], json!([]));
    db.teardown().await.unwrap();
}

/// A list whose `list_metadata.after` repeats (WorkOS returning the same page forever)
/// stops verify and backfill with a clear error instead of looping.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_list_that_never_ends_is_an_error() {
    let db = fresh_database().await.unwrap();
    let server = MockServer::start().await;
    Mock::given(path("/user_management/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "data": [user(1), user(2)],
            "list_metadata": {"before": null, "after": "user_00002"}
        })))
        .mount(&server)
        .await;
    let env = api_env(&server.uri());
    for args in [
        vec!["verify", "--only", "users"],
        vec!["backfill", "--only", "users"],
    ] {
        let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let started = std::time::Instant::now();
        let (code, out, err) =
            run_binary(env!("CARGO_BIN_EXE_workos-sync"), &db.url, &envs, &args).unwrap();
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains("a second time"), "{args:?}: {err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }
    let calls = server.received_requests().await.unwrap().len();
    assert!(calls <= 4, "{calls} list calls");
    db.teardown().await.unwrap();
}
