//! Drift detection's comparison in SQL (`store::spool`), against a real Postgres: an
//! adopted users table (versions may be NULL) with soft deletes, holding a row of each
//! kind, compared with a listing spooled page by page; each key lands in its one kind,
//! and a comparison by presence alone (an entity WorkOS does not version) reports no
//! version differences. Each test in its own database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use chrono::{DateTime, Utc};
use workos_sync_core::Entity;
use workos_sync_store::{
    Store,
    layout::DeleteModes,
    migrate::{self, MigrateOptions},
    spool::{Difference, Differing},
};
use workos_sync_testkit::empty_database;

fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + s, 0).unwrap()
}

fn keys(d: &[Differing], kind: Difference) -> Vec<&str> {
    d.iter()
        .filter(|r| r.difference == kind)
        .map(|r| r.key.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_lands_in_its_one_kind_of_drift() {
    let db = empty_database().await.unwrap();
    db.exec("CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL)")
        .await
        .unwrap();
    migrate::migrate(
        &db.url,
        &MigrateOptions {
            adopt: true,
            ..MigrateOptions::new("public")
        },
    )
    .await
    .unwrap();
    // (key, version in seconds or NULL, soft-deleted by sync)
    let rows: [(&str, Option<i64>, bool); 8] = [
        ("same", Some(5), false),
        ("stale", Some(4), false),
        ("ahead", Some(6), false),
        ("unversioned", None, false),
        ("soft", Some(5), true),
        ("extra", Some(1), false),
        ("gone_soft", Some(1), true),
        ("unsynced", None, false),
    ];
    for (key, v, soft) in rows {
        let v = v.map_or("NULL".to_owned(), |v| format!("'{}'", t(v).to_rfc3339()));
        let deleted = if soft { "now()" } else { "NULL" };
        db.exec(&format!(
            "INSERT INTO users (id, email, workos_updated_at, workos_created_at, deleted_at) \
             VALUES ('{key}', '{key}@example.com', {v}, {v}, {deleted})"
        ))
        .await
        .unwrap();
        if soft {
            db.exec(&format!(
                "INSERT INTO tombstones (entity, id, deleted_at, event_id) \
                 VALUES ('users', '{key}', now(), 'evt_{key}')"
            ))
            .await
            .unwrap();
        }
    }
    let store = Store::new(&db.url, 2, std::time::Duration::from_secs(5))
        .unwrap()
        .with_deletes(DeleteModes::all_soft());
    let listed = ["same", "missing", "stale", "ahead", "unversioned", "soft"];
    let mut spool = store.spool().await.unwrap();
    // Two pages, one key in both (its last version counts).
    let page = |ks: &[&str]| -> Vec<String> { ks.iter().map(|k| (*k).to_owned()).collect() };
    spool
        .add(Entity::Users, &page(&listed[..3]), &[t(5); 3])
        .await
        .unwrap();
    spool
        .add(Entity::Users, &page(&listed[2..]), &[t(5); 4])
        .await
        .unwrap();
    let c = spool.compare(Entity::Users, true).await.unwrap();
    assert_eq!(c.listed, 6);
    // Live rows sync wrote: same, stale, ahead, extra.
    assert_eq!(c.synced, 4);
    let d = &c.differing;
    assert_eq!(keys(d, Difference::Missing), ["missing", "soft"]);
    assert_eq!(keys(d, Difference::Stale), ["stale", "unversioned"]);
    assert_eq!(keys(d, Difference::Ahead), ["ahead"]);
    assert_eq!(keys(d, Difference::Extra), ["extra"]);
    assert_eq!(keys(d, Difference::Unsynced), ["unsynced"]);
    assert_eq!(d.len(), 7, "{d:?}");
    let extra = d.iter().find(|r| r.key == "extra").unwrap();
    assert!(extra.written_at.is_some(), "{extra:?}");
    // By presence alone: a live row is in step whatever its version; a row with none is
    // still stale.
    let c = spool.compare(Entity::Users, false).await.unwrap();
    assert!(keys(&c.differing, Difference::Ahead).is_empty());
    assert_eq!(keys(&c.differing, Difference::Stale), ["unversioned"]);
    // Another entity's listing is empty: its table's rows are all extra (none here).
    let c = spool.compare(Entity::Organizations, true).await.unwrap();
    assert_eq!((c.listed, c.synced, c.differing.len()), (0, 0, 0));
    spool.finish().await;
    // A new spool starts empty, on whichever pooled connection.
    let mut spool = store.spool().await.unwrap();
    let c = spool.compare(Entity::Users, true).await.unwrap();
    assert_eq!(c.listed, 0);
    assert_eq!(
        keys(&c.differing, Difference::Extra),
        ["ahead", "extra", "same", "stale"]
    );
    spool.finish().await;
    drop(store);
    db.teardown().await.unwrap();
}
