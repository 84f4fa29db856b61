//! The worker against the real RabbitMQ and Postgres: own queue prefix and own database
//! per test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::time::{Duration, Instant};

use workos_sync_queue::{Broker, dlq};
use workos_sync_testkit::{
    Stack, TcpProxy, TestDb, close_and_delete, connected_broker, eventually, fresh_database,
    postgres_addr, postgres_url_via, publish_event, queue_len, queue_stats, sign_now, spawn_worker,
    test_broker, unique_prefix, user_event,
};
use workos_sync_worker::WorkerHandle;

fn ts(n: u32) -> String {
    format!("2026-02-01T00:00:{:02}.{:03}Z", n / 1000, n % 1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_to_end_receiver_queue_worker_table() {
    let stack = Stack::start(&[]).await.unwrap();
    let (db, r, w) = (&stack.db, &stack.receiver, &stack.worker);
    let c = reqwest::Client::new();
    let mut bodies = Vec::new();
    for i in 0..50u32 {
        let ty = if i < 10 {
            "user.created"
        } else {
            "user.updated"
        };
        bodies.push(user_event(
            &format!("event_e2e_{i}"),
            ty,
            &format!("user_{}", i % 10),
            &ts(i),
        ));
    }
    // Deliver one twice, as WorkOS may.
    bodies.push(bodies[20].clone());
    for b in &bodies {
        let resp = c
            .post(&r.url)
            .header("WorkOS-Signature", sign_now(b.as_bytes()))
            .body(b.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    let store = db.store.clone();
    assert!(
        eventually(Duration::from_secs(30), || async {
            store.processed_count().await.unwrap() == 50
        })
        .await,
        "not all events applied"
    );
    let rows = db.store.all_users().await.unwrap();
    assert_eq!(rows.len(), 10);
    for row in rows {
        let n: u32 = row.id.trim_start_matches("user_").parse().unwrap();
        // Newest version of user n is event 40 + n.
        assert_eq!(
            row.workos_updated_at
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ts(40 + n)
        );
    }
    let ready = c
        .get(format!("http://{}/readyz", w.http_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let metrics = c
        .get(format!("http://{}/metrics", w.http_addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("workos_sync_events_applied_total"),
        "{metrics}"
    );
    stack.teardown().await.unwrap();
}

/// A recorded Directory Sync event (`tests/fixtures/workos/`) with its own id and time,
/// its directory set to `directory` (the fixtures name two).
fn dsync_event(fixture: &str, id: &str, secs: u32, directory: &str) -> String {
    let path = format!(
        "{}/../../tests/fixtures/workos/{fixture}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["id"] = id.into();
    v["created_at"] = format!("2026-02-01T00:00:{secs:02}.000Z").into();
    let data = &mut v["data"];
    if data["object"] == "directory" {
        data["id"] = directory.into();
    } else {
        data["directory_id"] = directory.into();
        for part in ["user", "group"] {
            if data[part].is_object() {
                data[part]["directory_id"] = directory.into();
            }
        }
    }
    v.to_string()
}

/// Directory Sync through the whole path: recorded `dsync.*` bodies signed and posted
/// to the receiver, applied by the worker (tables and per-entity metrics); the
/// directory's delete removes its users, groups and memberships (no per-object deletes
/// follow it), and a later event for the deleted directory is acked and dropped, not
/// dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn directory_sync_events_end_to_end_and_a_directory_delete_cascades() {
    let stack = Stack::start(&[]).await.unwrap();
    let (db, r, w) = (&stack.db, &stack.receiver, &stack.worker);
    let dir = "directory_01ECAZ4NV9QMV47GW873HDCX74";
    let c = reqwest::Client::new();
    let post = |body: String| {
        let c = c.clone();
        let url = r.url.clone();
        async move {
            let resp = c
                .post(&url)
                .header("WorkOS-Signature", sign_now(body.as_bytes()))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
        }
    };
    // The membership first: it may come before its user and group.
    for (fixture, id, secs) in [
        ("dsync.group.user_added.sdk-fixture", "event_ds_1", 3),
        ("dsync.activated.sdk-fixture", "event_ds_2", 1),
        ("dsync.user.created.sdk-fixture", "event_ds_3", 2),
        ("dsync.group.created.sdk-fixture", "event_ds_4", 2),
    ] {
        post(dsync_event(fixture, id, secs, dir)).await;
    }
    let store = db.store.clone();
    assert!(
        eventually(Duration::from_secs(30), || async {
            store.processed_count().await.unwrap() == 4
        })
        .await,
        "not all events applied"
    );
    let count = |table: &'static str| async move {
        db.rows(&format!("SELECT 1 FROM {table}"))
            .await
            .unwrap()
            .len()
    };
    for table in [
        "directories",
        "directory_users",
        "directory_groups",
        "directory_group_memberships",
    ] {
        assert_eq!(count(table).await, 1, "{table}");
    }
    let metrics = c
        .get(format!("http://{}/metrics", w.http_addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for entity in [
        "directories",
        "directory_users",
        "directory_groups",
        "directory_group_memberships",
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("workos_sync_events_applied_total{")
                    && l.contains(&format!("entity=\"{entity}\""))),
            "no applied count for {entity}: {metrics}"
        );
    }

    post(dsync_event(
        "dsync.deleted.sdk-fixture",
        "event_ds_5",
        10,
        dir,
    ))
    .await;
    post(dsync_event(
        "dsync.user.updated.sdk-fixture",
        "event_ds_6",
        20,
        dir,
    ))
    .await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            store.processed_count().await.unwrap() == 6
        })
        .await,
        "the delete and the late event were not both handled"
    );
    for table in [
        "directories",
        "directory_users",
        "directory_groups",
        "directory_group_memberships",
    ] {
        assert_eq!(
            count(table).await,
            0,
            "{table} after the directory's delete"
        );
    }
    assert_eq!(
        queue_len(&format!("{}.dead", stack.prefix)).await.unwrap(),
        0,
        "nothing dead-lettered"
    );
    stack.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_goes_to_dlq_without_blocking_and_replay_is_a_duplicate() {
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    let broker = test_broker(&prefix).await.unwrap();
    let w = spawn_worker(&prefix, &db.url, &[]).await.unwrap();

    publish_event(&broker, "event_poison", "user.created", b"{not json")
        .await
        .unwrap();
    let good = user_event("event_good", "user.created", "user_ok", &ts(1));
    publish_event(&broker, "event_good", "user.created", good.as_bytes())
        .await
        .unwrap();

    let store = db.store.clone();
    assert!(
        eventually(Duration::from_secs(20), || async {
            store.get_user("user_ok").await.unwrap().is_some()
        })
        .await
    );
    let dead_q = broker.topology().dead_queue();
    assert!(
        eventually(Duration::from_secs(10), || async {
            queue_len(&dead_q).await.unwrap() == 1
        })
        .await
    );
    let dead = dlq::list(&broker).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, "event_poison");
    assert_eq!(dead[0].reason, "undecodable");
    assert!(dead[0].error.contains("JSON"), "{}", dead[0].error);
    assert_eq!(dead[0].body, "{not json");
    // Listing left it there.
    assert_eq!(queue_len(&dead_q).await.unwrap(), 1);

    // The same good event again (webhook redelivery, then via Events API): no new effect.
    let before = db.store.get_user("user_ok").await.unwrap().unwrap();
    publish_event(&broker, "event_good", "user.created", good.as_bytes())
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            queue_len(&broker.topology().events_queue()).await.unwrap() == 0
        })
        .await
    );
    assert_eq!(db.store.processed_count().await.unwrap(), 1);
    assert_eq!(db.store.get_user("user_ok").await.unwrap().unwrap(), before);

    assert_eq!(dlq::purge(&broker).await.unwrap(), 1);
    assert_eq!(queue_len(&dead_q).await.unwrap(), 0);
    w.shutdown().await;
    close_and_delete(broker).await.unwrap();
    db.teardown().await.unwrap();
}

