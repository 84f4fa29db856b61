//! The statements of the apply path, as constant SQL over array and JSON binds.
//!
//! Why not diesel's DSL or `sql_query`: a multi-row `insert_into(..).values(&vec)` and
//! every `sql_query` are marked unsafe to cache, so diesel-async prepares them anew on
//! each execution: a Parse/Describe round trip before the Bind/Execute one, and a
//! Postgres parse of a `VALUES` list with up to 3,500 parameters. Each statement here
//! has one fixed text whatever the batch size (rows travel as arrays, expanded by
//! `unnest`), so it is prepared once per pooled connection and then costs a single
//! round trip. The writes of a batch go out as one statement of data-modifying CTEs.
//!
//! Failure model: these are plain statements; a failure is a `diesel::result::Error`
//! that the store classifies (unreachable database vs failed statement).

use diesel::{
    QueryResult,
    pg::Pg,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    sql_types::{Array, Integer, Nullable, Text, Untyped},
};
use std::{fmt::Write as _, sync::LazyLock};
use workos_sync_core::Entity;

use crate::tables::{TABLES, Table};

/// Marks a statement struct as a cacheable, runnable raw query: keyed by its SQL text in
/// diesel-async's statement cache (the text never varies), loadable into
/// `QueryableByName` rows.
macro_rules! raw_statement {
    ($name:ident) => {
        impl QueryId for $name<'_> {
            type QueryId = ();
            const HAS_STATIC_QUERY_ID: bool = false;
        }
        impl Query for $name<'_> {
            type SqlType = Untyped;
        }
    };
}

/// Takes the transaction-scoped advisory locks of a batch in one statement, in one
/// global order (namespace, then key hash), so two batches can never deadlock. Each lock
/// is a (namespace, key) pair (`crate::locks`): the records' scopes, then usertag lock
/// roots (`usertag::lock_root`, taken before any usertag is read).
pub(crate) struct LockKeys<'a> {
    pub ns: &'a [i32],
    pub keys: &'a [String],
}
raw_statement!(LockKeys);

impl QueryFragment<Pg> for LockKeys<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "SELECT pg_advisory_xact_lock(ns, k) FROM (SELECT DISTINCT ns, hashtext(x) AS k \
             FROM unnest(",
        );
        out.push_bind_param::<Array<Integer>, _>(self.ns)?;
        out.push_sql("::int4[], ");
        out.push_bind_param::<Array<Text>, _>(self.keys)?;
        out.push_sql("::text[]) AS t(ns, x) ORDER BY 1, 2) AS sorted");
        Ok(())
    }
}

/// A statement text with its bind parameters' places: `parts[i]` comes before bind `i`.
struct Text_ {
    parts: Vec<String>,
}

impl Text_ {
    /// Pushes the text with `bind(i, out)` in place `i`.
    fn walk<'b>(
        &self,
        out: &mut AstPass<'_, 'b, Pg>,
        mut bind: impl FnMut(usize, &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>,
    ) -> QueryResult<()> {
        let binds = self.parts.len().saturating_sub(1);
        for (i, part) in self.parts.iter().enumerate() {
            out.push_sql(part);
            if i < binds {
                bind(i, out)?;
            }
        }
        Ok(())
    }
}

/// The stored rows and tombstones of a batch's keys: every table's rows by key (plus
/// memberships by user and organization pair), and the tombstones of `tomb_entities` /
/// `tomb_ids` (the records' keys and their parents'). `StateRow`s.
pub(crate) struct LoadState<'a> {
    /// Keys per table, in [`Entity::ALL`] order.
    pub keys: &'a [Vec<String>; 6],
    pub pair_users: &'a [String],
    pub pair_orgs: &'a [String],
    pub tomb_entities: &'a [&'static str],
    pub tomb_ids: &'a [String],
}
raw_statement!(LoadState);

static LOAD_SQL: LazyLock<Text_> = LazyLock::new(|| {
    let mut parts = Vec::new();
    let mut s = String::new();
    for (i, t) in TABLES.iter().enumerate() {
        if i > 0 {
            s.push_str(" UNION ALL ");
        }
        s.push_str(&state_select(t, ""));
        let _ = write!(s, " WHERE {} = ANY(", t.key);
        parts.push(std::mem::take(&mut s));
        s.push_str("::text[])");
    }
    s.push_str(" UNION ALL ");
    s.push_str(&state_select(
        crate::tables::table(Entity::OrganizationMemberships),
        "m.",
    ));
    s.push_str(" JOIN unnest(");
    parts.push(std::mem::take(&mut s));
    s.push_str("::text[], ");
    parts.push(std::mem::take(&mut s));
    s.push_str(
        "::text[]) AS p(u, o) ON m.user_id = p.u AND m.organization_id = p.o \
         UNION ALL SELECT true, t.entity, t.id, NULL, NULL, NULL, NULL, NULL, NULL \
         FROM tombstones t JOIN unnest(",
    );
    parts.push(std::mem::take(&mut s));
    s.push_str("::text[], ");
    parts.push(std::mem::take(&mut s));
    s.push_str("::text[]) AS k(e, i) ON t.entity = k.e AND t.id = k.i");
    parts.push(s);
    Text_ { parts }
});

