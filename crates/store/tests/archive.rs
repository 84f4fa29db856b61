//! The event archive against a real Postgres: events of the archived types kept once
//! each, in the same transaction as their effects, bodies without secrets; day
//! partitions made on demand (also for past days); retention dropping whole partitions;
//! a partition dropped by another process made again by the next batch. Each test in
//! its own fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use workos_sync_core::{Event, settings::TypeFilter};
use workos_sync_store::Store;
use workos_sync_testkit::{TestDb, fresh_database};

fn body(id: &str, ty: &str, at: DateTime<Utc>) -> Vec<u8> {
    let data = match ty.split('.').next() {
        Some("user") => json!({"object": "user", "id": format!("user_{id}"), "email": "a@b.c",
                               "created_at": at, "updated_at": at}),
        Some("invitation") => json!({"object": "invitation", "id": format!("invitation_{id}"),
                                     "email": "i@b.c", "state": "pending",
                                     "token": format!("SECRET-{id}"),
                                     "accept_invitation_url": format!("https://x/?token=SECRET-{id}"),
                                     "created_at": at, "updated_at": at}),
        _ => json!({"user_id": "user_1", "ip_address": "10.0.0.1",
                    "refresh_token": format!("SECRET-{id}")}),
    };
    json!({"id": id, "event": ty, "data": data, "created_at": at})
        .to_string()
        .into_bytes()
}

fn store(db: &TestDb, types: &[&str]) -> Store {
    let t: Vec<String> = types.iter().map(|s| (*s).to_owned()).collect();
    db.store.clone().with_archive(Some(TypeFilter::new(&t)))
}

async fn archive(s: &Store, bodies: &[Vec<u8>]) -> Result<(), workos_sync_store::StoreError> {
    let events: Vec<Event> = bodies.iter().map(|b| Event::decode(b).unwrap()).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    s.apply_batch_archived(&events, &refs).await.map(|_| ())
}

async fn count(db: &TestDb) -> usize {
    db.rows("SELECT 1 FROM event_archive").await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_archived_event_once_by_type_without_secrets() {
    let db = fresh_database().await.unwrap();
    let s = store(
        &db,
        &["authentication.*", "invitation.created", "user.created"],
    );
    let now = Utc::now();
    let mut bodies = Vec::new();
    for i in 0..60 {
        let ty = [
            "user.created",
            "user.updated",
            "invitation.created",
            "authentication.sso_succeeded",
            "session.created",
        ][i % 5];
        // Three days: today, and two past days (partitions made on demand).
        let at = now - Duration::days((i % 3) as i64) - Duration::seconds(i as i64);
        bodies.push(body(&format!("event_{i:03}"), ty, at));
    }
    for chunk in bodies.chunks(7) {
        archive(&s, chunk).await.unwrap();
    }
    // Everything again, in other batches: nothing more.
    for chunk in bodies.chunks(11).rev() {
        archive(&s, chunk).await.unwrap();
    }
    let rows = db
        .rows("SELECT event_type, body::text AS body FROM event_archive")
        .await
        .unwrap();
    // 12 of each of the three kept types, once each.
    assert_eq!(rows.len(), 36);
    for r in &rows {
        let ty = r["event_type"].as_str().unwrap();
        assert!(
            [
                "user.created",
                "invitation.created",
                "authentication.sso_succeeded"
            ]
            .contains(&ty),
            "{ty}"
        );
        let b = r["body"].as_str().unwrap();
        assert!(
            !b.contains("SECRET-") && !b.contains("accept_invitation_url"),
            "{b}"
        );
    }
    let parts = s.archive_partitions().await.unwrap();
    assert_eq!(parts.len(), 3, "{parts:?}");
    // The effects were applied too, in the same batches.
    assert!(
        !db.rows("SELECT 1 FROM invitations")
            .await
            .unwrap()
            .is_empty()
    );
    // An archive that is off writes nothing.
    db.exec("TRUNCATE event_archive").await.unwrap();
    let off = db.store.clone();
    let events: Vec<Event> = bodies.iter().map(|b| Event::decode(b).unwrap()).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    off.apply_batch_archived(&events, &refs).await.unwrap();
    assert_eq!(count(&db).await, 0);
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_whole_days_and_a_dropped_day_is_made_again() {
    let db = fresh_database().await.unwrap();
    let a = store(&db, &["*"]);
    let today = Utc::now();
    let days = [20, 10, 3, 0];
    for (n, d) in days.iter().enumerate() {
        let at = today - Duration::days(*d);
        let bodies: Vec<Vec<u8>> = (0..5)
            .map(|i| body(&format!("event_d{n}_{i}"), "session.created", at))
            .collect();
        archive(&a, &bodies).await.unwrap();
    }
    assert_eq!(count(&db).await, 20);
    assert_eq!(a.archive_partitions().await.unwrap().len(), 4);

    // Keep 7 days: the 20- and 10-day-old partitions go whole; the rest stays.
    let b = store(&db, &["*"]);
    let dropped = b.archive_prune(7, today.date_naive()).await.unwrap();
    assert_eq!(dropped.len(), 2, "{dropped:?}");
    assert_eq!(count(&db).await, 10);
    assert_eq!(
        b.archive_prune(7, today.date_naive()).await.unwrap().len(),
        0
    );

    // `a` still believes the 10-day-old partition exists: its insert fails once, and
    // the retry makes the partition again.
    let late = vec![body(
        "event_late",
        "session.created",
        today - Duration::days(10),
    )];
    assert!(archive(&a, &late).await.is_err());
    archive(&a, &late).await.unwrap();
    assert_eq!(count(&db).await, 11);
    assert_eq!(a.archive_partitions().await.unwrap().len(), 3);
    db.teardown().await.unwrap();
}
