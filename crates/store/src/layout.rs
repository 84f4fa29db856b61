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

use workos_sync_core::{
    Entity,
    declare::{Adopt, Clear, Column, ColumnType, Declaration, STAMPS, Source},
    settings::DeleteMode,
};

/// One of our users columns: its name, and how `migrate --adopt` adds it to a table
/// that lacks it (`None`: the table must already have it).
#[derive(Debug, Clone, Copy)]
pub struct UserColumn {
    pub name: &'static str,
    pub add: Option<&'static str>,
    /// The write path cannot work without it (the others are kept up to date when
    /// present: created_at, updated_at, deleted_at, raw).
    pub required: bool,
    /// Added to an adopted table only when asked (`Adopt::Asked`: `database.users_raw`).
    pub asked: bool,
    /// The type an existing column must be able to hold.
    pub ty: ColumnType,
}

/// Every users column workos-sync reads or writes, in a fixed order: the declared ones
/// (`record::user::DECLARATION`), then the stamps.
pub fn user_columns() -> &'static [UserColumn] {
    static COLUMNS: std::sync::OnceLock<Vec<UserColumn>> = std::sync::OnceLock::new();
    COLUMNS.get_or_init(|| {
        let declared = USERS.columns.iter().map(|c| UserColumn {
            name: c.name,
            add: (c.adopt != Adopt::MustExist).then_some(c.ty.add_ddl()),
            required: c.adopt != Adopt::Asked,
            asked: c.adopt == Adopt::Asked,
            ty: c.ty,
        });
        let stamps = STAMPS.iter().map(|&(name, ty)| UserColumn {
            name,
            // Kept by the database; deleted_at is NULL on a live row.
            add: Some(if name == "deleted_at" {
                "TIMESTAMPTZ"
            } else {
                "TIMESTAMPTZ NOT NULL DEFAULT now()"
            }),
            required: false,
            asked: false,
            ty,
        });
        declared.chain(stamps).collect()
    })
}

