//! Named cursors in `sync_cursors` (backfill, the Events API and the time of its
//! event): read, stored, listed by `status`. Failures are [`StoreError`]s.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::{Store, StoreError, schema::sync_cursors};

impl Store {
    /// Every stored cursor: (name, cursor, last run).
    pub async fn cursors(
        &self,
    ) -> Result<Vec<(String, Option<String>, Option<DateTime<Utc>>)>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(sync_cursors::table
            .order(sync_cursors::name)
            .select((
                sync_cursors::name,
                sync_cursors::cursor,
                sync_cursors::last_run_at,
            ))
            .load(&mut conn)
            .await?)
    }

    /// Reads a named cursor.
    pub async fn cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(sync_cursors::table
            .find(name)
            .select(sync_cursors::cursor)
            .first::<Option<String>>(&mut conn)
            .await
            .optional()?
            .flatten())
    }

    /// Stores a named cursor.
    pub async fn set_cursor(&self, name: &str, cursor: Option<&str>) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        diesel::insert_into(sync_cursors::table)
            .values((
                sync_cursors::name.eq(name),
                sync_cursors::cursor.eq(cursor),
                sync_cursors::last_run_at.eq(diesel::dsl::now),
            ))
            .on_conflict(sync_cursors::name)
            .do_update()
            .set((
                sync_cursors::cursor.eq(cursor),
                sync_cursors::last_run_at.eq(diesel::dsl::now),
                sync_cursors::updated_at.eq(diesel::dsl::now),
            ))
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}
