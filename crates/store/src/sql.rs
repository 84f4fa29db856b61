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
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use workos_sync_core::{
    Entity,
    declare::{Adopt, Clear, Column},
};

use crate::{
    layout::{Layout, quote},
    tables::{TABLES, Table},
};

/// Bits of a statement's shape (see [`Shapes`]): one per entity for its rows (bits
/// `0..COUNT`), then in a load the membership pairs, in a write one per entity for its
/// deletes, then the users' refreshes.
const ENTITY_BITS: u32 = (1 << Entity::COUNT) - 1;
const PAIRS: usize = Entity::COUNT;
const DELETES: usize = Entity::COUNT;
const REFRESH: usize = 2 * Entity::COUNT;

/// Every statement of the write path for one [`Layout`] (one store): built on first use
/// per shape, then the same text each time, so each is prepared once per connection.
pub(crate) struct Statements {
    pub layout: Layout,
    loads: Shapes<LoadSlot>,
    writes: Shapes<WriteSlot>,
    /// `SELECT usertag FROM users WHERE usertag = ANY(`, in the layout's names.
    taken_tags: String,
    /// A users row by id (`$1`), as one JSON object of `UserRow` in column `row`.
    pub user_by_id: String,
    /// Every users row, by id.
    pub all_users: String,
    /// Locks the users rows `= ANY($1)` that no other session holds, returning their
    /// ids ([`LockUserRows`]).
    lock_user_rows: String,
}

impl Statements {
    pub fn new(layout: Layout) -> Self {
        let (tag, id, select) = (
            layout.q("usertag"),
            layout.q("id"),
            format!("{} AS row", layout.user_json()),
        );
        Self {
            taken_tags: format!("SELECT {tag} AS usertag FROM users WHERE {tag} = ANY("),
            user_by_id: format!("SELECT {select} FROM users WHERE {id} = $1"),
            all_users: format!("SELECT {select} FROM users ORDER BY {id}"),
            lock_user_rows: format!(
                "SELECT {id}::text AS id FROM users WHERE {id} = ANY($1::text[]) \
                 FOR NO KEY UPDATE SKIP LOCKED"
            ),
            layout,
            loads: Shapes::new(),
            writes: Shapes::new(),
        }
    }
}

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

/// Row-locks the batch's existing users rows that no other session holds, and returns
/// their ids: a row held by the application (`SELECT … FOR UPDATE`, a long transaction)
/// is skipped instead of waited for (the caller asks again briefly), so its events are
/// deferred and the rest of the batch goes on. `FOR NO KEY UPDATE` is the lock our own UPDATE takes (it does not
/// conflict with the `KEY SHARE` locks of the application's foreign key checks); taken
/// after the advisory locks, so our own batches never meet here.
pub(crate) struct LockUserRows<'a> {
    pub st: &'a Statements,
    pub ids: &'a [String],
}
raw_statement!(LockUserRows);

impl QueryFragment<Pg> for LockUserRows<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let sql = &self.st.lock_user_rows;
        let (head, tail) = sql.split_once("$1").unwrap_or((sql, ""));
        out.push_sql(head);
        out.push_bind_param::<Array<Text>, _>(self.ids)?;
        out.push_sql(tail);
        Ok(())
    }
}

/// A statement text with its bind parameters' places, built once per shape: `parts[i]`
/// comes before the bind named by `slots[i]`.
struct Statement<S> {
    parts: Vec<String>,
    slots: Vec<S>,
}

/// Builds a [`Statement`]: SQL text and bind places in order.
struct Builder<S> {
    parts: Vec<String>,
    slots: Vec<S>,
    cur: String,
}

impl<S: Copy> Builder<S> {
    fn new() -> Self {
        Self {
            parts: Vec::new(),
            slots: Vec::new(),
            cur: String::new(),
        }
    }

    fn sql(&mut self, s: &str) -> &mut Self {
        self.cur.push_str(s);
        self
    }

