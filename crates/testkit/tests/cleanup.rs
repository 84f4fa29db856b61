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