/// A statement that fails for one user goes through every delay tier, lands in the DLQ
/// with its reason, while the rest flows; once fixed, `dlq replay` applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transient_failure_walks_the_tiers_then_dlq_then_replay() {
    let db = fresh_database().await.unwrap();
    db.exec(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.id = 'user_poison' THEN RAISE EXCEPTION 'poison user refused'; END IF; RETURN NEW; END $$",
    )
    .await
    .unwrap();
    db.exec("CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION refuse_poison()")
        .await
        .unwrap();
    let prefix = unique_prefix();
    let env = [("WORKOS_SYNC__AMQP__RETRY_DELAYS_SECS", "1,2")];
    let settings = workos_sync_testkit::test_settings(&prefix, &env).unwrap();
    let broker = connected_broker(&settings.amqp, "t").await.unwrap();
    let w = spawn_worker(&prefix, &db.url, &env).await.unwrap();

    // One batch holding the poison event between good ones.
    for (i, user) in ["user_a", "user_poison", "user_b"].iter().enumerate() {
        let id = format!("event_t{i}");
        let body = user_event(&id, "user.created", user, &ts(1));
        publish_event(&broker, &id, "user.created", body.as_bytes())
            .await
            .unwrap();
    }
    let store = db.store.clone();
    assert!(
        eventually(Duration::from_secs(15), || async {
            store.get_user("user_a").await.unwrap().is_some()
                && store.get_user("user_b").await.unwrap().is_some()
        })
        .await
    );
    let dead_q = broker.topology().dead_queue();
    let started = Instant::now();
    assert!(
        eventually(Duration::from_secs(30), || async {
            queue_len(&dead_q).await.unwrap() == 1
        })
        .await,
        "never dead-lettered"
    );
    // The two tiers (1 s and 2 s) were waited out before the DLQ.
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    let dead = dlq::list(&broker).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, "event_t1");
    assert_eq!(dead[0].reason, "retries_exhausted");
    assert_eq!(dead[0].attempts, 3, "first try + 2 tiers");
    assert!(
        dead[0].error.contains("poison user refused"),
        "{}",
        dead[0].error
    );
    assert!(dead[0].first_seen_at_ms.is_some());
    assert!(db.store.get_user("user_poison").await.unwrap().is_none());

    // Fix the cause, replay: it applies.
    db.exec("DROP TRIGGER refuse_poison ON users")
        .await
        .unwrap();
    let replayed = dlq::replay(
        &broker,
        Some(&["event_t1".to_string()]),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(replayed, vec!["event_t1".to_string()]);
    assert!(
        eventually(Duration::from_secs(15), || async {
            store.get_user("user_poison").await.unwrap().is_some()
        })
        .await
    );
    assert_eq!(queue_len(&dead_q).await.unwrap(), 0);
    w.shutdown().await;
    close_and_delete(broker).await.unwrap();
    db.teardown().await.unwrap();
}