    fn bind(&mut self, slot: S) -> &mut Self {
        self.parts.push(std::mem::take(&mut self.cur));
        self.slots.push(slot);
        self
    }

    fn finish(mut self) -> Statement<S> {
        self.parts.push(std::mem::take(&mut self.cur));
        Statement {
            parts: self.parts,
            slots: self.slots,
        }
    }
}

impl<S: Copy> Statement<S> {
    /// Pushes the text with `bind(slot, out)` in each bind place.
    fn walk<'b>(
        &self,
        out: &mut AstPass<'_, 'b, Pg>,
        mut bind: impl FnMut(S, &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>,
    ) -> QueryResult<()> {
        for (i, part) in self.parts.iter().enumerate() {
            out.push_sql(part);
            if let Some(slot) = self.slots.get(i) {
                bind(*slot, out)?;
            }
        }
        Ok(())
    }
}

/// The statements built so far, by shape. A shape is a bit set of the parts a batch
/// needs (the tables it touches): a users-only batch runs a statement with the users'
/// parts alone, so no batch pays for the tables it does not touch. Each shape's text is
/// fixed, so it is prepared once per connection; a worker sees a handful of shapes.
struct Shapes<S>(Mutex<HashMap<u32, Arc<Statement<S>>>>);

impl<S: Copy> Shapes<S> {
    fn new() -> Self {
        Self(Mutex::new(HashMap::new()))
    }

    fn get(&self, shape: u32, build: impl FnOnce(u32) -> Statement<S>) -> Arc<Statement<S>> {
        // A poisoned map still holds only finished statements.
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(shape)
            .or_insert_with(|| Arc::new(build(shape)))
            .clone()
    }
}

/// A bind of [`LoadState`].
#[derive(Clone, Copy)]
enum LoadSlot {
    Keys(usize),
    PairUsers,
    PairOrgs,
    TombEntities,
    TombIds,
}

/// The stored rows and tombstones of a batch's keys: every touched table's rows by key
/// (plus memberships by user and organization pair), and the tombstones of
/// `tomb_entities` × `tomb_ids` (the records' keys and their parents'). `StateRow`s.
pub(crate) struct LoadState<'a> {
    pub st: &'a Statements,
    /// Keys per table, in [`Entity::ALL`] order.
    pub keys: &'a [Vec<String>; Entity::COUNT],
    pub pair_users: &'a [String],
    pub pair_orgs: &'a [String],
    pub tomb_entities: &'a [&'static str],
    pub tomb_ids: &'a [String],
}
raw_statement!(LoadState);

impl LoadState<'_> {
    /// Bit i: table i has keys; bit [`PAIRS`]: membership pairs.
    fn shape(&self) -> u32 {
        let mut shape = 0;
        for (i, k) in self.keys.iter().enumerate() {
            if !k.is_empty() {
                shape |= 1 << i;
            }
        }
        if !self.pair_users.is_empty() {
            shape |= 1 << PAIRS;
        }
        shape
    }
}

fn build_load(layout: &Layout, shape: u32) -> Statement<LoadSlot> {
    let mut b = Builder::new();
    for (i, t) in TABLES
        .iter()
        .enumerate()
        .filter(|(i, _)| shape & (1 << i) != 0)
    {
        b.sql(&state_select(layout, t))
            .sql(&format!(" WHERE {} = ANY(", key_column(layout, t)))
            .bind(LoadSlot::Keys(i))
            .sql("::text[]) UNION ALL ");
    }
    // Memberships by pair, and tombstones by (entity, key): each as two `= ANY` over
    // the index's columns, so the index serves them whatever the plan. What comes back
    // is a superset (every combination of the two lists); the extra rows are true facts
    // about other keys and change no decision.
    if shape & (1 << PAIRS) != 0 {
        b.sql(&state_select(
            layout,
            crate::tables::table(Entity::OrganizationMemberships),
        ))
        .sql(" WHERE deleted_at IS NULL AND user_id = ANY(")
        .bind(LoadSlot::PairUsers)
        .sql("::text[]) AND organization_id = ANY(")
        .bind(LoadSlot::PairOrgs)
        .sql("::text[]) UNION ALL ");
    }
    b.sql(
        "SELECT true, entity, id, deleted_at, NULL, NULL, NULL, NULL, NULL \
         FROM tombstones WHERE entity = ANY(",
    )
    .bind(LoadSlot::TombEntities)
    .sql("::text[]) AND id = ANY(")
    .bind(LoadSlot::TombIds)
    .sql("::text[])");
    b.finish()
}

