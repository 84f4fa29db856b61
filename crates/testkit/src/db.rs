//! A fresh Postgres database per test: `wst_<8 hex>`, migrated, dropped by `teardown`.
//! Leftovers of crashed runs are dropped by `scripts/services.sh`.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use workos_sync_store::Store;

/// The server URL tests use (`DATABASE_URL`, default the local trust-auth server).
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `DATABASE_URL` with its database name replaced.
pub fn url_for(db: &str) -> String {
    let base = database_url();
    let (head, _) = base.rsplit_once('/').unwrap_or((&base, ""));
    format!("{head}/{db}")
}

pub struct TestDb {
    pub name: String,
    pub url: String,
    pub store: Store,
}

async fn admin() -> anyhow::Result<AsyncPgConnection> {
    Ok(AsyncPgConnection::establish(&url_for("postgres")).await?)
}

/// Creates and migrates a fresh database.
pub async fn fresh_database() -> anyhow::Result<TestDb> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("{}_{}", crate::TEST_PREFIX_STEM, &id[..8]);
    let mut conn = admin().await?;
    diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await?;
    let url = url_for(&name);
    workos_sync_store::migrate::run(&url).await?;
    let store = Store::new(&url, 8, std::time::Duration::from_secs(5))?;
    Ok(TestDb { name, url, store })
}

impl TestDb {
    /// Drops the database (closing any connection still open to it).
    pub async fn teardown(self) -> anyhow::Result<()> {
        drop(self.store);
        let mut conn = admin().await?;
        diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await?;
        Ok(())
    }

    /// Runs raw SQL against the test database (to play the application's part).
    pub async fn exec(&self, sql: &str) -> anyhow::Result<usize> {
        let mut conn = AsyncPgConnection::establish(&self.url).await?;
        Ok(diesel::sql_query(sql).execute(&mut conn).await?)
    }
}
