//! Each synced entity as a table plus a mapping: its columns (one list, from which every
//! statement of the write path is built, checked by a test against `schema.rs`), its key,
//! and the row the write path sends for a record ([`row`]).
//!
//! The write path sends each table's rows in one bind whatever the batch size, so each
//! statement's text is fixed and prepared once per connection: users, the hot path, as
//! one binary typed array per column (`user_columns`, expanded by `unnest`); the other
//! tables as one JSON array of rows (expanded by `json_to_recordset` with the column
//! list below as its record type; the JSON keys are the column names), which also
//! carries their `text[]` columns (`unnest` would flatten an array of arrays).
//!
//! Failure model: none here; a row that does not fit its column type is a failed
//! statement (`StoreError::Query`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use workos_sync_core::{Domain, Entity, Membership, Organization, Permission, Record, Role, User};

/// One column the write path sets: its name, Postgres type, and whether an update of an
/// existing row sets it (the key never changes; a user's usertag is set once).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    pub name: &'static str,
    pub ty: &'static str,
    pub on_update: bool,
}

const fn col(name: &'static str, ty: &'static str) -> Column {
    Column {
        name,
        ty,
        on_update: true,
    }
}

const fn fixed(name: &'static str, ty: &'static str) -> Column {
    Column {
        name,
        ty,
        on_update: false,
    }
}

/// A synced table.
#[derive(Debug)]
pub(crate) struct Table {
    pub entity: Entity,
    pub name: &'static str,
    /// The key column (also the first of `columns`).
    pub key: &'static str,
    /// Every column the write path sets, key first; the version column
    /// (`workos_updated_at`) is the guard of the upsert.
    pub columns: &'static [Column],
    /// The columns naming a parent whose deletion removes this table's rows.
    pub parents: &'static [(Entity, &'static str)],
}

const VERSION: [Column; 2] = [
    col("workos_created_at", "timestamptz"),
    col("workos_updated_at", "timestamptz"),
];

macro_rules! columns {
    ($($c:expr),* $(,)?) => {{
        const C: &[Column] = &[$($c,)* VERSION[0], VERSION[1]];
        C
    }};
}

/// The tables, in [`Entity::ALL`] order.
pub(crate) const TABLES: [Table; 6] = [
    Table {
        entity: Entity::Users,
        name: "users",
        key: "id",
        columns: columns![
            fixed("id", "text"),
            col("email", "text"),
            col("name", "text"),
            fixed("usertag", "text"),
            col("avatar_url", "text"),
            col("first_name", "text"),
            col("last_name", "text"),
            col("email_verified", "bool"),
            col("external_id", "text"),
            col("metadata", "jsonb"),
            col("locale", "text"),
            col("last_sign_in_at", "timestamptz"),
        ],
        parents: &[],
    },
    Table {
        entity: Entity::Organizations,
        name: "organizations",
        key: "id",
        columns: columns![
            fixed("id", "text"),
            col("name", "text"),
            col("external_id", "text"),
            col("metadata", "jsonb"),
            col("stripe_customer_id", "text"),
        ],
        parents: &[],
    },
    Table {
        entity: Entity::OrganizationDomains,
        name: "organization_domains",
        key: "id",
        columns: columns![
            fixed("id", "text"),
            col("organization_id", "text"),
            col("domain", "text"),
            col("state", "text"),
            col("verification_strategy", "text"),
        ],
        parents: &[(Entity::Organizations, "organization_id")],
    },
    Table {
        entity: Entity::OrganizationMemberships,
        name: "organization_memberships",
        key: "id",
        columns: columns![
            fixed("id", "text"),
            col("user_id", "text"),
            col("organization_id", "text"),
            col("status", "text"),
            col("role_slug", "text"),
            col("role_slugs", "text[]"),
            col("custom_attributes", "jsonb"),
            col("directory_managed", "bool"),
        ],
        parents: &[
            (Entity::Users, "user_id"),
            (Entity::Organizations, "organization_id"),
        ],
    },
    Table {
        entity: Entity::Roles,
        name: "roles",
        key: "key",
        columns: columns![
            fixed("key", "text"),
            col("id", "text"),
            col("slug", "text"),
            col("organization_id", "text"),
            col("name", "text"),
            col("description", "text"),
            col("type", "text"),
            col("permissions", "text[]"),
        ],
        parents: &[(Entity::Organizations, "organization_id")],
    },
    Table {
        entity: Entity::Permissions,
        name: "permissions",
        key: "key",
        columns: columns![
            fixed("key", "text"),
            col("id", "text"),
            col("slug", "text"),
            col("name", "text"),
            col("description", "text"),
            col("system", "bool"),
        ],
        parents: &[],
    },
];

