//! The users table as the write path sees it: which physical column each of our logical
//! columns is (the table our migration made: the same names; an adopted table: the names
//! configured in `database.users_columns`, else ours, else ours in camelCase, as the
//! WorkOS sync guide's Prisma and Drizzle tables have them), and how each entity's
//! delete is made (`sync.*_delete`). Resolved once per store from the catalog; every
//! statement of the write path is then built from it (`sql`), so an adopted table costs
//! nothing per event.
//!
//! Failure model: a users table that lacks a column the write path needs, or a mapping
//! that names a column the table does not have, is a [`LayoutError`] whose message says
//! what to run; the store then refuses to apply (`StoreError::Schema`), it never guesses.

use std::collections::BTreeMap;

use workos_sync_core::{Entity, settings::DeleteMode};

/// One of our users columns: its name, and how `migrate --adopt` adds it to a table
/// that lacks it (`None`: the table must already have it).
#[derive(Debug, Clone, Copy)]
pub struct UserColumn {
    pub name: &'static str,
    pub add: Option<&'static str>,
    /// The write path cannot work without it (the others are kept up to date when
    /// present: created_at, updated_at, deleted_at).
    pub required: bool,
    /// The type family an existing column must belong to.
    pub family: Family,
}

/// Type families the write path's values can be assigned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Text,
    Bool,
    Json,
    Time,
}

impl Family {
    fn admits(self, data_type: &str) -> bool {
        match self {
            Family::Text => matches!(data_type, "text" | "character varying" | "character"),
            Family::Bool => data_type == "boolean",
            Family::Json => data_type == "jsonb",
            Family::Time => matches!(
                data_type,
                "timestamp with time zone" | "timestamp without time zone"
            ),
        }
    }
}

const fn c(name: &'static str, add: &'static str, family: Family) -> UserColumn {
    UserColumn {
        name,
        add: Some(add),
        required: true,
        family,
    }
}

const fn optional(name: &'static str, add: &'static str, family: Family) -> UserColumn {
    UserColumn {
        name,
        add: Some(add),
        required: false,
        family,
    }
}

/// Every users column workos-sync reads or writes, in a fixed order.
pub const USER_COLUMNS: [UserColumn; 17] = [
    UserColumn {
        name: "id",
        add: None,
        required: true,
        family: Family::Text,
    },
    UserColumn {
        name: "email",
        add: None,
        required: true,
        family: Family::Text,
    },
    c("name", "TEXT", Family::Text),
    c("usertag", "TEXT", Family::Text),
    c("avatar_url", "TEXT", Family::Text),
    c("first_name", "TEXT", Family::Text),
    c("last_name", "TEXT", Family::Text),
    c(
        "email_verified",
        "BOOLEAN NOT NULL DEFAULT FALSE",
        Family::Bool,
    ),
    c("external_id", "TEXT", Family::Text),
    c(
        "metadata",
        "JSONB NOT NULL DEFAULT '{}'::jsonb",
        Family::Json,
    ),
    c("locale", "TEXT", Family::Text),
    c("last_sign_in_at", "TIMESTAMPTZ", Family::Time),
    // Nullable when added to a table with rows: those rows have no version yet, and
    // the first event or backfill for each overwrites its WorkOS columns.
    c("workos_created_at", "TIMESTAMPTZ", Family::Time),
    c("workos_updated_at", "TIMESTAMPTZ", Family::Time),
    optional(
        "created_at",
        "TIMESTAMPTZ NOT NULL DEFAULT now()",
        Family::Time,
    ),
    optional(
        "updated_at",
        "TIMESTAMPTZ NOT NULL DEFAULT now()",
        Family::Time,
    ),
    optional("deleted_at", "TIMESTAMPTZ", Family::Time),
];

/// A column of the users table as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    pub name: String,
    /// `information_schema.columns.data_type`.
    pub data_type: String,
    pub nullable: bool,
    pub has_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "database.users_columns.{0} is not a users column of workos-sync (known: id, email, name, usertag, avatar_url, first_name, last_name, email_verified, external_id, metadata, locale, last_sign_in_at, workos_created_at, workos_updated_at, created_at, updated_at, deleted_at)"
    )]
    UnknownColumn(String),
    #[error(
        "database.users_columns.{logical} = {physical:?}, but the users table has no such column"
    )]
    MappedMissing { logical: String, physical: String },
    #[error(
        "users column {physical:?} would hold two of ours (the second: {logical}); map each of ours to its own column in database.users_columns"
    )]
    SharedColumn {
        logical: &'static str,
        physical: String,
    },
    #[error(
        "the users table has no {0} column (every WorkOS user needs one); it cannot be adopted"
    )]
    Unadoptable(&'static str),
    #[error(
        "the users table has no column for {0}: run `workos-sync migrate` (or `migrate --adopt` for an application's own table)"
    )]
    NotMigrated(&'static str),
    #[error(
        "users column {physical:?} (our {logical}) is {data_type}, which cannot hold {family:?} values"
    )]
    WrongType {
        logical: &'static str,
        physical: String,
        data_type: String,
        family: Family,
    },
    #[error(
        "sync.{setting} = \"soft\" needs a deleted_at column in users: run `workos-sync migrate`"
    )]
    NoDeletedAt { setting: &'static str },
}

