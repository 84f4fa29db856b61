//! The test kit cleans up after a test that fails: a database is dropped with its
//! `TestDb`, also while a panic unwinds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use workos_sync_testkit::{db::url_for, fresh_database};

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn exists(name: &str) -> bool {
    let mut c = AsyncPgConnection::establish(&url_for("postgres"))
        .await
        .unwrap();
    let found: Count =
        diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
            .bind::<diesel::sql_types::Text, _>(name)
            .get_result(&mut c)
            .await
            .unwrap();
    found.n > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_goes_with_its_test_even_when_the_test_panics() {
    let db = fresh_database().await.unwrap();
    let name = db.name.clone();
    assert!(exists(&name).await);
    // Migrated: the users table is there.
    db.exec("SELECT 1 FROM users LIMIT 1").await.unwrap();
    let panicked = tokio::spawn(async move {
        let _held = db;
        panic!("the test failed");
    })
    .await;
    assert!(panicked.is_err());
    assert!(!exists(&name).await, "{name} outlived its failed test");
}

/// `scripts/services.sh` sweeps only what a dead run left: a database and a queue named
/// after a process that is gone are removed; those of a live process (this test's) stay,
/// whatever else runs meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_sh_removes_only_what_a_dead_run_left() {
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let live = std::process::id();
    let mut c = AsyncPgConnection::establish(&url_for("postgres"))
        .await
        .unwrap();
    let (dead_db, live_db) = (
        format!("wst_p{dead}_cafe0001"),
        format!("wst_p{live}_cafe0002"),
    );
    for db in [&dead_db, &live_db] {
        diesel::sql_query(format!("CREATE DATABASE \"{db}\""))
            .execute(&mut c)
            .await
            .unwrap();
    }
    let (dead_q, live_q) = (
        format!("wst-p{dead}-cafe0001.events"),
        format!("wst-p{live}-cafe0002.events"),
    );
    let amqp = lapin::Connection::connect(
        &workos_sync_testkit::amqp_url(),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let ch = amqp.create_channel().await.unwrap();
    for q in [&dead_q, &live_q] {
        ch.queue_declare(
            q.as_str().into(),
            lapin::options::QueueDeclareOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/services.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .status()
        .unwrap();
    assert!(status.success());
    let queue_exists = |q: String| async move { workos_sync_testkit::queue_len(&q).await.is_ok() };
    let (dead_db_left, live_db_left) = (exists(&dead_db).await, exists(&live_db).await);
    let (dead_q_left, live_q_left) = (
        queue_exists(dead_q.clone()).await,
        queue_exists(live_q.clone()).await,
    );
    // Clean up before asserting.
    for db in [&dead_db, &live_db] {
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{db}\""))
            .execute(&mut c)
            .await;
    }
    for q in [&dead_q, &live_q] {
        let _ = ch
            .queue_delete(
                q.as_str().into(),
                lapin::options::QueueDeleteOptions::default(),
            )
            .await;
    }
    let _ = amqp.close(200, "bye".into()).await;
    assert!(!dead_db_left, "a dead run's database was kept");
    assert!(live_db_left, "a live run's database was dropped");
    assert!(!dead_q_left, "a dead run's queue was kept");
    assert!(live_q_left, "a live run's queue was deleted");
}