/// The quoted physical name of column `c` of table `t` (users: through the layout).
fn column(layout: &Layout, t: &Table, c: &str) -> String {
    if t.adoptable { layout.q(c) } else { quote(c) }
}

/// True when table `t` has column `c` (an adopted users table may lack an optional one:
/// `Adopt::Asked`); such a column is bound like the others but neither inserted, set
/// nor cleared.
fn present(layout: &Layout, t: &Table, c: &Column) -> bool {
    !t.adoptable || c.adopt != Adopt::Asked || layout.has(c.name)
}

fn key_column(layout: &Layout, t: &Table) -> String {
    column(layout, t, t.key)
}

/// `SELECT false AS tomb, entity, key, versions… FROM table` for [`LoadState`].
fn state_select(layout: &Layout, t: &Table) -> String {
    let or_null = |c: Option<&str>, ty: &str| match c {
        Some(c) if t.column(c).is_some() => column(layout, t, c),
        _ => format!("NULL::{ty}"),
    };
    let membership = t.entity == Entity::OrganizationMemberships;
    // A soft-deleted row reads with its version like any other: whoever set its
    // deleted_at (sync, with a tombstone that stops every write; or the application,
    // whose decision it is), no write of sync clears it. Undoing a mistaken delete of
    // sync is `workos-sync tombstones remove` ([`revive`]). A soft-deleted membership
    // holds no user and organization pair.
    let updated = format!("{}::timestamptz", column(layout, t, Column::VERSION.name));
    let live = soft_column(layout, t).map_or("true".to_owned(), |d| format!("{d} IS NULL"));
    let (user, org) = if membership {
        (
            format!("CASE WHEN {live} THEN user_id END"),
            format!("CASE WHEN {live} THEN organization_id END"),
        )
    } else {
        ("NULL::text".to_owned(), "NULL::text".to_owned())
    };
    format!(
        "SELECT false AS tomb, '{entity}'::text AS entity, {key}::text AS key, \
         {updated} AS updated_at, {created}::timestamptz AS created_at, \
         {usertag} AS usertag, {refresh}::timestamptz AS refresh_at, \
         {user} AS user_id, {org} AS organization_id FROM {name}",
        entity = t.entity.name(),
        key = key_column(layout, t),
        created = column(layout, t, Column::CREATED.name),
        usertag = or_null(Some("usertag"), "text"),
        refresh = or_null(t.refresh.map(|r| r.column), "timestamptz"),
        name = t.table,
    )
}

/// Every row's key, version and soft-deleted flag of `entity`'s table (`RowVersion`s):
/// what drift detection compares with WorkOS's lists.
pub(crate) fn versions_select(layout: &Layout, entity: Entity) -> String {
    let t = crate::tables::table(entity);
    // Deleted by sync: soft-deleted with a tombstone. A row the application soft-deleted
    // itself is compared like a live one (its deleted_at is not sync's to judge).
    let deleted = soft_column(layout, t).map_or("false".to_owned(), |d| {
        format!(
            "({d} IS NOT NULL AND EXISTS (SELECT 1 FROM tombstones tb WHERE tb.entity = '{}' \
             AND tb.id = {}.{}::text))",
            entity.name(),
            t.table,
            key_column(layout, t)
        )
    });
    let written = if !t.adoptable || layout.has("updated_at") {
        format!("{}::timestamptz", column(layout, t, "updated_at"))
    } else {
        "NULL::timestamptz".to_owned()
    };
    format!(
        "SELECT {}::text AS key, {}::timestamptz AS updated_at, {deleted} AS deleted, \
         {written} AS written_at FROM {}",
        key_column(layout, t),
        column(layout, t, Column::VERSION.name),
        t.table
    )
}