/// Where one of our columns is in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// At this physical column.
    At(String),
    /// Absent; `migrate` adds it under this name.
    Missing(String),
}

/// `avatar_url` → `avatarUrl`.
pub fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for ch in snake.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// Where each of [`USER_COLUMNS`] is in a table with `columns`, given the configured
/// `mapping`: as configured, else by our name, else in camelCase, else missing (to be
/// added under the configured name, or ours). Checks the types of what is found.
pub fn resolve(
    columns: &[CatalogColumn],
    mapping: &BTreeMap<String, String>,
) -> Result<Vec<Found>, LayoutError> {
    if let Some(k) = mapping
        .keys()
        .find(|k| !USER_COLUMNS.iter().any(|c| c.name == k.as_str()))
    {
        return Err(LayoutError::UnknownColumn(k.clone()));
    }
    let by_name = |n: &str| columns.iter().find(|c| c.name == n);
    let mut out = Vec::with_capacity(USER_COLUMNS.len());
    for col in &USER_COLUMNS {
        let found = match mapping.get(col.name) {
            Some(physical) => match by_name(physical) {
                Some(c) => Some(c),
                // Not there yet: `migrate` adds it under the configured name.
                None if col.add.is_some() => None,
                None => {
                    return Err(LayoutError::MappedMissing {
                        logical: col.name.into(),
                        physical: physical.clone(),
                    });
                }
            },
            None => by_name(col.name).or_else(|| by_name(&camel(col.name))),
        };
        match found {
            Some(c) => {
                if !col.family.admits(&c.data_type) {
                    return Err(LayoutError::WrongType {
                        logical: col.name,
                        physical: c.name.clone(),
                        data_type: c.data_type.clone(),
                        family: col.family,
                    });
                }
                out.push(Found::At(c.name.clone()));
            }
            None => out.push(Found::Missing(
                mapping
                    .get(col.name)
                    .cloned()
                    .unwrap_or_else(|| col.name.to_owned()),
            )),
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (col, f) in USER_COLUMNS.iter().zip(&out) {
        let (Found::At(p) | Found::Missing(p)) = f;
        if !seen.insert(p.clone()) {
            return Err(LayoutError::SharedColumn {
                logical: col.name,
                physical: p.clone(),
            });
        }
    }
    Ok(out)
}

/// A SQL identifier, double-quoted.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// How each entity's delete is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteModes {
    pub users: DeleteMode,
    pub organizations: DeleteMode,
    pub memberships: DeleteMode,
}

impl DeleteModes {
    pub fn from_settings(s: &workos_sync_core::settings::SyncSettings) -> Self {
        Self {
            users: s.user_delete,
            organizations: s.organization_delete,
            memberships: s.membership_delete,
        }
    }

    /// True when `entity`'s rows are kept with `deleted_at` set.
    pub fn soft(&self, entity: Entity) -> bool {
        let mode = match entity {
            Entity::Users => self.users,
            Entity::Organizations => self.organizations,
            Entity::OrganizationMemberships => self.memberships,
            _ => DeleteMode::Delete,
        };
        mode == DeleteMode::Soft
    }
}

/// The resolved users table and delete modes, from which every statement is built.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The physical name of each of [`USER_COLUMNS`] (`None`: absent, only possible for
    /// the optional ones).
    users: Vec<Option<String>>,
    /// Whether the users email column accepts NULL (a soft delete then clears it to
    /// NULL; otherwise to `<id>@deleted.invalid`, which satisfies NOT NULL, UNIQUE and
    /// any e-mail format check, and is never deliverable: `.invalid` is reserved).
    pub email_nullable: bool,
    /// The application's own columns the lazy-sync answer shows, when the table has
    /// them (never written by sync).
    pub bio: bool,
    pub details: bool,
    /// The version column accepts NULL (an adopted table's rows before their first
    /// event): the upsert's guard then lets any version replace a missing one.
    pub version_nullable: bool,
    /// Of created_at and updated_at, the ones the table gives no default (Prisma's
    /// `@updatedAt`): the insert sets them (ours have defaults, so it never does).
    pub stamp_on_insert: Vec<&'static str>,
    pub deletes: DeleteModes,
}

