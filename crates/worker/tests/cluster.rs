//! The receiver and the worker on a real three-node RabbitMQ cluster
//! (`scripts/rabbit-cluster.sh`, started by `scripts/test.sh`): the queues are replicated
//! on every node, a process whose first node is down starts on the next one, and losing
//! the node a process is connected to moves it to another without losing an event.
//!
//! The tests take nodes down, so they run one at a time (`CLUSTER`); a node taken down
//! comes back when its guard drops, also when a test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::time::Duration;

use tokio::sync::Mutex;
use workos_sync_testkit::{
    Cluster, ReceiverOptions, TestDb, TestReceiver, connected_broker, eventually, fresh_database,
    sign_now, spawn_receiver, spawn_worker, test_settings, unique_prefix, user_event,
};
use workos_sync_worker::WorkerHandle;

static CLUSTER: Mutex<()> = Mutex::const_new(());

/// A receiver and a worker on `prefix`, both given every node starting with `first`.
async fn stack(
    cluster: &Cluster,
    first: usize,
    db: &TestDb,
    prefix: &str,
) -> (TestReceiver, WorkerHandle) {
    let urls = cluster.url_list_from(first);
    let r = spawn_receiver(ReceiverOptions {
        prefix: Some(prefix.to_owned()),
        env: vec![("AMQP_URL", &urls)],
        ..Default::default()
    })
    .await
    .unwrap();
    let w = spawn_worker(prefix, &db.url, &[("AMQP_URL", &urls)])
        .await
        .unwrap();
    (r, w)
}

/// Posts `body` until it is answered 200 (a node loss answers 503 for a while, as WorkOS
/// would see it and retry), for at most `within`; the number of attempts.
async fn post_until_accepted(r: &TestReceiver, body: &str) -> usize {
    post_within(r, body, Duration::from_secs(60)).await
}

async fn post_within(r: &TestReceiver, body: &str, within: Duration) -> usize {
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let deadline = tokio::time::Instant::now() + within;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let status = c
            .post(&r.url)
            .header("WorkOS-Signature", sign_now(body.as_bytes()))
            .body(body.to_owned())
            .send()
            .await
            .map(|resp| resp.status().as_u16())
            .unwrap_or(0);
        if status == 200 {
            return attempts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not accepted within {within:?} (last status {status})"
        );
        assert!(status == 503 || status == 0, "unexpected status {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ts(n: usize) -> String {
    format!("2026-03-01T00:{:02}:{:02}.000Z", n / 60, n % 60)
}

async fn all_applied(db: &TestDb, users: &[String]) -> bool {
    let store = db.store.clone();
    eventually(Duration::from_secs(60), || {
        let store = store.clone();
        async move {
            let mut found = 0;
            for u in users {
                if store.get_user(u).await.ok().flatten().is_some() {
                    found += 1;
                }
            }
            found == users.len()
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_queue_is_replicated_on_every_node() {
    let _one = CLUSTER.lock().await;
    let cluster = Cluster::from_env().unwrap();
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix().keep();
    let (r, w) = stack(&cluster, 2, &db, &prefix).await;
    let topology = r.topology().clone();
    let mut queues = vec![topology.events_queue(), topology.dead_queue()];
    queues.extend(topology.retry_queues());
    for q in queues {
        let mut members = cluster.members(&q).unwrap();
        members.sort_unstable();
        assert_eq!(members, vec![1, 2, 3], "replicas of {q}");
    }
    // amqp.quorum_group_size decides how many.
    let two = unique_prefix().keep();
    let urls = cluster.url_list_from(1);
    let settings = test_settings(
        &two,
        &[
            ("AMQP_URL", &urls),
            ("WORKOS_SYNC__AMQP__QUORUM_GROUP_SIZE", "2"),
        ],
    )
    .unwrap();
    let broker = connected_broker(&settings.amqp, "cluster-test")
        .await
        .unwrap();
    assert_eq!(
        cluster
            .members(&broker.topology().events_queue())
            .unwrap()
            .len(),
        2
    );
    broker.close().await;
    w.shutdown().await;
    r.stop().await;
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_and_a_worker_whose_first_node_is_down_start_and_work() {
    let _one = CLUSTER.lock().await;
    let cluster = Cluster::from_env().unwrap();
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix().keep();
    let down = cluster.stop_app(1).unwrap();
    let (r, w) = stack(&cluster, 1, &db, &prefix).await;
    let users: Vec<String> = (0..10).map(|i| format!("user_first_down_{i}")).collect();
    for (i, u) in users.iter().enumerate() {
        let body = user_event(&format!("event_first_down_{i}"), "user.created", u, &ts(i));
        assert_eq!(post_until_accepted(&r, &body).await, 1, "{u}: not at once");
    }
    assert!(all_applied(&db, &users).await, "not every event applied");
    w.shutdown().await;
    r.stop().await;
    down.restore().unwrap();
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_the_node_in_use_moves_the_receiver_and_the_worker_to_the_next() {
    let _one = CLUSTER.lock().await;
    let cluster = Cluster::from_env().unwrap();
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix().keep();
    // Both start on node 1, which is then stopped under them.
    let (r, w) = stack(&cluster, 1, &db, &prefix).await;
    let users: Vec<String> = (0..40).map(|i| format!("user_node_loss_{i}")).collect();
    let mut attempts = 0;
    let mut down = None;
    for (i, u) in users.iter().enumerate() {
        if i == 20 {
            down = Some(cluster.stop_app(1).unwrap());
        }
        let body = user_event(&format!("event_node_loss_{i}"), "user.created", u, &ts(i));
        attempts += post_until_accepted(&r, &body).await;
    }
    assert!(all_applied(&db, &users).await, "not every event applied");
    let processed = db.store.processed_count().await.unwrap();
    assert_eq!(processed, 40, "an event applied twice or lost");
    tracing::info!(attempts, "posts for 40 events");
    w.shutdown().await;
    r.stop().await;
    down.expect("node 1 was stopped").restore().unwrap();
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hard_kill_of_the_leader_node_in_use_costs_seconds_not_the_outage() {
    let _one = CLUSTER.lock().await;
    let cluster = Cluster::from_env().unwrap();
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix().keep();
    // The receiver declares the queues through node 1, which RabbitMQ makes the events
    // queue's first leader; the worker starts there too.
    let (r, w) = stack(&cluster, 1, &db, &prefix).await;
    let events = r.topology().events_queue();
    assert_eq!(cluster.leader(&events).unwrap(), 1, "leader of {events}");
    let users: Vec<String> = (0..30).map(|i| format!("user_leader_kill_{i}")).collect();
    let mut down = None;
    for (i, u) in users.iter().enumerate() {
        if i == 10 {
            down = Some(cluster.kill(1).unwrap());
        }
        let body = user_event(&format!("event_leader_kill_{i}"), "user.created", u, &ts(i));
        // While node 1 stays down: the other two are a quorum, so each event must get
        // in within seconds (a channel left nacking would hold out until node 1 is back).
        post_within(&r, &body, Duration::from_secs(20)).await;
    }
    assert!(all_applied(&db, &users).await, "not every event applied");
    assert_eq!(db.store.processed_count().await.unwrap(), 30);
    w.shutdown().await;
    r.stop().await;
    down.expect("node 1 was killed").restore().unwrap();
    db.teardown().await.unwrap();
}