/// The `deleted_at` column of a table that can hold soft-deleted rows (one with a
/// delete setting), quoted: always in sync's own tables; in an adoptable one (users) only
/// when its deletes are soft: with hard deletes an adopted table's deleted-at column is
/// the application's alone, neither read nor written by sync.
fn soft_column(layout: &Layout, t: &Table) -> Option<String> {
    t.delete_setting?;
    if !t.adoptable {
        Some(quote("deleted_at"))
    } else if layout.deletes.soft(t.entity) {
        layout.physical("deleted_at").map(quote)
    } else {
        None
    }
}

/// `tombstones remove` of a soft-deleted key: the row sync soft-deleted (its deleted_at
/// is the tombstone's time, `$2`, within the millisecond a `timestamp(3)` column keeps) is live again with no version, so the next snapshot or
/// event rewrites its cleared WorkOS columns. A row whose deleted_at is another time was
/// soft-deleted by the application first: it stays as it is. `$1` is the key. `None`
/// for an entity without soft deletes.
pub(crate) fn revive(layout: &Layout, entity: Entity) -> Option<String> {
    let t = crate::tables::table(entity);
    let d = soft_column(layout, t)?;
    Some(format!(
        "UPDATE {name} SET {d} = NULL, {version} = 'epoch'{touch} WHERE {key}::text = $1 \
         AND {d}::timestamptz BETWEEN $2 - interval '1 ms' AND $2 + interval '1 ms'",
        name = t.table,
        version = column(layout, t, Column::VERSION.name),
        touch = touch(layout, t),
        key = key_column(layout, t),
    ))
}

impl QueryFragment<Pg> for LoadState<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let st = self.st;
        st.loads
            .get(self.shape(), |shape| build_load(&st.layout, shape))
            .walk(&mut out, |slot, o| match slot {
                LoadSlot::Keys(i) => o.push_bind_param::<Array<Text>, _>(&self.keys[i]),
                LoadSlot::PairUsers => o.push_bind_param::<Array<Text>, _>(self.pair_users),
                LoadSlot::PairOrgs => o.push_bind_param::<Array<Text>, _>(self.pair_orgs),
                LoadSlot::TombEntities => o.push_bind_param::<Array<Text>, _>(self.tomb_entities),
                LoadSlot::TombIds => o.push_bind_param::<Array<Text>, _>(self.tomb_ids),
            })
    }
}

/// Which of `tags` are in use (`TagRow`s).
pub(crate) struct TakenTags<'a> {
    pub st: &'a Statements,
    pub tags: &'a [String],
}
raw_statement!(TakenTags);

impl QueryFragment<Pg> for TakenTags<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(&self.st.taken_tags);
        out.push_bind_param::<Array<Text>, _>(self.tags)?;
        out.push_sql("::text[])");
        Ok(())
    }
}

