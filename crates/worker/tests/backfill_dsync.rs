//! Backfill of Directory Sync against a fake WorkOS API (wiremock, paging like the real
//! one) and the real Postgres: directories, their users and groups, and the memberships
//! found by listing each group's users; a run killed half way resumes from its saved
//! directories cursor to the exact tables, and no directory is ever asked more than
//! WorkOS's 4 Directory Users requests in any second.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path},
};
use workos_sync_core::Entity;
use workos_sync_pull as sync;
use workos_sync_testkit::fresh_database;
use workos_sync_workos_api::{ApiConfig, Client};

const DIRECTORIES: usize = 20;
const USERS: usize = 500;
const GROUPS: usize = 30;
const MEMBERS: usize = 20;

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

fn dir_id(d: usize) -> String {
    format!("directory_bf{d:02}")
}

fn user(d: usize, u: usize) -> Value {
    json!({"object": "directory_user", "id": format!("directory_user_bf{d:02}_{u:03}"),
           "directory_id": dir_id(d), "organization_id": "org_1", "idp_id": format!("{u}"),
           "email": format!("u{u}@d{d}.io"), "first_name": "F", "last_name": null,
           "state": "active", "raw_attributes": {}, "custom_attributes": {}, "groups": [],
           "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-02T00:00:00.000Z"})
}

fn group(d: usize, g: usize) -> Value {
    json!({"object": "directory_group", "id": format!("directory_group_bf{d:02}_{g}"),
           "idp_id": format!("{g}"), "directory_id": dir_id(d), "name": format!("G{g}"),
           "raw_attributes": {}, "created_at": "2026-01-01T00:00:00.000Z",
           "updated_at": "2026-01-02T00:00:00.000Z"})
}

/// `GET /directory_users` by directory or by group; every request's directory and time
/// is noted; the `fail_at.1`-th request for directory `fail_at.0` fails once with a
/// non-retryable 401 (a crash).
struct DirectoryUsers {
    by_directory: HashMap<String, Vec<Value>>,
    by_group: HashMap<String, (String, Vec<Value>)>,
    asked: Arc<Mutex<Vec<(String, Instant)>>>,
    fail_at: Mutex<Option<(String, usize)>>,
}

impl Respond for DirectoryUsers {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let (directory, items) = match (query(req, "directory"), query(req, "group")) {
            (Some(d), _) => (d.clone(), self.by_directory.get(&d).cloned()),
            (None, Some(g)) => match self.by_group.get(&g) {
                Some((d, m)) => (d.clone(), Some(m.clone())),
                None => (String::new(), None),
            },
            (None, None) => (String::new(), None),
        };
        let n = {
            let mut asked = self.asked.lock().unwrap();
            asked.push((directory.clone(), Instant::now()));
            asked.iter().filter(|(d, _)| *d == directory).count()
        };
        {
            let mut fail = self.fail_at.lock().unwrap();
            if *fail == Some((directory, n)) {
                *fail = None;
                return ResponseTemplate::new(401)
                    .set_body_json(json!({"message": "simulated crash"}));
            }
        }
        match items {
            Some(items) => page(&items, req),
            None => ResponseTemplate::new(422).set_body_json(json!({"message": "no filter"})),
        }
    }
}

struct Listed {
    items: Vec<Value>,
    asked: Arc<Mutex<Vec<Option<String>>>>,
}

impl Respond for Listed {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.asked.lock().unwrap().push(query(req, "after"));
        page(&self.items, req)
    }
}

struct Groups(HashMap<String, Vec<Value>>);

impl Respond for Groups {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let d = query(req, "directory").unwrap_or_default();
        page(&self.0.get(&d).cloned().unwrap_or_default(), req)
    }
}