pub(crate) fn table(e: Entity) -> &'static Table {
    &TABLES[e.index()]
}

fn map_or_empty(
    m: &Option<BTreeMap<String, serde_json::Value>>,
) -> std::borrow::Cow<'_, BTreeMap<String, serde_json::Value>> {
    match m {
        Some(m) => std::borrow::Cow::Borrowed(m),
        None => std::borrow::Cow::Owned(BTreeMap::new()),
    }
}

/// The row of one record, as the write path sends it: one field per column of its
/// [`Table`] (same names), plus `src`, the recorded event it depends on.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum Row<'a> {
    User(UserRow<'a>),
    Organization(OrganizationRow<'a>),
    Domain(DomainRow<'a>),
    Membership(MembershipRow<'a>),
    Role(RoleRow<'a>),
    Permission(PermissionRow<'a>),
}

pub(crate) type Map<'a> = std::borrow::Cow<'a, BTreeMap<String, serde_json::Value>>;

#[derive(Serialize)]
pub(crate) struct UserRow<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub name: Option<String>,
    pub usertag: String,
    pub avatar_url: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub email_verified: bool,
    pub external_id: Option<&'a str>,
    pub metadata: Map<'a>,
    pub locale: Option<&'a str>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub workos_created_at: DateTime<Utc>,
    pub workos_updated_at: DateTime<Utc>,
    pub src: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct OrganizationRow<'a> {
    id: &'a str,
    name: &'a str,
    external_id: Option<&'a str>,
    metadata: Map<'a>,
    stripe_customer_id: Option<&'a str>,
    workos_created_at: DateTime<Utc>,
    workos_updated_at: DateTime<Utc>,
    src: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct DomainRow<'a> {
    id: &'a str,
    organization_id: &'a str,
    domain: &'a str,
    state: Option<&'a str>,
    verification_strategy: Option<&'a str>,
    workos_created_at: DateTime<Utc>,
    workos_updated_at: DateTime<Utc>,
    src: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct MembershipRow<'a> {
    id: &'a str,
    user_id: &'a str,
    organization_id: &'a str,
    status: &'a str,
    role_slug: Option<&'a str>,
    role_slugs: Vec<String>,
    custom_attributes: Map<'a>,
    directory_managed: bool,
    workos_created_at: DateTime<Utc>,
    workos_updated_at: DateTime<Utc>,
    src: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct RoleRow<'a> {
    key: String,
    id: Option<&'a str>,
    slug: &'a str,
    organization_id: Option<&'a str>,
    name: Option<&'a str>,
    description: Option<&'a str>,
    #[serde(rename = "type")]
    role_type: Option<&'a str>,
    permissions: &'a [String],
    workos_created_at: DateTime<Utc>,
    workos_updated_at: DateTime<Utc>,
    src: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct PermissionRow<'a> {
    key: &'a str,
    id: Option<&'a str>,
    slug: &'a str,
    name: Option<&'a str>,
    description: Option<&'a str>,
    system: bool,
    workos_created_at: DateTime<Utc>,
    workos_updated_at: DateTime<Utc>,
    src: Option<&'a str>,
}

/// The row for `record`; `usertag` is used for users only (a new user's allocated tag,
/// or the stored one: an update does not set it).
pub(crate) fn row<'a>(record: &'a Record, usertag: String, src: Option<&'a str>) -> Row<'a> {
    let (created, updated) = (record.created_at(), record.updated_at());
    match record {
        Record::User(u) => Row::User(user_row(u, usertag, src)),
        Record::Organization(o) => Row::Organization(org_row(o, src)),
        Record::Domain(d) => Row::Domain(domain_row(d, created, updated, src)),
        Record::Membership(m) => Row::Membership(membership_row(m, src)),
        Record::Role(r) => Row::Role(role_row(r, created, updated, src)),
        Record::Permission(p) => Row::Permission(permission_row(p, created, updated, src)),
    }
}

fn user_row<'a>(u: &'a User, usertag: String, src: Option<&'a str>) -> UserRow<'a> {
    UserRow {
        id: &u.id,
        email: &u.email,
        name: u.display_name(),
        usertag,
        avatar_url: u.profile_picture_url.as_deref(),
        first_name: u.first_name.as_deref(),
        last_name: u.last_name.as_deref(),
        email_verified: u.email_verified,
        external_id: u.external_id.as_deref(),
        metadata: map_or_empty(&u.metadata),
        locale: u.locale.as_deref(),
        last_sign_in_at: u.last_sign_in_at,
        workos_created_at: u.created_at,
        workos_updated_at: u.updated_at,
        src,
    }
}

fn org_row<'a>(o: &'a Organization, src: Option<&'a str>) -> OrganizationRow<'a> {
    OrganizationRow {
        id: &o.id,
        name: &o.name,
        external_id: o.external_id.as_deref(),
        metadata: map_or_empty(&o.metadata),
        stripe_customer_id: o.stripe_customer_id.as_deref(),
        workos_created_at: o.created_at,
        workos_updated_at: o.updated_at,
        src,
    }
}

fn domain_row<'a>(
    d: &'a Domain,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    src: Option<&'a str>,
) -> DomainRow<'a> {
    DomainRow {
        id: &d.id,
        organization_id: &d.organization_id,
        domain: &d.domain,
        state: d.state.as_deref(),
        verification_strategy: d.verification_strategy.as_deref(),
        workos_created_at: created,
        workos_updated_at: updated,
        src,
    }
}

fn membership_row<'a>(m: &'a Membership, src: Option<&'a str>) -> MembershipRow<'a> {
    MembershipRow {
        id: &m.id,
        user_id: &m.user_id,
        organization_id: &m.organization_id,
        status: &m.status,
        role_slug: m.role.as_ref().map(|r| r.slug.as_str()),
        role_slugs: m.role_slugs(),
        custom_attributes: map_or_empty(&m.custom_attributes),
        directory_managed: m.directory_managed.unwrap_or(false),
        workos_created_at: m.created_at,
        workos_updated_at: m.updated_at,
        src,
    }
}

fn role_row<'a>(
    r: &'a Role,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    src: Option<&'a str>,
) -> RoleRow<'a> {
    RoleRow {
        key: r.key(),
        id: r.id.as_deref(),
        slug: &r.slug,
        organization_id: r.organization_id.as_deref(),
        name: r.name.as_deref(),
        description: r.description.as_deref(),
        role_type: r.role_type.as_deref(),
        permissions: &r.permissions,
        workos_created_at: created,
        workos_updated_at: updated,
        src,
    }
}

