//! The store against a real Postgres: each test in its own fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use workos_sync_core::{Event, EventKind, Record, User};
use workos_sync_store::{Outcome, migrate};
use workos_sync_testkit::fresh_database;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap()
}

fn user(id: &str, email: &str, version: i64) -> User {
    User {
        raw: Default::default(),
        id: id.into(),
        email: email.into(),
        email_verified: true,
        first_name: Some(format!("First{version}")),
        last_name: Some(" Last ".into()),
        name: None,
        profile_picture_url: Some(format!("https://img/{id}/{version}")),
        external_id: None,
        metadata: None,
        last_sign_in_at: None,
        locale: Some("en-US".into()),
        created_at: t(0),
        updated_at: t(version),
    }
}

fn created(u: User) -> EventKind {
    EventKind::Upsert(Record::User(u))
}
fn updated(u: User) -> EventKind {
    EventKind::Upsert(Record::User(u))
}
fn deleted(u: User) -> EventKind {
    EventKind::Delete(Record::User(u))
}
fn snapshot(u: User) -> EventKind {
    EventKind::Snapshot(Record::User(u))
}

fn event(id: &str, kind: EventKind, created: i64) -> Event {
    let event_type = match &kind {
        EventKind::Upsert(_) => "user.updated",
        EventKind::Delete(_) => "user.deleted",
        EventKind::Snapshot(_) => "user.snapshot",
        EventKind::Other => "session.created",
    };
    Event {
        id: id.into(),
        event_type: event_type.into(),
        created_at: t(created),
        kind,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_go_down_and_up_and_tolerate_concurrent_runs() {
    let db = fresh_database().await.unwrap();
    assert!(
        migrate::pending(&db.url, "public")
            .await
            .unwrap()
            .is_empty()
    );
    // Every migration in migrations/ (one folder each) goes down.
    let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("up.sql").exists())
        .count();
    assert!(on_disk >= 3);
    let reverted = migrate::revert_all(&db.url).await.unwrap();
    assert_eq!(reverted.len(), on_disk);
    // down.sql removed every table.
    let left = db
        .exec("SELECT 1 FROM information_schema.tables WHERE table_schema='public' AND table_name <> '__diesel_schema_migrations'")
        .await
        .unwrap();
    assert_eq!(left, 0, "tables left after revert");
    // Two runners at once: both succeed, one of them applies everything.
    let (a, b) = tokio::join!(migrate::run(&db.url), migrate::run(&db.url));
    let (a, b) = (a.unwrap().len(), b.unwrap().len());
    assert_eq!((a.min(b), a.max(b)), (0, on_disk));
    assert!(
        migrate::pending(&db.url, "public")
            .await
            .unwrap()
            .is_empty()
    );
    db.teardown().await.unwrap();
}

/// An installation migrated before users had a migration of its own (its first
/// migration made users): `migrate` records the users migration as applied, keeps the
/// rows and changes nothing else; the users table is not taken for the application's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_from_before_the_users_migration_upgrades_in_place() {
    let db = fresh_database().await.unwrap();
    db.store
        .apply(&Event::user_snapshot(user("user_old", "old@x.io", 5)))
        .await
        .unwrap();
    let users = migrate::embedded_names()[0].clone();
    assert!(users.ends_with("_users"), "{users}");
    let version: String = users.split('_').next().unwrap().replace('-', "");
    db.exec(&format!(
        "DELETE FROM __diesel_schema_migrations WHERE version = '{version}'"
    ))
    .await
    .unwrap();
    assert_eq!(migrate::pending(&db.url, "public").await.unwrap(), [users]);
    let report = migrate::migrate(&db.url, &migrate::MigrateOptions::new("public"))
        .await
        .unwrap();
    assert!(!report.adopted);
    assert!(report.applied.is_empty(), "{:?}", report.applied);
    assert!(
        migrate::pending(&db.url, "public")
            .await
            .unwrap()
            .is_empty()
    );
    let rows = db.store.all_users().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, "user_old");
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_event_twice_has_one_effect() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    let ev = event("event_1", created(user("user_1", "Ada.L@x.io", 1)), 1);
    assert_eq!(s.apply(&ev).await.unwrap(), Outcome::Created);
    let row = s.get_user("user_1").await.unwrap().unwrap();
    assert_eq!(s.apply(&ev).await.unwrap(), Outcome::Duplicate);
    assert_eq!(s.get_user("user_1").await.unwrap().unwrap(), row);
    assert_eq!(row.name.as_deref(), Some("First1 Last"));
    assert_eq!(row.usertag, "ada_l");
    assert_eq!(row.avatar_url.as_deref(), Some("https://img/user_1/1"));
    assert_eq!(s.processed_count().await.unwrap(), 1);
    // Unknown event types are recorded as ignored, and are duplicates the second time.
    let other = event("event_org", EventKind::Other, 1);
    assert_eq!(s.apply(&other).await.unwrap(), Outcome::Ignored);
    assert_eq!(s.apply(&other).await.unwrap(), Outcome::Duplicate);
    db.teardown().await.unwrap();
}