async fn count(db: &workos_sync_testkit::TestDb, table: &str) -> usize {
    db.rows(&format!("SELECT 1 FROM {table}"))
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_of_directories_resumes_exactly_within_the_per_directory_limit() {
    let db = fresh_database().await.unwrap();
    let workos = MockServer::start().await;
    let directories: Vec<Value> = (0..DIRECTORIES)
        .map(|d| {
            json!({"object": "directory", "id": dir_id(d), "organization_id": "org_1",
                   "external_key": "never-stored", "type": "okta scim v2.0", "state": "linked",
                   "name": format!("D{d}"), "domain": format!("d{d}.io"),
                   "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-02T00:00:00.000Z"})
        })
        .collect();
    let mut by_directory = HashMap::new();
    let mut by_group = HashMap::new();
    let mut groups = HashMap::new();
    let mut memberships = BTreeSet::new();
    for d in 0..DIRECTORIES {
        by_directory.insert(dir_id(d), (0..USERS).map(|u| user(d, u)).collect());
        groups.insert(dir_id(d), (0..GROUPS).map(|g| group(d, g)).collect());
        for g in 0..GROUPS {
            let members: Vec<Value> = (0..MEMBERS).map(|k| user(d, (k * 3 + g) % USERS)).collect();
            for m in &members {
                memberships.insert(format!(
                    "directory_group_bf{d:02}_{g}:{}",
                    m["id"].as_str().unwrap()
                ));
            }
            by_group.insert(
                format!("directory_group_bf{d:02}_{g}"),
                (dir_id(d), members),
            );
        }
    }
    let asked_dirs = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("GET"))
        .and(path("/directories"))
        .respond_with(Listed {
            items: directories,
            asked: asked_dirs.clone(),
        })
        .mount(&workos)
        .await;
    Mock::given(method("GET"))
        .and(path("/directory_groups"))
        .respond_with(Groups(groups))
        .mount(&workos)
        .await;
    // The crash comes with the third request for the fifteenth directory (on the second
    // page of directories: the first page of ten is done).
    let asked = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("GET"))
        .and(path("/directory_users"))
        .respond_with(DirectoryUsers {
            by_directory,
            by_group,
            asked: asked.clone(),
            fail_at: Mutex::new(Some((dir_id(14), 3))),
        })
        .mount(&workos)
        .await;
    let mut cfg = ApiConfig::new(workos.uri(), SecretString::from("sk_test_fake"));
    cfg.backoff_base = Duration::from_millis(10);
    let api = Client::new(cfg).unwrap();
    let opts = sync::BackfillOptions {
        restart: false,
        dry_run: false,
        only: Some(Entity::Directories),
    };

    let first = sync::backfill(&api, &db.store, opts, |_| {}).await;
    assert!(first.is_err(), "the simulated crash must end the run");
    let cursor = db
        .store
        .cursor(&sync::cursor_name(Entity::Directories))
        .await
        .unwrap();
    assert_eq!(
        cursor.as_deref(),
        Some("directory_bf09"),
        "saved after the first page"
    );
    let partial = count(&db, "directory_users").await;
    assert!(
        (10 * USERS..DIRECTORIES * USERS).contains(&partial),
        "{partial}"
    );

    asked_dirs.lock().unwrap().clear();
    let report = sync::backfill(&api, &db.store, opts, |_| {}).await.unwrap();
    assert_eq!(
        asked_dirs
            .lock()
            .unwrap()
            .first()
            .cloned()
            .flatten()
            .as_deref(),
        Some("directory_bf09"),
        "the restarted run resumes at the saved page"
    );
    assert_eq!(report.of(Entity::Directories).fetched, 10);
    assert_eq!(count(&db, "directories").await, DIRECTORIES);
    assert_eq!(count(&db, "directory_users").await, DIRECTORIES * USERS);
    assert_eq!(count(&db, "directory_groups").await, DIRECTORIES * GROUPS);
    let stored: BTreeSet<String> = db
        .rows("SELECT key FROM directory_group_memberships")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored, memberships);
    let leaked = db
        .rows("SELECT 1 FROM directories d WHERE row_to_json(d)::text LIKE '%never-stored%'")
        .await
        .unwrap();
    assert!(leaked.is_empty(), "the SCIM endpoint key is never stored");
    assert!(
        db.store
            .cursor(&sync::cursor_name(Entity::Directories))
            .await
            .unwrap()
            .is_none()
    );

    // Verify walks the same lists and finds the tables in step (memberships compared by
    // presence: their version is when WorkOS said so).
    let check = sync::verify(&api, &db.store, Some(Entity::Directories), None, |_| {})
        .await
        .unwrap();
    assert!(!check.has_drift(), "{check:?}");
    assert_eq!(
        check.entities[&Entity::DirectoryGroupMemberships].listed as usize,
        memberships.len()
    );

    // No directory was asked more than 4 times in any second (WorkOS's limit).
    let mut by_dir: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
    for (d, at) in asked.lock().unwrap().iter() {
        by_dir.entry(d.clone()).or_default().push(*at);
    }
    assert_eq!(by_dir.len(), DIRECTORIES);
    for (d, times) in &by_dir {
        for (i, t) in times.iter().enumerate() {
            let within = times[i..]
                .iter()
                .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
                .count();
            assert!(within <= 4, "{d}: {within} requests within one second");
        }
    }
    db.teardown().await.unwrap();
}

