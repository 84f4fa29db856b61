//! The synced tables as the write path sees them: each entity's declaration
//! ([`workos_sync_core::declare::Declaration`], one file per entity in core's `record/`)
//! and the values a record gives its columns ([`values`]), gathered per table for one
//! bind per column ([`Rows`]).
//!
//! The write path sends each table's rows in a fixed number of binds whatever the batch
//! size, so each statement's text is fixed and prepared once per connection: a table
//! whose columns are all scalar as one binary typed array per column, expanded by
//! `unnest` (measured on users against a JSON array of rows: `json_to_recordset` cost
//! Postgres ~11 µs more per event in the worker benchmark, its text parsing of every
//! field and timestamp); a table with a `text[]` column (memberships, roles) as one JSON
//! array of rows, expanded by `json_to_recordset` with the column list as its record
//! type (`unnest` would flatten an array of arrays).
//!
//! Failure model: none here; a row that does not fit its column type is a failed
//! statement (`StoreError::Query`).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use diesel::{
    QueryResult,
    pg::Pg,
    query_builder::AstPass,
    sql_types::{Array, Bool, Jsonb, Nullable, Text, Timestamptz},
};
use serde::{Serialize, ser::SerializeMap};
use workos_sync_core::{
    Entity, Record,
    declare::{Column, ColumnType, Declaration, Source, Value},
};

/// A synced table: its entity's declaration.
pub(crate) type Table = Declaration;

/// The tables, in [`Entity::ALL`] order.
pub(crate) const TABLES: [&Table; Entity::COUNT] = {
    let mut out = [Entity::ALL[0].declaration(); Entity::COUNT];
    let mut i = 1;
    while i < Entity::COUNT {
        out[i] = Entity::ALL[i].declaration();
        i += 1;
    }
    out
};

pub(crate) fn table(e: Entity) -> &'static Table {
    TABLES[e.index()]
}

/// True when the table's rows travel as one binary array per column (no `text[]`
/// column).
pub(crate) fn columnar(t: &Table) -> bool {
    !t.columns.iter().any(|c| c.ty == ColumnType::TextList)
}

/// The value `record` gives column `c`; `usertag` is a user's (allocated for a new row,
/// or the stored one).
pub(crate) fn value<'a>(c: &Column, record: &'a Record, usertag: &str) -> Value<'a> {
    match c.source {
        Source::Record(get) => get(record),
        Source::Created => Value::Time(Some(record.created_at())),
        Source::Updated => Value::Time(Some(record.updated_at())),
        Source::Usertag => Value::Text(Some(Cow::Owned(usertag.to_owned()))),
        Source::Raw => Value::Raw(record.raw()),
    }
}

/// One column's values for a batch, typed for a binary bind.
pub(crate) enum ColumnArray<'a> {
    Text(Vec<Option<Cow<'a, str>>>),
    Bool(Vec<bool>),
    Json(Vec<serde_json::Value>),
    Time(Vec<Option<DateTime<Utc>>>),
    /// Raw objects ([`Source::Raw`]): their text, sent as jsonb as it is.
    Raw(Vec<RawJsonb<'a>>),
}

impl ColumnArray<'_> {
    fn new(c: &Column) -> Self {
        if matches!(c.source, Source::Raw) {
            return Self::Raw(Vec::new());
        }
        match c.ty {
            ColumnType::Text | ColumnType::TextList => Self::Text(Vec::new()),
            ColumnType::Bool => Self::Bool(Vec::new()),
            ColumnType::Json => Self::Json(Vec::new()),
            ColumnType::Time => Self::Time(Vec::new()),
        }
    }
}

fn json_object(
    m: Option<&std::collections::BTreeMap<String, serde_json::Value>>,
) -> serde_json::Value {
    serde_json::Value::Object(
        m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    )
}

/// A batch's rows of one table, as its write statement binds them.
pub(crate) enum Rows<'a> {
    /// One array per column (in declaration order), then the source event ids.
    Columns {
        columns: Vec<ColumnArray<'a>>,
        src: Vec<Option<&'a str>>,
    },
    /// A JSON array of rows, keyed by column name, plus `src`.
    Json(Vec<JsonRow<'a>>),
}

impl<'a> Rows<'a> {
    pub fn new(t: &'static Table) -> Self {
        if columnar(t) {
            Rows::Columns {
                columns: t.columns.iter().map(ColumnArray::new).collect(),
                src: Vec::new(),
            }
        } else {
            Rows::Json(Vec::new())
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Rows::Columns { src, .. } => src.is_empty(),
            Rows::Json(rows) => rows.is_empty(),
        }
    }