/// A duplicate never writes, even when the application deleted the row by hand (so the
/// stored state does not show the duplicate's effect), and the batch's other events are
/// planned as if the duplicate were not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_do_not_write_after_the_app_deleted_the_row() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    let u = |v| user("user_h", "hand@x.io", v);
    let e2 = event("e2", created(u(2)), 2);
    assert_eq!(s.apply(&e2).await.unwrap(), Outcome::Created);
    db.exec("DELETE FROM users WHERE id = 'user_h'")
        .await
        .unwrap();
    // Alone: a duplicate, and the row stays gone.
    assert_eq!(s.apply(&e2).await.unwrap(), Outcome::Duplicate);
    assert!(s.get_user("user_h").await.unwrap().is_none());
    // With an older new event: the new one applies (the duplicate's newer data must not
    // win), and is the row's data.
    let e1 = event("e1", updated(u(1)), 1);
    let outcomes = s.apply_batch(&[e1, e2.clone()]).await.unwrap();
    assert_eq!(outcomes, vec![Outcome::Created, Outcome::Duplicate]);
    let row = s.get_user("user_h").await.unwrap().unwrap();
    assert_eq!(row.workos_updated_at, Some(t(1)));
    assert_eq!(row.first_name.as_deref(), Some("First1"));
    assert_eq!(s.processed_count().await.unwrap(), 2);
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_wins_and_deletes_are_final() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    let u = |v| user("user_2", "bob@x.io", v);
    assert_eq!(
        s.apply(&event("e3", updated(u(3)), 3)).await.unwrap(),
        Outcome::Created
    );
    assert_eq!(
        s.apply(&event("e1", created(u(1)), 1)).await.unwrap(),
        Outcome::Stale
    );
    assert_eq!(
        s.apply(&event("e3b", updated(u(3)), 3)).await.unwrap(),
        Outcome::Stale
    );
    assert_eq!(
        s.get_user("user_2")
            .await
            .unwrap()
            .unwrap()
            .workos_updated_at,
        Some(t(3))
    );
    assert_eq!(
        s.apply(&event("e4", updated(u(4)), 4)).await.unwrap(),
        Outcome::Updated
    );
    // The delete carries the user as last stored (old updated_at): it still deletes.
    assert_eq!(
        s.apply(&event("d", deleted(u(2)), 10)).await.unwrap(),
        Outcome::Deleted
    );
    assert!(s.get_user("user_2").await.unwrap().is_none());
    assert!(s.is_tombstoned("user_2").await.unwrap());
    for (id, v) in [("late_new", 99), ("late_old", 1)] {
        assert_eq!(
            s.apply(&event(id, updated(u(v)), v)).await.unwrap(),
            Outcome::Tombstoned
        );
    }
    assert!(s.get_user("user_2").await.unwrap().is_none());
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_columns_and_usertag_survive_updates() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    s.apply(&event("c", created(user("user_3", "carol@x.io", 1)), 1))
        .await
        .unwrap();
    db.exec("UPDATE users SET bio = 'my bio', details = '{\"k\":1}' WHERE id = 'user_3'")
        .await
        .unwrap();
    // The email changes: the usertag does not.
    s.apply(&event("u", updated(user("user_3", "caroline@x.io", 2)), 2))
        .await
        .unwrap();
    let row = s.get_user("user_3").await.unwrap().unwrap();
    assert_eq!(row.email, "caroline@x.io");
    assert_eq!(row.usertag, "carol");
    assert_eq!(row.bio.as_deref(), Some("my bio"));
    assert_eq!(row.details, Some(serde_json::json!({"k": 1})));
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_usertag_collisions_stay_unique() {
    let db = fresh_database().await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let s = db.store.clone();
        tasks.push(tokio::spawn(async move {
            // Each worker creates 10 users whose emails share one local part, in
            // batches of 5, racing the others.
            for b in 0..2 {
                let events: Vec<Event> = (0..5)
                    .map(|i| {
                        let id = format!("user_w{w}_{b}_{i}");
                        event(
                            &format!("ev_{id}"),
                            created(user(&id, "John.Smith@corp.io", 1)),
                            1,
                        )
                    })
                    .collect();
                s.apply_batch(&events).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows = db.store.all_users().await.unwrap();
    assert_eq!(rows.len(), 40);
    let mut tags: Vec<_> = rows.iter().map(|r| r.usertag.clone()).collect();
    tags.sort();
    tags.dedup();
    assert_eq!(tags.len(), 40, "usertags collided");
    assert!(tags.iter().all(|t| t.starts_with("john_smith")));
    assert!(tags.contains(&"john_smith".to_string()));
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usertags_of_neighbouring_bases_never_collide() {
    // `tNq`'s second user is offered `tNq2`, which is also the base of `tNq2@…`: two
    // batches creating both at once must still hand out distinct tags, with no failed
    // batch (a unique violation would be retried, then dead-lettered).
    let db = fresh_database().await.unwrap();
    for wave in 0..24 {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let mut tasks = Vec::new();
        for (side, local) in [("a", format!("t{wave}q")), ("b", format!("t{wave}q2"))] {
            let s = db.store.clone();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                let events: Vec<Event> = (0..2)
                    .map(|i| {
                        let id = format!("user_{side}{wave}_{i}");
                        event(
                            &format!("ev_{id}"),
                            created(user(&id, &format!("{local}@x.io"), 1)),
                            1,
                        )
                    })
                    .collect();
                barrier.wait().await;
                s.apply_batch(&events).await
            }));
        }
        for t in tasks {
            let r = t.await.unwrap();
            assert!(r.is_ok(), "wave {wave}: {r:?}");
        }
    }
    let rows = db.store.all_users().await.unwrap();
    assert_eq!(rows.len(), 24 * 4);
    let mut tags: Vec<_> = rows.iter().map(|r| r.usertag.clone()).collect();
    tags.sort();
    tags.dedup();
    assert_eq!(tags.len(), 24 * 4, "usertags collided");
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usertags_skip_numbered_tags_in_use_after_the_base_was_freed() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    let created =
        |id: &str, email: &str| event(&format!("ev_{id}"), created(user(id, email, 1)), 1);
    s.apply(&created("user_a", "ada@x.io")).await.unwrap();
    s.apply(&created("user_b", "ada@y.io")).await.unwrap();
    // user_a leaves: "ada" is free again while "ada2" is still in use.
    s.apply(&event("del_a", deleted(user("user_a", "ada@x.io", 2)), 2))
        .await
        .unwrap();
    // Two new users with the same base in one batch: one gets the bare base, the other
    // must skip "ada2".
    let outcomes = s
        .apply_batch(&[created("user_c", "ada@z.io"), created("user_d", "Ada@w.io")])
        .await
        .unwrap();
    assert_eq!(outcomes, vec![Outcome::Created, Outcome::Created]);
    let mut tags = Vec::new();
    for id in ["user_b", "user_c", "user_d"] {
        tags.push(s.get_user(id).await.unwrap().unwrap().usertag);
    }
    assert_eq!(tags, ["ada2", "ada", "ada3"]);
    db.teardown().await.unwrap();
}

/// What the table must hold after any interleaving: for each user, nothing if any
/// delete was accepted, else the data of the newest `updated_at`.
fn model(history: &[Event]) -> HashMap<String, Option<i64>> {
    let mut m: HashMap<String, Option<i64>> = HashMap::new();
    let mut deleted: std::collections::HashSet<String> = Default::default();
    for ev in history {
        match &ev.kind {
            EventKind::Delete(Record::User(u)) => {
                deleted.insert(u.id.clone());
            }
            EventKind::Upsert(Record::User(u)) | EventKind::Snapshot(Record::User(u)) => {
                let v = (u.updated_at - t(0)).num_seconds();
                let e = m.entry(u.id.clone()).or_insert(None);
                if e.is_none_or(|cur| v > cur) {
                    *e = Some(v);
                }
            }
            _ => {}
        }
    }
    for id in deleted {
        m.insert(id, None);
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_histories_converge_to_the_model() {
    let db = fresh_database().await.unwrap();
    let seeds = std::env::var("PROPTEST_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40u64);
    for seed in 0..seeds {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut history = Vec::new();
        for u in 0..5 {
            let id = format!("s{seed}_user{u}");
            let versions = rng.random_range(1..8);
            for v in 1..=versions {
                let kind = if v == 1 {
                    created(user(&id, &format!("u{u}@x.io"), v))
                } else {
                    updated(user(&id, &format!("u{u}.v{v}@x.io"), v))
                };
                history.push(event(&format!("s{seed}_e{u}_{v}"), kind, v));
            }
            if rng.random_bool(0.3) {
                let at = rng.random_range(1..=versions);
                history.push(event(
                    &format!("s{seed}_d{u}"),
                    deleted(user(&id, "gone@x.io", at)),
                    versions + 1,
                ));
            }
        }
        let expected = model(&history);
        // Deliveries: every event once, ~30% twice, in random order, over 4 workers that
        // apply random-sized batches concurrently.
        let mut deliveries = history.clone();
        for ev in &history {
            if rng.random_bool(0.3) {
                deliveries.push(ev.clone());
            }
        }
        deliveries.shuffle(&mut rng);
        let mut chunks: Vec<Vec<Event>> = vec![Vec::new(); 4];
        for (i, ev) in deliveries.into_iter().enumerate() {
            chunks[i % 4].push(ev);
        }
        let mut tasks = Vec::new();
        for (w, chunk) in chunks.into_iter().enumerate() {
            let s = db.store.clone();
            let mut wrng = StdRng::seed_from_u64(seed * 100 + w as u64);
            tasks.push(tokio::spawn(async move {
                let mut rest = &chunk[..];
                while !rest.is_empty() {
                    let n = wrng.random_range(1..=rest.len().min(6));
                    s.apply_batch(&rest[..n]).await.unwrap();
                    rest = &rest[n..];
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        for (id, want) in expected {
            let row = db.store.get_user(&id).await.unwrap();
            let got = row
                .as_ref()
                .map(|r| (r.workos_updated_at.unwrap() - t(0)).num_seconds());
            assert_eq!(got, want, "seed {seed} user {id}");
            if let (Some(r), Some(v)) = (row, want) {
                let email = if v == 1 {
                    format!("{}@x.io", &id[id.len() - 5..])
                } else {
                    format!("{}.v{v}@x.io", &id[id.len() - 5..])
                };
                assert_eq!(r.email, email.replace("user", "u"), "seed {seed} user {id}");
                assert!(!db.store.is_tombstoned(&id).await.unwrap());
            } else {
                assert!(
                    db.store.is_tombstoned(&id).await.unwrap(),
                    "seed {seed} user {id} not tombstoned"
                );
            }
        }
    }
    db.teardown().await.unwrap();
}

#[derive(diesel::QueryableByName, Debug)]
struct ColumnInfo {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    data_type: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    is_nullable: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    udt_name: String,
}

/// `schema.rs` must describe exactly what the migrations create (what `diesel
/// print-schema` would print), so a migration without a schema update fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_rs_matches_the_migrations() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let db = fresh_database().await.unwrap();
    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    let cols: Vec<ColumnInfo> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, \
         udt_name::text \
         FROM information_schema.columns WHERE table_schema = 'public' \
         AND table_name <> '__diesel_schema_migrations' \
         AND table_name IN (SELECT table_name FROM information_schema.tables \
                            WHERE table_schema = 'public' AND table_type = 'BASE TABLE') \
         AND table_name NOT IN (SELECT relname FROM pg_class WHERE relispartition) \
         ORDER BY table_name, ordinal_position",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let from_db: Vec<String> = cols
        .iter()
        .map(|c| {
            let ty = match c.data_type.as_str() {
                "text" => "Text",
                "boolean" => "Bool",
                "jsonb" => "Jsonb",
                "timestamp with time zone" => "Timestamptz",
                "integer" => "Int4",
                "bigint" => "Int8",
                // Postgres array elements are always nullable (what print-schema says).
                "ARRAY" if c.udt_name == "_text" => "Array<Nullable<Text>>",
                other => panic!("unmapped type {other} ({})", c.udt_name),
            };
            let ty = if c.is_nullable == "YES" {
                format!("Nullable<{ty}>")
            } else {
                ty.to_string()
            };
            format!("{}.{} -> {ty}", c.table_name, c.column_name)
        })
        .collect();
    let schema = include_str!("../src/schema.rs");
    let mut from_schema = Vec::new();
    let mut table = String::new();
    let mut sql_name: Option<String> = None;
    for line in schema.lines().map(str::trim) {
        if let Some(rest) = line.strip_suffix('{').map(str::trim) {
            if let Some((name, _)) = rest.split_once(" (") {
                table = name.trim().to_string();
            }
        } else if let Some(name) = line.strip_prefix("#[sql_name = \"") {
            sql_name = Some(name.trim_end_matches("\"]").to_string());
        } else if let Some((col, ty)) = line.split_once(" -> ") {
            let col = sql_name.take().unwrap_or_else(|| col.to_string());
            from_schema.push(format!("{table}.{col} -> {}", ty.trim_end_matches(',')));
        }
    }
    let mut a = from_db.clone();
    let mut b = from_schema.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "schema.rs differs from the migrated database");
    db.teardown().await.unwrap();
}

/// Sign-ins move `last_sign_in_at` without a new `updated_at`: a snapshot from the API
/// refreshes it; a webhook with the same `updated_at` does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_refresh_last_sign_in_at() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    let mut u = user("user_si", "si@x.io", 3);
    u.last_sign_in_at = Some(t(10));
    assert_eq!(
        s.apply(&event("c", created(u.clone()), 3)).await.unwrap(),
        Outcome::Created
    );
    let mut later = u.clone();
    later.last_sign_in_at = Some(t(20));
    assert_eq!(
        s.apply(&event("w", updated(later.clone()), 3))
            .await
            .unwrap(),
        Outcome::Stale
    );
    assert_eq!(
        s.get_user("user_si")
            .await
            .unwrap()
            .unwrap()
            .last_sign_in_at,
        Some(t(10))
    );
    db.exec("UPDATE users SET bio = 'kept' WHERE id = 'user_si'")
        .await
        .unwrap();
    let snap = event("snap", snapshot(later), 3);
    assert_eq!(s.apply(&snap).await.unwrap(), Outcome::Refreshed);
    let row = s.get_user("user_si").await.unwrap().unwrap();
    assert_eq!(row.last_sign_in_at, Some(t(20)));
    assert_eq!(row.bio.as_deref(), Some("kept"));
    assert_eq!(row.workos_updated_at, Some(t(3)));
    assert_eq!(s.apply(&snap).await.unwrap(), Outcome::Stale);
    db.teardown().await.unwrap();
}
