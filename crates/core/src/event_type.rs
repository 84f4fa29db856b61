//! The event type names workos-sync acts on, named once. Every other type is verified,
//! queued and recorded as `ignored`.
//!
//! Each entity's types are grouped in one list ([`crate::entity::Entity::event_types`]),
//! which the decoder, the reconciler's `events[]` filter and the metric labels all read.

pub const USER_CREATED: &str = "user.created";
pub const USER_UPDATED: &str = "user.updated";
pub const USER_DELETED: &str = "user.deleted";

pub const ORGANIZATION_CREATED: &str = "organization.created";
pub const ORGANIZATION_UPDATED: &str = "organization.updated";
pub const ORGANIZATION_DELETED: &str = "organization.deleted";

pub const DOMAIN_CREATED: &str = "organization_domain.created";
pub const DOMAIN_UPDATED: &str = "organization_domain.updated";
pub const DOMAIN_DELETED: &str = "organization_domain.deleted";
pub const DOMAIN_VERIFIED: &str = "organization_domain.verified";
pub const DOMAIN_VERIFICATION_FAILED: &str = "organization_domain.verification_failed";

pub const MEMBERSHIP_CREATED: &str = "organization_membership.created";
pub const MEMBERSHIP_UPDATED: &str = "organization_membership.updated";
pub const MEMBERSHIP_DELETED: &str = "organization_membership.deleted";

pub const ROLE_CREATED: &str = "role.created";
pub const ROLE_UPDATED: &str = "role.updated";
pub const ROLE_DELETED: &str = "role.deleted";
pub const ORGANIZATION_ROLE_CREATED: &str = "organization_role.created";
pub const ORGANIZATION_ROLE_UPDATED: &str = "organization_role.updated";
pub const ORGANIZATION_ROLE_DELETED: &str = "organization_role.deleted";

pub const PERMISSION_CREATED: &str = "permission.created";
pub const PERMISSION_UPDATED: &str = "permission.updated";
pub const PERMISSION_DELETED: &str = "permission.deleted";

pub const DIRECTORY_ACTIVATED: &str = "dsync.activated";
pub const DIRECTORY_DELETED: &str = "dsync.deleted";
pub const DIRECTORY_USER_CREATED: &str = "dsync.user.created";
pub const DIRECTORY_USER_UPDATED: &str = "dsync.user.updated";
pub const DIRECTORY_USER_DELETED: &str = "dsync.user.deleted";
pub const DIRECTORY_GROUP_CREATED: &str = "dsync.group.created";
pub const DIRECTORY_GROUP_UPDATED: &str = "dsync.group.updated";
pub const DIRECTORY_GROUP_DELETED: &str = "dsync.group.deleted";
pub const DIRECTORY_USER_ADDED: &str = "dsync.group.user_added";
pub const DIRECTORY_USER_REMOVED: &str = "dsync.group.user_removed";
pub const INVITATION_CREATED: &str = "invitation.created";
pub const INVITATION_ACCEPTED: &str = "invitation.accepted";
pub const INVITATION_RESENT: &str = "invitation.resent";
pub const INVITATION_REVOKED: &str = "invitation.revoked";
pub const CONNECTION_ACTIVATED: &str = "connection.activated";
pub const CONNECTION_DEACTIVATED: &str = "connection.deactivated";
pub const CONNECTION_DELETED: &str = "connection.deleted";
/// WorkOS's emulator's names (the API reference has no created/updated connection
/// events): accepted as upserts.
pub const CONNECTION_CREATED: &str = "connection.created";
pub const CONNECTION_UPDATED: &str = "connection.updated";
pub const GROUP_CREATED: &str = "group.created";
pub const GROUP_UPDATED: &str = "group.updated";
pub const GROUP_DELETED: &str = "group.deleted";
pub const GROUP_MEMBER_ADDED: &str = "group.member_added";
pub const GROUP_MEMBER_REMOVED: &str = "group.member_removed";
pub const API_KEY_CREATED: &str = "api_key.created";
pub const API_KEY_UPDATED: &str = "api_key.updated";
pub const API_KEY_REVOKED: &str = "api_key.revoked";

/// Not a WorkOS type: an object as the API returns it now (lazy sync, backfill, verify).
pub const SNAPSHOT: &str = "snapshot";
/// The user snapshot's type (kept from before other entities had snapshots).
pub const USER_SNAPSHOT: &str = "user.snapshot";

