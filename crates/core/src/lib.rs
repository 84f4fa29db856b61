//! workos-sync core: the WorkOS event and object model (entities, records), webhook signature verification, settings and
//! logging setup. No network or database I/O lives here, so everything is unit-testable.

pub mod backoff;
pub mod declare;
pub mod entity;
pub mod event;
pub mod event_type;
pub mod ids;
pub mod metric;
pub mod metrics_setup;
pub mod record;
pub mod secrets;
pub mod settings;
pub mod signature;
pub mod telemetry;

pub use entity::{Entity, EntitySet};
pub use event::{DecodeError, Envelope, Event, EventKind};
pub use ids::{IdError, check_object_id};
pub use record::{
    ApiKey, Connection, Directory, DirectoryGroup, DirectoryGroupMembership, DirectoryUser, Domain,
    Group, GroupMembership, Invitation, Membership, Organization, Permission, Record, Role, User,
    UserRow,
};
pub use settings::{Settings, SettingsError};
pub use signature::SignatureError;

/// Milliseconds since the Unix epoch by the system clock (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
