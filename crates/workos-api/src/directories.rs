//! Directory Sync's lists: `GET /directories`, `GET /directory_groups?directory=`,
//! `GET /directory_users?directory=|group=` (cursor pages, oldest first), and
//! `GET /directory_users/{id}` paced per directory (any other object by id:
//! `Client::get_record`).
//!
//! WorkOS limits Directory Users to 4 requests per second per directory: every call to
//! it first waits on a budget of its own per directory (`directory_users_per_second`,
//! below that limit), on top of the client's global budget, so a backfill of many
//! directories never goes over it for any one.
//!
//! Failure model: as the rest of the client (`ApiError`; retries of 429 and 5xx
//! honour `Retry-After`).

use std::time::Instant;

use workos_sync_core::{Directory, DirectoryGroup, DirectoryUser, Entity};

use crate::{ApiError, Client, Page, list_path, organizations::paging};

/// Whose directory users to list.
#[derive(Debug, Clone, Copy)]
pub enum DirectoryUsersOf<'a> {
    Directory(&'a str),
    /// A group's users (the group's directory, for the per-directory budget).
    Group {
        group: &'a str,
        directory: &'a str,
    },
}

impl Client {
    /// One page of `GET /directories`, oldest first.
    pub async fn list_directories(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<Directory>, ApiError> {
        self.get_page(list_path(Entity::Directories), &paging(after, limit))
            .await
    }

    /// One page of one directory's groups, oldest first.
    pub async fn list_directory_groups(
        &self,
        directory: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<DirectoryGroup>, ApiError> {
        workos_sync_core::check_object_id(directory)?;
        let mut q = paging(after, limit);
        q.push(("directory", directory.to_owned()));
        self.get_page(list_path(Entity::DirectoryGroups), &q).await
    }

    /// One page of a directory's (or a group's) users, oldest first, paced per
    /// directory (module header).
    pub async fn list_directory_users(
        &self,
        of: DirectoryUsersOf<'_>,
        after: Option<&str>,
        limit: u32,
        deadline: Option<Instant>,
    ) -> Result<Page<DirectoryUser>, ApiError> {
        let mut q = paging(after, limit);
        let directory = match of {
            DirectoryUsersOf::Directory(d) => {
                workos_sync_core::check_object_id(d)?;
                q.push(("directory", d.to_owned()));
                d
            }
            DirectoryUsersOf::Group { group, directory } => {
                workos_sync_core::check_object_id(group)?;
                q.push(("group", group.to_owned()));
                directory
            }
        };
        self.directory_budget(directory, deadline).await?;
        self.get_page_within(list_path(Entity::DirectoryUsers), &q, deadline)
            .await
    }

    /// `GET /directory_users/{id}`; WorkOS's own `entity_not_found` for that id is
    /// [`ApiError::NotFound`]. Paced by `directory`'s budget when it is known.
    pub async fn get_directory_user(
        &self,
        id: &str,
        directory: Option<&str>,
        deadline: Option<Instant>,
    ) -> Result<DirectoryUser, ApiError> {
        if let Some(d) = directory {
            workos_sync_core::check_object_id(id)?;
            self.directory_budget(d, deadline).await?;
        }
        self.get_object(Entity::DirectoryUsers, id, deadline).await
    }
}