/// A worker on its own prefix that reaches its own database through a proxy the test
/// can cut or silence, and a broker handle to publish with.
struct OutageRig {
    db: TestDb,
    proxy: TcpProxy,
    broker: Broker,
    worker: WorkerHandle,
    /// Last: its queues are deleted after the worker and the broker handle are gone.
    _prefix: workos_sync_testkit::TestPrefix,
}

impl OutageRig {
    async fn start(env: &[(&str, &str)]) -> Self {
        let db = fresh_database().await.unwrap();
        let proxy = TcpProxy::start(postgres_addr(&db.url).unwrap())
            .await
            .unwrap();
        let via = postgres_url_via(&db.url, proxy.addr());
        let prefix = unique_prefix();
        let broker = test_broker(&prefix).await.unwrap();
        let worker = spawn_worker(&prefix, &via, env).await.unwrap();
        Self {
            db,
            proxy,
            broker,
            worker,
            _prefix: prefix,
        }
    }

    /// Publishes event `event_{tag}{i}` of `user` at version `ts(i)`: a create for
    /// i < `creates`, an update after.
    async fn send(&self, tag: &str, i: u32, creates: u32, user: &str) {
        let id = format!("event_{tag}{i}");
        let ty = if i < creates {
            "user.created"
        } else {
            "user.updated"
        };
        let body = user_event(&id, ty, user, &ts(i));
        publish_event(&self.broker, &id, ty, body.as_bytes())
            .await
            .unwrap();
    }

