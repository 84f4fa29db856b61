//! The tombstones of deleted records, for the operator: list them and remove one that
//! was written by mistake (`workos-sync tombstones list|remove`).
//!
//! A tombstone makes a deletion final: no later or replayed event brings the key back,
//! and nothing referring to a tombstoned user or organization is created. Removing one
//! is the only way back, so it takes the key's advisory lock where the key has one of
//! its own (users, organizations, roles, permissions: the same keys the apply path
//! takes), and removes nothing else: the next event or lazy sync for that key may then
//! create the row again. Failures are [`StoreError`]s.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Serialize;
use workos_sync_core::Entity;

use crate::{
    Store, StoreError,
    locks::{LOCK_DIRECTORY, LOCK_GROUP, LOCK_ORG, LOCK_PERMISSION, LOCK_ROLE, LOCK_USER},
    schema::tombstones,
};

/// One tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = tombstones, check_for_backend(diesel::pg::Pg))]
pub struct Tombstone {
    /// The entity's name (`users`, `organizations`, …).
    pub entity: String,
    /// The key within the entity (a WorkOS id, or a role's or permission's key).
    pub id: String,
    /// When WorkOS deleted it (the event's or the snapshot's time).
    pub deleted_at: DateTime<Utc>,
    /// The event that deleted it (`sync-deleted:<entity>:<key>:<uuid>` when lazy sync or a repair learnt it; for a
    /// membership replaced by a newer one for the same user and organization, the
    /// newer one's event).
    pub event_id: String,
    pub recorded_at: DateTime<Utc>,
}

/// The advisory lock namespace of a key's own scope, where it has one.
fn own_lock(entity: Entity) -> Option<i32> {
    match entity {
        Entity::Users => Some(LOCK_USER),
        Entity::Organizations => Some(LOCK_ORG),
        Entity::Roles => Some(LOCK_ROLE),
        Entity::Permissions => Some(LOCK_PERMISSION),
        Entity::Directories => Some(LOCK_DIRECTORY),
        Entity::Groups => Some(LOCK_GROUP),
        Entity::OrganizationDomains
        | Entity::OrganizationMemberships
        | Entity::DirectoryUsers
        | Entity::DirectoryGroups
        | Entity::DirectoryGroupMemberships
        | Entity::Invitations
        | Entity::Connections
        | Entity::GroupMemberships
        | Entity::ApiKeys => None,
    }
}

impl Store {
    /// Tombstones (of `entity`, or of every entity), newest first, at most `limit`.
    pub async fn tombstones(
        &self,
        entity: Option<Entity>,
        limit: i64,
    ) -> Result<Vec<Tombstone>, StoreError> {
        let mut conn = self.conn().await?;
        let mut q = tombstones::table
            .order((
                tombstones::recorded_at.desc(),
                tombstones::entity,
                tombstones::id,
            ))
            .limit(limit.max(0))
            .select(Tombstone::as_select())
            .into_boxed();
        if let Some(e) = entity {
            q = q.filter(tombstones::entity.eq(e.name()));
        }
        Ok(q.load(&mut conn).await?)
    }

    /// Removes the tombstone of `key` of `entity` (under that key's lock); returns it,
    /// or `None` when there was none. A row sync soft-deleted under that tombstone is
    /// made live again with no version (the next snapshot or event rewrites it); a row
    /// the application soft-deleted itself stays soft-deleted.
    pub async fn remove_tombstone(
        &self,
        entity: Entity,
        key: &str,
    ) -> Result<Option<Tombstone>, StoreError> {
        let revive = crate::sql::revive(&self.statements().await?.layout, entity);
        let mut conn = self.conn().await?;
        let id = key.to_owned();
        conn.transaction::<_, StoreError, _>(async move |c| {
            if let Some(ns) = own_lock(entity) {
                crate::locks::xact_lock(c, ns, &id).await?;
            }
            let removed = diesel::delete(
                tombstones::table
                    .filter(tombstones::entity.eq(entity.name()))
                    .filter(tombstones::id.eq(&id)),
            )
            .returning(Tombstone::as_returning())
            .get_result(c)
            .await
            .optional()?;
            if let (Some(t), Some(revive)) = (&removed, revive) {
                diesel::sql_query(revive)
                    .bind::<diesel::sql_types::Text, _>(&id)
                    .bind::<diesel::sql_types::Timestamptz, _>(t.deleted_at)
                    .execute(c)
                    .await?;
            }
            Ok(removed)
        })
        .await
    }
}