/// A batch's records and writes in one statement: records the event ids (only those no
/// partition of `processed_events` holds since `since`, returning them as `IdRow`s),
/// then the guarded upserts of every table the batch writes, users' sign-in refreshes,
/// deletes (a user's or an organization's with their children) and their tombstones. A
/// write whose `src` event id turned out to be recorded before is skipped: the caller
/// re-plans those keys (see `apply_in_tx`). A `None` source is written unconditionally.
/// The plan gives each key at most one write, so no two parts touch the same row (a
/// statement may not modify a row twice), except a child removed both by its own delete
/// and its parent's (two deletes of one row: the second finds it gone).
pub(crate) struct WriteBatch<'a> {
    pub st: &'a Statements,
    // Processed-event records.
    pub event_ids: Vec<&'a str>,
    pub event_types: Vec<&'a str>,
    pub user_ids: Vec<Option<&'a str>>,
    pub outcomes: Vec<&'static str>,
    /// The earliest time a first delivery of one of the batch's recorded events can
    /// have been recorded (see [`crate::processed::since`]): the partitions before it
    /// are not read.
    pub since: chrono::DateTime<chrono::Utc>,
    /// Deletes: a JSON array of `{entity, id, at, ev, src}`.
    pub deletes: String,
    /// The entities deleted (`Entity::index` bits).
    pub deleted: u32,
    /// Each table's upserts ([`Entity::ALL`] order; see [`crate::tables::Rows`]).
    pub rows: [crate::tables::Rows<'a>; Entity::COUNT],
    /// The JSON text of each JSON-bound table's rows (empty string: none).
    pub upserts: [String; Entity::COUNT],
    /// Users' refreshes of their declared refresh column: a JSON array of `{id, t}`
    /// (empty string: none).
    pub refresh: String,
}
raw_statement!(WriteBatch);

/// A bind of [`WriteBatch`].
#[derive(Clone, Copy)]
enum WriteSlot {
    EventIds,
    EventTypes,
    UserIds,
    Outcomes,
    Since,
    Deletes,
    Upserts(usize),
    /// Table `t`'s array of its column `i` (`None`: its `src`).
    Column(usize, Option<usize>),
    Refresh,
}