/// `SELECT false AS tomb, entity, key, versions… FROM table [alias]` for [`LoadState`].
fn state_select(t: &Table, alias: &str) -> String {
    let has = |c: &str| t.columns.iter().any(|x| x.name == c);
    let or_null = |c: &str, ty: &str| {
        if has(c) {
            format!("{alias}{c}")
        } else {
            format!("NULL::{ty}")
        }
    };
    let from = if alias.is_empty() {
        t.name.to_owned()
    } else {
        format!("{} {}", t.name, alias.trim_end_matches('.'))
    };
    format!(
        "SELECT false AS tomb, '{entity}'::text AS entity, {alias}{key} AS key, \
         {alias}workos_updated_at AS updated_at, {alias}workos_created_at AS created_at, \
         {usertag} AS usertag, {sign_in} AS last_sign_in_at, {user} AS user_id, \
         {org} AS organization_id FROM {from}",
        entity = t.entity.name(),
        key = t.key,
        usertag = or_null("usertag", "text"),
        sign_in = or_null("last_sign_in_at", "timestamptz"),
        user = if t.entity == Entity::OrganizationMemberships {
            format!("{alias}user_id")
        } else {
            "NULL::text".into()
        },
        org = if t.entity == Entity::OrganizationMemberships {
            format!("{alias}organization_id")
        } else {
            "NULL::text".into()
        },
    )
}

impl QueryFragment<Pg> for LoadState<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        LOAD_SQL.walk(&mut out, |i, o| match i {
            0..=5 => o.push_bind_param::<Array<Text>, _>(&self.keys[i]),
            6 => o.push_bind_param::<Array<Text>, _>(self.pair_users),
            7 => o.push_bind_param::<Array<Text>, _>(self.pair_orgs),
            8 => o.push_bind_param::<Array<Text>, _>(self.tomb_entities),
            _ => o.push_bind_param::<Array<Text>, _>(self.tomb_ids),
        })
    }
}

/// Which of `tags` are in use (`TagRow`s).
pub(crate) struct TakenTags<'a> {
    pub tags: &'a [String],
}
raw_statement!(TakenTags);

impl QueryFragment<Pg> for TakenTags<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT usertag FROM users WHERE usertag = ANY(");
        out.push_bind_param::<Array<Text>, _>(self.tags)?;
        out.push_sql("::text[])");
        Ok(())
    }
}

/// A batch's records and writes in one statement: records the event ids
/// (`ON CONFLICT DO NOTHING`, returning as `IdRow`s only the ids not recorded before),
/// then every table's guarded upserts, users' sign-in refreshes, deletes (a user's or an
/// organization's with their children) and their tombstones. A write whose `src` event
/// id turned out to be recorded before is skipped: the caller re-plans those keys (see
/// `apply_in_tx`). A `None` source is written unconditionally. The plan gives each key
/// at most one write, so no two parts touch the same row (a statement may not modify a
/// row twice), except a child removed both by its own delete and its parent's (two
/// deletes of one row: the second finds it gone).
#[derive(Default)]
pub(crate) struct WriteBatch<'a> {
    // Processed-event records.
    pub event_ids: Vec<&'a str>,
    pub event_types: Vec<&'a str>,
    pub user_ids: Vec<Option<&'a str>>,
    pub outcomes: Vec<&'static str>,
    /// Deletes: a JSON array of `{entity, id, at, ev, src}`.
    pub deletes: String,
    /// Upserts per table ([`Entity::ALL`] order): JSON arrays of `tables::Row`s.
    pub upserts: [String; 6],
    /// Users' sign-in refreshes: a JSON array of `{id, t}`.
    pub refresh: String,
    /// How many writes the batch holds (0: only records).
    pub writes: usize,
}
raw_statement!(WriteBatch);

impl WriteBatch<'_> {
    pub fn is_empty(&self) -> bool {
        self.event_ids.is_empty() && self.writes == 0
    }
}

/// `WHERE the source is none or newly recorded`, for a record set aliased `a`.
fn newly(a: &str) -> String {
    format!("WHERE {a}.src IS NULL OR {a}.src IN (SELECT event_id FROM recorded)")
}