fn permission_row<'a>(
    p: &'a Permission,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    src: Option<&'a str>,
) -> PermissionRow<'a> {
    PermissionRow {
        key: &p.slug,
        id: p.id.as_deref(),
        slug: &p.slug,
        name: p.name.as_deref(),
        description: p.description.as_deref(),
        system: p.system.unwrap_or(false),
        workos_created_at: created,
        workos_updated_at: updated,
        src,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(table, column) -> type` as `schema.rs` declares them.
    fn schema_columns() -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let (mut table, mut sql_name) = (String::new(), None::<String>);
        for line in include_str!("schema.rs").lines().map(str::trim) {
            if let Some((name, _)) = line.strip_suffix('{').and_then(|r| r.split_once(" (")) {
                table = name.trim().to_owned();
            } else if let Some(n) = line.strip_prefix("#[sql_name = \"") {
                sql_name = Some(n.trim_end_matches("\"]").to_owned());
            } else if let Some((col, ty)) = line.split_once(" -> ") {
                let col = sql_name.take().unwrap_or_else(|| col.to_owned());
                out.push((table.clone(), col, ty.trim_end_matches(',').to_owned()));
            }
        }
        out
    }

    fn diesel_type(pg: &str) -> &'static str {
        match pg {
            "text" => "Text",
            "bool" => "Bool",
            "jsonb" => "Jsonb",
            "timestamptz" => "Timestamptz",
            "text[]" => "Array<Nullable<Text>>",
            other => panic!("no diesel type for {other}"),
        }
    }

    /// The one column list of each table agrees with schema.rs (names and types), and
    /// every column of the table it does not set is the database's or the
    /// application's own.
    #[test]
    fn columns_match_schema_rs() {
        let schema = schema_columns();
        for (i, t) in TABLES.iter().enumerate() {
            assert_eq!(
                t.entity.index(),
                i,
                "{}: TABLES out of Entity::ALL order",
                t.name
            );
            assert_eq!(t.columns[0].name, t.key, "{}: key first", t.name);
            let declared: Vec<&(String, String, String)> =
                schema.iter().filter(|(tb, ..)| tb == t.name).collect();
            assert!(!declared.is_empty(), "{} not in schema.rs", t.name);
            for c in t.columns {
                let found = declared.iter().find(|(_, col, _)| col == c.name);
                let Some((_, _, ty)) = found else {
                    panic!("{}.{} not in schema.rs", t.name, c.name)
                };
                let base = ty
                    .strip_prefix("Nullable<")
                    .map_or(ty.as_str(), |s| &s[..s.len() - 1]);
                assert_eq!(base, diesel_type(c.ty), "{}.{}", t.name, c.name);
            }
            for (_, col, _) in declared {
                let ours = t.columns.iter().any(|c| c.name == col);
                // deleted_at: set by soft deletes only (`sql`'s delete parts).
                let own = ["created_at", "updated_at", "bio", "details", "deleted_at"]
                    .contains(&col.as_str());
                assert!(
                    ours || own,
                    "{}.{col} is neither set by sync nor known",
                    t.name
                );
            }
            for (e, col) in t.parents {
                assert!(t.columns.iter().any(|c| c.name == *col), "{}.{col}", t.name);
                assert_ne!(*e, t.entity);
            }
        }
    }

    /// Each row type serialises to exactly its table's columns, plus `src`.
    #[test]
    fn rows_carry_exactly_the_columns() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let records = [
            Record::User(User::stub("user_1", at)),
            Record::Organization(Organization::stub("org_1", at)),
            Record::Domain(Domain {
                id: "org_domain_1".into(),
                organization_id: "org_1".into(),
                domain: "x.io".into(),
                state: None,
                verification_strategy: None,
                created_at: None,
                updated_at: None,
            }),
            Record::Membership(Membership {
                id: "om_1".into(),
                user_id: "user_1".into(),
                organization_id: "org_1".into(),
                status: "active".into(),
                role: None,
                roles: Vec::new(),
                custom_attributes: None,
                directory_managed: None,
                created_at: at,
                updated_at: at,
            }),
            Record::Role(Role {
                id: None,
                slug: "admin".into(),
                organization_id: None,
                name: None,
                description: None,
                role_type: None,
                permissions: Vec::new(),
                created_at: None,
                updated_at: None,
            }),
            Record::Permission(Permission {
                id: None,
                slug: "read".into(),
                name: None,
                description: None,
                system: None,
                created_at: None,
                updated_at: None,
            }),
        ];
        for r in &records {
            let t = table(r.entity());
            let v = serde_json::to_value(row(r, String::new(), None)).unwrap();
            let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            let mut want: Vec<&str> = t.columns.iter().map(|c| c.name).chain(["src"]).collect();
            keys.sort_unstable();
            want.sort_unstable();
            assert_eq!(keys, want, "{}", t.name);
        }
    }
}
