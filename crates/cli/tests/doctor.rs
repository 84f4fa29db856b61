//! `workos-sync doctor` against a real stack (database, queues, receiver, worker) and
//! WorkOS's emulator: healthy (exit 0), then one failing line each for a wrong webhook
//! secret, a missing event type on the endpoint, a dead-lettered message and a stopped
//! worker; and `doctor --user` for a synced, a deleted and a dead-lettered user.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::time::Duration;

use serde_json::{Value, json};
use workos_sync_testkit::{
    EMULATOR_API_KEY, Emulator, Stack, eventually, publish_event, queue_len, test_broker,
};

/// A stack's database and queue prefix, what the CLI is pointed at.
#[derive(Clone)]
struct Target {
    db: String,
    prefix: String,
}

impl Target {
    fn of(stack: &Stack) -> Self {
        Self {
            db: stack.db.url.clone(),
            prefix: stack.prefix.to_string(),
        }
    }
}

/// Runs the CLI against `t`'s database and prefix and `emu`'s API (off the runtime: the
/// receiver and worker it talks to run in this process).
async fn cli(t: &Target, emu: &Emulator, env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let db = t.db.clone();
    let mut all: Vec<(String, String)> = vec![
        ("WORKOS_SYNC__AMQP__PREFIX".into(), t.prefix.clone()),
        ("WORKOS_API_BASE_URL".into(), emu.url.clone()),
        ("WORKOS_API_KEY".into(), EMULATOR_API_KEY.into()),
    ];
    all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) =
            workos_sync_testkit::run_binary(env!("CARGO_BIN_EXE_workos-sync"), &db, &env, &args)
                .unwrap();
        (code, format!("{out}\n--- stderr\n{err}"))
    })
    .await
    .unwrap()
}

/// The report line of check `name`.
fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no {name} line in\n{out}"))
}