impl Layout {
    /// Our own table's layout: every name as ours, email NOT NULL (the schema of our
    /// migrations).
    pub fn own(deletes: DeleteModes) -> Self {
        Self {
            users: USER_COLUMNS
                .iter()
                .map(|c| Some(c.name.to_owned()))
                .collect(),
            email_nullable: false,
            bio: true,
            details: true,
            version_nullable: false,
            stamp_on_insert: Vec::new(),
            deletes,
        }
    }

    /// The layout of a users table with `columns`, or why the write path cannot use it.
    pub fn from_catalog(
        columns: &[CatalogColumn],
        mapping: &BTreeMap<String, String>,
        deletes: DeleteModes,
    ) -> Result<Self, LayoutError> {
        if columns.is_empty() {
            return Err(LayoutError::NotMigrated("id"));
        }
        let found = resolve(columns, mapping)?;
        let mut users = Vec::with_capacity(found.len());
        for (col, f) in USER_COLUMNS.iter().zip(found) {
            match f {
                Found::At(p) => users.push(Some(p)),
                Found::Missing(_) if col.required => {
                    return Err(LayoutError::NotMigrated(col.name));
                }
                Found::Missing(_) => users.push(None),
            }
        }
        let has = |n: &str| columns.iter().any(|c| c.name == n);
        let mut layout = Self {
            email_nullable: false,
            bio: has("bio"),
            details: has("details"),
            version_nullable: false,
            stamp_on_insert: Vec::new(),
            users,
            deletes,
        };
        let column = |l: &Layout, logical: &str| {
            l.physical(logical)
                .and_then(|p| columns.iter().find(|c| c.name == p))
                .cloned()
        };
        layout.version_nullable = column(&layout, "workos_updated_at").is_some_and(|c| c.nullable);
        layout.stamp_on_insert = ["created_at", "updated_at"]
            .into_iter()
            .filter(|l| column(&layout, l).is_some_and(|c| !c.has_default))
            .collect();
        let email = layout.physical("email").unwrap_or("email");
        let email_nullable = columns.iter().any(|c| c.name == email && c.nullable);
        if deletes.users == DeleteMode::Soft && layout.physical("deleted_at").is_none() {
            return Err(LayoutError::NoDeletedAt {
                setting: "user_delete",
            });
        }
        Ok(Self {
            email_nullable,
            ..layout
        })
    }

    /// The physical name of our users column `logical`, when the table has it.
    pub fn physical(&self, logical: &str) -> Option<&str> {
        USER_COLUMNS
            .iter()
            .position(|c| c.name == logical)
            .and_then(|i| self.users.get(i))
            .and_then(Option::as_deref)
    }

    /// The quoted physical name of `logical` (which must be present; the required
    /// columns always are).
    pub fn q(&self, logical: &str) -> String {
        quote(self.physical(logical).unwrap_or(logical))
    }

    /// The select list that reads a users row as [`crate::UserRow`] (our names, our
    /// types: an adopted table's `timestamp` columns are read as `timestamptz`, in the
    /// session's time zone).
    pub fn user_select(&self) -> String {
        let text = |c: &str| format!("{}::text AS {c}", self.q(c));
        let time = |c: &str| match self.physical(c) {
            Some(p) => format!("{}::timestamptz AS {c}", quote(p)),
            None => format!("NULL::timestamptz AS {c}"),
        };
        let mut cols = vec![
            text("id"),
            format!("COALESCE({}::text, '') AS email", self.q("email")),
            text("name"),
            format!("COALESCE({}::text, '') AS usertag", self.q("usertag")),
            text("avatar_url"),
            if self.bio {
                "bio::text AS bio".to_owned()
            } else {
                "NULL::text AS bio".to_owned()
            },
            if self.details {
                "to_jsonb(details) AS details".to_owned()
            } else {
                "NULL::jsonb AS details".to_owned()
            },
            text("first_name"),
            text("last_name"),
            format!("{} AS email_verified", self.q("email_verified")),
            text("external_id"),
            format!("{} AS metadata", self.q("metadata")),
            text("locale"),
        ];
        for c in [
            "last_sign_in_at",
            "workos_created_at",
            "workos_updated_at",
            "created_at",
            "updated_at",
        ] {
            cols.push(time(c));
        }
        // With hard deletes an adopted table's deleted-at column is the application's
        // alone: not read either.
        cols.push(if self.deletes.soft(Entity::Users) {
            time("deleted_at")
        } else {
            "NULL::timestamptz AS deleted_at".to_owned()
        });
        cols.join(", ")
    }

    /// True when the users table has our column `logical`.
    pub fn has(&self, logical: &str) -> bool {
        self.physical(logical).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[(&str, &str)]) -> Vec<CatalogColumn> {
        names
            .iter()
            .map(|(n, t)| CatalogColumn {
                name: (*n).into(),
                data_type: (*t).into(),
                nullable: true,
                has_default: false,
            })
            .collect()
    }

