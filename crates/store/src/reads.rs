//! Plain reads of the synced tables and housekeeping of `processed_events`, off the
//! apply path. Failures are [`StoreError`]s.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::{
    Store, StoreError, UserRow,
    schema::{processed_events, tombstones},
};

/// A row read as one JSON object (`Layout::user_json`).
#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    row: String,
}

impl JsonRow {
    fn user(self) -> Result<UserRow, StoreError> {
        serde_json::from_str(&self.row)
            .map_err(|_| StoreError::Invariant("a users row did not read as UserRow"))
    }
}

impl Store {
    /// A user row by id.
    pub async fn get_user(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let st = self.statements().await?;
        let mut conn = self.conn().await?;
        let row: Option<JsonRow> = diesel::sql_query(&st.user_by_id)
            .bind::<diesel::sql_types::Text, _>(id)
            .get_result(&mut conn)
            .await
            .optional()?;
        row.map(JsonRow::user).transpose()
    }

    /// One row of `entity`'s table by key, every column as JSON (`to_jsonb`): reads of
    /// the entities that have no typed row here (Directory Sync's).
    pub async fn row_json(
        &self,
        entity: workos_sync_core::Entity,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let t = crate::tables::table(entity);
        let mut conn = self.conn().await?;
        let row: Option<JsonRow> = diesel::sql_query(format!(
            "SELECT to_jsonb(t)::text AS row FROM {table} t WHERE {key}::text = $1",
            table = t.table,
            key = crate::layout::quote(t.key),
        ))
        .bind::<diesel::sql_types::Text, _>(key)
        .get_result(&mut conn)
        .await
        .optional()?;
        row.map(|r| {
            serde_json::from_str(&r.row)
                .map_err(|_| StoreError::Invariant("a row did not read as JSON"))
        })
        .transpose()
    }

    /// The directory groups directory user `id` is a member of, every column as JSON,
    /// by group id.
    pub async fn directory_groups_of_user(
        &self,
        id: &str,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut conn = self.conn().await?;
        let rows: Vec<JsonRow> = diesel::sql_query(
            "SELECT to_jsonb(g)::text AS row FROM directory_groups g \
             JOIN directory_group_memberships m ON m.directory_group_id = g.id \
             WHERE m.directory_user_id = $1 ORDER BY g.id",
        )
        .bind::<diesel::sql_types::Text, _>(id)
        .load(&mut conn)
        .await?;
        rows.into_iter()
            .map(|r| {
                serde_json::from_str(&r.row)
                    .map_err(|_| StoreError::Invariant("a row did not read as JSON"))
            })
            .collect()
    }

    /// True when user `id` has a tombstone.
    pub async fn is_tombstoned(&self, id: &str) -> Result<bool, StoreError> {
        self.is_tombstoned_in(workos_sync_core::Entity::Users, id)
            .await
    }

    /// True when `key` of `entity` has a tombstone.
    pub async fn is_tombstoned_in(
        &self,
        entity: workos_sync_core::Entity,
        key: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let n: i64 = tombstones::table
            .filter(tombstones::entity.eq(entity.name()))
            .filter(tombstones::id.eq(key))
            .count()
            .get_result(&mut conn)
            .await?;
        Ok(n > 0)
    }

    /// All user rows ordered by id (tests, checks).
    pub async fn all_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let st = self.statements().await?;
        let mut conn = self.conn().await?;
        let rows: Vec<JsonRow> = diesel::sql_query(&st.all_users).load(&mut conn).await?;
        rows.into_iter().map(JsonRow::user).collect()
    }

    /// Number of processed-event records.
    pub async fn processed_count(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn().await?;
        Ok(processed_events::table
            .count()
            .get_result(&mut conn)
            .await?)
    }
}