static WRITE_SQL: LazyLock<Text_> = LazyLock::new(|| {
    let mut parts = Vec::new();
    let mut s = String::from(
        "WITH recorded AS (INSERT INTO processed_events \
         (event_id, event_type, user_id, outcome) SELECT * FROM unnest(",
    );
    for sep in ["::text[], ", "::text[], ", "::text[], "] {
        parts.push(std::mem::take(&mut s));
        s.push_str(sep);
    }
    parts.push(std::mem::take(&mut s));
    s.push_str(
        "::text[]) ON CONFLICT DO NOTHING RETURNING event_id), \
         del AS MATERIALIZED (SELECT d.entity, d.id, d.at, d.ev FROM jsonb_to_recordset(",
    );
    parts.push(std::mem::take(&mut s));
    let _ = write!(
        s,
        "::jsonb) AS d(entity text, id text, at timestamptz, ev text, src text) {})",
        newly("d")
    );
    for t in &TABLES {
        let cols: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        let quoted: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
        let typed: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("\"{}\" {}", c.name, c.ty))
            .collect();
        let set: Vec<String> = t
            .columns
            .iter()
            .filter(|c| c.on_update)
            .map(|c| format!("\"{0}\" = excluded.\"{0}\"", c.name))
            .collect();
        let _ = write!(
            s,
            ", up_{name} AS (INSERT INTO {name} ({cols}) SELECT {cols} FROM jsonb_to_recordset(",
            name = t.name,
            cols = quoted.join(", ")
        );
        parts.push(std::mem::take(&mut s));
        // The version guard, in SQL: only strictly newer data wins. Columns not in the
        // SET list (the key, a user's usertag, the application's own) are kept.
        let _ = write!(
            s,
            "::jsonb) AS r({typed}, src text) {newly} ON CONFLICT ({key}) DO UPDATE SET \
             {set}, updated_at = now() WHERE {name}.workos_updated_at < \
             excluded.workos_updated_at RETURNING 1)",
            typed = typed.join(", "),
            newly = newly("r"),
            key = t.key,
            set = set.join(", "),
            name = t.name,
        );
    }
    s.push_str(
        ", refreshed AS (UPDATE users SET last_sign_in_at = v.t, updated_at = now() \
         FROM jsonb_to_recordset(",
    );
    parts.push(std::mem::take(&mut s));
    s.push_str(
        "::jsonb) AS v(id text, t timestamptz) WHERE users.id = v.id \
         AND (users.last_sign_in_at IS NULL OR users.last_sign_in_at < v.t) RETURNING 1)",
    );
    // One DELETE per (table, key or parent column): `= ANY(ARRAY(…))` lets each use its
    // index (an OR of subqueries would scan the table on every batch).
    for t in &TABLES {
        let by = std::iter::once((t.entity, t.key)).chain(t.parents.iter().copied());
        for (n, (entity, column)) in by.enumerate() {
            let _ = write!(
                s,
                ", rm_{name}_{n} AS (DELETE FROM {name} WHERE {column} = ANY(ARRAY(\
                 SELECT id FROM del WHERE entity = '{entity}')) RETURNING 1)",
                name = t.name,
                entity = entity.name(),
            );
        }
    }
    // Data-modifying CTEs run to completion whether or not the outer query reads them;
    // the outer query returns the newly recorded ids.
    s.push_str(
        ", tombstoned AS (INSERT INTO tombstones (entity, id, deleted_at, event_id) \
         SELECT entity, id, at, ev FROM del ON CONFLICT DO NOTHING RETURNING 1) \
         SELECT event_id FROM recorded",
    );
    parts.push(s);
    Text_ { parts }
});

impl QueryFragment<Pg> for WriteBatch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        WRITE_SQL.walk(&mut out, |i, o| match i {
            0 => o.push_bind_param::<Array<Text>, _>(&self.event_ids),
            1 => o.push_bind_param::<Array<Text>, _>(&self.event_types),
            2 => o.push_bind_param::<Array<Nullable<Text>>, _>(&self.user_ids),
            3 => o.push_bind_param::<Array<Text>, _>(&self.outcomes),
            4 => o.push_bind_param::<Text, _>(&self.deletes),
            5..=10 => o.push_bind_param::<Text, _>(&self.upserts[i - 5]),
            _ => o.push_bind_param::<Text, _>(&self.refresh),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_texts_have_one_place_per_bind() {
        // parts = binds + 1, and no part mentions a bind number of its own.
        assert_eq!(LOAD_SQL.parts.len(), 11);
        assert_eq!(WRITE_SQL.parts.len(), 13);
        for p in LOAD_SQL.parts.iter().chain(&WRITE_SQL.parts) {
            assert!(!p.contains('$'), "{p}");
        }
    }
}
