//! The `workos-sync` binary against the real services.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::{
    io::Write,
    process::{Command, Stdio},
};

use workos_sync_testkit::{
    amqp_url, close_and_delete, delete_topology, fresh_database, publish_event, queue_len,
    test_broker, unique_prefix,
};

fn cli(prefix: &str, db_url: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_workos-sync"))
        .args(args)
        .env("AMQP_URL", amqp_url())
        .env("DATABASE_URL", db_url)
        .env("WORKOS_SYNC__AMQP__PREFIX", prefix)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_and_dlq_commands() {
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    // Already migrated by the testkit: nothing to do, exit 0.
    let (code, out, err) = cli(&prefix, &db.url, &["migrate"], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("up to date"), "{out}");

    // A message dead-lettered by hand, with the worker's headers.
    let broker = test_broker(&prefix).await.unwrap();
    let exchange = broker.topology().dead_exchange();
    let props = workos_sync_queue::dlq::republish_properties(
        &workos_sync_queue::event_properties("event_dead1", "user.updated", 1, false),
        &[
            ("x-dlq-reason", workos_sync_queue::dlq::text("undecodable")),
            (
                "x-dlq-error",
                workos_sync_queue::dlq::text("body is not valid JSON"),
            ),
        ],
    );
    broker
        .publish(
            workos_sync_queue::Outgoing {
                exchange: &exchange,
                routing_key: "",
                body: b"{oops",
                properties: props,
            },
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
    let dead_q = broker.topology().dead_queue();

    let (code, out, _) = cli(&prefix, &db.url, &["dlq", "list"], "");
    assert_eq!(code, 0);
    assert!(
        out.contains("event_dead1") && out.contains("undecodable") && out.contains("1 message(s)"),
        "{out}"
    );
    let (code, out, _) = cli(&prefix, &db.url, &["dlq", "list", "--json"], "");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["id"], "event_dead1");
    let (code, out, _) = cli(&prefix, &db.url, &["dlq", "show", "event_dead1"], "");
    assert_eq!(code, 0);
    assert!(out.contains("{oops"), "{out}");
    let (code, _, err) = cli(&prefix, &db.url, &["dlq", "show", "nope"], "");
    assert_eq!(code, 1);
    assert!(err.starts_with("workos-sync: no message nope"), "{err}");
    assert_eq!(
        queue_len(&dead_q).await.unwrap(),
        1,
        "list/show must not consume"
    );

    // Purge asks first.
    let (code, _, err) = cli(&prefix, &db.url, &["dlq", "purge"], "no\n");
    assert_eq!(code, 1);
    assert!(err.contains("cancelled"), "{err}");
    assert_eq!(queue_len(&dead_q).await.unwrap(), 1);

    // Replay sends it back to the events queue.
    let (code, out, _) = cli(&prefix, &db.url, &["dlq", "replay", "--all"], "");
    assert_eq!(code, 0);
    assert!(out.contains("replayed 1"), "{out}");
    assert_eq!(queue_len(&dead_q).await.unwrap(), 0);
    assert_eq!(
        queue_len(&broker.topology().events_queue()).await.unwrap(),
        1
    );
    let msgs = workos_sync_testkit::drain(&broker.topology().events_queue())
        .await
        .unwrap();
    let h = msgs[0].delivery.properties.headers().as_ref().unwrap();
    assert!(
        h.inner().get("x-dlq-reason").is_none(),
        "replay must reset the dead-letter headers"
    );

    publish_event(&broker, "event_dead2", "user.updated", b"x")
        .await
        .unwrap();
    let _ = workos_sync_testkit::drain(&broker.topology().events_queue())
        .await
        .unwrap();
    let (code, out, _) = cli(&prefix, &db.url, &["dlq", "purge", "--yes"], "");
    assert_eq!(code, 0, "{out}");

    // Bad configuration: one line, non-zero.
    let (code, _, err) = cli(
        &prefix,
        "postgres://postgres@127.0.0.1:1/none",
        &["migrate"],
        "",
    );
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");

    close_and_delete(broker).await.unwrap();
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_user_backfill_and_reconcile_commands() {
    use wiremock::{
        Mock, MockServer, ResponseTemplate,
        matchers::{method, path},
    };
    let workos = MockServer::start().await;
    let user = serde_json::json!({
        "object": "user", "id": "user_cli1", "email": "cli@example.com", "email_verified": true,
        "first_name": "Cli", "last_name": null, "profile_picture_url": null,
        "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-02T00:00:00.000Z"
    });
    Mock::given(method("GET"))
        .and(path("/user_management/users/user_cli1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(user.clone()))
        .mount(&workos)
        .await;
    Mock::given(method("GET"))
        .and(path("/user_management/users/user_gone"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(serde_json::json!({"code": "entity_not_found", "message": "no"})),
        )
        .mount(&workos)
        .await;
    Mock::given(method("GET"))
        .and(path("/user_management/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"data": [user], "list_metadata": {"before": null, "after": null}}),
        ))
        .mount(&workos)
        .await;
    let event = serde_json::json!({"object": "event", "id": "event_cli1", "event": "user.updated", "data": {
        "object": "user", "id": "user_cli1", "email": "cli2@example.com", "email_verified": true,
        "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-03T00:00:00.000Z"}, "created_at": "2026-01-03T00:00:00.000Z"});
    Mock::given(method("GET"))
        .and(path("/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"data": [event], "list_metadata": {"after": "event_cli1"}}),
        ))
        .mount(&workos)
        .await;

    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_workos-sync"))
            .args(args)
            .env("AMQP_URL", amqp_url())
            .env("DATABASE_URL", &db.url)
            .env("WORKOS_SYNC__AMQP__PREFIX", &prefix)
            .env("WORKOS_API_KEY", "sk_test_cli")
            .env("WORKOS_API_BASE_URL", workos.uri())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["sync-user", "user_cli1"]);
    assert_eq!(code, 0, "{err}");
    let row: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(row["usertag"], "cli");
    let (code, _, err) = run(&["sync-user", "user_gone"]);
    assert_eq!(code, 1);
    assert!(err.contains("no user user_gone"), "{err}");
    let (code, out, err) = run(&["backfill", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 users in 1 pages: would create 0"), "{out}");
    let (code, out, err) = run(&["reconcile", "--json"]);
    assert_eq!(code, 0, "{err}");
    let rep: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rep["events"], 1);
    assert_eq!(rep["cursor"], "event_cli1");
    let topology = workos_sync_testkit::test_topology(&prefix).unwrap();
    assert_eq!(queue_len(&topology.events_queue()).await.unwrap(), 1);
    // Without an API key the commands refuse with one line.
    let out = Command::new(env!("CARGO_BIN_EXE_workos-sync"))
        .args(["backfill"])
        .env("DATABASE_URL", &db.url)
        .env_remove("WORKOS_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WORKOS_API_KEY"));
    delete_topology(&topology).await.unwrap();
    db.teardown().await.unwrap();
}
