//! The rows of the B2B tables as the lazy-sync endpoints and the CLI return them, and
//! the reads that load them (off the apply path). Failures are [`StoreError`]s.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use workos_sync_core::Entity;

use crate::{
    Store, StoreError,
    schema::{organization_domains, organization_memberships, organizations},
};

/// A row of `organizations`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = organizations, check_for_backend(diesel::pg::Pg))]
pub struct OrganizationRow {
    pub id: String,
    pub name: String,
    pub external_id: Option<String>,
    pub metadata: serde_json::Value,
    pub stripe_customer_id: Option<String>,
    pub workos_created_at: DateTime<Utc>,
    pub workos_updated_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set by a soft delete (`sync.organization_delete = "soft"`).
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A row of `organization_domains` (no verification token: it is never stored).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = organization_domains, check_for_backend(diesel::pg::Pg))]
pub struct DomainRow {
    pub id: String,
    pub organization_id: String,
    pub domain: String,
    pub state: Option<String>,
    pub verification_strategy: Option<String>,
    pub workos_created_at: DateTime<Utc>,
    pub workos_updated_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of `organization_memberships`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = organization_memberships, check_for_backend(diesel::pg::Pg))]
pub struct MembershipRow {
    pub id: String,
    pub user_id: String,
    pub organization_id: String,
    pub status: String,
    pub role_slug: Option<String>,
    pub role_slugs: Vec<Option<String>>,
    pub custom_attributes: serde_json::Value,
    pub directory_managed: bool,
    pub workos_created_at: DateTime<Utc>,
    pub workos_updated_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set by a soft delete (`sync.membership_delete = "soft"`).
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Store {
    /// An organization row by id.
    pub async fn get_organization(&self, id: &str) -> Result<Option<OrganizationRow>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(organizations::table
            .find(id)
            .select(OrganizationRow::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// The domains of one organization, by domain name.
    pub async fn domains_of(&self, org: &str) -> Result<Vec<DomainRow>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(organization_domains::table
            .filter(organization_domains::organization_id.eq(org))
            .order(organization_domains::domain)
            .select(DomainRow::as_select())
            .load(&mut conn)
            .await?)
    }

    /// The memberships of one user, by organization.
    /// A membership row by id.
    pub async fn get_membership(&self, id: &str) -> Result<Option<MembershipRow>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(organization_memberships::table
            .find(id)
            .select(MembershipRow::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    pub async fn memberships_of_user(&self, user: &str) -> Result<Vec<MembershipRow>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(organization_memberships::table
            .filter(organization_memberships::user_id.eq(user))
            .order(organization_memberships::organization_id)
            .select(MembershipRow::as_select())
            .load(&mut conn)
            .await?)
    }

    /// Every membership, by id (tests, checks).
    pub async fn all_memberships(&self) -> Result<Vec<MembershipRow>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(organization_memberships::table
            .order(organization_memberships::id)
            .select(MembershipRow::as_select())
            .load(&mut conn)
            .await?)
    }

    /// Every organization, by id (tests, checks).
    pub async fn all_organizations(&self) -> Result<Vec<OrganizationRow>, StoreError> {
        let mut conn = self.conn().await?;
        Ok(organizations::table
            .order(organizations::id)
            .select(OrganizationRow::as_select())
            .load(&mut conn)
            .await?)
    }

    /// Rows per entity table (`status`), in [`Entity::ALL`] order.
    pub async fn row_counts(&self) -> Result<Vec<(Entity, i64)>, StoreError> {
        let mut conn = self.conn().await?;
        let mut out = Vec::new();
        for e in Entity::ALL {
            // Estimates would do for a dashboard, but exact counts stay cheap at the
            // sizes `status` is run on, and an operator comparing with WorkOS wants them.
            let n: i64 = diesel::sql_query(format!("SELECT count(*) AS n FROM {}", e.name()))
                .get_result::<Count>(&mut conn)
                .await?
                .n;
            out.push((e, n));
        }
        Ok(out)
    }
}

#[derive(QueryableByName)]
struct Estimate {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

impl Store {
    /// Rows per entity table as Postgres's planner estimates them (`pg_class.reltuples`,
    /// kept by autovacuum and ANALYZE): free to read, for the `workos_sync_table_rows`
    /// gauge. A table never analysed reads 0.
    pub async fn row_estimates(&self) -> Result<Vec<(Entity, i64)>, StoreError> {
        let mut conn = self.conn().await?;
        let names: Vec<&str> = Entity::ALL.iter().map(|e| e.name()).collect();
        let rows: Vec<Estimate> = diesel::sql_query(
            "SELECT c.relname::text AS name, greatest(c.reltuples, 0)::bigint AS n \
             FROM pg_class c WHERE c.oid = ANY(ARRAY(SELECT to_regclass(t) FROM unnest($1::text[]) AS t))",
        )
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&names)
        .load(&mut conn)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Entity::parse(&r.name).ok().map(|e| (e, r.n)))
            .collect())
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}
