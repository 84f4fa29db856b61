//! A deleted object known by its key alone: some `*.deleted` bodies carry `data` trimmed
//! to `{"object", "id"}`. A delete needs only the key, so such a body still makes a
//! [`Record`] whose other fields are empty; the store fills what the body leaves out
//! from the stored row with that id (a membership's user and organization, a domain's
//! organization, a role's or permission's slug and scope: they never change for one
//! id), and a key it cannot fill deletes nothing.
//!
//! Failure model: `data` with neither an `id` nor (for a role or permission) a `slug` is
//! an `Err` with the reason, which the decoder turns into its usual `BadRecord`.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{
    ApiKey, Connection, Directory, DirectoryGroup, DirectoryUser, Domain, Group, Invitation,
    Membership, Organization, Permission, Record, Role, User,
};
use crate::entity::Entity;

#[derive(Deserialize)]
struct Key {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    organization_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    directory_id: Option<String>,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

impl Record {
    /// The record of `entity` a deletion's `data` (as JSON `text`) names, stamped `at`.
    /// `organization_role` says whether the event was an `organization_role.deleted`.
    pub fn key_only(
        entity: Entity,
        organization_role: bool,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<Record, String> {
        let k: Key = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let id = nonempty(k.id);
        let need_id = || {
            id.clone()
                .ok_or_else(|| format!("{entity} deletion without an id"))
        };
        Ok(match entity {
            Entity::Users => Record::User(User::stub(&need_id()?, at)),
            Entity::Organizations => Record::Organization(Organization::stub(&need_id()?, at)),
            Entity::OrganizationDomains => Record::Domain(Domain {
                raw: Default::default(),
                id: need_id()?,
                organization_id: nonempty(k.organization_id).unwrap_or_default(),
                domain: String::new(),
                state: None,
                verification_strategy: None,
                created_at: Some(at),
                updated_at: Some(at),
            }),
            Entity::OrganizationMemberships => Record::Membership(Membership::stub(
                &need_id()?,
                &nonempty(k.user_id).unwrap_or_default(),
                &nonempty(k.organization_id).unwrap_or_default(),
                at,
            )),
            Entity::Roles => {
                let slug = nonempty(k.slug);
                if slug.is_none() && id.is_none() {
                    return Err("role deletion without a slug or an id".into());
                }
                // Without its organization an organization role is found by id.
                let organization_id = match (organization_role, nonempty(k.organization_id)) {
                    (true, Some(org)) => Some(org),
                    (true, None) if id.is_some() => Some(String::new()),
                    (true, None) => return Err("organization role without organization_id".into()),
                    (false, _) => None,
                };
                Record::Role(Role {
                    raw: Default::default(),
                    id,
                    slug: slug.unwrap_or_default(),
                    organization_id,
                    name: None,
                    description: None,
                    role_type: None,
                    permissions: Vec::new(),
                    created_at: Some(at),
                    updated_at: Some(at),
                })
            }
            Entity::Permissions => Record::Permission(Permission {
                raw: Default::default(),
                slug: match (nonempty(k.slug), &id) {
                    (Some(s), _) => s,
                    (None, Some(_)) => String::new(),
                    (None, None) => {
                        return Err("permission deletion without a slug or an id".into());
                    }
                },
                id,
                name: None,
                description: None,
                system: None,
                created_at: Some(at),
                updated_at: Some(at),
            }),
            Entity::Directories => Record::Directory(Directory::stub(&need_id()?, at)),
            Entity::DirectoryUsers => Record::DirectoryUser(DirectoryUser::stub(
                &need_id()?,
                &nonempty(k.directory_id).unwrap_or_default(),
                at,
            )),
            Entity::DirectoryGroups => Record::DirectoryGroup(DirectoryGroup::stub(
                &need_id()?,
                &nonempty(k.directory_id).unwrap_or_default(),
                at,
            )),
            // A membership's key is its user and group: a body without them names none.
            Entity::DirectoryGroupMemberships => {
                return Err("directory group membership without its user and group".into());
            }
            Entity::Invitations => Record::Invitation(Invitation {
                organization_id: nonempty(k.organization_id),
                ..Invitation::stub(&need_id()?, at)
            }),
            Entity::Connections => Record::Connection(Connection {
                organization_id: nonempty(k.organization_id),
                ..Connection::stub(&need_id()?, at)
            }),
            Entity::Groups => Record::Group(Group {
                organization_id: nonempty(k.organization_id),
                ..Group::stub(&need_id()?, at)
            }),
            Entity::ApiKeys => Record::ApiKey(ApiKey::stub(&need_id()?, at)),
            // Its key is its group and organization membership, which the full decoder
            // already required.
            Entity::GroupMemberships => {
                return Err("group membership without its group and membership".into());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_enough_and_required() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let u = Record::key_only(
            Entity::Users,
            false,
            r#"{"object":"user","id":"user_1"}"#,
            at,
        );
        assert_eq!(u.map(|r| r.key()), Ok("user_1".to_owned()));
        let m = Record::key_only(
            Entity::OrganizationMemberships,
            false,
            r#"{"id":"om_1"}"#,
            at,
        );
        assert_eq!(m.map(|r| r.key()), Ok("om_1".to_owned()));
        let r = Record::key_only(
            Entity::Roles,
            true,
            r#"{"slug":"admin","organization_id":"org_1"}"#,
            at,
        );
        assert_eq!(r.map(|r| r.key()), Ok("org_1:admin".to_owned()));
        assert!(Record::key_only(Entity::Roles, true, r#"{"slug":"admin"}"#, at).is_err());
        assert!(Record::key_only(Entity::Users, false, r#"{"object":"user"}"#, at).is_err());
        assert!(Record::key_only(Entity::Users, false, r#"{"id":""}"#, at).is_err());
        assert!(
            Record::key_only(Entity::Permissions, false, r#"{"object":"permission"}"#, at).is_err()
        );
        // By id alone: the slug (and scope) is the store's to find.
        let p = Record::key_only(Entity::Permissions, false, r#"{"id":"perm_1"}"#, at);
        assert!(p.is_ok_and(|r| r.key_unknown()));
    }
}
