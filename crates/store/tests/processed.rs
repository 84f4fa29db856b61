//! `processed_events` by day against a real Postgres: ids remembered in any partition
//! dedupe (an upgraded installation's old table included); concurrent deliveries of one
//! id recorded and applied once, with and without a record scope; prune dropping whole
//! days and the old table's rows; a partition dropped behind the store's back made again.
//! Each test in its own fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use chrono::{Duration, Utc};
use serde_json::json;
use workos_sync_core::Event;
use workos_sync_store::{Outcome, Store, processed::BEFORE};
use workos_sync_testkit::{TestDb, fresh_database, user_event};

fn user(id: &str, user: &str, ty: &str, v: i64) -> Event {
    let at = chrono::DateTime::from_timestamp(1_767_225_600 + v, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Event::decode(user_event(id, ty, user, &at).as_bytes()).unwrap()
}

/// A user event created (and last updated) at `at`, as WorkOS sends it.
fn user_at(id: &str, user: &str, ty: &str, at: chrono::DateTime<Utc>) -> Event {
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Event::decode(user_event(id, ty, user, &at).as_bytes()).unwrap()
}

/// An event of a type sync does not apply: recorded, no record, no scope.
fn unscoped(id: &str) -> Event {
    let body = json!({"id": id, "event": "vault.data.read", "data": {"directory_id": "x"},
                      "created_at": "2026-12-07T00:00:00.000Z"});
    Event::decode(body.to_string().as_bytes()).unwrap()
}

async fn count(db: &TestDb, sql: &str) -> usize {
    db.rows(sql).await.unwrap().len()
}

/// The test database without the partition the migration made of the old table (a
/// fresh install's is empty), so that every day is a partition of its own.
async fn days_only(db: &TestDb) {
    db.exec(&format!("DROP TABLE IF EXISTS {BEFORE}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_remembered_in_an_older_day_is_a_duplicate() {
    let db = fresh_database().await.unwrap();
    days_only(&db).await;
    let s = &db.store;
    let old = (Utc::now() - Duration::days(10)).date_naive();
    s.make_processed_partitions(&[old]).await.unwrap();
    db.exec(
        "INSERT INTO processed_events (event_id, event_type, outcome, processed_at) \
         VALUES ('evt_old', 'user.created', 'created', now() - interval '10 days')",
    )
    .await
    .unwrap();
    // A redelivery of the old event (created 10 days ago, as WorkOS made it: the lookup
    // reads the partitions from a day before the event's creation) changes nothing; a
    // new one is applied.
    let ten_days_ago = Utc::now() - Duration::days(10);
    let outcome = s
        .apply(&user_at("evt_old", "user_a", "user.created", ten_days_ago))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Duplicate);
    assert_eq!(count(&db, "SELECT 1 FROM users").await, 0);
    let outcome = s
        .apply(&user_at("evt_new", "user_a", "user.created", Utc::now()))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Created);
    // Recorded once, in today's partition.
    let today = format!("processed_events_p{}", Utc::now().format("%Y%m%d"));
    let rows = db
        .rows(
            "SELECT tableoid::regclass::text AS p FROM processed_events WHERE event_id = 'evt_new'",
        )
        .await
        .unwrap();
    assert_eq!(rows, vec![json!({"p": today})]);
    // Yesterday's, today's and tomorrow's partitions exist.
    let parts = s.processed_partitions().await.unwrap();
    for d in [-1, 0, 1] {
        let day = (Utc::now() + Duration::days(d))
            .format("%Y%m%d")
            .to_string();
        assert!(
            parts.contains(&format!("processed_events_p{day}")),
            "{day}: {parts:?}"
        );
    }
    db.teardown().await.unwrap();
}

/// An installation that upgrades keeps its remembered ids: the migration makes its table
/// the first partition, and those ids still dedupe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_keeps_the_remembered_ids() {
    let db = fresh_database().await.unwrap();
    let down = include_str!("../../../migrations/2026-12-10-000010_processed_by_day/down.sql");
    let statements = down
        .lines()
        .filter(|l| !l.starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for sql in statements.split(';').filter(|s| !s.trim().is_empty()) {
        db.exec(sql).await.unwrap();
    }
    db.exec("DELETE FROM __diesel_schema_migrations WHERE version = '20261210000010'")
        .await
        .unwrap();
    db.exec(
        "INSERT INTO processed_events (event_id, event_type, outcome, processed_at) \
         SELECT 'evt_' || g, 'user.created', 'created', now() - g * interval '1 hour' \
         FROM generate_series(1, 100) g",
    )
    .await
    .unwrap();
    let applied = workos_sync_store::migrate::run(&db.url).await.unwrap();
    assert_eq!(applied.len(), 1, "{applied:?}");
    let s = Store::new(&db.url, 2, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(s.processed_count().await.unwrap(), 100);
    assert_eq!(
        count(&db, &format!("SELECT 1 FROM {BEFORE}")).await,
        100,
        "the rows stay in the old table"
    );
    let outcome = s
        .apply(&user("evt_42", "user_a", "user.created", 1))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Duplicate);
    assert_eq!(count(&db, "SELECT 1 FROM users").await, 0);
    db.teardown().await.unwrap();
}

/// Two workers given the same deliveries at once: each id is recorded once and its
/// effect made once, for events locked by their record's scope and for events with no
/// scope (locked by their id).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_id_are_recorded_once() {
    let db = fresh_database().await.unwrap();
    days_only(&db).await;
    let a = Store::new(&db.url, 4, std::time::Duration::from_secs(5)).unwrap();
    let b = Store::new(&db.url, 4, std::time::Duration::from_secs(5)).unwrap();
    for round in 0..30 {
        let scoped = vec![user(
            &format!("evt_u{round}"),
            &format!("user_{round}"),
            "user.created",
            1,
        )];
        let bare = vec![unscoped(&format!("evt_a{round}"))];
        let (x, y, z, w) = tokio::join!(
            a.apply_batch(&scoped),
            b.apply_batch(&scoped),
            a.apply_batch(&bare),
            b.apply_batch(&bare)
        );
        let mut scoped_outcomes = vec![x.unwrap()[0], y.unwrap()[0]];
        scoped_outcomes.sort_by_key(|o| o.as_str());
        assert_eq!(
            scoped_outcomes,
            vec![Outcome::Created, Outcome::Duplicate],
            "round {round}"
        );
        let bare_outcomes = [z.unwrap()[0], w.unwrap()[0]];
        assert!(
            bare_outcomes.contains(&Outcome::Duplicate),
            "round {round}: {bare_outcomes:?}"
        );
    }
    let dupes = db
        .rows("SELECT event_id FROM processed_events GROUP BY event_id HAVING count(*) > 1")
        .await
        .unwrap();
    assert!(dupes.is_empty(), "recorded twice: {dupes:?}");
    assert_eq!(a.processed_count().await.unwrap(), 60);
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_drops_whole_days_and_the_old_tables_rows() {
    let db = fresh_database().await.unwrap();
    let s = &db.store;
    // The old table (the migration's partition) keeps rows of any age it covers.
    let upper = s.processed_partitions().await.unwrap();
    assert_eq!(upper, vec![BEFORE.to_owned()]);
    db.exec(
        "INSERT INTO processed_events (event_id, event_type, outcome, processed_at) \
         SELECT 'before_' || g, 'user.updated', 'updated', now() - interval '40 days' \
         FROM generate_series(1, 50) g",
    )
    .await
    .unwrap();
    s.apply(&user("evt_today", "user_a", "user.created", 1))
        .await
        .unwrap();
    db.exec("ANALYZE processed_events").await.unwrap();
    let p = s
        .prune_processed(Utc::now() - Duration::days(30), 7)
        .await
        .unwrap();
    // Deleted row by row while the old table's range reaches past the cutoff (a test
    // template made over 30 days ago has it dropped whole instead).
    assert_eq!(p.deleted + p.dropped_rows_estimate, 50, "{p:?}");
    assert_eq!(s.processed_count().await.unwrap(), 1);

    // With day partitions only: whole days older than the cutoff are dropped, the rest
    // kept (the day the cutoff falls in included).
    days_only(&db).await;
    db.exec("TRUNCATE processed_events").await.unwrap();
    let today = Utc::now().date_naive();
    let old: Vec<_> = (5..=8).map(|d| today - Duration::days(d)).collect();
    s.make_processed_partitions(&old).await.unwrap();
    db.exec(
        "INSERT INTO processed_events (event_id, event_type, outcome, processed_at) \
         SELECT 'old_' || d || '_' || g, 'user.updated', 'updated', now() - d * interval '1 day' \
         FROM generate_series(5, 8) d, generate_series(1, 25) g",
    )
    .await
    .unwrap();
    db.exec("ANALYZE processed_events").await.unwrap();
    let p = s
        .prune_processed(Utc::now() - Duration::days(6), 1000)
        .await
        .unwrap();
    // Days 7 and 8 ago end before the cutoff; day 6 ago ends after it.
    assert_eq!(p.deleted, 0);
    assert_eq!(p.dropped.len(), 2, "{p:?}");
    assert_eq!(p.dropped_rows_estimate, 50);
    assert_eq!(s.processed_count().await.unwrap(), 50);
    let left = s.processed_partitions().await.unwrap();
    for d in &old[..2] {
        assert!(left.contains(&format!("processed_events_p{}", d.format("%Y%m%d"))));
    }
    // The next batch still has its partitions (the store forgets what it knew after a
    // prune, and makes them again when missing).
    assert_eq!(
        s.apply(&user("evt_after", "user_b", "user.created", 1))
            .await
            .unwrap(),
        Outcome::Created
    );
    db.teardown().await.unwrap();
}

/// A partition dropped behind the store's back (by hand): the batch that meets it fails
/// once, retryable, and the next makes it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_dropped_by_hand_is_made_again() {
    let db = fresh_database().await.unwrap();
    days_only(&db).await;
    let s = &db.store;
    s.apply(&user("evt_1", "user_a", "user.created", 1))
        .await
        .unwrap();
    let today = format!("processed_events_p{}", Utc::now().format("%Y%m%d"));
    db.exec(&format!("DROP TABLE {today}")).await.unwrap();
    let err = s
        .apply(&user("evt_2", "user_a", "user.updated", 2))
        .await
        .unwrap_err();
    assert!(err.is_missing_partition(), "{err}");
    assert!(!err.is_permanent());
    assert_eq!(
        s.apply(&user("evt_2", "user_a", "user.updated", 2))
            .await
            .unwrap(),
        Outcome::Updated
    );
    db.teardown().await.unwrap();
}
