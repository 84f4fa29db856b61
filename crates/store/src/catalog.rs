//! What the database itself says about the installation's schema (`current_schema()`,
//! the session's search_path): the users table's columns, the relations that exist, the
//! migrations applied, the users table's unique keys. Read by the layout resolution and
//! by `migrate` before it changes anything. Failures are plain [`StoreError`]s.

use std::collections::HashSet;

use diesel::{
    QueryableByName,
    sql_types::{Bool, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{StoreError, layout::CatalogColumn};

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
    #[diesel(sql_type = Bool)]
    has_default: bool,
}

/// The columns of `users` in the session's schema (empty: no such table).
pub(crate) async fn users_columns(
    c: &mut AsyncPgConnection,
) -> Result<Vec<CatalogColumn>, StoreError> {
    let rows: Vec<ColumnRow> = diesel::sql_query(
        "SELECT column_name::text AS name, data_type::text AS data_type, \
         is_nullable = 'YES' AS nullable, \
         (column_default IS NOT NULL OR is_identity = 'YES' OR is_generated <> 'NEVER') \
         AS has_default \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = 'users' \
         ORDER BY ordinal_position",
    )
    .load(c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| CatalogColumn {
            name: r.name,
            data_type: r.data_type,
            nullable: r.nullable,
            has_default: r.has_default,
        })
        .collect())
}

#[derive(QueryableByName)]
struct NameRow {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Tables, views and sequences of the session's schema, by name.
pub(crate) async fn relations(c: &mut AsyncPgConnection) -> Result<HashSet<String>, StoreError> {
    let rows: Vec<NameRow> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')",
    )
    .load(c)
    .await?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// The migration versions recorded in the session's schema (none when the bookkeeping
/// table does not exist there).
pub(crate) async fn applied_versions(
    c: &mut AsyncPgConnection,
    relations: &HashSet<String>,
) -> Result<HashSet<String>, StoreError> {
    if !relations.contains("__diesel_schema_migrations") {
        return Ok(HashSet::new());
    }
    let rows: Vec<NameRow> =
        diesel::sql_query("SELECT version::text AS name FROM __diesel_schema_migrations")
            .load(c)
            .await?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// Other schemas of this database holding a workos-sync installation (its migrations'
/// bookkeeping beside its `processed_events`).
pub(crate) async fn installations_elsewhere(
    c: &mut AsyncPgConnection,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<NameRow> = diesel::sql_query(
        "SELECT n.nspname::text AS name FROM pg_namespace n \
         WHERE n.nspname <> current_schema() \
         AND EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid \
                     AND c.relname = '__diesel_schema_migrations') \
         AND EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid \
                     AND c.relname = 'processed_events') \
         ORDER BY 1",
    )
    .load(c)
    .await?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// True when `users` has a primary key or unique constraint on exactly `column` (what
/// the upsert's `ON CONFLICT` needs).
pub(crate) async fn users_unique_on(
    c: &mut AsyncPgConnection,
    column: &str,
) -> Result<bool, StoreError> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = Bool)]
        found: bool,
    }
    let f: Found = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_index i \
         JOIN pg_class t ON t.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0] \
         WHERE n.nspname = current_schema() AND t.relname = 'users' \
         AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL \
         AND a.attname = $1) AS found",
    )
    .bind::<Text, _>(column)
    .get_result(c)
    .await?;
    Ok(f.found)
}

/// The comment `migrate --adopt` leaves on our bookkeeping table (`migrate::ADOPTED`),
/// which says the users table is the application's.
pub(crate) async fn users_adopted(c: &mut AsyncPgConnection) -> Result<bool, StoreError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Bool)]
        adopted: bool,
    }
    let row: Row = diesel::sql_query(format!(
        "SELECT COALESCE(obj_description(to_regclass('__diesel_schema_migrations'), 'pg_class') \
         = '{}', false) AS adopted",
        crate::migrate::ADOPTED
    ))
    .get_result(c)
    .await?;
    Ok(row.adopted)
}

/// True when the schema `name` exists.
pub(crate) async fn schema_exists(
    c: &mut AsyncPgConnection,
    name: &str,
) -> Result<bool, StoreError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Bool)]
        found: bool,
    }
    let row: Row =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS found")
            .bind::<Text, _>(name)
            .get_result(c)
            .await?;
    Ok(row.found)
}
