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
    // A dry run of an up-to-date schema says so, with no statement (not even the
    // schema's CREATE).
    let (code, out, err) = cli(&prefix, &db.url, &["migrate", "--dry-run"], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("nothing would change"), "{out}");
    assert!(!out.contains("CREATE"), "{out}");

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
    // Its memberships, every status asked for (WorkOS lists only active ones otherwise).
    Mock::given(method("GET"))
        .and(path("/user_management/organization_memberships"))
        .and(wiremock::matchers::query_param("user_id", "user_cli1"))
        .and(wiremock::matchers::query_param("statuses", "active,inactive,pending"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "data": [{"object": "organization_membership", "id": "om_cli1", "user_id": "user_cli1",
                      "organization_id": "org_cli1", "status": "inactive", "role": {"slug": "member"},
                      "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-02T00:00:00.000Z"}],
            "list_metadata": {"before": null, "after": null}})))
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
    // The user's memberships come with it, inactive ones included.
    assert_eq!(row["memberships"][0]["id"], "om_cli1", "{out}");
    assert_eq!(row["memberships"][0]["status"], "inactive");
    let (code, _, err) = run(&["sync-user", "user_gone"]);
    assert_eq!(code, 1);
    assert!(err.contains("no user user_gone"), "{err}");
    let (code, out, err) = run(&["backfill", "--dry-run", "--only", "users"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 users: would create 0"), "{out}");
    assert!(out.contains("1 pages read"), "{out}");
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

/// Puts a message in the DLQ as the worker does (reason header, event id as message id).
async fn dead_letter(broker: &workos_sync_queue::Broker, id: &str) {
    let exchange = broker.topology().dead_exchange();
    let props = workos_sync_queue::dlq::republish_properties(
        &workos_sync_queue::event_properties(id, "user.updated", 1, false),
        &[(
            "x-dlq-reason",
            workos_sync_queue::dlq::text("retries_exhausted"),
        )],
    );
    broker
        .publish(
            workos_sync_queue::Outgoing {
                exchange: &exchange,
                routing_key: "",
                body: format!("{{\"id\":\"{id}\"}}").as_bytes(),
                properties: props,
            },
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
}

/// Takes the head of `queue` without acking and hands it back by closing the channel:
/// how the DLQ tools used to read it.
async fn get_and_return(queue: &str) {
    let conn = workos_sync_testkit::connect().await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let got = ch
        .basic_get(queue.into(), lapin::options::BasicGetOptions::default())
        .await
        .unwrap();
    assert!(got.is_some());
    ch.close(200, "returned".into()).await.unwrap();
    conn.close(200, "bye".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_inspection_any_number_of_times_loses_nothing() {
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    let broker = test_broker(&prefix).await.unwrap();
    let dead_q = broker.topology().dead_queue();
    // RabbitMQ 4.x gives every quorum queue a delivery limit (20); give this DLQ one of
    // 2, so that any inspection that hands messages back would drop them within three.
    let _policy = workos_sync_testkit::QueuePolicy::set(
        &format!("{prefix}-dlq-limit"),
        &format!("^{}$", dead_q.replace('.', "\\.")),
        r#"{"delivery-limit": 2}"#,
    )
    .unwrap();
    for id in ["event_k1", "event_k2", "event_k3"] {
        dead_letter(&broker, id).await;
    }
    for _ in 0..8 {
        let (code, out, err) = cli(&prefix, &db.url, &["dlq", "list"], "");
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("3 message(s)"), "{out}");
    }
    for _ in 0..3 {
        let (code, out, err) = cli(&prefix, &db.url, &["dlq", "show", "event_k2"], "");
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("retries_exhausted"), "{out}");
        let (code, _, err) = cli(&prefix, &db.url, &["status"], "");
        assert_eq!(code, 0, "{err}");
    }
    // Replaying one leaves the others, in their order, with their headers.
    let (code, out, err) = cli(&prefix, &db.url, &["dlq", "replay", "event_k3"], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replayed 1"), "{out}");
    // An id that is not there fails, by name (a typo, or replayed already).
    let (code, out, err) = cli(
        &prefix,
        &db.url,
        &["dlq", "replay", "event_k3", "event_nope"],
        "",
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("replayed 0"), "{out}");
    assert!(
        err.contains("not in the DLQ: event_k3, event_nope"),
        "{err}"
    );
    let (_, out, _) = cli(&prefix, &db.url, &["dlq", "list", "--json"], "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["event_k1", "event_k2"]);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|m| m["reason"] == "retries_exhausted")
    );
    // The limit is real: reading the old way (get, hand back) drops a message by the
    // third return.
    for _ in 0..3 {
        get_and_return(&dead_q).await;
    }
    assert_eq!(
        queue_len(&dead_q).await.unwrap(),
        1,
        "the policy did not bite"
    );
    close_and_delete(broker).await.unwrap();
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_replay_all_stops_after_what_it_started_with() {
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    let broker = test_broker(&prefix).await.unwrap();
    let t = broker.topology().clone();
    for id in ["event_r1", "event_r2"] {
        dead_letter(&broker, id).await;
    }
    // Every replayed message dies again at once: the events exchange also routes to
    // the DLQ.
    let conn = workos_sync_testkit::connect().await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.queue_bind(
        t.dead_queue().as_str().into(),
        t.events_exchange().as_str().into(),
        "#".into(),
        lapin::options::QueueBindOptions::default(),
        lapin::types::FieldTable::default(),
    )
    .await
    .unwrap();
    let prefix2 = prefix.to_string();
    let url = db.url.clone();
    let run =
        tokio::task::spawn_blocking(move || cli(&prefix2, &url, &["dlq", "replay", "--all"], ""));
    let (code, out, err) = tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .expect("replay --all did not stop")
        .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replayed 2 message(s)"), "{out}");
    assert_eq!(queue_len(&t.dead_queue()).await.unwrap(), 2);
    assert_eq!(queue_len(&t.events_queue()).await.unwrap(), 2);
    conn.close(200, "bye".into()).await.unwrap();
    close_and_delete(broker).await.unwrap();
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_list_and_remove() {
    use workos_sync_core::{Event, event::sample_user_event};
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    let ev = |id: &str, ty: &str, at: &str| {
        Event::decode(sample_user_event(id, ty, "user_tb1", "2026-01-01T00:00:00Z", at).as_bytes())
            .unwrap()
    };
    db.store
        .apply(&ev("event_tb1", "user.created", "2026-01-02T00:00:00Z"))
        .await
        .unwrap();
    db.store
        .apply(&ev("event_tb2", "user.deleted", "2026-01-03T00:00:00Z"))
        .await
        .unwrap();
    let (code, out, err) = cli(&prefix, &db.url, &["tombstones", "list"], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("user_tb1") && out.contains("event_tb2") && out.contains("1 tombstone(s)"),
        "{out}"
    );
    let (code, out, _) = cli(&prefix, &db.url, &["tombstones", "list", "--json"], "");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["id"], "user_tb1");
    assert_eq!(v[0]["entity"], "users");
    // A newer event cannot bring the user back while the tombstone stands.
    db.store
        .apply(&ev("event_tb3", "user.updated", "2026-01-04T00:00:00Z"))
        .await
        .unwrap();
    assert!(db.store.get_user("user_tb1").await.unwrap().is_none());
    let (code, out, err) = cli(&prefix, &db.url, &["tombstones", "remove", "user_tb1"], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("removed the tombstone of users user_tb1"),
        "{out}"
    );
    assert!(!db.store.is_tombstoned("user_tb1").await.unwrap());
    let (code, _, err) = cli(&prefix, &db.url, &["tombstones", "remove", "user_tb1"], "");
    assert_eq!(code, 1);
    assert!(err.contains("no tombstone for users user_tb1"), "{err}");
    let (code, _, err) = cli(&prefix, &db.url, &["tombstones", "remove", "../x"], "");
    assert_eq!(code, 1, "{err}");
    // The next event brings the user back.
    db.store
        .apply(&ev("event_tb4", "user.updated", "2026-01-05T00:00:00Z"))
        .await
        .unwrap();
    assert!(db.store.get_user("user_tb1").await.unwrap().is_some());
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_pipe_carry_no_colour_codes() {
    let prefix = unique_prefix();
    // An unreachable broker makes the supervisor warn (to stderr, a pipe here).
    let out = Command::new(env!("CARGO_BIN_EXE_workos-sync"))
        .args(["status"])
        .env("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .env("WORKOS_SYNC__AMQP__PREFIX", &prefix)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broker connect failed"), "{err}");
    assert!(!err.contains('\u{1b}'), "colour codes in a pipe: {err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_prints_the_declared_topology_and_the_metric_names() {
    let prefix = unique_prefix();
    let out = Command::new(env!("CARGO_BIN_EXE_workos-sync"))
        .args(["debug", "topology"])
        .env("WORKOS_SYNC__AMQP__PREFIX", &prefix)
        .env("WORKOS_SYNC__AMQP__DELIVERY_LIMIT", "7")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = &v["queues"][format!("{prefix}.events")];
    assert_eq!(events["x-delivery-limit"], 7);
    assert_eq!(events["x-dead-letter-exchange"], format!("{prefix}.dead"));
    assert_eq!(v["exchanges"][format!("{prefix}.events")], "topic");
    let out = Command::new(env!("CARGO_BIN_EXE_workos-sync"))
        .args(["debug", "metrics"])
        .output()
        .unwrap();
    let names: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(names.contains(&"workos_sync_webhooks_total".to_owned()));
}

/// `event-types`: the enabled entities' types (what to subscribe the endpoint to), from
/// the declarations; narrowed by `sync.entities`; `--all` lists every entity's.
#[test]
fn event_types_are_those_of_the_enabled_entities() {
    let types = |env: &[(&str, &str)], args: &[&str]| -> Vec<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_workos-sync"))
            .args(["event-types", "--json"])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let all_enabled = types(&[], &[]);
    for t in [
        "user.created",
        "organization_membership.deleted",
        "dsync.group.user_added",
        "invitation.accepted",
        "connection.deactivated",
        "group.member_removed",
        "api_key.revoked",
    ] {
        assert!(all_enabled.iter().any(|x| x == t), "{t}: {all_enabled:?}");
    }
    let users = types(&[("WORKOS_SYNC__SYNC__ENTITIES", "users")], &[]);
    assert_eq!(users, vec!["user.created", "user.updated", "user.deleted"]);
    let all = types(&[("WORKOS_SYNC__SYNC__ENTITIES", "users")], &["--all"]);
    assert_eq!(all, all_enabled);
    // The emulator's connection.created|updated are applied, never subscribed to (the
    // API reference's endpoint events are a closed list without them).
    assert!(
        !all.iter()
            .any(|t| t == "connection.created" || t == "connection.updated")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_errors_are_one_line_and_config_show_redacts() {
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    // A fresh database: migrate names the columns it added, not its SQL.
    let fresh = workos_sync_testkit::empty_database().await.unwrap();
    let (code, out, err) = cli(&prefix, &fresh.url, &["migrate"], "");
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("ALTER TABLE"), "{out}");
    assert!(out.contains("added users columns: raw"), "{out}");
    fresh.teardown().await.unwrap();
    // config show: every setting, secrets redacted.
    let secret_url = db
        .url
        .replacen("postgres://postgres@", "postgres://postgres:hunter2@", 1);
    let mut child = Command::new(env!("CARGO_BIN_EXE_workos-sync"))
        .args(["config", "show"])
        .env("DATABASE_URL", &secret_url)
        .env("WORKOS_API_KEY", "sk_test_very_secret")
        .env("WORKOS_SYNC__WORKER__BATCH_SIZE", "7")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("worker.batch_size = \"7\""), "{text}");
    assert!(text.contains("postgres://postgres:***@"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("sk_test_very_secret"),
        "{text}"
    );
    // A misspelt key: one line naming it and the nearest known one, exit 1 (the
    // services exit 2 with the same line: the worker's tests).
    let out = Command::new(env!("CARGO_BIN_EXE_workos-sync"))
        .args(["status"])
        .env("DATABASE_URL", &db.url)
        .env("WORKOS_SYNC__WROKER__BATCH_SIZE", "5")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("unknown setting wroker.batch_size (from WORKOS_SYNC__WROKER__BATCH_SIZE); did you mean worker.batch_size?"),
        "{err}"
    );
    // A malformed database URL: refused at once, the password never repeated.
    let out = Command::new(env!("CARGO_BIN_EXE_workos-sync"))
        .args(["status"])
        .env("DATABASE_URL", "postgress//app:hunter2@db/x")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("invalid setting database.url"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let _ = prefix;
    db.teardown().await.unwrap();
}