fn failing(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("FAIL")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn doctor_healthy_then_one_failing_line_per_fault() {
    let emu = Emulator::start().await.unwrap();
    let stack = Stack::start(&[]).await.unwrap();
    let url = stack.receiver.url.clone();
    let t = Target::of(&stack);

    // Before the endpoint exists: the local URL is only a warning.
    let (code, out) = cli(&t, &emu, &[], &["doctor", "--url", &url]).await;
    assert_eq!(code, 0, "{out}");
    assert!(line(&out, "webhook endpoint").starts_with("warn"), "{out}");

    let (code, out) = cli(&t, &emu, &[], &["webhooks", "setup", "--url", &url]).await;
    assert_eq!(code, 0, "{out}");

    // Healthy: every line holds, the test event went through and left nothing.
    let (code, out) = cli(&t, &emu, &[], &["doctor", "--url", &url]).await;
    assert_eq!(code, 0, "{out}");
    assert!(failing(&out).is_empty(), "{out}");
    for name in [
        "settings",
        "database",
        "migrations",
        "users table",
        "broker",
        "topology",
        "worker",
        "receiver",
        "workos api",
        "webhook endpoint",
        "dlq",
    ] {
        assert!(line(&out, name).starts_with("ok"), "{name}: {out}");
    }
    assert!(
        line(&out, "receiver").contains("applied to the users table"),
        "{out}"
    );
    assert!(out.contains("healthy"), "{out}");
    let left = stack
        .db
        .rows("SELECT id FROM users WHERE id LIKE 'user_doctor_%'")
        .await
        .unwrap();
    assert!(left.is_empty(), "test rows left: {left:?}");
    let left = stack
        .db
        .rows("SELECT event_id FROM processed_events WHERE event_id LIKE 'event_doctor_%'")
        .await
        .unwrap();
    assert!(left.is_empty(), "test events left: {left:?}");
    // The JSON form says the same.
    let (code, out) = cli(&t, &emu, &[], &["doctor", "--url", &url, "--json"]).await;
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(report["healthy"], json!(true), "{out}");

    // A secret other than the receiver's: the receiver line fails, and only it.
    let (code, out) = cli(
        &t,
        &emu,
        &[("WORKOS_WEBHOOK_SECRET", "whsec_not_the_receivers")],
        &["doctor", "--url", &url],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert_eq!(failing(&out).len(), 1, "{out}");
    assert!(line(&out, "receiver").contains("signature"), "{out}");
    assert!(
        !out.contains("whsec_not_the_receivers"),
        "the secret printed: {out}"
    );

    // One event type taken off the endpoint.
    let list = emu
        .call(reqwest::Method::GET, "/webhook_endpoints", None)
        .await
        .unwrap();
    let ep = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint_url"] == json!(url))
        .unwrap()
        .clone();
    let mut events: Vec<Value> = ep["events"].as_array().unwrap().clone();
    let dropped = events.pop().unwrap();
    emu.call(
        reqwest::Method::PUT,
        &format!("/webhook_endpoints/{}", ep["id"].as_str().unwrap()),
        Some(json!({"events": events})),
    )
    .await
    .unwrap();
    let (code, out) = cli(&t, &emu, &[], &["doctor", "--url", &url]).await;
    assert_eq!(code, 1, "{out}");
    assert_eq!(failing(&out).len(), 1, "{out}");
    let l = line(&out, "webhook endpoint");
    assert!(
        l.starts_with("FAIL") && l.contains(dropped.as_str().unwrap()),
        "{out}"
    );
    assert!(l.contains("webhooks setup"), "{out}");
    let (code, out) = cli(&t, &emu, &[], &["webhooks", "setup", "--url", &url]).await;
    assert_eq!(code, 0, "{out}");

    // A message in the DLQ: its reason is named.
    let broker = test_broker(&t.prefix).await.unwrap();
    publish_event(&broker, "event_doctor_poison", "user.created", b"{not json")
        .await
        .unwrap();
    let dead = broker.topology().dead_queue();
    assert!(
        eventually(Duration::from_secs(20), || async {
            queue_len(&dead).await.unwrap() == 1
        })
        .await
    );
    let (code, out) = cli(&t, &emu, &[], &["doctor", "--url", &url]).await;
    assert_eq!(code, 1, "{out}");
    assert_eq!(failing(&out).len(), 1, "{out}");
    let l = line(&out, "dlq");
    assert!(l.starts_with("FAIL") && l.contains("undecodable"), "{out}");
    // Reading it kept it.
    assert_eq!(queue_len(&dead).await.unwrap(), 1);
    workos_sync_queue::dlq::purge(&broker).await.unwrap();
    broker.close().await;

    // The worker stopped: no consumer, and the test event is not applied.
    let Stack {
        db,
        receiver,
        worker,
        prefix,
    } = stack;
    worker.shutdown().await;
    let (code, out) = cli(
        &t,
        &emu,
        &[],
        &["doctor", "--url", &url, "--wait-secs", "3"],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    let l = line(&out, "worker");
    assert!(l.starts_with("FAIL") && l.contains("no consumer"), "{out}");
    let l = line(&out, "receiver");
    assert!(l.starts_with("FAIL") && l.contains("not applied"), "{out}");
    assert_eq!(failing(&out).len(), 2, "{out}");
    receiver.teardown().await.unwrap();
    db.teardown().await.unwrap();
    drop(prefix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn doctor_user_explains_synced_deleted_and_dead_lettered() {
    let emu = Emulator::start().await.unwrap();
    let stack = Stack::start(&[]).await.unwrap();
    let t = Target::of(&stack);
    let mk = |email: &str| json!({"email": email, "first_name": "Doc", "last_name": "Tor"});
    let synced = emu.create_user(mk("synced@example.com")).await.unwrap();
    let synced = synced["id"].as_str().unwrap().to_owned();
    let deleted = emu.create_user(mk("deleted@example.com")).await.unwrap();
    let deleted = deleted["id"].as_str().unwrap().to_owned();
    let dead = emu.create_user(mk("dead@example.com")).await.unwrap();
    let dead = dead["id"].as_str().unwrap().to_owned();

    // Synced: applied from WorkOS, as new as WorkOS's object.
    let (code, out) = cli(&t, &emu, &[], &["sync-user", &synced]).await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(&t, &emu, &[], &["doctor", "--user", &synced]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\nsynced: "), "{out}");
    assert!(out.contains("synced@example.com"), "{out}");

    // Before it is applied, the same user is "never received" (exit 3).
    let (code, out) = cli(&t, &emu, &[], &["doctor", "--user", &deleted]).await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("\nnever received: "), "{out}");
    assert!(out.contains(&format!("sync-user {deleted}")), "{out}");

    // Deleted: applied, then deleted in WorkOS and the delete learnt.
    let (code, out) = cli(&t, &emu, &[], &["sync-user", &deleted]).await;
    assert_eq!(code, 0, "{out}");
    emu.delete_user(&deleted).await.unwrap();
    // Not yet learnt: the row is still here though WorkOS says gone.
    let (code, out) = cli(&t, &emu, &[], &["doctor", "--user", &deleted]).await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("\nstill here: "), "{out}");
    let (_, out) = cli(&t, &emu, &[], &["sync-user", &deleted]).await;
    assert!(out.contains("the local row is gone"), "{out}");
    let (code, out) = cli(&t, &emu, &[], &["doctor", "--user", &deleted]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\ndeleted: "), "{out}");
    assert!(out.contains("tombstone:  deleted at"), "{out}");

    // Dead-lettered: an event naming it that the worker cannot decode.
    let broker = test_broker(&t.prefix).await.unwrap();
    let body = json!({"id": "event_doctor_dead", "event": "user.created",
                      "data": {"object": "user", "id": dead}, "created_at": 7});
    publish_event(
        &broker,
        "event_doctor_dead",
        "user.created",
        body.to_string().as_bytes(),
    )
    .await
    .unwrap();
    let dead_q = broker.topology().dead_queue();
    assert!(
        eventually(Duration::from_secs(20), || async {
            queue_len(&dead_q).await.unwrap() == 1
        })
        .await
    );
    let (code, out) = cli(&t, &emu, &[], &["doctor", "--user", &dead]).await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("\ndead lettered: "), "{out}");
    assert!(out.contains("dlq replay event_doctor_dead"), "{out}");
    // The others are not named by it.
    let (code, out) = cli(&t, &emu, &[], &["doctor", "--user", &synced]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("dlq:        none naming it"), "{out}");
    workos_sync_queue::dlq::purge(&broker).await.unwrap();
    broker.close().await;

    // Not an id: refused before anything is read.
    let (code, out) = cli(&t, &emu, &[], &["doctor", "--user", "../events"]).await;
    assert_eq!(code, 1, "{out}");
    stack.teardown().await.unwrap();
}
