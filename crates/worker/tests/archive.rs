//! The event archive end to end: mixed events (mirrored and audit-only types, over three
//! days, secrets in their bodies) signed and posted to the receiver twice, the second
//! time in another order, leave exactly one archive row per event, none holding a
//! secret; the worker makes tomorrow's partition ahead; then retention drops whole days. `ARCHIVE_EVENTS` sets how many (default
//! 3,000; the run is `ARCHIVE_EVENTS=200000`). Real receiver, RabbitMQ, worker
//! and Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use futures_util::{StreamExt, stream};
use serde_json::json;
use workos_sync_testkit::{Stack, eventually, queue_len, sign_now};

fn events(n: usize) -> Vec<String> {
    // Noon (UTC) of today and the two days before, less a millisecond per event: three
    // days whatever the time of the run.
    let noon = Utc::now()
        .date_naive()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    (0..n)
        .map(|i| {
            let at = noon
                - chrono::Duration::days((i % 3) as i64)
                - chrono::Duration::milliseconds(i as i64);
            let id = format!("event_ar{i:07}");
            let (ty, data) = match i % 5 {
                0 => ("user.created", json!({"object": "user", "id": format!("user_ar{}", i % 500),
                       "email": format!("u{i}@example.com"), "created_at": at, "updated_at": at})),
                1 => ("invitation.created", json!({"object": "invitation",
                       "id": format!("invitation_ar{i}"), "email": "i@example.com", "state": "pending",
                       "token": format!("SECRET-TOKEN-{i}"),
                       "accept_invitation_url": format!("https://app.example/accept?token=SECRET-TOKEN-{i}"),
                       "created_at": at, "updated_at": at})),
                2 => ("authentication.email_verification_succeeded",
                      json!({"type": "email_verification", "status": "succeeded",
                             "user_id": "user_ar1", "email": "u@example.com"})),
                3 => ("session.created", json!({"object": "session", "id": format!("session_ar{i}"),
                       "user_id": "user_ar1", "access_token": format!("SECRET-ACCESS-{i}")})),
                _ => ("organization.created", json!({"object": "organization",
                       "id": format!("org_ar{}", i % 50), "name": "Org", "domains": [
                           {"object": "organization_domain", "id": format!("org_domain_ar{i}"),
                            "domain": "ar.example", "verification_token": format!("SECRET-VT-{i}")}],
                       "created_at": at, "updated_at": at})),
            };
            json!({"id": id, "event": ty, "data": data, "created_at": at}).to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_archived_exactly_once_through_the_receiver() {
    let n: usize = std::env::var("ARCHIVE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let stack = Stack::start(&[
        ("WORKOS_SYNC__ARCHIVE__ENABLED", "true"),
        ("WORKOS_SYNC__ARCHIVE__TYPES", "*"),
    ])
    .await
    .unwrap();
    let (db, r) = (&stack.db, &stack.receiver);
    let bodies = Arc::new(events(n));
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    // Twice: in order, then backwards (a redelivery and a replay of each).
    let order: Vec<usize> = (0..n).chain((0..n).rev()).collect();
    let failed = stream::iter(order)
        .map(|i| {
            let (c, url, bodies) = (client.clone(), r.url.clone(), bodies.clone());
            async move {
                let b = &bodies[i];
                let resp = c
                    .post(&url)
                    .header("WorkOS-Signature", sign_now(b.as_bytes()))
                    .body(b.clone())
                    .send()
                    .await;
                resp.map(|r| r.status().as_u16()).unwrap_or(0) != 200
            }
        })
        .buffer_unordered(32)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    assert_eq!(failed, 0, "every post answered 200");
    let posted = started.elapsed();
    let rows = || async {
        db.rows("SELECT count(*) AS n FROM event_archive")
            .await
            .map(|r| r[0]["n"].as_i64().unwrap_or(0) as usize)
            .unwrap_or(0)
    };
    let events_queue = format!("{}.events", stack.prefix);
    let deadline = Duration::from_secs(60 + n as u64 / 200);
    assert!(
        eventually(deadline, || async {
            rows().await == n && queue_len(&events_queue).await.unwrap_or(1) == 0
        })
        .await,
        "archive rows {} of {n}",
        rows().await
    );
    // Every delivery was taken: the count stays exact.
    assert!(
        eventually(Duration::from_secs(10), || async {
            db.store.processed_count().await.unwrap() as usize == n
        })
        .await
    );
    assert_eq!(rows().await, n, "exactly once each");
    let metrics = client
        .get(format!("http://{}/metrics", stack.worker.http_addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let kept = metrics
        .lines()
        .find(|l| l.starts_with("workos_sync_archive_events_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(kept, Some(n as f64), "the metric counts new rows only");
    eprintln!(
        "archive: {n} events posted twice in {:.1} s, {} rows after {:.1} s",
        posted.as_secs_f64(),
        rows().await,
        started.elapsed().as_secs_f64()
    );
    let leaked = db
        .rows("SELECT 1 FROM event_archive WHERE body::text ~ '(SECRET-|accept_invitation_url)'")
        .await
        .unwrap();
    assert!(
        leaked.is_empty(),
        "{} archived bodies hold a secret",
        leaked.len()
    );
    let per_type = db
        .rows("SELECT event_type, count(*) AS n FROM event_archive GROUP BY 1")
        .await
        .unwrap();
    assert_eq!(
        per_type.len(),
        5,
        "audit-only types are archived too: {per_type:?}"
    );

    // Retention keeping one day drops the oldest day's partition whole.
    // The three days of the events, and tomorrow's, made ahead by the worker.
    let parts = db.store.archive_partitions().await.unwrap();
    let tomorrow = Utc::now().date_naive() + chrono::Duration::days(1);
    assert_eq!(parts.len(), 4, "{parts:?}");
    assert_eq!(
        parts.last().map(String::as_str),
        Some(format!("event_archive_p{}", tomorrow.format("%Y%m%d")).as_str())
    );
    let dropped = db
        .store
        .archive_prune(1, Utc::now().date_naive())
        .await
        .unwrap();
    assert_eq!(dropped, vec![parts[0].clone()]);
    let left = rows().await;
    assert!(left < n && left >= n * 2 / 3 - 1, "{left} of {n} left");
    stack.teardown().await.unwrap();
}