    /// Creates users `user_0` … `user_{n-1}` (events `0..n`) and waits until all are
    /// applied.
    async fn seed(&self, tag: &str, n: u32) {
        for i in 0..n {
            self.send(tag, i, n, &format!("user_{i}")).await;
        }
        assert!(
            self.processed_within(i64::from(n), Duration::from_secs(20))
                .await
        );
    }

    /// Makes every write of a `users` row for which the SQL condition `when` holds (over
    /// `NEW`) sleep `secs` inside Postgres: trigger `slow_write`.
    async fn slow_writes(&self, when: &str, secs: f64) {
        self.db
            .exec(&format!(
                "CREATE FUNCTION slow_write() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF {when} THEN PERFORM pg_sleep({secs}); END IF; RETURN NEW; END $$"
            ))
            .await
            .unwrap();
        self.db
            .exec("CREATE TRIGGER slow_write BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION slow_write()")
            .await
            .unwrap();
    }

    async fn processed_within(&self, n: i64, within: Duration) -> bool {
        let store = self.db.store.clone();
        eventually(within, || async {
            store.processed_count().await.unwrap() == n
        })
        .await
    }

    fn events_queue(&self) -> String {
        self.broker.topology().events_queue()
    }

    /// DLQ and every delay tier are empty.
    async fn assert_nothing_dead_or_retried(&self) {
        let t = self.broker.topology();
        assert_eq!(queue_len(&t.dead_queue()).await.unwrap(), 0);
        for q in t.retry_queues() {
            assert_eq!(queue_len(&q).await.unwrap(), 0);
        }
    }

    async fn teardown(self) {
        self.worker.shutdown().await;
        close_and_delete(self.broker).await.unwrap();
        self.db.teardown().await.unwrap();
    }
}

/// Polls `queue` until it has `want` = (ready, consumers) or `within` passes.
async fn queue_reaches(queue: &str, want: (u32, u32), within: Duration) -> bool {
    eventually(within, || async {
        queue_stats(queue).await.unwrap() == want
    })
    .await
}

