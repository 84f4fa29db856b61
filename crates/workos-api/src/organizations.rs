//! The B2B endpoints: organizations (with their domains), memberships, roles and
//! permissions. Same transport, retries, rate budget and error rules as the users
//! endpoints ([`Client::get`]).
//!
//! Lists are asked oldest first (`order=asc`) where WorkOS pages them. Memberships are
//! asked for every status (the API returns only active ones by default): in the bracket
//! form WorkOS's emulator reads (`statuses[]=`) and in the comma form WorkOS's spec and
//! SDKs use (`statuses=a,b`), so neither silently drops inactive or pending ones.
//! Role lists are not paged.

use std::time::{Duration, Instant};

use workos_sync_core::{Entity, Membership, Organization, Permission, Role};

use crate::{ApiError, Client, Page, list_path};

/// Every membership status WorkOS documents.
pub const MEMBERSHIP_STATUSES: [&str; 3] = ["active", "inactive", "pending"];

/// Whose memberships to list.
#[derive(Debug, Clone, Copy)]
pub enum MembershipsOf<'a> {
    Organization(&'a str),
    User(&'a str),
}

pub(crate) fn paging(after: Option<&str>, limit: u32) -> Vec<(&'static str, String)> {
    let mut q = vec![("limit", limit.to_string()), ("order", "asc".to_string())];
    if let Some(a) = after {
        q.push(("after", a.to_string()));
    }
    q
}

impl Client {
    /// `GET /user_management/organization_memberships/{id}`; WorkOS's own
    /// `entity_not_found` for that id is [`ApiError::NotFound`].
    pub async fn get_membership(&self, id: &str) -> Result<Membership, ApiError> {
        workos_sync_core::check_object_id(id)?;
        let body = self
            .get(
                &format!("{}/{id}", list_path(Entity::OrganizationMemberships)),
                &[],
                Some(id),
                None,
            )
            .await?;
        crate::decode_body(&body.0)
    }

    /// `GET /organizations/{id}`.
    pub async fn get_organization(&self, id: &str) -> Result<Organization, ApiError> {
        self.fetch_organization(id, None).await
    }

    /// `GET /organizations/{id}`, giving up with [`ApiError::OutOfTime`] past `budget`.
    pub async fn get_organization_within(
        &self,
        id: &str,
        budget: Duration,
    ) -> Result<Organization, ApiError> {
        self.fetch_organization(id, Some(Instant::now() + budget))
            .await
    }

    async fn fetch_organization(
        &self,
        id: &str,
        deadline: Option<Instant>,
    ) -> Result<Organization, ApiError> {
        workos_sync_core::check_object_id(id)?;
        let body = self
            .get(
                &format!("{}/{id}", list_path(Entity::Organizations)),
                &[],
                Some(id),
                deadline,
            )
            .await?;
        let mut org: Organization = crate::decode_body(&body.0)?;
        for d in &mut org.domains {
            if d.organization_id.is_empty() {
                d.organization_id.clone_from(&org.id);
            }
        }
        Ok(org)
    }

    /// One page of `GET /organizations`, oldest first.
    pub async fn list_organizations(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<Organization>, ApiError> {
        let mut page: Page<Organization> = self
            .get_page(list_path(Entity::Organizations), &paging(after, limit))
            .await?;
        for org in &mut page.data {
            for d in &mut org.domains {
                if d.organization_id.is_empty() {
                    d.organization_id.clone_from(&org.id);
                }
            }
        }
        Ok(page)
    }

    /// One page of `GET /user_management/organization_memberships` of one organization
    /// or one user, every status, oldest first.
    pub async fn list_memberships(
        &self,
        of: MembershipsOf<'_>,
        after: Option<&str>,
        limit: u32,
        deadline: Option<Instant>,
    ) -> Result<Page<Membership>, ApiError> {
        let mut q = paging(after, limit);
        match of {
            MembershipsOf::Organization(id) => {
                workos_sync_core::check_object_id(id)?;
                q.push(("organization_id", id.to_owned()));
            }
            MembershipsOf::User(id) => {
                workos_sync_core::check_object_id(id)?;
                q.push(("user_id", id.to_owned()));
            }
        }
        for s in MEMBERSHIP_STATUSES {
            q.push(("statuses[]", s.to_owned()));
        }
        q.push(("statuses", MEMBERSHIP_STATUSES.join(",")));
        self.get_page_within(list_path(Entity::OrganizationMemberships), &q, deadline)
            .await
    }

    /// `GET /authorization/roles`: the environment roles (not paged).
    pub async fn list_roles(&self) -> Result<Vec<Role>, ApiError> {
        let page: Page<Role> = self.get_page(list_path(Entity::Roles), &[]).await?;
        // Environment roles: keyed by slug alone.
        Ok(page
            .data
            .into_iter()
            .filter(|r| r.role_type.as_deref() != Some("OrganizationRole"))
            .map(|r| Role {
                organization_id: None,
                ..r
            })
            .collect())
    }

    /// `GET /authorization/organizations/{id}/roles`: that organization's own roles (the
    /// environment roles the API lists beside them are left to [`Client::list_roles`]).
    pub async fn list_organization_roles(&self, org: &str) -> Result<Vec<Role>, ApiError> {
        workos_sync_core::check_object_id(org)?;
        let page: Page<Role> = self
            .get_page(&format!("/authorization/organizations/{org}/roles"), &[])
            .await?;
        Ok(page
            .data
            .into_iter()
            .filter(|r| r.role_type.as_deref() != Some("EnvironmentRole"))
            .map(|r| Role {
                organization_id: Some(org.to_owned()),
                ..r
            })
            .collect())
    }

    /// One page of `GET /authorization/permissions`, oldest first.
    pub async fn list_permissions(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<Permission>, ApiError> {
        self.get_page(list_path(Entity::Permissions), &paging(after, limit))
            .await
    }
}
