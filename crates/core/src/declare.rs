//! The shape of an entity's one declaration: its table, key, the columns sync owns (each
//! with its type, whether an update sets it, what a soft delete leaves in it and how a
//! record gives its value), the parents whose deletion removes its rows, its delete
//! setting, its WorkOS list endpoint and event types. Each entity declares itself once,
//! in its own file under `record/` (`record::user::DECLARATION`…); the store builds its
//! statements, row values, SELECT lists, adoption DDL and tombstones from these, and the
//! pull crate its walks.
//!
//! Failure model: none; a declaration is constant data, checked against the Diesel
//! schema by the store's tests.

use std::{borrow::Cow, collections::BTreeMap};

use chrono::{DateTime, Utc};

use crate::{Entity, Record};

/// The Postgres type family of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Bool,
    Json,
    Time,
    /// `text[]` (a membership's role slugs, a role's permissions).
    TextList,
}

impl ColumnType {
    /// The type name in SQL casts.
    pub const fn pg(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Bool => "bool",
            ColumnType::Json => "jsonb",
            ColumnType::Time => "timestamptz",
            ColumnType::TextList => "text[]",
        }
    }

    /// The column definition `migrate --adopt` adds to a table that lacks it: nullable,
    /// or with a default (an existing table's rows have no value yet).
    pub const fn add_ddl(self) -> &'static str {
        match self {
            ColumnType::Text => "TEXT",
            ColumnType::Bool => "BOOLEAN NOT NULL DEFAULT FALSE",
            ColumnType::Json => "JSONB NOT NULL DEFAULT '{}'::jsonb",
            ColumnType::Time => "TIMESTAMPTZ",
            ColumnType::TextList => "TEXT[] NOT NULL DEFAULT '{}'",
        }
    }

    /// The empty value a read shows for a NULL in a column that is never NULL in ours
    /// (an adopted table's rows before their first event), and a soft delete's cleared
    /// value.
    pub const fn empty_sql(self) -> &'static str {
        match self {
            ColumnType::Text | ColumnType::Time => "NULL",
            ColumnType::Bool => "false",
            ColumnType::Json => "'{}'::jsonb",
            ColumnType::TextList => "'{}'::text[]",
        }
    }

    /// True when an existing column of `data_type` (`information_schema.columns`) can
    /// hold this type's values.
    pub fn admits(self, data_type: &str) -> bool {
        match self {
            ColumnType::Text => matches!(data_type, "text" | "character varying" | "character"),
            ColumnType::Bool => data_type == "boolean",
            ColumnType::Json => data_type == "jsonb",
            ColumnType::Time => matches!(
                data_type,
                "timestamp with time zone" | "timestamp without time zone"
            ),
            ColumnType::TextList => data_type == "ARRAY",
        }
    }
}

/// One column's value for one record, as the write path binds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Text(Option<Cow<'a, str>>),
    Bool(bool),
    /// An object; `None` is stored as `{}`.
    Json(Option<&'a BTreeMap<String, serde_json::Value>>),
    Time(Option<DateTime<Utc>>),
    TextList(Cow<'a, [String]>),
    /// WorkOS's object as received, already JSON text; none is stored as `{}`.
    Raw(&'a crate::record::Raw),
}

impl<'a> Value<'a> {
    pub fn text(s: &'a str) -> Self {
        Value::Text(Some(Cow::Borrowed(s)))
    }

    pub fn opt_text(s: Option<&'a str>) -> Self {
        Value::Text(s.map(Cow::Borrowed))
    }
}

/// Where a column's value comes from.
#[derive(Clone, Copy)]
pub enum Source {
    /// The record (a record of another entity never reaches this column).
    Record(for<'a> fn(&'a Record) -> Value<'a>),
    /// WorkOS's `created_at` ([`Record::created_at`]).
    Created,
    /// The version, WorkOS's `updated_at` ([`Record::updated_at`]).
    Updated,
    /// A user's usertag, allocated by the store when it creates the row.
    Usertag,
    /// WorkOS's object as received ([`Record::raw`]).
    Raw,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Record(_) => "Record",
            Source::Created => "Created",
            Source::Updated => "Updated",
            Source::Usertag => "Usertag",
            Source::Raw => "Raw",
        })
    }
}

/// What a soft delete leaves in a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clear {
    /// Kept as it is.
    Keep,
    /// The type's empty value (NULL, false, `{}`).
    Empty,
    /// NULL when the column accepts it, else `<key>@deleted.invalid` (satisfies NOT
    /// NULL, UNIQUE and any e-mail format check, and is never deliverable: `.invalid`
    /// is reserved).
    Undeliverable,
}

/// How `migrate --adopt` treats a column an existing table lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopt {
    /// Added ([`ColumnType::add_ddl`]).
    Add,
    /// The table must have it already (the key, a user's email).
    MustExist,
    /// Added to an adopted table only when its setting asks (`database.users_raw` for
    /// the users table's raw object); our own table always has it. Optional for the
    /// write path: written when the table has it.
    Asked,
}

/// A column sync writes.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    /// NULL is a value WorkOS can send (reads show NULL, not the empty value).
    pub nullable: bool,
    /// An update of an existing row sets it (the key never changes; a usertag is set
    /// once).
    pub on_update: bool,
    pub clear: Clear,
    pub adopt: Adopt,
    pub source: Source,
}