/// `GET /{list}/{id}`: the object from `known`, else WorkOS's `entity_not_found`; every
/// id asked is noted.
struct ById {
    known: HashMap<String, Value>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Respond for ById {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let id = req
            .url
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        self.asked.lock().unwrap().push(id.clone());
        match self.known.get(&id) {
            Some(v) => ResponseTemplate::new(200).set_body_json(v),
            None => ResponseTemplate::new(404).set_body_json(json!({
                "code": "entity_not_found", "entity_id": id,
                "message": format!("Could not find an object with id '{id}'.")
            })),
        }
    }
}

fn snapshot(r: workos_sync_core::Record) -> workos_sync_core::Event {
    workos_sync_core::Event::snapshot(r)
}

/// Verify's repair of Directory Sync: missing and stale rows written from the lists;
/// an extra directory, group or user removed (and tombstoned, with what refers to it)
/// only when WorkOS answers `entity_not_found` for its id; an extra user WorkOS still
/// has is kept; an extra membership (no id of its own) removed when its group's users,
/// listed again, lack it; a removal past the bound writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_repair_of_directory_sync_asks_before_it_removes() {
    use workos_sync_core::{
        Directory, DirectoryGroup, DirectoryGroupMembership, DirectoryUser, Record,
    };
    let db = fresh_database().await.unwrap();
    let workos = MockServer::start().await;
    let d = 0;
    let directory = json!({"object": "directory", "id": dir_id(d), "organization_id": "org_1",
        "type": "okta scim v2.0", "state": "linked", "name": "D0", "domain": "d0.io",
        "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-02T00:00:00.000Z"});
    let users: Vec<Value> = (0..10).map(|u| user(d, u)).collect();
    let groups: Vec<Value> = (0..3).map(|g| group(d, g)).collect();
    let members: HashMap<usize, Vec<usize>> = [(0, vec![0, 1]), (1, vec![2]), (2, vec![])].into();
    let mut by_group = HashMap::new();
    for (g, us) in &members {
        by_group.insert(
            format!("directory_group_bf00_{g}"),
            (
                dir_id(d),
                us.iter().map(|u| user(d, *u)).collect::<Vec<_>>(),
            ),
        );
    }
    // A user WorkOS has but its directory list missed (asked by id: still there).
    let kept = user(d, 99);
    let mut known: HashMap<String, Value> = HashMap::new();
    known.insert(dir_id(d), directory.clone());
    for v in users.iter().chain(&groups).chain([&kept]) {
        known.insert(v["id"].as_str().unwrap().to_owned(), v.clone());
    }
    let asked_by_id = Arc::new(Mutex::new(Vec::new()));
    for list in ["directories", "directory_groups", "directory_users"] {
        Mock::given(method("GET"))
            .and(wiremock::matchers::path_regex(format!("^/{list}/[^/]+$")))
            .respond_with(ById {
                known: known.clone(),
                asked: asked_by_id.clone(),
            })
            .mount(&workos)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/directories"))
        .respond_with(Listed {
            items: vec![directory],
            asked: Arc::new(Mutex::new(Vec::new())),
        })
        .mount(&workos)
        .await;
    Mock::given(method("GET"))
        .and(path("/directory_groups"))
        .respond_with(Groups([(dir_id(d), groups.clone())].into()))
        .mount(&workos)
        .await;
    Mock::given(method("GET"))
        .and(path("/directory_users"))
        .respond_with(DirectoryUsers {
            by_directory: [(dir_id(d), users.clone())].into(),
            by_group,
            asked: Arc::new(Mutex::new(Vec::new())),
            fail_at: Mutex::new(None),
        })
        .mount(&workos)
        .await;
    let mut cfg = ApiConfig::new(workos.uri(), SecretString::from("sk_test_fake"));
    cfg.backoff_base = Duration::from_millis(10);
    let api = Client::new(cfg).unwrap();
    let only = Some(Entity::Directories);
    let opts = sync::BackfillOptions {
        restart: false,
        dry_run: false,
        only,
    };
    sync::backfill(&api, &db.store, opts, |_| {}).await.unwrap();

    // Drift: a user lost, a group's row older than WorkOS's, and extras of every kind.
    db.exec("DELETE FROM directory_users WHERE id = 'directory_user_bf00_003'")
        .await
        .unwrap();
    db.exec(
        "UPDATE directory_groups SET name = 'old', workos_updated_at = '2025-01-01Z' \
         WHERE id = 'directory_group_bf00_1'",
    )
    .await
    .unwrap();
    let at: chrono::DateTime<chrono::Utc> = "2026-01-02T00:00:00Z".parse().unwrap();
    let gone_dir = "directory_gone";
    let extras = [
        Record::DirectoryUser(DirectoryUser::stub("directory_user_gone", &dir_id(d), at)),
        Record::DirectoryUser(serde_json::from_value(kept.clone()).unwrap()),
        Record::DirectoryGroup(DirectoryGroup::stub("directory_group_gone", &dir_id(d), at)),
        Record::DirectoryMembership(DirectoryGroupMembership::new(
            &dir_id(d),
            "directory_group_gone",
            "directory_user_bf00_000",
            at,
        )),
        Record::DirectoryMembership(DirectoryGroupMembership::new(
            &dir_id(d),
            "directory_group_bf00_2",
            "directory_user_bf00_005",
            at,
        )),
        Record::Directory(Directory::stub(gone_dir, at)),
        Record::DirectoryUser(DirectoryUser::stub("directory_user_of_gone", gone_dir, at)),
    ];
    for r in extras {
        db.store.apply(&snapshot(r)).await.unwrap();
    }
    let began = db.now().await.unwrap();

    // The bound: three removable users of thirteen is over 2: nothing is written.
    let refused = sync::verify_since(
        &api,
        &db.store,
        only,
        Some(sync::RemovalBound::absolute(2)),
        began,
        |_| {},
    )
    .await
    .unwrap();
    assert!(refused.refused.is_some(), "{refused:?}");
    assert_eq!(
        count(&db, "directory_users").await,
        9 + 3,
        "a refused repair writes nothing"
    );
    assert!(
        asked_by_id.lock().unwrap().is_empty(),
        "nor asks for anything"
    );

    let report = sync::verify_since(
        &api,
        &db.store,
        only,
        Some(sync::RemovalBound::absolute(100)),
        began,
        |_| {},
    )
    .await
    .unwrap();
    assert!(report.refused.is_none(), "{report:?}");
    let ids = |sql: &str| {
        let db = &db;
        let sql = sql.to_owned();
        async move {
            db.rows(&sql)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect::<BTreeSet<String>>()
        }
    };
    let mut want_users: BTreeSet<String> = (0..10)
        .map(|u| format!("directory_user_bf00_{u:03}"))
        .collect();
    want_users.insert("directory_user_bf00_099".into());
    assert_eq!(ids("SELECT id FROM directory_users").await, want_users);
    assert_eq!(
        ids("SELECT id FROM directories").await,
        [dir_id(d)].into_iter().collect()
    );
    assert_eq!(
        ids("SELECT id FROM directory_groups").await,
        (0..3)
            .map(|g| format!("directory_group_bf00_{g}"))
            .collect()
    );
    let name = db
        .rows("SELECT name FROM directory_groups WHERE id = 'directory_group_bf00_1'")
        .await
        .unwrap();
    assert_eq!(name[0]["name"], "G1", "the stale group was rewritten");
    assert_eq!(
        ids("SELECT key AS id FROM directory_group_memberships").await,
        [
            "directory_group_bf00_0:directory_user_bf00_000",
            "directory_group_bf00_0:directory_user_bf00_001",
            "directory_group_bf00_1:directory_user_bf00_002",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    // What WorkOS said is gone is tombstoned: nothing older makes it again.
    for (e, key) in [
        (Entity::Directories, gone_dir),
        (Entity::DirectoryUsers, "directory_user_gone"),
        (Entity::DirectoryGroups, "directory_group_gone"),
    ] {
        let t = db.store.tombstones(Some(e), 100).await.unwrap();
        assert!(
            t.iter().any(|t| t.id == key),
            "{e}: {key} tombstoned: {t:?}"
        );
    }
    let users = &report.entities[&Entity::DirectoryUsers];
    let repair = users.repair.as_ref().unwrap();
    assert_eq!(
        repair.still_in_workos,
        vec!["directory_user_bf00_099".to_owned()]
    );
    assert_eq!(users.missing, vec!["directory_user_bf00_003".to_owned()]);
    for id in [
        "directory_user_gone",
        "directory_user_bf00_099",
        "directory_group_gone",
        gone_dir,
    ] {
        assert!(
            asked_by_id.lock().unwrap().iter().any(|a| a == id),
            "{id} was asked for by id before anything was decided"
        );
    }

    // In step again, but for the user WorkOS's list misses (reported, never removed).
    let again = sync::verify(&api, &db.store, only, None, |_| {})
        .await
        .unwrap();
    for (e, drift) in &again.entities {
        let extra: Vec<&str> = drift.extra.iter().map(String::as_str).collect();
        let want: &[&str] = if *e == Entity::DirectoryUsers {
            &["directory_user_bf00_099"]
        } else {
            &[]
        };
        assert_eq!(extra, want, "{e}");
        assert!(
            drift.missing.is_empty() && drift.stale.is_empty(),
            "{e}: {drift:?}"
        );
    }
    db.teardown().await.unwrap();
}