    /// Adds `record`'s row (`usertag`: see [`value`]; `src`: the recorded event it
    /// depends on).
    pub fn push(
        &mut self,
        t: &'static Table,
        record: &'a Record,
        usertag: &str,
        src: Option<&'a str>,
    ) {
        match self {
            Rows::Columns { columns, src: s } => {
                for (c, array) in t.columns.iter().zip(columns.iter_mut()) {
                    match (array, value(c, record, usertag)) {
                        (ColumnArray::Text(a), Value::Text(v)) => a.push(v),
                        (ColumnArray::Bool(a), Value::Bool(v)) => a.push(v),
                        (ColumnArray::Json(a), Value::Json(v)) => a.push(json_object(v)),
                        (ColumnArray::Time(a), Value::Time(v)) => a.push(v),
                        (ColumnArray::Raw(a), Value::Raw(v)) => a.push(RawJsonb(v.get())),
                        // A getter of another type than its column's (a test checks
                        // every declaration): pushed as the type's empty value, so
                        // every array keeps one entry per row.
                        (ColumnArray::Text(a), _) => a.push(None),
                        (ColumnArray::Bool(a), _) => a.push(false),
                        (ColumnArray::Json(a), _) => a.push(json_object(None)),
                        (ColumnArray::Time(a), _) => a.push(None),
                        (ColumnArray::Raw(a), _) => a.push(RawJsonb(None)),
                    }
                }
                s.push(src);
            }
            Rows::Json(rows) => rows.push(JsonRow {
                table: t,
                values: t
                    .columns
                    .iter()
                    .map(|c| value(c, record, usertag))
                    .collect(),
                src,
            }),
        }
    }

    /// Binds column `i`'s array (`None`: the source event ids).
    pub fn bind<'b>(&'b self, i: Option<usize>, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let Rows::Columns { columns, src } = self else {
            return Err(diesel::result::Error::QueryBuilderError(
                "a JSON table's rows bound as columns".into(),
            ));
        };
        let Some(i) = i else {
            return out.push_bind_param::<Array<Nullable<Text>>, _>(src);
        };
        match columns.get(i) {
            Some(ColumnArray::Text(a)) => out.push_bind_param::<Array<Nullable<Text>>, _>(a),
            Some(ColumnArray::Bool(a)) => out.push_bind_param::<Array<Bool>, _>(a),
            Some(ColumnArray::Json(a)) => out.push_bind_param::<Array<Jsonb>, _>(a),
            Some(ColumnArray::Time(a)) => out.push_bind_param::<Array<Nullable<Timestamptz>>, _>(a),
            Some(ColumnArray::Raw(a)) => out.push_bind_param::<Array<Jsonb>, _>(a),
            None => Err(diesel::result::Error::QueryBuilderError(
                "column index out of range".into(),
            )),
        }
    }
}

/// A raw object's JSON text bound as `jsonb` in Postgres's binary form (a version byte,
/// then the text: what Diesel writes for a `serde_json::Value`, without serialising a
/// parsed value again); none is `{}`.
#[derive(Debug)]
pub(crate) struct RawJsonb<'a>(Option<&'a serde_json::value::RawValue>);

impl diesel::serialize::ToSql<Jsonb, Pg> for RawJsonb<'_> {
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, Pg>,
    ) -> diesel::serialize::Result {
        use std::io::Write;
        out.write_all(&[1])?;
        out.write_all(self.0.map_or("{}", |r| r.get()).as_bytes())?;
        Ok(diesel::serialize::IsNull::No)
    }
}

/// One row of a JSON-bound table: one key per column (the column's name), plus `src`.
pub(crate) struct JsonRow<'a> {
    table: &'static Table,
    values: Vec<Value<'a>>,
    src: Option<&'a str>,
}

