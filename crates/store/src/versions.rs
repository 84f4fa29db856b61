//! Every row's key and version of one table, for drift detection (`workos-sync verify`):
//! read through the users layout for users. Off the apply path; failures are
//! [`StoreError`]s.

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Bool, Nullable, Text, Timestamptz},
};
use diesel_async::RunQueryDsl;
use workos_sync_core::Entity;

use crate::{Store, StoreError, sql};

/// One row as drift detection sees it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct RowVersion {
    #[diesel(sql_type = Text)]
    pub key: String,
    /// `workos_updated_at` (NULL: an adopted row no event has reached).
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub updated_at: Option<DateTime<Utc>>,
    /// Soft-deleted (`deleted_at` set).
    #[diesel(sql_type = Bool)]
    pub deleted: bool,
    /// When this database last wrote the row (`updated_at`; NULL: an adopted users
    /// table without one).
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub written_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Every row of `entity`'s table: key, version, soft-deleted.
    pub async fn versions(&self, entity: Entity) -> Result<Vec<RowVersion>, StoreError> {
        let st = self.statements().await?;
        let mut conn = self.conn().await?;
        Ok(diesel::sql_query(sql::versions_select(&st.layout, entity))
            .load(&mut conn)
            .await?)
    }
}
