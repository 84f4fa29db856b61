//! The event type names workos-sync acts on, named once. Every other type is verified,
//! queued and recorded as `ignored`.

pub const USER_CREATED: &str = "user.created";
pub const USER_UPDATED: &str = "user.updated";
pub const USER_DELETED: &str = "user.deleted";
/// Not a WorkOS type: a user as the API returns it now (lazy sync, backfill).
pub const USER_SNAPSHOT: &str = "user.snapshot";

/// The user event types WorkOS sends (and the reconciler asks the Events API for).
pub const USER_EVENTS: &[&str] = &[USER_CREATED, USER_UPDATED, USER_DELETED];

/// A bounded label for metrics: unknown types are folded into `other`.
pub fn metric_label(t: &str) -> &'static str {
    match t {
        USER_CREATED => USER_CREATED,
        USER_UPDATED => USER_UPDATED,
        USER_DELETED => USER_DELETED,
        USER_SNAPSHOT => USER_SNAPSHOT,
        _ => "other",
    }
}