pub const USER_EVENTS: &[&str] = &[USER_CREATED, USER_UPDATED, USER_DELETED];
pub const ORGANIZATION_EVENTS: &[&str] = &[
    ORGANIZATION_CREATED,
    ORGANIZATION_UPDATED,
    ORGANIZATION_DELETED,
];
pub const DOMAIN_EVENTS: &[&str] = &[
    DOMAIN_CREATED,
    DOMAIN_UPDATED,
    DOMAIN_DELETED,
    DOMAIN_VERIFIED,
    DOMAIN_VERIFICATION_FAILED,
];
pub const MEMBERSHIP_EVENTS: &[&str] =
    &[MEMBERSHIP_CREATED, MEMBERSHIP_UPDATED, MEMBERSHIP_DELETED];
pub const ROLE_EVENTS: &[&str] = &[
    ROLE_CREATED,
    ROLE_UPDATED,
    ROLE_DELETED,
    ORGANIZATION_ROLE_CREATED,
    ORGANIZATION_ROLE_UPDATED,
    ORGANIZATION_ROLE_DELETED,
];
pub const PERMISSION_EVENTS: &[&str] =
    &[PERMISSION_CREATED, PERMISSION_UPDATED, PERMISSION_DELETED];

pub const DIRECTORY_EVENTS: &[&str] = &[DIRECTORY_ACTIVATED, DIRECTORY_DELETED];
pub const DIRECTORY_USER_EVENTS: &[&str] = &[
    DIRECTORY_USER_CREATED,
    DIRECTORY_USER_UPDATED,
    DIRECTORY_USER_DELETED,
];
pub const DIRECTORY_GROUP_EVENTS: &[&str] = &[
    DIRECTORY_GROUP_CREATED,
    DIRECTORY_GROUP_UPDATED,
    DIRECTORY_GROUP_DELETED,
];
pub const DIRECTORY_MEMBERSHIP_EVENTS: &[&str] = &[DIRECTORY_USER_ADDED, DIRECTORY_USER_REMOVED];
pub const INVITATION_EVENTS: &[&str] = &[
    INVITATION_CREATED,
    INVITATION_ACCEPTED,
    INVITATION_RESENT,
    INVITATION_REVOKED,
];
pub const GROUP_EVENTS: &[&str] = &[GROUP_CREATED, GROUP_UPDATED, GROUP_DELETED];
pub const GROUP_MEMBERSHIP_EVENTS: &[&str] = &[GROUP_MEMBER_ADDED, GROUP_MEMBER_REMOVED];
pub const API_KEY_EVENTS: &[&str] = &[API_KEY_CREATED, API_KEY_UPDATED, API_KEY_REVOKED];
/// Types applied when delivered but never subscribed to: WorkOS's emulator (0.14.0) sends
/// `connection.created|updated`, which the API reference does not have (a webhook
/// endpoint's events are a closed list there).
pub const NOT_SUBSCRIBABLE: &[&str] = &[CONNECTION_CREATED, CONNECTION_UPDATED];

pub const CONNECTION_EVENTS: &[&str] = &[
    CONNECTION_ACTIVATED,
    CONNECTION_DEACTIVATED,
    CONNECTION_DELETED,
    CONNECTION_CREATED,
    CONNECTION_UPDATED,
];

/// The types whose event says the object is gone (a group membership's: that the user
/// left the group).
pub const DELETIONS: &[&str] = &[
    DIRECTORY_DELETED,
    DIRECTORY_USER_DELETED,
    DIRECTORY_GROUP_DELETED,
    DIRECTORY_USER_REMOVED,
    USER_DELETED,
    ORGANIZATION_DELETED,
    DOMAIN_DELETED,
    MEMBERSHIP_DELETED,
    ROLE_DELETED,
    ORGANIZATION_ROLE_DELETED,
    PERMISSION_DELETED,
    CONNECTION_DELETED,
    GROUP_DELETED,
    GROUP_MEMBER_REMOVED,
    API_KEY_REVOKED,
];

/// A bounded label for metrics: the known types and the snapshots; every other type is
/// folded into `other`.
pub fn metric_label(t: &str) -> &'static str {
    if t == USER_SNAPSHOT {
        return USER_SNAPSHOT;
    }
    if t == SNAPSHOT {
        return SNAPSHOT;
    }
    crate::entity::Entity::ALL
        .iter()
        .flat_map(|e| e.event_types().iter())
        .find(|known| **known == t)
        .copied()
        .unwrap_or("other")
}