impl Column {
    /// A nullable column an update sets and a soft delete keeps.
    pub const fn new(
        name: &'static str,
        ty: ColumnType,
        get: for<'a> fn(&'a Record) -> Value<'a>,
    ) -> Self {
        Self {
            name,
            ty,
            nullable: true,
            on_update: true,
            clear: Clear::Keep,
            adopt: Adopt::Add,
            source: Source::Record(get),
        }
    }

    /// The key: never updated, never cleared, present in any adopted table.
    pub const fn key(name: &'static str, get: for<'a> fn(&'a Record) -> Value<'a>) -> Self {
        Self {
            nullable: false,
            on_update: false,
            adopt: Adopt::MustExist,
            ..Self::new(name, ColumnType::Text, get)
        }
    }

    pub const fn not_null(self) -> Self {
        Self {
            nullable: false,
            ..self
        }
    }

    pub const fn cleared(self, clear: Clear) -> Self {
        Self { clear, ..self }
    }

    pub const fn must_exist(self) -> Self {
        Self {
            adopt: Adopt::MustExist,
            ..self
        }
    }

    pub const fn set_once(self) -> Self {
        Self {
            on_update: false,
            ..self
        }
    }

    pub const fn from(self, source: Source) -> Self {
        Self { source, ..self }
    }

    /// `workos_created_at`, every table's.
    pub const CREATED: Column = Column {
        name: "workos_created_at",
        ty: ColumnType::Time,
        nullable: false,
        on_update: true,
        clear: Clear::Keep,
        adopt: Adopt::Add,
        source: Source::Created,
    };

    /// `raw`, every table's: WorkOS's object as received, minus its secrets (a field
    /// WorkOS adds is in the database without a release).
    pub const RAW: Column = Column {
        name: "raw",
        ty: ColumnType::Json,
        nullable: false,
        on_update: true,
        clear: Clear::Keep,
        adopt: Adopt::Add,
        source: Source::Raw,
    };

    pub const fn asked(self) -> Self {
        Self {
            adopt: Adopt::Asked,
            ..self
        }
    }

    /// `workos_updated_at`, every table's version: the upsert's guard (newest wins).
    pub const VERSION: Column = Column {
        name: "workos_updated_at",
        source: Source::Updated,
        ..Self::CREATED
    };
}

/// A value that moves without a new version and only ever forward (a user's last
/// sign-in): a snapshot carrying a later one refreshes just this column.
#[derive(Clone, Copy)]
pub struct Refresh {
    pub column: &'static str,
    pub get: fn(&Record) -> Option<DateTime<Utc>>,
    pub set: fn(&mut Record, DateTime<Utc>),
}

impl std::fmt::Debug for Refresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresh")
            .field("column", &self.column)
            .finish()
    }
}

/// One entity, declared once.
#[derive(Debug)]
pub struct Declaration {
    pub entity: Entity,
    /// The table (the entity's name).
    pub table: &'static str,
    /// The key column (first of `columns`).
    pub key: &'static str,
    /// The application may have this table already (`migrate --adopt`): its columns'
    /// names and presence are resolved from the catalog (the store's layout).
    pub adoptable: bool,
    /// Every column sync writes, key first, then the entity's own, then [`Column::RAW`],
    /// [`Column::CREATED`] and [`Column::VERSION`] last.
    pub columns: &'static [Column],
    /// The columns naming a parent whose deletion removes this table's rows.
    pub parents: &'static [(Entity, &'static str)],
    /// `sync.<setting>`, when the entity's deletes can be soft (rows kept with
    /// `deleted_at`).
    pub delete_setting: Option<&'static str>,
    /// A column of its own kind ([`Refresh`]).
    pub refresh: Option<Refresh>,
    /// The application's own columns a read shows when the table has them (never
    /// written by sync).
    pub app_columns: &'static [(&'static str, ColumnType)],
    /// WorkOS's list endpoint (backfill and verify walk it), when it has its own.
    pub list_path: Option<&'static str>,
    /// The WorkOS event types of this entity.
    pub event_types: &'static [&'static str],
    /// The key is a name WorkOS lets be used again (a role's or permission's slug, a
    /// group membership's pair): a tombstone of it stops only objects made before the
    /// deletion, and a deletion older than the stored row is stale.
    pub key_reused: bool,
    /// WorkOS versions its objects (`updated_at`). `false`: the version is only when
    /// WorkOS said so (a group membership's event time, a listing's time), so a
    /// comparison with WorkOS's lists (verify) is by presence alone.
    pub own_version: bool,
    /// WorkOS serves no list of it: mirrored from webhooks and the Events API
    /// (reconcile) only; backfill and verify leave it out.
    pub events_only: bool,
    /// Its list (`list_path`, paged, every object of the environment) is walked whole and
    /// on its own, each object decoded as an event's `data` is ([`Record::from_object`]):
    /// backfill, verify and the repair's ask by id need nothing else for it. `false`:
    /// the walk has a list of its own for it (organizations with their domains, a
    /// directory with what is under it…), or WorkOS serves no list.
    pub plain_list: bool,
    /// The entities `--only <this>` also covers (a directory's users, groups and
    /// memberships).
    pub includes: &'static [Entity],
}

impl Declaration {
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Columns every synced table has besides the declared ones: kept by the database
/// (`created_at`, `updated_at`), and `deleted_at`, set by soft deletes.
pub const STAMPS: [(&str, ColumnType); 3] = [
    ("created_at", ColumnType::Time),
    ("updated_at", ColumnType::Time),
    ("deleted_at", ColumnType::Time),
];

/// A [`Source::Record`] getter for one variant of [`Record`]:
/// `get!(User, u => Value::text(&u.email))`.
#[macro_export]
macro_rules! get {
    ($variant:ident, $x:ident => $body:expr) => {
        |r| match r {
            $crate::Record::$variant($x) => $body,
            #[allow(unreachable_patterns)]
            _ => $crate::declare::Value::Text(None),
        }
    };
}
