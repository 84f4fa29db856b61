//! The statements of the apply path, as constant SQL over array binds.
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

use chrono::{DateTime, Utc};
use diesel::{
    QueryResult,
    pg::Pg,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    sql_types::{Array, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Untyped},
};

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
/// global order (namespace, then key), so two batches can never deadlock: users in
/// `user_ns`, usertag lock roots (`usertag::lock_root`) in `tag_ns` (taken before any usertag is read).
pub(crate) struct LockKeys<'a> {
    pub user_ns: i32,
    pub users: &'a [String],
    pub tag_ns: i32,
    pub roots: &'a [String],
}
raw_statement!(LockKeys);

impl QueryFragment<Pg> for LockKeys<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "SELECT pg_advisory_xact_lock(ns, k) FROM (SELECT DISTINCT ns, hashtext(x) AS k \
             FROM (SELECT ",
        );
        out.push_bind_param::<Integer, _>(&self.user_ns)?;
        out.push_sql("::int4 AS ns, x FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(self.users)?;
        out.push_sql("::text[]) AS x UNION ALL SELECT ");
        out.push_bind_param::<Integer, _>(&self.tag_ns)?;
        out.push_sql("::int4, x FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(self.roots)?;
        out.push_sql("::text[]) AS x) AS keys ORDER BY 1, 2) AS sorted");
        Ok(())
    }
}

/// The stored rows (version, usertag, last sign-in) and tombstones of `ids`.
pub(crate) struct LoadState<'a> {
    pub ids: &'a [String],
}
raw_statement!(LoadState);

impl QueryFragment<Pg> for LoadState<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "SELECT 'u' AS kind, id, workos_updated_at AS updated_at, usertag, last_sign_in_at \
             FROM users WHERE id = ANY(",
        );
        out.push_bind_param::<Array<Text>, _>(self.ids)?;
        out.push_sql(
            "::text[]) UNION ALL SELECT 't', user_id, NULL, NULL, NULL \
             FROM user_tombstones WHERE user_id = ANY(",
        );
        out.push_bind_param::<Array<Text>, _>(self.ids)?;
        out.push_sql("::text[])");
        Ok(())
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
/// then guarded upserts, sign-in refreshes, deletes and their tombstones. A write whose
/// `source` event id turned out to be recorded before is skipped: the caller re-plans
/// those users (see `apply_in_tx`). A `None` source is written unconditionally.
/// The plan gives each user at most one write, so no two parts touch the same row (a
/// statement may not modify a row twice).
#[derive(Default)]
pub(crate) struct WriteBatch<'a> {
    // Processed-event records.
    pub event_ids: Vec<&'a str>,
    pub event_types: Vec<&'a str>,
    pub user_ids: Vec<Option<&'a str>>,
    pub outcomes: Vec<&'static str>,
    // Upserts, one entry per column.
    pub id: Vec<&'a str>,
    pub email: Vec<&'a str>,
    pub name: Vec<Option<String>>,
    pub usertag: Vec<String>,
    pub avatar_url: Vec<Option<&'a str>>,
    pub first_name: Vec<Option<&'a str>>,
    pub last_name: Vec<Option<&'a str>>,
    pub email_verified: Vec<bool>,
    pub external_id: Vec<Option<&'a str>>,
    pub metadata: Vec<serde_json::Value>,
    pub locale: Vec<Option<&'a str>>,
    pub last_sign_in_at: Vec<Option<DateTime<Utc>>>,
    pub workos_created_at: Vec<DateTime<Utc>>,
    pub workos_updated_at: Vec<DateTime<Utc>>,
    pub source: Vec<Option<&'a str>>,
    // Sign-in refreshes.
    pub refresh_id: Vec<&'a str>,
    pub refresh_at: Vec<DateTime<Utc>>,
    // Deletes.
    pub delete_id: Vec<&'a str>,
    pub deleted_at: Vec<DateTime<Utc>>,
    pub delete_event: Vec<&'a str>,
    pub delete_source: Vec<Option<&'a str>>,
}
raw_statement!(WriteBatch);

impl WriteBatch<'_> {
    pub fn is_empty(&self) -> bool {
        self.event_ids.is_empty()
            && self.id.is_empty()
            && self.refresh_id.is_empty()
            && self.delete_id.is_empty()
    }
}