const USERS: &Declaration = Entity::Users.declaration();

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
    #[error("database.users_columns.{name} is not a users column of workos-sync (known: {known})")]
    UnknownColumn { name: String, known: String },
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
        "users column {physical:?} (our {logical}) is {data_type}, which cannot hold {ty:?} values"
    )]
    WrongType {
        logical: &'static str,
        physical: String,
        data_type: String,
        ty: ColumnType,
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

/// `workos_updated_at` → `workosUpdatedAt`.
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

/// Where each of [`user_columns`] is in a table with `columns`, given the configured
/// `mapping`: as configured, else by our name, else in camelCase, else missing (to be
/// added under the configured name, or ours). Checks the types of what is found.
pub fn resolve(
    columns: &[CatalogColumn],
    mapping: &BTreeMap<String, String>,
) -> Result<Vec<Found>, LayoutError> {
    let ours = user_columns();
    if let Some(k) = mapping
        .keys()
        .find(|k| !ours.iter().any(|c| c.name == k.as_str()))
    {
        let known: Vec<&str> = ours.iter().map(|c| c.name).collect();
        return Err(LayoutError::UnknownColumn {
            name: k.clone(),
            known: known.join(", "),
        });
    }
    let by_name = |n: &str| columns.iter().find(|c| c.name == n);
    let mut out = Vec::with_capacity(ours.len());
    for col in ours {
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
                if !col.ty.admits(&c.data_type) {
                    return Err(LayoutError::WrongType {
                        logical: col.name,
                        physical: c.name.clone(),
                        data_type: c.data_type.clone(),
                        ty: col.ty,
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
    for (col, f) in ours.iter().zip(&out) {
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

/// How each entity's delete is made: `sync.<setting>` of each entity that declares one
/// (`Declaration::delete_setting`), hard for the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteModes([DeleteMode; Entity::COUNT]);

impl DeleteModes {
    pub fn from_settings(s: &workos_sync_core::settings::SyncSettings) -> Self {
        let mut modes = Self::default();
        for e in Entity::ALL {
            if let Some(setting) = e.declaration().delete_setting {
                modes = modes.with(e, s.delete_mode(setting));
            }
        }
        modes
    }

    /// These modes with `entity`'s set to `mode` (an entity without a delete setting
    /// stays hard).
    pub fn with(mut self, entity: Entity, mode: DeleteMode) -> Self {
        if entity.declaration().delete_setting.is_some() {
            self.0[entity.index()] = mode;
        }
        self
    }

    /// Every entity that has a soft mode set to soft.
    pub fn all_soft() -> Self {
        Entity::ALL
            .into_iter()
            .fold(Self::default(), |m, e| m.with(e, DeleteMode::Soft))
    }

    /// True when `entity`'s rows are kept with `deleted_at` set.
    pub fn soft(&self, entity: Entity) -> bool {
        self.0[entity.index()] == DeleteMode::Soft
    }
}

/// The resolved users table and delete modes, from which every statement is built.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The physical name of each of [`user_columns`] (`None`: absent, only possible for
    /// the optional ones).
    users: Vec<Option<String>>,
    /// Whether the users email column (the one declared `Clear::Undeliverable`)
    /// accepts NULL: a soft delete then clears it to NULL, else to a placeholder.
    pub email_nullable: bool,
    /// Which of the declared application columns (`Declaration::app_columns`) the table
    /// has: reads show them (sync never writes them).
    pub app_columns: Vec<bool>,
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
            users: user_columns()
                .iter()
                .map(|c| Some(c.name.to_owned()))
                .collect(),
            email_nullable: false,
            app_columns: vec![true; USERS.app_columns.len()],
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
        for (col, f) in user_columns().iter().zip(found) {
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
            app_columns: USERS.app_columns.iter().map(|(c, _)| has(c)).collect(),
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
        layout.version_nullable = column(&layout, Column::VERSION.name).is_some_and(|c| c.nullable);
        layout.stamp_on_insert = ["created_at", "updated_at"]
            .into_iter()
            .filter(|l| column(&layout, l).is_some_and(|c| !c.has_default))
            .collect();
        let email_nullable = USERS
            .columns
            .iter()
            .filter(|c| c.clear == Clear::Undeliverable)
            .filter_map(|c| column(&layout, c.name))
            .any(|c| c.nullable);
        if let (true, Some(setting)) = (
            deletes.soft(Entity::Users) && layout.physical("deleted_at").is_none(),
            USERS.delete_setting,
        ) {
            return Err(LayoutError::NoDeletedAt { setting });
        }
        Ok(Self {
            email_nullable,
            ..layout
        })
    }

    /// The physical name of our users column `logical`, when the table has it.
    pub fn physical(&self, logical: &str) -> Option<&str> {
        user_columns()
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

    /// The expression that reads a users row as one JSON object of [`crate::UserRow`]
    /// (our names, our types: an adopted table's `timestamp` columns are read as
    /// `timestamptz`, in the session's time zone; a NULL in a column that is never NULL
    /// in ours, as its type's empty value).
    pub fn user_json(&self) -> String {
        let read = |physical: Option<&str>, ty: ColumnType| match (physical, ty) {
            (None, ty) => format!("NULL::{}", ty.pg()),
            (Some(p), ColumnType::Json) => format!("to_jsonb({})", quote(p)),
            (Some(p), ty) => format!("{}::{}", quote(p), ty.pg()),
        };
        let mut pairs = Vec::new();
        // Reads leave the raw object out (its own query when wanted).
        for c in USERS
            .columns
            .iter()
            .filter(|c| !matches!(c.source, Source::Raw))
        {
            let mut v = read(self.physical(c.name), c.ty);
            if !c.nullable && !matches!(c.source, Source::Created | Source::Updated) {
                let empty = match c.ty {
                    ColumnType::Text => "''",
                    ty => ty.empty_sql(),
                };
                v = format!("COALESCE({v}, {empty})");
            }
            pairs.push(format!("'{}', {v}", c.name));
        }
        for ((name, ty), has) in USERS.app_columns.iter().zip(&self.app_columns) {
            pairs.push(format!("'{name}', {}", read(has.then_some(*name), *ty)));
        }
        for (name, ty) in STAMPS {
            // With hard deletes an adopted table's deleted-at column is the
            // application's alone: not read either.
            let shown = name != "deleted_at" || self.deletes.soft(Entity::Users);
            let p = self.physical(name).filter(|_| shown);
            pairs.push(format!("'{name}', {}", read(p, ty)));
        }
        format!("json_build_object({})::text", pairs.join(", "))
    }

    /// True when the users table has our column `logical`.
    pub fn has(&self, logical: &str) -> bool {
        self.physical(logical).is_some()
    }
}