    /// The WorkOS sync guide's table (Prisma, camelCase).
    fn guide() -> Vec<CatalogColumn> {
        cols(&[
            ("id", "text"),
            ("email", "text"),
            ("name", "text"),
            ("usertag", "text"),
            ("avatarUrl", "text"),
            ("bio", "text"),
            ("details", "jsonb"),
            ("createdAt", "timestamp without time zone"),
            ("updatedAt", "timestamp without time zone"),
        ])
    }

    #[test]
    fn the_guides_camel_case_names_are_recognised() {
        let found = resolve(&guide(), &BTreeMap::new()).unwrap();
        let at = |n: &str| found[USER_COLUMNS.iter().position(|c| c.name == n).unwrap()].clone();
        assert_eq!(at("avatar_url"), Found::At("avatarUrl".into()));
        assert_eq!(at("created_at"), Found::At("createdAt".into()));
        assert_eq!(at("updated_at"), Found::At("updatedAt".into()));
        assert_eq!(at("usertag"), Found::At("usertag".into()));
        assert_eq!(at("first_name"), Found::Missing("first_name".into()));
        assert_eq!(at("deleted_at"), Found::Missing("deleted_at".into()));
        // Not migrated yet: the write path refuses, naming the first missing column.
        assert_eq!(
            Layout::from_catalog(&guide(), &BTreeMap::new(), DeleteModes::default()).unwrap_err(),
            LayoutError::NotMigrated("first_name")
        );
    }

    #[test]
    fn a_mapping_wins_and_must_name_a_real_column() {
        let mut table = guide();
        table.extend(cols(&[("picture", "character varying")]));
        let mapping = BTreeMap::from([("avatar_url".to_owned(), "picture".to_owned())]);
        let found = resolve(&table, &mapping).unwrap();
        assert_eq!(found[4], Found::At("picture".into()));
        // A column sync can add is added under the configured name; one it cannot
        // (the id, the email) must exist.
        let later = BTreeMap::from([("avatar_url".to_owned(), "photo".to_owned())]);
        assert_eq!(
            resolve(&table, &later).unwrap()[4],
            Found::Missing("photo".into())
        );
        let bad = BTreeMap::from([("id".to_owned(), "userId".to_owned())]);
        assert!(matches!(
            resolve(&table, &bad),
            Err(LayoutError::MappedMissing { .. })
        ));
        let unknown = BTreeMap::from([("avatar".to_owned(), "picture".to_owned())]);
        assert_eq!(
            resolve(&table, &unknown),
            Err(LayoutError::UnknownColumn("avatar".into()))
        );
    }

    #[test]
    fn two_of_ours_never_share_a_column_and_a_configured_name_is_where_one_is_added() {
        let shared = BTreeMap::from([("workos_created_at".to_owned(), "createdAt".to_owned())]);
        assert!(matches!(
            resolve(&guide(), &shared),
            Err(LayoutError::SharedColumn { .. })
        ));
        let named = BTreeMap::from([("deleted_at".to_owned(), "removedAt".to_owned())]);
        let found = resolve(&guide(), &named).unwrap();
        assert_eq!(found[16], Found::Missing("removedAt".into()));
    }

    #[test]
    fn incompatible_types_are_refused() {
        let mut table = guide();
        table[0].data_type = "uuid".into();
        assert!(matches!(
            resolve(&table, &BTreeMap::new()),
            Err(LayoutError::WrongType { logical: "id", .. })
        ));
    }

    #[test]
    fn our_own_table_resolves_to_our_names() {
        let table: Vec<CatalogColumn> = USER_COLUMNS
            .iter()
            .map(|c| CatalogColumn {
                name: c.name.into(),
                data_type: match c.family {
                    Family::Text => "text",
                    Family::Bool => "boolean",
                    Family::Json => "jsonb",
                    Family::Time => "timestamp with time zone",
                }
                .into(),
                nullable: c.name != "email",
                has_default: false,
            })
            .collect();
        let soft = DeleteModes {
            users: DeleteMode::Soft,
            ..DeleteModes::default()
        };
        let l = Layout::from_catalog(&table, &BTreeMap::new(), soft).unwrap();
        assert_eq!(l.q("avatar_url"), "\"avatar_url\"");
        assert!(!l.email_nullable);
        // Without deleted_at, soft deletes cannot be made.
        let without: Vec<CatalogColumn> = table
            .into_iter()
            .filter(|c| c.name != "deleted_at")
            .collect();
        assert_eq!(
            Layout::from_catalog(&without, &BTreeMap::new(), soft).unwrap_err(),
            LayoutError::NoDeletedAt {
                setting: "user_delete"
            }
        );
    }

    #[test]
    fn camel_case() {
        assert_eq!(camel("avatar_url"), "avatarUrl");
        assert_eq!(camel("last_sign_in_at"), "lastSignInAt");
        assert_eq!(camel("id"), "id");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