impl QueryFragment<Pg> for WriteBatch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "WITH recorded AS (INSERT INTO processed_events \
             (event_id, event_type, user_id, outcome) SELECT * FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.event_ids)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Text>, _>(&self.event_types)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.user_ids)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Text>, _>(&self.outcomes)?;
        out.push_sql(
            "::text[]) ON CONFLICT DO NOTHING RETURNING event_id), \
             upserted AS (INSERT INTO users (id, email, name, usertag, avatar_url, \
             first_name, last_name, email_verified, external_id, metadata, locale, \
             last_sign_in_at, workos_created_at, workos_updated_at) \
             SELECT id, email, name, usertag, avatar_url, first_name, last_name, \
             email_verified, external_id, metadata, locale, last_sign_in_at, \
             workos_created_at, workos_updated_at FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.id)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Text>, _>(&self.email)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.name)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Text>, _>(&self.usertag)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.avatar_url)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.first_name)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.last_name)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Bool>, _>(&self.email_verified)?;
        out.push_sql("::bool[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.external_id)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Jsonb>, _>(&self.metadata)?;
        out.push_sql("::jsonb[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.locale)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Timestamptz>>, _>(&self.last_sign_in_at)?;
        out.push_sql("::timestamptz[], ");
        out.push_bind_param::<Array<Timestamptz>, _>(&self.workos_created_at)?;
        out.push_sql("::timestamptz[], ");
        out.push_bind_param::<Array<Timestamptz>, _>(&self.workos_updated_at)?;
        out.push_sql("::timestamptz[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.source)?;
        // Existing rows keep usertag, bio and details: they are not in the SET list.
        // The version guard, also enforced in SQL: only strictly newer data wins.
        out.push_sql(
            "::text[]) AS r(id, email, name, usertag, avatar_url, first_name, last_name, \
             email_verified, external_id, metadata, locale, last_sign_in_at, \
             workos_created_at, workos_updated_at, src) \
             WHERE r.src IS NULL OR r.src IN (SELECT event_id FROM recorded) \
             ON CONFLICT (id) DO UPDATE SET email = excluded.email, \
             name = excluded.name, avatar_url = excluded.avatar_url, \
             first_name = excluded.first_name, last_name = excluded.last_name, \
             email_verified = excluded.email_verified, external_id = excluded.external_id, \
             metadata = excluded.metadata, locale = excluded.locale, \
             last_sign_in_at = excluded.last_sign_in_at, \
             workos_created_at = excluded.workos_created_at, \
             workos_updated_at = excluded.workos_updated_at, updated_at = now() \
             WHERE users.workos_updated_at < excluded.workos_updated_at RETURNING 1), \
             refreshed AS (UPDATE users SET last_sign_in_at = v.t, updated_at = now() \
             FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.refresh_id)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Timestamptz>, _>(&self.refresh_at)?;
        out.push_sql(
            "::timestamptz[]) AS v(id, t) WHERE users.id = v.id \
             AND (users.last_sign_in_at IS NULL OR users.last_sign_in_at < v.t) RETURNING 1), \
             deleted AS (DELETE FROM users WHERE id IN (SELECT d.id FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.delete_id)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.delete_source)?;
        out.push_sql(
            "::text[]) AS d(id, src) \
             WHERE d.src IS NULL OR d.src IN (SELECT event_id FROM recorded)) RETURNING 1), \
             tombstoned AS (INSERT INTO user_tombstones (user_id, deleted_at, event_id) \
             SELECT d.id, d.at, d.ev FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.delete_id)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Timestamptz>, _>(&self.deleted_at)?;
        out.push_sql("::timestamptz[], ");
        out.push_bind_param::<Array<Text>, _>(&self.delete_event)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.delete_source)?;
        // Data-modifying CTEs run to completion whether or not the outer query reads
        // them; the outer query returns the newly recorded ids.
        out.push_sql(
            "::text[]) AS d(id, at, ev, src) \
             WHERE d.src IS NULL OR d.src IN (SELECT event_id FROM recorded) \
             ON CONFLICT DO NOTHING RETURNING 1) \
             SELECT event_id FROM recorded",
        );
        Ok(())
    }
}