impl Serialize for JsonRow<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.values.len() + 1))?;
        for (c, v) in self.table.columns.iter().zip(&self.values) {
            match v {
                Value::Text(t) => m.serialize_entry(c.name, t)?,
                Value::Bool(b) => m.serialize_entry(c.name, b)?,
                Value::Json(j) => match j {
                    Some(j) => m.serialize_entry(c.name, j)?,
                    None => m.serialize_entry(c.name, &serde_json::Map::new())?,
                },
                Value::Time(t) => m.serialize_entry(c.name, t)?,
                Value::TextList(l) => m.serialize_entry(c.name, l)?,
                Value::Raw(r) => match r.get() {
                    Some(r) => m.serialize_entry(c.name, r)?,
                    None => m.serialize_entry(c.name, &serde_json::Map::new())?,
                },
            }
        }
        m.serialize_entry("src", &self.src)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workos_sync_core::declare::{Adopt, STAMPS};

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

    fn diesel_type(ty: ColumnType) -> &'static str {
        match ty {
            ColumnType::Text => "Text",
            ColumnType::Bool => "Bool",
            ColumnType::Json => "Jsonb",
            ColumnType::Time => "Timestamptz",
            ColumnType::TextList => "Array<Nullable<Text>>",
        }
    }

    /// Each declaration agrees with schema.rs (names, types, nullability), and every
    /// column of the table it does not declare is a stamp or the application's own.
    #[test]
    fn declarations_match_schema_rs() {
        let schema = schema_columns();
        for (i, t) in TABLES.iter().enumerate() {
            assert_eq!(t.entity.index(), i, "{}: out of Entity::ALL order", t.table);
            assert_eq!(t.columns[0].name, t.key, "{}: key first", t.table);
            assert_eq!(t.columns[0].adopt, Adopt::MustExist, "{}", t.table);
            let declared: Vec<&(String, String, String)> =
                schema.iter().filter(|(tb, ..)| tb == t.table).collect();
            assert!(!declared.is_empty(), "{} not in schema.rs", t.table);
            for c in t.columns {
                let found = declared.iter().find(|(_, col, _)| col == c.name);
                let Some((_, _, ty)) = found else {
                    panic!("{}.{} not in schema.rs", t.table, c.name)
                };
                let base = ty
                    .strip_prefix("Nullable<")
                    .map_or(ty.as_str(), |s| &s[..s.len() - 1]);
                assert_eq!(base, diesel_type(c.ty), "{}.{}", t.table, c.name);
                // A column our migration made NOT NULL is never sent NULL; the
                // version columns are nullable only in an adopted table.
                if ty.starts_with("Nullable<") {
                    assert!(
                        c.nullable || c.source_is_version(),
                        "{}.{}",
                        t.table,
                        c.name
                    );
                }
            }
            for (_, col, _) in declared {
                let ours = t.columns.iter().any(|c| c.name == col);
                let own = STAMPS.iter().any(|(s, _)| s == col)
                    || t.app_columns.iter().any(|(a, _)| a == col);
                assert!(
                    ours || own,
                    "{}.{col} is neither declared nor known",
                    t.table
                );
            }
            for (e, col) in t.parents {
                assert!(t.column(col).is_some(), "{}.{col}", t.table);
                assert_ne!(*e, t.entity);
            }
            if let Some(r) = t.refresh {
                assert_eq!(t.column(r.column).map(|c| c.ty), Some(ColumnType::Time));
            }
        }
    }

    trait VersionSource {
        fn source_is_version(&self) -> bool;
    }
    impl VersionSource for Column {
        fn source_is_version(&self) -> bool {
            matches!(self.source, Source::Created | Source::Updated)
        }
    }

    fn records() -> Vec<Record> {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let role = serde_json::json!({"slug": "admin", "permissions": ["read"]});
        let perm = serde_json::json!({"slug": "read"});
        let domain =
            serde_json::json!({"id": "org_domain_1", "organization_id": "org_1", "domain": "x.io"});
        vec![
            Record::User(workos_sync_core::User::stub("user_1", at)),
            Record::Organization(workos_sync_core::Organization::stub("org_1", at)),
            Record::Domain(serde_json::from_value(domain).unwrap()),
            Record::Membership(workos_sync_core::Membership::stub(
                "om_1", "user_1", "org_1", at,
            )),
            Record::Role(serde_json::from_value(role).unwrap()),
            Record::Permission(serde_json::from_value(perm).unwrap()),
        ]
    }

    /// Every getter gives a value of its column's type for its own entity's record (a
    /// mismatch would be stored as the empty value).
    #[test]
    fn getters_give_their_columns_type() {
        for r in records() {
            let t = table(r.entity());
            for c in t.columns {
                let ok = matches!(
                    (c.ty, value(c, &r, "tag")),
                    (ColumnType::Text, Value::Text(_))
                        | (ColumnType::Bool, Value::Bool(_))
                        | (ColumnType::Json, Value::Json(_) | Value::Raw(_))
                        | (ColumnType::Time, Value::Time(_))
                        | (ColumnType::TextList, Value::TextList(_))
                );
                assert!(ok, "{}.{}", t.table, c.name);
                if !c.nullable && c.ty == ColumnType::Text && c.name != "usertag" {
                    assert!(
                        matches!(value(c, &r, ""), Value::Text(Some(_))),
                        "{}.{}",
                        t.table,
                        c.name
                    );
                }
            }
        }
    }

    /// A JSON-bound row serialises to exactly its table's columns, plus `src`; a
    /// columnar table's rows fill every array.
    #[test]
    fn rows_carry_exactly_the_columns() {
        for r in records() {
            let t = table(r.entity());
            let mut rows = Rows::new(t);
            rows.push(t, &r, "", None);
            match rows {
                Rows::Json(rows) => {
                    let v = serde_json::to_value(&rows[0]).unwrap();
                    let mut keys: Vec<&str> =
                        v.as_object().unwrap().keys().map(String::as_str).collect();
                    let mut want: Vec<&str> =
                        t.columns.iter().map(|c| c.name).chain(["src"]).collect();
                    keys.sort_unstable();
                    want.sort_unstable();
                    assert_eq!(keys, want, "{}", t.table);
                }
                Rows::Columns { columns, src } => {
                    assert_eq!(columns.len(), t.columns.len());
                    assert_eq!(src.len(), 1);
                }
            }
        }
        assert!(columnar(table(Entity::Users)));
        assert!(!columnar(table(Entity::OrganizationMemberships)));
    }
}
