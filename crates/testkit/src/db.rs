//! A fresh Postgres database per test, `wst_p<pid>_<8 hex>`, cloned from a migrated template
//! (`CREATE DATABASE … TEMPLATE`, as crates.io's test databases are), and dropped when
//! the [`TestDb`] drops, also when the test panics. `teardown` drops it explicitly.
//!
//! The template, `wst_tpl_<hash of the migration names>`, is migrated once per set of
//! migrations: a new migration gets a new template. Creating a database from a template
//! needs the template free of sessions, so template work is serialised across processes
//! by an advisory lock on the server. Leftovers of killed runs are dropped by
//! `scripts/services.sh`.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sha2::{Digest, Sha256};
use workos_sync_store::Store;

/// Serialises template creation and cloning across test processes.
const TEMPLATE_LOCK: i64 = 0x5753_7e57;

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
    dropped: bool,
}

async fn admin() -> anyhow::Result<AsyncPgConnection> {
    Ok(AsyncPgConnection::establish(&url_for("postgres")).await?)
}

/// The template's name for the embedded migrations.
fn template_name() -> String {
    // The embedded migrations' names and the SQL on disk: a migration edited during
    // development gets a fresh template rather than a stale one.
    let mut h = Sha256::new();
    h.update(
        workos_sync_store::migrate::embedded_names()
            .join("\n")
            .as_bytes(),
    );
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|d| ["up.sql", "down.sql"].map(|f| d.path().join(f)))
        .collect();
    files.sort();
    for f in files {
        h.update(std::fs::read(&f).unwrap_or_default());
    }
    // The users columns `migrate` adds beyond the migrations (declared ones).
    for c in workos_sync_store::layout::user_columns() {
        h.update(c.name.as_bytes());
        h.update(c.add.unwrap_or_default().as_bytes());
    }
    let hash = hex::encode(h.finalize());
    format!("{}_tpl_{}", crate::TEST_PREFIX_STEM, &hash[..12])
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Creates and migrates the template if it does not exist yet (the caller holds
/// [`TEMPLATE_LOCK`]).
async fn ensure_template(conn: &mut AsyncPgConnection, template: &str) -> anyhow::Result<()> {
    let found: Count =
        diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
            .bind::<diesel::sql_types::Text, _>(template)
            .get_result(conn)
            .await?;
    if found.n > 0 {
        return Ok(());
    }
    // Built under another name and renamed when complete, so a run killed half way
    // never leaves a half-migrated template behind this name.
    let building = format!("{template}_building");
    diesel::sql_query(format!(
        "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
    ))
    .execute(conn)
    .await?;
    diesel::sql_query(format!("CREATE DATABASE \"{building}\""))
        .execute(conn)
        .await?;
    workos_sync_store::migrate::run(&url_for(&building)).await?;
    diesel::sql_query(format!(
        "ALTER DATABASE \"{building}\" RENAME TO \"{template}\""
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Creates a fresh, migrated database (a copy of the template).
pub async fn fresh_database() -> anyhow::Result<TestDb> {
    let name = new_name();
    let template = template_name();
    let mut conn = admin().await?;
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<diesel::sql_types::BigInt, _>(TEMPLATE_LOCK)
        .execute(&mut conn)
        .await?;
    let made = async {
        ensure_template(&mut conn, &template).await?;
        // The migration's own session may still be closing on the server side.
        let mut tries = 0;
        loop {
            let created = diesel::sql_query(format!(
                "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
            ))
            .execute(&mut conn)
            .await;
            match created {
                Ok(_) => return Ok::<_, anyhow::Error>(()),
                Err(e) if tries < 50 && e.to_string().contains("being accessed by other users") => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    .await;
    let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<diesel::sql_types::BigInt, _>(TEMPLATE_LOCK)
        .execute(&mut conn)
        .await;
    made?;
    TestDb::new(name)
}

/// A fresh test database's name, `wst_p<pid>_<8 hex>` (the pid: see
/// [`crate::unique_prefix`]).
fn new_name() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{}_p{}_{}",
        crate::TEST_PREFIX_STEM,
        std::process::id(),
        &id[..8]
    )
}

/// Creates an empty database (no migration ran: the application's part, then
/// workos-sync's `migrate`, are the test's), dropped like [`fresh_database`]'s.
pub async fn empty_database() -> anyhow::Result<TestDb> {
    let name = new_name();
    let mut conn = admin().await?;
    diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await?;
    TestDb::new(name)
}

async fn drop_database(name: &str) -> anyhow::Result<()> {
    let mut conn = admin().await?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    Ok(())
}

impl TestDb {
    /// The handle of the existing database `name` (dropped with it).
    fn new(name: String) -> anyhow::Result<Self> {
        let url = url_for(&name);
        let store = Store::new(&url, 8, std::time::Duration::from_secs(5))?;
        Ok(Self {
            name,
            url,
            store,
            dropped: false,
        })
    }

    /// Drops the database (closing any connection still open to it).
    pub async fn teardown(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        drop_database(&self.name).await
    }

    /// The database's clock (`now()`).
    pub async fn now(&self) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
        #[derive(diesel::QueryableByName)]
        struct Now {
            #[diesel(sql_type = diesel::sql_types::Timestamptz)]
            now: chrono::DateTime<chrono::Utc>,
        }
        let mut conn = AsyncPgConnection::establish(&self.url).await?;
        let row: Now = diesel::sql_query("SELECT clock_timestamp() AS now")
            .get_result(&mut conn)
            .await?;
        Ok(row.now)
    }

    /// The rows of a query, as JSON objects (column name → value).
    pub async fn rows(&self, sql: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        #[derive(diesel::QueryableByName)]
        struct Rows {
            #[diesel(sql_type = diesel::sql_types::Text)]
            j: String,
        }
        let mut conn = AsyncPgConnection::establish(&self.url).await?;
        let row: Rows = diesel::sql_query(format!(
            "SELECT coalesce(json_agg(t), '[]')::text AS j FROM ({sql}) t"
        ))
        .get_result(&mut conn)
        .await?;
        Ok(serde_json::from_str(&row.j)?)
    }

    /// Runs raw SQL against the test database (to play the application's part).
    /// Every row of every table of this database's schema whose JSON text matches the
    /// POSIX regular expression `pattern` (case-insensitive), as `table: row` (the
    /// secret scans: no token or key anywhere).
    pub async fn rows_matching(&self, pattern: &str) -> anyhow::Result<Vec<String>> {
        let tables = self
            .rows(
                "SELECT table_name FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .await?;
        let quoted = pattern.replace('\'', "''");
        let mut found = Vec::new();
        for t in tables {
            let name = t["table_name"]
                .as_str()
                .unwrap_or_default()
                .replace('"', "\"\"");
            for r in self
                .rows(&format!(
                    "SELECT row_to_json(t)::text AS row FROM \"{name}\" t \
                     WHERE row_to_json(t)::text ~* '{quoted}'"
                ))
                .await?
            {
                found.push(format!("{name}: {}", r["row"].as_str().unwrap_or_default()));
            }
        }
        Ok(found)
    }

    pub async fn exec(&self, sql: &str) -> anyhow::Result<usize> {
        let mut conn = AsyncPgConnection::establish(&self.url).await?;
        Ok(diesel::sql_query(sql).execute(&mut conn).await?)
    }
}

impl Drop for TestDb {
    /// A test that panicked (or forgot `teardown`) still drops its database: on a thread
    /// of its own with a runtime of its own, since `Drop` cannot await.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(drop_database(&name))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("testkit: could not drop test database {}", self.name);
        }
    }
}
