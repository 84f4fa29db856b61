//! Operator commands against the real services.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::time::Duration;

use workos_sync_testkit::{
    ReceiverOptions, Stack, close_and_delete, connected_broker, eventually, fresh_database,
    publish_event, spawn_receiver, test_settings, unique_prefix,
};

fn run(prefix: &str, db_url: &str, extra: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut env = vec![("WORKOS_SYNC__AMQP__PREFIX", prefix)];
    env.extend_from_slice(extra);
    workos_sync_testkit::run_binary(env!("CARGO_BIN_EXE_workos-sync"), db_url, &env, args).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_depths_of_a_prepared_broker() {
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    let tiers = [("WORKOS_SYNC__AMQP__RETRY_DELAYS_SECS", "600,3600")];
    let settings = test_settings(&prefix, &tiers).unwrap();
    let broker = connected_broker(&settings.amqp, "t").await.unwrap();
    for i in 0..3 {
        publish_event(&broker, &format!("event_st{i}"), "user.updated", b"{}")
            .await
            .unwrap();
    }
    let retry = broker.topology().retry_queue(0).unwrap();
    let dead = broker.topology().dead_exchange();
    for (exchange, key, n) in [("", retry.as_str(), 2), (dead.as_str(), "", 1)] {
        for i in 0..n {
            broker
                .publish(
                    workos_sync_queue::Outgoing {
                        exchange,
                        routing_key: key,
                        body: b"{}",
                        properties: workos_sync_queue::event_properties(
                            &format!("e{i}"),
                            "user.updated",
                            workos_sync_core::now_ms() - 5_000,
                            false,
                        ),
                    },
                    Duration::from_secs(5),
                )
                .await
                .unwrap();
        }
    }
    db.store
        .set_cursor("events", Some("event_cursor_1"))
        .await
        .unwrap();
    // Directory Sync rows: one directory, two users, one of them deleted since.
    {
        use workos_sync_core::{Directory, DirectoryUser, Event, EventKind, Record};
        let at = chrono::Utc::now();
        let mut events = vec![Event::snapshot(Record::Directory(Directory::stub(
            "directory_st1",
            at,
        )))];
        for u in ["directory_user_st1", "directory_user_st2"] {
            events.push(Event::snapshot(Record::DirectoryUser(DirectoryUser::stub(
                u,
                "directory_st1",
                at,
            ))));
        }
        let gone = DirectoryUser::stub("directory_user_st2", "directory_st1", at);
        events.push(Event {
            id: "event_st_deleted".into(),
            event_type: "dsync.user.deleted".into(),
            created_at: at + chrono::Duration::seconds(1),
            kind: EventKind::Delete(Record::DirectoryUser(gone)),
        });
        for e in &events {
            db.store.apply(e).await.unwrap();
        }
    }

    let (code, out, err) = run(&prefix, &db.url, &tiers, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let depth = |q: &str| {
        v["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["queue"] == q)
            .map(|x| {
                (
                    x["messages"].as_u64().unwrap(),
                    x["consumers"].as_u64().unwrap(),
                    x["oldest_age_secs"].as_i64(),
                )
            })
    };
    assert_eq!(
        depth(&format!("{prefix}.events")).map(|d| (d.0, d.1)),
        Some((3, 0))
    );
    assert_eq!(depth(&format!("{prefix}.retry.10m")).map(|d| d.0), Some(2));
    assert_eq!(depth(&format!("{prefix}.retry.1h")).map(|d| d.0), Some(0));
    let (n, _, age) = depth(&format!("{prefix}.dead")).unwrap();
    assert_eq!(n, 1);
    assert!(age.unwrap() >= 4, "oldest DLQ age {age:?}");
    assert_eq!(v["cursors"][0]["cursor"], "event_cursor_1");
    let rows = |entity: &str| {
        v["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["entity"] == entity)
            .map(|t| (t["rows"].as_i64().unwrap(), t["enabled"].as_bool().unwrap()))
    };
    assert_eq!(rows("directories"), Some((1, true)));
    assert_eq!(rows("directory_users"), Some((1, true)));
    assert_eq!(rows("directory_groups"), Some((0, true)));
    assert_eq!(rows("directory_group_memberships"), Some((0, true)));
    let (code, out, err) = run(
        &prefix,
        &db.url,
        &[],
        &[
            "tombstones",
            "list",
            "--entity",
            "directory_users",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let t: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(t.as_array().unwrap().len(), 1, "{t}");
    assert_eq!(t[0]["id"], "directory_user_st2");
    assert_eq!(t[0]["entity"], "directory_users");
    // Reading ages left every message in place.
    let (_, out, _) = run(&prefix, &db.url, &tiers, &["status"]);
    assert!(out.contains(&format!("{prefix}.dead")), "{out}");
    assert_eq!(
        workos_sync_testkit::queue_len(&format!("{prefix}.dead"))
            .await
            .unwrap(),
        1
    );
    close_and_delete(broker).await.unwrap();
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_only_older_ids_and_guards_the_retry_window() {
    let db = fresh_database().await.unwrap();
    // Each row's day has a partition (the old table's, or one of its own when the test
    // template is older than the row); a day's ids go when the whole day is older than
    // the cutoff, so each cutoff below is a day clear of the rows it keeps and removes.
    let today = chrono::Utc::now().date_naive();
    let days: Vec<_> = [40, 10, 2]
        .iter()
        .map(|d| today - chrono::Duration::days(*d))
        .collect();
    db.store.make_processed_partitions(&days).await.unwrap();
    db.exec(
        "INSERT INTO processed_events (event_id, event_type, outcome, processed_at) \
         SELECT 'old_' || g, 'user.updated', 'updated', now() - interval '40 days' FROM generate_series(1, 25000) g \
         UNION ALL SELECT 'mid_' || g, 'user.updated', 'updated', now() - interval '10 days' FROM generate_series(1, 3) g \
         UNION ALL SELECT 'new_' || g, 'user.updated', 'updated', now() - interval '2 days' FROM generate_series(1, 2) g",
    )
    .await
    .unwrap();
    db.exec("ANALYZE processed_events").await.unwrap();
    let prefix = unique_prefix();
    let (code, out, err) = run(
        &prefix,
        &db.url,
        &[],
        &["prune", "--older-than", "30d", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["deleted"].as_u64().unwrap() + v["dropped_rows_estimate"].as_u64().unwrap(),
        25000,
        "{v}"
    );
    assert_eq!(db.store.processed_count().await.unwrap(), 5);

    let (code, _, err) = run(&prefix, &db.url, &[], &["prune", "--older-than", "2d"]);
    assert_eq!(code, 1);
    assert!(err.contains("3 days"), "{err}");
    assert_eq!(db.store.processed_count().await.unwrap(), 5);
    let (code, out, _) = run(&prefix, &db.url, &[], &["prune", "--older-than", "5d"]);
    assert_eq!(code, 0);
    assert!(out.contains("processed-event id(s) older than 5d"), "{out}");
    assert_eq!(db.store.processed_count().await.unwrap(), 2);
    let (code, out, _) = run(
        &prefix,
        &db.url,
        &[],
        &["prune", "--older-than", "1h", "--force-short-window"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(db.store.processed_count().await.unwrap(), 0);
    let (code, _, err) = run(&prefix, &db.url, &[], &["prune", "--older-than", "soon"]);
    assert_eq!(code, 1);
    assert!(err.contains("not a duration"), "{err}");
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_test_event_leads_to_a_row() {
    let stack = Stack::start(&[]).await.unwrap();
    let (db, r, prefix) = (&stack.db, &stack.receiver, &stack.prefix);
    let (code, out, err) = run(
        prefix,
        &db.url,
        &[],
        &["send-test-event", "--url", &r.url, "--user-id", "user_ste1"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("200"), "{out}");
    let store = db.store.clone();
    assert!(
        eventually(Duration::from_secs(20), || async {
            store.get_user("user_ste1").await.unwrap().is_some()
        })
        .await
    );
    // A wrong secret is refused by the receiver, and the command says so.
    let (code, _, err) = run(
        prefix,
        &db.url,
        &[("WORKOS_WEBHOOK_SECRET", "wrong")],
        &["send-test-event", "--url", &r.url],
    );
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    stack.teardown().await.unwrap();
}

/// `probe`, what the compose healthchecks run: 0 on a 2xx answer, 1 with one line
/// otherwise (another status, nothing listening).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_answers_like_a_healthcheck() {
    let prefix = unique_prefix();
    let r = spawn_receiver(ReceiverOptions {
        prefix: Some(prefix.to_string()),
        ..Default::default()
    })
    .await
    .unwrap();
    let base = r.base_url();
    let db = "postgres://unused@127.0.0.1:1/none";
    let (code, out, err) = run(&prefix, db, &[], &["probe", &format!("{base}/readyz")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("200"), "{out}");
    let (code, _, err) = run(
        &prefix,
        db,
        &[],
        &["probe", &format!("{base}/nothing-here")],
    );
    assert_eq!(code, 1);
    assert!(
        err.trim().lines().count() == 1 && err.contains("404"),
        "{err}"
    );
    // A port nothing listens on (taken and released).
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, _, err) = run(
        &prefix,
        db,
        &[],
        &[
            "probe",
            "--timeout-ms",
            "500",
            &format!("http://{free}/readyz"),
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("no answer"), "{err}");
    r.teardown().await.unwrap();
}

/// `migrate` with the archive on makes its table and the days around today; `archive
/// list` shows them; `archive prune` drops whole days older than the retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_migrate_list_and_prune() {
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    let on = [("WORKOS_SYNC__ARCHIVE__ENABLED", "true")];
    let (code, out, err) = run(&prefix, &db.url, &on, &["migrate"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("event archive ready"), "{out}");
    let today = chrono::Utc::now().date_naive();
    db.store
        .make_partitions(&[today - chrono::Duration::days(100)])
        .await
        .unwrap();
    let (code, out, err) = run(&prefix, &db.url, &[], &["archive", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["partitions"].as_array().unwrap().len(), 5, "{v}");
    let (code, out, err) = run(&prefix, &db.url, &[], &["archive", "prune", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let old = format!(
        "event_archive_p{}",
        (today - chrono::Duration::days(100)).format("%Y%m%d")
    );
    assert_eq!(v["dropped"], serde_json::json!([old]), "{v}");
    assert_eq!(v["kept_days"], 90);
    let (_, out, _) = run(
        &prefix,
        &db.url,
        &[],
        &["archive", "prune", "--keep-days", "0"],
    );
    assert!(out.contains("dropped 1 partition"), "yesterday's: {out}");
    db.teardown().await.unwrap();
}