impl<'a> WriteBatch<'a> {
    pub fn new(st: &'a Statements) -> Self {
        Self {
            st,
            event_ids: Vec::new(),
            since: chrono::DateTime::UNIX_EPOCH,
            event_types: Vec::new(),
            user_ids: Vec::new(),
            outcomes: Vec::new(),
            deletes: String::new(),
            deleted: 0,
            rows: TABLES.map(crate::tables::Rows::new),
            upserts: Default::default(),
            refresh: String::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.event_ids.is_empty() && self.shape() == 0
    }

    /// Bit i: upserts of table i; [`DELETES`] + i: deletes of entity i; [`REFRESH`]:
    /// refreshes.
    fn shape(&self) -> u32 {
        let mut shape = self.deleted << DELETES;
        for (i, rows) in self.rows.iter().enumerate() {
            if !rows.is_empty() {
                shape |= 1 << i;
            }
        }
        if !self.refresh.is_empty() {
            shape |= 1 << REFRESH;
        }
        shape
    }
}

/// `WHERE the source is none or newly recorded`, for a record set aliased `a`.
fn newly(a: &str) -> String {
    format!("WHERE {a}.src IS NULL OR {a}.src IN (SELECT event_id FROM recorded)")
}

fn build_write(layout: &Layout, shape: u32) -> Statement<WriteSlot> {
    let mut b = Builder::new();
    // `processed_events` is partitioned by day, so no unique key spans it: an id is
    // recorded only when no partition holds it. Exact because every delivery of an event
    // id holds the same advisory locks by now (`apply::lock_keys`), and this statement's
    // snapshot is taken after they were granted: an earlier delivery has committed. The
    // plan records each id of a batch once. Each id is looked up by itself (a scalar
    // subquery: a sub-plan run per id, one index probe per partition) in the partitions
    // since `Since` only (a constant of the custom plan: the others are pruned when
    // planning). EXPLAIN ANALYZE of 100 ids: as `NOT EXISTS` the planner chose a hash
    // anti-join over every partition's rows (93 ms at 300k rows in 33 partitions); as
    // one `= ANY(ids)` read, a sequential scan while the partition has no statistics
    // (14.7 ms at 100k rows, the drain 0.7x); this form 1.0-1.5 ms either way.
    b.sql(
        "WITH recorded AS (INSERT INTO processed_events \
         (event_id, event_type, user_id, outcome) SELECT * FROM unnest(",
    )
    .bind(WriteSlot::EventIds)
    .sql("::text[], ")
    .bind(WriteSlot::EventTypes)
    .sql("::text[], ")
    .bind(WriteSlot::UserIds)
    .sql("::text[], ")
    .bind(WriteSlot::Outcomes)
    .sql(
        "::text[]) AS n(i, t, u, o) WHERE (SELECT true FROM processed_events p \
         WHERE p.event_id = n.i AND p.processed_at >= ",
    )
    .bind(WriteSlot::Since)
    .sql(" LIMIT 1) IS NULL RETURNING event_id)");
    let deleted = (shape >> DELETES) & ENTITY_BITS;
    if deleted != 0 {
        b.sql(
            ", del AS MATERIALIZED (SELECT d.entity, d.id, d.at, d.ev FROM \
             json_to_recordset(",
        )
        .bind(WriteSlot::Deletes)
        .sql(&format!(
            "::json) AS d(entity text, id text, at timestamptz, ev text, src text) {})",
            newly("d")
        ));
    }
    for (i, t) in TABLES
        .iter()
        .enumerate()
        .filter(|(i, _)| shape & (1 << i) != 0)
    {
        upsert(&mut b, layout, i, t);
    }
    let users = crate::tables::table(Entity::Users);
    if let (true, Some(refresh)) = (shape & (1 << REFRESH) != 0, users.refresh) {
        let (id, sign_in) = (layout.q("id"), layout.q(refresh.column));
        b.sql(&format!(
            ", refreshed AS (UPDATE users SET {sign_in} = v.t{touch} FROM json_to_recordset(",
            touch = touch(layout, users),
        ))
        .bind(WriteSlot::Refresh)
        .sql(&format!(
            "::json) AS v(id text, t timestamptz) WHERE users.{id} = v.id \
             AND (users.{sign_in} IS NULL OR users.{sign_in} < v.t) RETURNING 1)"
        ));
    }
    // One statement per (table, key or parent column) of a deleted entity: `= ANY(ARRAY(…))`
    // lets each use its index (an OR of subqueries would scan the table).
    let mut n = 0;
    for t in TABLES {
        let by = std::iter::once((t.entity, t.key)).chain(t.parents.iter().copied());
        for (entity, col) in by.filter(|(e, _)| deleted & (1 << e.index()) != 0) {
            n += 1;
            let col = column(layout, t, col);
            if layout.deletes.soft(t.entity) {
                // Kept with deleted_at set; a row already soft-deleted (by sync, or by
                // the application: a ban) keeps its first deletion time, and still has
                // WorkOS's personal data cleared. `del` has one row per key (one write
                // per key).
                let deleted_at = column(layout, t, "deleted_at");
                b.sql(&format!(
                    ", rm_{n} AS (UPDATE {name} SET {deleted_at} = \
                     COALESCE({name}.{deleted_at}, d.at){clear}{touch} \
                     FROM del d WHERE d.entity = '{entity}' AND {name}.{col} = d.id \
                     RETURNING 1)",
                    name = t.table,
                    entity = entity.name(),
                    clear = soft_clear(layout, t),
                    touch = touch(layout, t),
                ));
            } else {
                b.sql(&format!(
                    ", rm_{n} AS (DELETE FROM {name} WHERE {col} = ANY(ARRAY(\
                     SELECT id FROM del WHERE entity = '{entity}')) RETURNING 1)",
                    name = t.table,
                    entity = entity.name(),
                ));
            }
        }
    }
    if deleted != 0 {
        b.sql(
            ", tombstoned AS (INSERT INTO tombstones (entity, id, deleted_at, event_id) \
             SELECT entity, id, at, ev FROM del ON CONFLICT (entity, id) DO UPDATE \
             SET deleted_at = excluded.deleted_at, event_id = excluded.event_id \
             WHERE tombstones.deleted_at < excluded.deleted_at RETURNING 1)",
        );
    }
    // Data-modifying CTEs run to completion whether or not the outer query reads them;
    // the outer query returns the newly recorded ids.
    b.sql(" SELECT event_id FROM recorded");
    b.finish()
}

/// `, updated_at = now()` for a table that has it (an adopted users table may not).
fn touch(layout: &Layout, t: &Table) -> String {
    if !t.adoptable {
        ", updated_at = now()".into()
    } else if layout.has("updated_at") {
        format!(", {} = now()", layout.q("updated_at"))
    } else {
        String::new()
    }
}

/// What a soft delete sets besides `deleted_at`: each column declared to be cleared (a
/// user's WorkOS personal data; the application's own columns, and the usertag it may
/// show, stay). See [`Clear`] for a column that cannot always be NULL.
fn soft_clear(layout: &Layout, t: &Table) -> String {
    let mut s = String::new();
    for c in t.columns.iter().filter(|c| present(layout, t, c)) {
        let value = match c.clear {
            Clear::Keep => continue,
            Clear::Empty => c.ty.empty_sql().to_owned(),
            Clear::Undeliverable if t.adoptable && layout.email_nullable => "NULL".to_owned(),
            Clear::Undeliverable => format!(
                "{}.{} || '@deleted.invalid'",
                t.table,
                key_column(layout, t)
            ),
        };
        s.push_str(&format!(", {} = {value}", column(layout, t, c.name)));
    }
    s
}

/// The guarded upsert of table `t` (`TABLES[i]`): insert new keys, update existing ones
/// only with strictly newer data.
fn upsert(b: &mut Builder<WriteSlot>, layout: &Layout, i: usize, t: &Table) {
    let adopted = t.adoptable;
    // The record set's columns carry our names; the table's are the layout's.
    let names: Vec<String> = t.columns.iter().map(|c| quote(c.name)).collect();
    let written: Vec<&Column> = t.columns.iter().filter(|c| present(layout, t, c)).collect();
    let mut target: Vec<String> = written.iter().map(|c| column(layout, t, c.name)).collect();
    let mut values: Vec<String> = written.iter().map(|c| quote(c.name)).collect();
    // An adopted table's timestamps may have no default (Prisma's `@updatedAt`): set them.
    if adopted {
        for c in &layout.stamp_on_insert {
            target.push(layout.q(c));
            values.push("now()".into());
        }
    }
    let set: Vec<String> = written
        .iter()
        .filter(|c| c.on_update)
        .map(|c| {
            let p = column(layout, t, c.name);
            format!("{p} = excluded.{p}")
        })
        .collect();
    b.sql(&format!(
        ", up_{name} AS (INSERT INTO {name} ({target}) SELECT {values} FROM ",
        name = t.table,
        target = target.join(", "),
        values = values.join(", "),
    ));
    let record = if crate::tables::columnar(t) {
        // Binary arrays, one per column (see `tables`).
        b.sql("unnest(");
        for (c, col) in t.columns.iter().enumerate() {
            b.bind(WriteSlot::Column(i, Some(c)))
                .sql(&format!("::{}[], ", col.ty.pg()));
        }
        b.bind(WriteSlot::Column(i, None)).sql("::text[]) AS r(");
        format!("{}, src)", names.join(", "))
    } else {
        let typed: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("{} {}", quote(c.name), c.ty.pg()))
            .collect();
        b.sql("json_to_recordset(")
            .bind(WriteSlot::Upserts(i))
            .sql("::json) AS r(");
        format!("{}, src text)", typed.join(", "))
    };
    // The version guard, in SQL: only strictly newer data wins; a row with no version
    // yet (an adopted table's rows before their first event) takes any. Columns not in
    // the SET list (the key, a user's usertag, the application's own) are kept.
    let version = column(layout, t, Column::VERSION.name);
    let unversioned = if adopted && layout.version_nullable {
        format!("{}.{version} IS NULL OR ", t.table)
    } else {
        String::new()
    };
    // A soft-deleted row's deleted_at is never in the SET list: sync's own soft delete
    // is final (tombstoned, never written), and the application's is the application's.
    b.sql(&record).sql(&format!(
        " {newly} ON CONFLICT ({key}) DO UPDATE SET {set}{touch} WHERE \
         {unversioned}{name}.{version} < excluded.{version} RETURNING 1)",
        newly = newly("r"),
        key = key_column(layout, t),
        set = set.join(", "),
        touch = touch(layout, t),
        name = t.table,
    ));
}

