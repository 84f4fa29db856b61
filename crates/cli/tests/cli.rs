//! The `workos-sync` binary against the real services.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::{
    io::Write,
    process::{Command, Stdio},
};

use workos_sync_testkit::{
    amqp_url, delete_topology, fresh_database, publish_event, queue_len, test_broker, unique_prefix,
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

    broker.close().await;
    delete_topology(broker.topology()).await.unwrap();
    db.teardown().await.unwrap();
}