/// The database is unreachable for 60 s while events keep arriving: nothing is
/// dead-lettered, everything is applied once it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_dead_letters_nothing() {
    let outage = Duration::from_secs(
        std::env::var("DB_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let rig = OutageRig::start(&[("WORKOS_SYNC__AMQP__RETRY_DELAYS_SECS", "1")]).await;
    let user = |i: u32| format!("user_{}", i % 20);
    rig.seed("o", 20).await;

    rig.proxy.cut();
    let ready_url = format!("http://{}/readyz", rig.worker.http_addr);
    let c = reqwest::Client::new();
    let cut_at = Instant::now();
    let mut i = 20;
    while cut_at.elapsed() < outage {
        rig.send("o", i, 20, &user(i)).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let status = c.get(&ready_url).send().await.unwrap().status().as_u16();
    assert_eq!(status, 503, "readyz must report the database down");
    assert_eq!(
        queue_len(&rig.broker.topology().dead_queue())
            .await
            .unwrap(),
        0
    );
    rig.proxy.restore();
    assert!(
        rig.processed_within(i as i64, Duration::from_secs(60))
            .await,
        "events not all applied after the outage"
    );
    rig.assert_nothing_dead_or_retried().await;
    assert_eq!(rig.db.store.all_users().await.unwrap().len(), 20);
    rig.teardown().await;
}

/// An outage longer than `worker.park_after_secs`: the worker hands every delivery it
/// holds back to the queue (all ready again, none unacked), stops consuming while the
/// database is down, and applies everything once it returns. Holding deliveries past
/// RabbitMQ's consumer_timeout instead would requeue them with a delivery count, and a
/// long enough outage would dead-letter them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_database_outage_parks_deliveries_and_stops_consuming() {
    let rig = OutageRig::start(&[("WORKOS_SYNC__WORKER__PARK_AFTER_SECS", "2")]).await;
    let user = |i: u32| format!("user_{}", i % 10);
    rig.seed("park", 10).await;

    rig.proxy.cut();
    for i in 10..40 {
        rig.send("park", i, 10, &user(i)).await;
    }
    // Parked: all 30 ready in the queue again and no consumer left.
    let events_q = rig.events_queue();
    assert!(
        queue_reaches(&events_q, (30, 0), Duration::from_secs(30)).await,
        "deliveries not handed back: {:?}",
        queue_stats(&events_q).await.unwrap()
    );
    // While the database stays down the worker takes no work.
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(3) {
        assert_eq!(queue_stats(&events_q).await.unwrap(), (30, 0));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = reqwest::get(format!("http://{}/metrics", rig.worker.http_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parked: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("workos_sync_worker_messages_total") && l.contains("outcome=\"parked\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(parked >= 30.0, "parked counter {parked}");

    rig.proxy.restore();
    assert!(
        rig.processed_within(40, Duration::from_secs(60)).await,
        "events not all applied after the outage"
    );
    rig.assert_nothing_dead_or_retried().await;
    let rows = rig.db.store.all_users().await.unwrap();
    assert_eq!(rows.len(), 10);
    for row in rows {
        let n: u32 = row.id.trim_start_matches("user_").parse().unwrap();
        // Newest version of user n is event 30 + n.
        assert_eq!(
            row.workos_updated_at
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ts(30 + n)
        );
    }
    rig.teardown().await;
}

/// A database whose connections go silent (packets dropped, no error) while a batch is
/// in flight: the batch times out after `database.apply_timeout_secs` instead of hanging
/// for TCP's ~15 minutes, the unanswered ping makes the worker hold, and after
/// `worker.park_after_secs` it hands the deliveries back; with traffic flowing again,
/// everything is applied, the slow user included. The abandoned transaction, which holds
/// that user's lock in Postgres, is ended by Postgres while the network is still silent
/// (`idle_in_transaction_session_timeout`, set on the pool's sessions to twice the apply
/// timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silent_database_mid_batch_times_out_parks_and_recovers() {
    let rig = OutageRig::start(&[
        ("WORKOS_SYNC__DATABASE__APPLY_TIMEOUT_SECS", "2"),
        ("WORKOS_SYNC__WORKER__PARK_AFTER_SECS", "2"),
    ])
    .await;
    let db = &rig.db;
    // One user's writes sleep 4 s while the flag row exists: a batch is then surely in
    // flight when the network goes silent.
    db.exec("CREATE TABLE slow_flag (x int)").await.unwrap();
    db.exec("INSERT INTO slow_flag VALUES (1)").await.unwrap();
    rig.slow_writes(
        "NEW.id = 'user_slow' AND EXISTS (SELECT 1 FROM slow_flag)",
        4.0,
    )
    .await;
    rig.seed("silent", 10).await;

    rig.send("silent", 10, 100, "user_slow").await;
    let sleeping = "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() \
                    AND wait_event = 'PgSleep'";
    assert!(
        eventually(Duration::from_secs(20), || async {
            db.exec(sleeping).await.unwrap() == 1
        })
        .await,
        "the slow batch never started"
    );
    rig.proxy.blackhole();
    for i in 11..21 {
        rig.send("silent", i, 100, &format!("user_{i}")).await;
    }
    let events_q = rig.events_queue();
    assert!(
        queue_reaches(&events_q, (11, 0), Duration::from_secs(40)).await,
        "a silent database must not hang the worker: {:?}",
        queue_stats(&events_q).await.unwrap()
    );
    assert_eq!(
        queue_len(&rig.broker.topology().dead_queue())
            .await
            .unwrap(),
        0
    );
    // The abandoned transaction ends in Postgres too, while the network is still silent:
    // once the slow write returns, its session sits idle in transaction waiting for a
    // COMMIT that never comes, holding the slow user's lock; the pool set
    // idle_in_transaction_session_timeout (2 x the apply timeout) on its sessions, so
    // Postgres ends it instead of waiting for TCP to give up.
    let lingering = "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() \
                     AND (state LIKE 'idle in transaction%' OR wait_event = 'PgSleep')";
    assert!(
        eventually(Duration::from_secs(20), || async {
            db.exec(lingering).await.unwrap() == 0
        })
        .await,
        "the abandoned transaction lives on in Postgres"
    );

    db.exec("DELETE FROM slow_flag").await.unwrap();
    rig.proxy.restore();
    assert!(
        rig.processed_within(21, Duration::from_secs(60)).await,
        "events not all applied after traffic returned"
    );
    assert!(db.store.get_user("user_slow").await.unwrap().is_some());
    rig.assert_nothing_dead_or_retried().await;
    rig.teardown().await;
}

/// A database that keeps coming back briefly: down 2.5 s, up 2 s, over and over, while
/// every user write takes 0.5 s. Each batch then holds for ~3 s (less than
/// `park_after_secs` = 5) before the database answers again and a batch or two get
/// through, but the deliveries queued behind wait through one hold after another. The
/// worker parks once the oldest unacked delivery has waited `park_after`; were the timer
/// only the length of one hold, it would never park, and behind such a database
/// deliveries could wait past RabbitMQ's consumer_timeout (which requeues them with a
/// delivery count, toward the DLQ).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flapping_database_parks_by_the_age_of_the_oldest_delivery() {
    let rig = OutageRig::start(&[
        ("WORKOS_SYNC__WORKER__PARK_AFTER_SECS", "5"),
        ("WORKOS_SYNC__WORKER__BATCH_SIZE", "1"),
        ("WORKOS_SYNC__WORKER__PARTITIONS", "1"),
    ])
    .await;
    rig.seed("flap", 1).await;
    let db = &rig.db;
    rig.slow_writes("true", 0.5).await;

    rig.proxy.cut();
    let flapping = Instant::now();
    for i in 1..=20 {
        rig.send("flapx", i, 100, &format!("user_{i}")).await;
    }
    let events_q = rig.events_queue();
    let mut down = true;
    let mut parked = None;
    while flapping.elapsed() < Duration::from_secs(25) {
        let want_down = flapping.elapsed().as_millis() % 4500 < 2500;
        if want_down != down {
            if want_down {
                rig.proxy.cut();
            } else {
                rig.proxy.restore();
            }
            down = want_down;
        }
        // Parked: no consumer, and every delivery not applied yet is back in the queue.
        let (ready, consumers) = queue_stats(&events_q).await.unwrap();
        if consumers == 0 && ready > 0 {
            let applied = db.store.processed_count().await.unwrap() - 1;
            if i64::from(ready) + applied == 20 {
                parked = Some((flapping.elapsed(), applied));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rig.proxy.restore();
    let (after, applied) = parked.expect("a flapping database never made the worker park");
    // Holds did end in between: the database was flapping, not down for one long stretch.
    assert!(
        applied >= 1,
        "nothing applied before parking at {after:?}: not a flapping database"
    );

    db.exec("DROP TRIGGER slow_write ON users").await.unwrap();
    assert!(
        rig.processed_within(21, Duration::from_secs(60)).await,
        "events not all applied after the database settled"
    );
    rig.assert_nothing_dead_or_retried().await;
    assert_eq!(db.store.all_users().await.unwrap().len(), 21);
    rig.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restarts_during_a_backlog_dead_letter_nothing() {
    use futures_util::StreamExt;
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    // A delivery limit of 2 makes any handed-back prefetch window visible at once: a
    // delivery returned twice by closing channels would be dead-lettered.
    let env = [
        ("WORKOS_SYNC__AMQP__DELIVERY_LIMIT", "2"),
        ("WORKOS_SYNC__WORKER__PREFETCH", "1000"),
        ("WORKOS_SYNC__RECONCILE__INTERVAL_SECS", "0"),
    ];
    let settings = workos_sync_testkit::test_settings(&prefix, &env).unwrap();
    let broker = connected_broker(&settings.amqp, "t").await.unwrap();
    const USERS: u32 = 2000;
    const VERSIONS: u32 = 15;
    const DELETED: u32 = 100;
    let mut bodies = Vec::new();
    for v in 1..=VERSIONS {
        for u in 0..USERS {
            let ty = if v == 1 {
                "user.created"
            } else {
                "user.updated"
            };
            bodies.push((
                format!("event_bk_{u}_{v}"),
                ty,
                user_event(
                    &format!("event_bk_{u}_{v}"),
                    ty,
                    &format!("user_bk{u:04}"),
                    &ts(v),
                ),
            ));
        }
    }
    for u in 0..DELETED {
        let id = format!("event_bk_{u}_del");
        bodies.push((
            id.clone(),
            "user.deleted",
            user_event(
                &id,
                "user.deleted",
                &format!("user_bk{u:04}"),
                &ts(VERSIONS + 1),
            ),
        ));
    }
    let total = bodies.len() as i64;
    let published: Vec<anyhow::Result<()>> = futures_util::stream::iter(bodies.iter())
        .map(|(id, ty, body)| publish_event(&broker, id, ty, body.as_bytes()))
        .buffer_unordered(128)
        .collect()
        .await;
    assert!(published.iter().all(Result::is_ok));

    let mut stopped_with_backlog = 0;
    let mut last = 0;
    for _ in 0..15 {
        let w = spawn_worker(&prefix, &db.url, &env).await.unwrap();
        let store = db.store.clone();
        eventually(Duration::from_secs(60), || async {
            let n = store.processed_count().await.unwrap();
            n >= last + 200 || n == total
        })
        .await;
        w.shutdown().await;
        last = db.store.processed_count().await.unwrap();
        if last < total {
            stopped_with_backlog += 1;
        }
    }
    assert!(
        stopped_with_backlog >= 10,
        "only {stopped_with_backlog} restarts met a backlog"
    );
    let w = spawn_worker(&prefix, &db.url, &env).await.unwrap();
    let store = db.store.clone();
    assert!(
        eventually(Duration::from_secs(120), || async {
            store.processed_count().await.unwrap() == total
        })
        .await,
        "not everything applied"
    );
    w.shutdown().await;
    let t = broker.topology();
    assert_eq!(
        queue_len(&t.dead_queue()).await.unwrap(),
        0,
        "dead-lettered"
    );
    assert_eq!(queue_len(&t.events_queue()).await.unwrap(), 0);
    let rows = db.store.all_users().await.unwrap();
    assert_eq!(
        rows.len(),
        (USERS - DELETED) as usize,
        "resurrected or lost users"
    );
    for row in rows {
        let n: u32 = row.id.trim_start_matches("user_bk").parse().unwrap();
        assert!(n >= DELETED, "{} was deleted", row.id);
        assert_eq!(
            row.workos_updated_at
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ts(VERSIONS),
            "{} is stale",
            row.id
        );
    }
    close_and_delete(broker).await.unwrap();
    db.teardown().await.unwrap();
}

/// An application session holds one user's row (`SELECT … FOR UPDATE`, left open) while
/// updates for 400 other users and for the held user arrive at 40/s: the others apply
/// within their usual latency, the held user's events wait in the shortest delay tier
/// (no attempt spent, never the DLQ), and apply within seconds of the lock's release.
/// A table lock (a migration) is waited out up to the lock timeout, then the events are
/// tried again shortly: everything applies soon after the migration commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_locked_row_costs_one_user_not_the_stream() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    let env = [("WORKOS_SYNC__AMQP__RETRY_DELAYS_SECS", "2,30,120")];
    let settings = workos_sync_testkit::test_settings(&prefix, &env).unwrap();
    let broker = connected_broker(&settings.amqp, "t").await.unwrap();
    let w = spawn_worker(&prefix, &db.url, &env).await.unwrap();
    let publish = |id: String, ty: &'static str, user: String, v: u32| {
        let broker = &broker;
        async move {
            let body = user_event(&id, ty, &user, &ts(v));
            publish_event(broker, &id, ty, body.as_bytes())
                .await
                .unwrap();
        }
    };
    for i in 0..400 {
        publish(
            format!("ev_c{i}"),
            "user.created",
            format!("user_o{i:03}"),
            1,
        )
        .await;
    }
    publish("ev_held_c".into(), "user.created", "user_held".into(), 1).await;
    let store = db.store.clone();
    assert!(
        eventually(Duration::from_secs(30), || async {
            store.processed_count().await.unwrap() == 401
        })
        .await
    );

    // The application's session: the held user's row locked, the transaction left open.
    let mut app = AsyncPgConnection::establish(&db.url).await.unwrap();
    app.batch_execute("BEGIN; SELECT 1 FROM users WHERE id = 'user_held' FOR UPDATE")
        .await
        .unwrap();
    let updated = |v: u32| {
        let store = store.clone();
        async move {
            store
                .all_users()
                .await
                .unwrap()
                .into_iter()
                .filter(|u| u.id.starts_with("user_o"))
                .filter(|u| {
                    u.workos_updated_at
                        .unwrap()
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                        == ts(v)
                })
                .count()
        }
    };
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    for i in 0..400u32 {
        publish(
            format!("ev_u{i}"),
            "user.updated",
            format!("user_o{i:03}"),
            2,
        )
        .await;
        if i % 50 == 0 {
            publish(
                format!("ev_held_u{i}"),
                "user.updated",
                "user_held".into(),
                2 + i,
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(25)).await; // the arrival rate, 40/s
        if i % 40 == 39 {
            // Everything published a second ago has applied by now.
            let lag_start = Instant::now();
            let want = (i + 1 - 40) as usize;
            assert!(
                eventually(Duration::from_secs(5), || async {
                    updated(2).await >= want
                })
                .await,
                "other users stalled behind the held row (at {i})"
            );
            worst = worst.max(lag_start.elapsed());
        }
    }
    assert!(
        eventually(Duration::from_secs(5), || async { updated(2).await == 400 }).await,
        "not every other user was updated while the row was held"
    );
    let held = db.store.get_user("user_held").await.unwrap().unwrap();
    assert_eq!(
        held.workos_updated_at
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ts(1),
        "the held row was written through the lock"
    );
    println!(
        "others applied within {worst:?} of their check; total {:?}",
        started.elapsed()
    );

    // The lock goes: the held user's newest event applies within seconds.
    app.batch_execute("COMMIT").await.unwrap();
    let released = Instant::now();
    assert!(
        eventually(Duration::from_secs(15), || async {
            store
                .get_user("user_held")
                .await
                .unwrap()
                .unwrap()
                .workos_updated_at
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                == ts(2 + 350)
        })
        .await,
        "the held user's events did not apply after the release"
    );
    println!(
        "held user applied {:?} after the release",
        released.elapsed()
    );
    assert_eq!(queue_len(&broker.topology().dead_queue()).await.unwrap(), 0);

    // A migration holding the whole table: waited out, then applied soon after it commits.
    app.batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    for i in 0..20u32 {
        publish(
            format!("ev_m{i}"),
            "user.updated",
            format!("user_o{i:03}"),
            500,
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(8)).await; // the migration's own duration
    app.batch_execute("COMMIT").await.unwrap();
    let committed = Instant::now();
    assert!(
        eventually(Duration::from_secs(3), || async {
            updated(500).await == 20
        })
        .await,
        "events behind a table lock did not apply promptly after it (held, not deferred)"
    );
    println!(
        "table-locked events applied {:?} after the commit",
        committed.elapsed()
    );
    assert_eq!(queue_len(&broker.topology().dead_queue()).await.unwrap(), 0);
    w.shutdown().await;
    close_and_delete(broker).await.unwrap();
    db.teardown().await.unwrap();
}