impl QueryFragment<Pg> for WriteBatch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let st = self.st;
        st.writes
            .get(self.shape(), |shape| build_write(&st.layout, shape))
            .walk(&mut out, |slot, o| match slot {
                WriteSlot::EventIds => o.push_bind_param::<Array<Text>, _>(&self.event_ids),
                WriteSlot::EventTypes => o.push_bind_param::<Array<Text>, _>(&self.event_types),
                WriteSlot::UserIds => o.push_bind_param::<Array<Nullable<Text>>, _>(&self.user_ids),
                WriteSlot::Outcomes => o.push_bind_param::<Array<Text>, _>(&self.outcomes),
                WriteSlot::Since => {
                    o.push_bind_param::<diesel::sql_types::Timestamptz, _>(&self.since)
                }
                WriteSlot::Deletes => o.push_bind_param::<Text, _>(&self.deletes),
                WriteSlot::Upserts(i) => o.push_bind_param::<Text, _>(&self.upserts[i]),
                WriteSlot::Column(t, c) => match self.rows.get(t) {
                    Some(rows) => rows.bind(c, o),
                    None => Err(diesel::result::Error::QueryBuilderError(
                        "table index out of range".into(),
                    )),
                },
                WriteSlot::Refresh => o.push_bind_param::<Text, _>(&self.refresh),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape of `bits` bits with at most three set, and the one with all set.
    fn shapes(bits: usize) -> impl Iterator<Item = u32> {
        let all = (1u32 << bits) - 1;
        (0..=all)
            .filter(|s| s.count_ones() <= 3)
            .chain(std::iter::once(all))
    }

    #[test]
    fn every_shape_builds_and_names_only_its_tables() {
        let own = Layout::own(Default::default());
        for shape in shapes(REFRESH + 1) {
            let w = build_write(&own, shape);
            assert_eq!(w.parts.len(), w.slots.len() + 1);
            let text = w.parts.concat();
            assert!(!text.contains('$'), "{text}");
            for (i, t) in TABLES.iter().enumerate() {
                let up = format!("up_{} ", t.table);
                assert_eq!(text.contains(&up), shape & (1 << i) != 0, "{shape:b}: {up}");
            }
            assert_eq!(
                text.contains("tombstoned"),
                shape & (ENTITY_BITS << DELETES) != 0
            );
        }
        // A user's delete removes the user's memberships too; an organization's, its
        // domains, memberships and roles.
        let users = build_write(&own, 1 << (DELETES + Entity::Users.index()))
            .parts
            .concat();
        assert!(users.contains("DELETE FROM organization_memberships WHERE \"user_id\""));
        let orgs = build_write(&own, 1 << (DELETES + Entity::Organizations.index()))
            .parts
            .concat();
        for child in ["organization_domains", "organization_memberships", "roles"] {
            assert!(
                orgs.contains(&format!("DELETE FROM {child} WHERE \"organization_id\"")),
                "{child}"
            );
        }
        for shape in shapes(PAIRS + 1) {
            let l = build_load(&own, shape);
            assert_eq!(l.parts.len(), l.slots.len() + 1);
            assert!(l.parts.concat().contains("FROM tombstones"));
        }
    }
}
