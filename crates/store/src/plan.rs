//! The pure part of applying a batch: given the events and what the database already
//! holds for their records (read under the records' locks), decide each event's outcome
//! and the final state to write. No I/O, so the ordering rules are unit- and
//! property-tested. One set of rules for every entity (docs/architecture.md,
//! invariants 3-5):
//!
//! - an event id seen before is a duplicate and changes nothing;
//! - an upsert applies only when its `updated_at` is strictly newer than the stored one;
//! - a delete tombstones the key for good: nothing after (or before) brings it back;
//! - a record whose parent (a membership's user or organization, a domain's or an
//!   organization role's organization) is tombstoned is never written, and deleting a
//!   user or an organization removes its children in the same statement (whether or not
//!   their own deletes ever arrive);
//! - WorkOS holds one membership per user and organization: of two ids for one pair, the
//!   one created later wins and the other is removed and tombstoned (a membership deleted
//!   and re-created, whatever the arrival order);
//! - events of an entity that is switched off are recorded as ignored.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use workos_sync_core::{Entity, EntitySet, Event, EventKind, Record};

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The row was inserted.
    Created,
    /// The row was updated (newer `updated_at`).
    Updated,
    /// Not newer than what is stored: nothing changed.
    Stale,
    /// The row was removed and its key tombstoned.
    Deleted,
    /// The key (or its user or organization) is tombstoned: the event changes nothing.
    Tombstoned,
    /// This event id was applied before.
    Duplicate,
    /// Not an event of an enabled entity: recorded and otherwise ignored.
    Ignored,
    /// A snapshot with the stored `updated_at` but a newer value of its entity's
    /// refresh column (`Declaration::refresh`: a user's last sign-in, which changes
    /// without a new `updated_at`): only that column was updated.
    Refreshed,
    /// A membership older than the one stored for the same user and organization: WorkOS
    /// has replaced it, so it is tombstoned and not written.
    Superseded,
    /// The user's row is locked by another session (the application's `SELECT … FOR
    /// UPDATE`, a long transaction): nothing was written or recorded; the caller tries
    /// the event again shortly, and the rest of the batch is not held up by it.
    Deferred,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Stale => "stale",
            Self::Deleted => "deleted",
            Self::Tombstoned => "tombstoned",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Refreshed => "refreshed",
            Self::Superseded => "superseded",
            Self::Deferred => "deferred",
        }
    }
}

/// A row's identity: its entity and its key ([`Record::key`]).
pub type Key = (Entity, String);

/// What the database holds for one key before the batch.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    /// A row is stored (its `updated_at` may still be unknown: an adopted table's row
    /// that no event has reached yet).
    pub present: bool,
    pub updated_at: Option<DateTime<Utc>>,
    /// The stored value of the entity's refresh column (`Declaration::refresh`).
    pub refresh_at: Option<DateTime<Utc>>,
    pub tombstoned: bool,
    /// The tombstone's deletion time (see [`Entity::key_is_reused`]).
    pub tombstoned_at: Option<DateTime<Utc>>,
}

/// What the database holds for a batch (read under its locks).
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// Rows and tombstones by key (no entry: neither).
    pub rows: HashMap<Key, Existing>,
    /// The stored membership of each (user id, organization id) pair the batch touches:
    /// its id and WorkOS `created_at`.
    pub pairs: HashMap<(String, String), (String, DateTime<Utc>)>,
    /// Users whose rows another session holds locked: their events are
    /// [`Outcome::Deferred`].
    pub locked: HashSet<String>,
}

/// The final write for one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Insert (when `new`) or guarded update with this record. `source` is the recorded
    /// event whose data this is (`None` for a snapshot, which is not recorded).
    Upsert {
        record: Box<Record>,
        new: bool,
        source: Option<String>,
    },
    /// Set the key's refresh column only (see [`Outcome::Refreshed`]).
    Refresh { key: Key, at: DateTime<Utc> },
    /// Delete the row (and, for a user or an organization, its children) and record a
    /// tombstone naming `event_id`. Made only if `source` is newly recorded (`None`:
    /// unconditionally).
    Delete {
        key: Key,
        deleted_at: DateTime<Utc>,
        event_id: String,
        source: Option<String>,
    },
}

impl Write {
    pub fn key(&self) -> Key {
        match self {
            Write::Upsert { record, .. } => (record.entity(), record.key()),
            Write::Refresh { key, .. } => key.clone(),
            Write::Delete { key, .. } => key.clone(),
        }
    }

    /// The recorded event this write depends on.
    pub fn source(&self) -> Option<&str> {
        match self {
            Write::Upsert { source, .. } | Write::Delete { source, .. } => source.as_deref(),
            Write::Refresh { .. } => None,
        }
    }
}

/// One processed-event record.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub event_id: String,
    pub event_type: String,
    pub user_id: Option<String>,
    pub outcome: Outcome,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub outcomes: Vec<Outcome>,
    pub writes: Vec<Write>,
    pub processed: Vec<Processed>,
}

#[derive(Default)]
struct State {
    existed: bool,
    updated_at: Option<DateTime<Utc>>,
    refresh_at: Option<DateTime<Utc>>,
    tombstoned: bool,
    tombstoned_at: Option<DateTime<Utc>>,
    /// Deleted in this batch: when, by which event, conditional on which recorded event.
    newly_deleted: Option<(DateTime<Utc>, String, Option<String>)>,
    /// The record to write, and the recorded event it came from (`None`: a snapshot).
    pending: Option<(Record, Option<String>)>,
    refresh: Option<DateTime<Utc>>,
}

/// The planner's working state: one [`State`] per key, in first-seen order.
struct Planner<'k> {
    known: &'k Known,
    states: HashMap<Key, State>,
    order: Vec<Key>,
    pairs: HashMap<(String, String), (String, DateTime<Utc>)>,
}

impl Planner<'_> {
    fn state(&mut self, key: &Key) -> &mut State {
        let (known, order) = (self.known, &mut self.order);
        self.states.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            let ex = known.rows.get(key).cloned().unwrap_or_default();
            State {
                existed: ex.present || ex.updated_at.is_some(),
                updated_at: ex.updated_at,
                refresh_at: ex.refresh_at,
                tombstoned: ex.tombstoned,
                tombstoned_at: ex.tombstoned_at,
                ..State::default()
            }
        })
    }

    fn tombstoned(&mut self, entity: Entity, id: &str) -> bool {
        self.state(&(entity, id.to_owned())).tombstoned
    }

    fn delete(&mut self, key: &Key, at: DateTime<Utc>, event_id: &str, source: Option<String>) {
        let st = self.state(key);
        st.tombstoned = true;
        st.tombstoned_at = Some(st.tombstoned_at.map_or(at, |t| t.max(at)));
        st.newly_deleted = Some((at, event_id.to_owned(), source));
        st.pending = None;
        st.refresh = None;
    }

    /// The pair rule for a membership about to be written: `Some(Superseded)` when the
    /// pair's holder is a newer membership; otherwise the older holder is removed and
    /// this membership holds the pair.
    fn claim_pair(
        &mut self,
        ev: &Event,
        m: &workos_sync_core::Membership,
        source: &Option<String>,
    ) -> Option<Outcome> {
        let pair = (m.user_id.clone(), m.organization_id.clone());
        let mine = (m.created_at, m.id.clone());
        match self.pairs.get(&pair).cloned() {
            Some((holder, _)) if holder == m.id => None,
            Some((holder, created)) if (created, holder.clone()) > mine => {
                let key = (Entity::OrganizationMemberships, m.id.clone());
                self.delete(&key, ev.created_at, &ev.id, source.clone());
                Some(Outcome::Superseded)
            }
            Some((holder, _)) => {
                let key = (Entity::OrganizationMemberships, holder);
                if !self.state(&key).tombstoned {
                    self.delete(&key, ev.created_at, &ev.id, source.clone());
                }
                self.pairs.insert(pair, (mine.1, mine.0));
                None
            }
            None => {
                self.pairs.insert(pair, (mine.1, mine.0));
                None
            }
        }
    }

    fn apply(&mut self, ev: &Event, record: &Record, enabled: EntitySet) -> Outcome {
        let key = (record.entity(), record.key());
        let snapshot = matches!(ev.kind, EventKind::Snapshot(_));
        let st = self.state(&key);
        if st.tombstoned {
            // A reused key (a role's slug) made again after its deletion is a new object:
            // it is written, and the old object's late events stay stopped.
            let made_again =
                key.0.key_is_reused() && st.tombstoned_at.is_some_and(|t| record.created_at() > t);
            if !made_again {
                return Outcome::Tombstoned;
            }
            // A deletion earlier in this batch is superseded by the object made again:
            // the row is written (under the newer version) rather than deleted, so no
            // key gets two writes (a reused key has no children to cascade to). What the
            // skipped deletion would have stopped is older than the stored row, so the
            // version guard stops it.
            st.newly_deleted = None;
            if st
                .updated_at
                .is_some_and(|u| u <= st.tombstoned_at.unwrap_or(u))
            {
                // The stored row (an old object) is older than the deletion: any
                // version of the new object replaces it.
                st.updated_at = None;
            }
        }
        for (entity, id) in record.parents() {
            if enabled.contains(entity) && self.tombstoned(entity, id) {
                return Outcome::Tombstoned;
            }
        }
        let source = (!snapshot).then(|| ev.id.clone());
        if let EventKind::Delete(_) = ev.kind {
            // A reused key's deletion older than the row stored under it is about an
            // earlier life (a user removed from a group before being added again).
            let current = self.state(&key).updated_at;
            if key.0.key_is_reused() && current.is_some_and(|c| ev.created_at < c) {
                return Outcome::Stale;
            }
            if let Record::Membership(m) = record {
                let pair = (m.user_id.clone(), m.organization_id.clone());
                if self.pairs.get(&pair).is_some_and(|(h, _)| *h == m.id) {
                    self.pairs.remove(&pair);
                }
            }
            self.delete(&key, ev.created_at, &ev.id, source);
            return Outcome::Deleted;
        }
        let updated_at = record.updated_at();
        let current = self.state(&key).updated_at;
        match current {
            Some(c) if updated_at < c => return Outcome::Stale,
            Some(c) if updated_at == c => {
                // A refresh column moves without a new updated_at (a user's
                // sign-ins); only a snapshot from the API (lazy sync, backfill) may
                // carry that.
                let refresh = record.entity().declaration().refresh;
                let newer = refresh
                    .filter(|_| snapshot)
                    .and_then(|r| (r.get)(record).map(|t| (r, t)));
                let st = self.state(&key);
                return match newer {
                    Some((r, t)) if Some(t) > st.refresh_at => {
                        st.refresh_at = Some(t);
                        match st.pending.as_mut() {
                            Some((p, _)) => (r.set)(p, t),
                            None => st.refresh = Some(t),
                        }
                        Outcome::Refreshed
                    }
                    _ => Outcome::Stale,
                };
            }
            _ => {}
        }
        if let Record::Membership(m) = record
            && let Some(outcome) = self.claim_pair(ev, m, &source)
        {
            return outcome;
        }
        let st = self.state(&key);
        st.updated_at = Some(updated_at);
        if let Some(r) = record.entity().declaration().refresh {
            st.refresh_at = (r.get)(record);
        }
        st.refresh = None;
        st.pending = Some((record.clone(), source));
        if current.is_none() && !st.existed {
            Outcome::Created
        } else {
            Outcome::Updated
        }
    }

    /// The keys deleted in this batch. Taken before `writes` consumes the states: a
    /// parent's state may come before or after its child's in `order` (whichever key the
    /// batch touched first), and a child whose parent this batch deletes is never
    /// written: the parent's delete removes the children the table holds, in the same
    /// statement and on the same snapshot, so it would miss a row inserted beside it.
    fn newly_deleted(&self) -> HashSet<Key> {
        self.states
            .iter()
            .filter(|(_, s)| s.newly_deleted.is_some())
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn writes(mut self) -> Vec<Write> {
        let mut writes = Vec::new();
        let deleted = self.newly_deleted();
        for key in std::mem::take(&mut self.order) {
            let Some(st) = self.states.remove(&key) else {
                continue;
            };
            if let Some((deleted_at, event_id, source)) = st.newly_deleted {
                writes.push(Write::Delete {
                    key,
                    deleted_at,
                    event_id,
                    source,
                });
            } else if let Some((record, source)) = st.pending {
                if record
                    .parents()
                    .into_iter()
                    .any(|(e, id)| deleted.contains(&(e, id.to_owned())))
                {
                    continue;
                }
                writes.push(Write::Upsert {
                    record: Box::new(record),
                    new: !st.existed,
                    source,
                });
            } else if let Some(t) = st.refresh {
                writes.push(Write::Refresh { key, at: t });
            }
        }
        writes
    }
}

/// Decides outcomes in event order. `known` has an entry for every key of the batch that
/// the database knows; `seen` holds event ids already processed.
pub fn plan(events: &[Event], known: &Known, seen: &HashSet<String>, enabled: EntitySet) -> Plan {
    let mut plan = Plan::default();
    let mut planner = Planner {
        known,
        states: HashMap::new(),
        order: Vec::new(),
        pairs: known.pairs.clone(),
    };
    let mut batch_ids: HashSet<&str> = HashSet::new();
    for ev in events {
        if let Some(Record::User(u)) = ev.record()
            && known.locked.contains(&u.id)
        {
            plan.outcomes.push(Outcome::Deferred);
            continue;
        }
        let snapshot = matches!(ev.kind, EventKind::Snapshot(_));
        if !snapshot && (seen.contains(&ev.id) || !batch_ids.insert(ev.id.as_str())) {
            plan.outcomes.push(Outcome::Duplicate);
            continue;
        }
        let outcome = match ev.record() {
            // A key-only deletion whose key nothing stored could tell: nothing to delete.
            Some(record) if record.key_unknown() => Outcome::Ignored,
            Some(record) if enabled.contains(record.entity()) => planner.apply(ev, record, enabled),
            _ => Outcome::Ignored,
        };
        plan.outcomes.push(outcome);
        if snapshot {
            continue;
        }
        plan.processed.push(Processed {
            event_id: ev.id.clone(),
            event_type: ev.event_type.clone(),
            user_id: ev.user_id().map(str::to_owned),
            outcome,
        });
    }
    plan.writes = planner.writes();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use workos_sync_core::{Membership, User, event_type};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    fn user(id: &str, v: i64) -> Record {
        Record::User(User {
            email: format!("{id}@x.io"),
            updated_at: t(v),
            ..User::stub(id, t(0))
        })
    }

    fn membership(id: &str, user: &str, org: &str, created: i64, v: i64) -> Record {
        Record::Membership(Membership {
            raw: Default::default(),
            id: id.into(),
            user_id: user.into(),
            organization_id: org.into(),
            status: "active".into(),
            role: None,
            roles: Vec::new(),
            custom_attributes: None,
            directory_managed: None,
            created_at: t(created),
            updated_at: t(v),
        })
    }

    fn org(id: &str, v: i64) -> Record {
        Record::Organization(workos_sync_core::Organization {
            name: id.into(),
            updated_at: t(v),
            ..workos_sync_core::Organization::stub(id, t(0))
        })
    }

    fn up(id: &str, r: Record, at: i64) -> Event {
        Event {
            id: id.into(),
            event_type: "x.updated".into(),
            created_at: t(at),
            kind: EventKind::Upsert(r),
        }
    }

    fn del(id: &str, r: Record, at: i64) -> Event {
        Event {
            kind: EventKind::Delete(r),
            ..up(id, user("_", 0), at)
        }
    }

    fn snap(id: &str, r: Record) -> Event {
        Event {
            event_type: event_type::SNAPSHOT.into(),
            kind: EventKind::Snapshot(r),
            ..up(id, user("_", 0), 0)
        }
    }

    fn other(id: &str) -> Event {
        Event {
            event_type: "session.created".into(),
            kind: EventKind::Other,
            ..up(id, user("_", 0), 0)
        }
    }

    fn run(events: &[Event], known: &Known, seen: &[&str]) -> Plan {
        let seen: HashSet<String> = seen.iter().map(|s| s.to_string()).collect();
        plan(events, known, &seen, EntitySet::ALL)
    }

    fn stored(rows: &[(Entity, &str, Option<i64>, bool)]) -> Known {
        Known {
            rows: rows
                .iter()
                .map(|(e, id, v, tomb)| {
                    (
                        (*e, id.to_string()),
                        Existing {
                            present: v.is_some(),
                            updated_at: v.map(t),
                            refresh_at: None,
                            tombstoned: *tomb,
                            tombstoned_at: tomb.then_some(t(0)),
                        },
                    )
                })
                .collect(),
            pairs: HashMap::new(),
            locked: HashSet::new(),
        }
    }

    #[test]
    fn newest_wins_within_a_batch() {
        let events = vec![
            up("e2", user("u", 2), 2),
            up("e1", user("u", 1), 1),
            up("e3", user("u", 3), 3),
        ];
        let p = run(&events, &Known::default(), &[]);
        assert_eq!(
            p.outcomes,
            vec![Outcome::Created, Outcome::Stale, Outcome::Updated]
        );
        assert_eq!(p.writes.len(), 1);
        match &p.writes[0] {
            Write::Upsert {
                record,
                new,
                source,
            } => {
                assert!(new);
                assert_eq!(record.updated_at().timestamp(), 3);
                // The write is e3's: if e3 turns out to be a duplicate, it is not made.
                assert_eq!(source.as_deref(), Some("e3"));
            }
            w => panic!("{w:?}"),
        }
    }

    #[test]
    fn duplicates_and_tombstones() {
        let events = vec![
            up("e1", user("u", 1), 1),
            up("e1", user("u", 1), 1),
            del("d", user("u", 1), 5),
            up("e9", user("u", 9), 9),
            up("old", user("v", 1), 1),
            other("x"),
        ];
        let known = stored(&[(Entity::Users, "v", Some(1), false)]);
        let p = run(&events, &known, &["old"]);
        assert_eq!(
            p.outcomes,
            vec![
                Outcome::Created,
                Outcome::Duplicate,
                Outcome::Deleted,
                Outcome::Tombstoned,
                Outcome::Duplicate,
                Outcome::Ignored
            ]
        );
        assert_eq!(p.writes.len(), 1);
        assert!(
            matches!(&p.writes[0], Write::Delete { key, source: Some(s), .. } if key.1 == "u" && s == "d")
        );
        assert_eq!(p.processed.len(), 4);
    }

    #[test]
    fn existing_tombstone_blocks_everything() {
        let known = stored(&[(Entity::Users, "u", None, true)]);
        let events = vec![up("a", user("u", 100), 100), del("b", user("u", 100), 100)];
        let p = run(&events, &known, &[]);
        assert_eq!(p.outcomes, vec![Outcome::Tombstoned, Outcome::Tombstoned]);
        assert!(p.writes.is_empty());
    }

    #[test]
    fn a_child_is_never_written_beside_its_parents_delete_whatever_came_first() {
        // The organization's key is touched first (an update), then a membership of it
        // is created, then the organization is deleted: the membership must not be
        // written (the organization's cascade cannot see a row inserted in the same
        // statement). The same with a user and its membership.
        let batches = [
            vec![
                up("o1", org("o", 1), 1),
                up("m1", membership("m", "u", "o", 1, 1), 1),
                del("od", org("o", 1), 2),
            ],
            vec![
                up("u1", user("u", 1), 1),
                up("m1", membership("m", "u", "o", 1, 1), 1),
                del("ud", user("u", 1), 2),
            ],
        ];
        for events in batches {
            let p = run(&events, &Known::default(), &[]);
            assert_eq!(p.outcomes[1], Outcome::Created);
            assert!(
                !p.writes
                    .iter()
                    .any(|w| matches!(w, Write::Upsert { record, .. } if record.key() == "m")),
                "{:?}",
                p.writes
            );
        }
    }

    #[test]
    fn an_unversioned_row_is_taken_over_by_any_event() {
        // An adopted table's row that no event has reached: present, no version.
        let mut known = Known::default();
        known.rows.insert(
            (Entity::Users, "u".into()),
            Existing {
                present: true,
                ..Existing::default()
            },
        );
        let p = run(&[up("e", user("u", 1), 1)], &known, &[]);
        assert_eq!(p.outcomes, vec![Outcome::Updated]);
        assert!(matches!(&p.writes[0], Write::Upsert { new: false, .. }));
    }

    #[test]
    fn keys_are_per_entity() {
        // A user and an organization with the same id are two rows.
        let known = stored(&[(Entity::Users, "x", None, true)]);
        let p = run(&[up("a", org("x", 1), 1)], &known, &[]);
        assert_eq!(p.outcomes, vec![Outcome::Created]);
    }

    #[test]
    fn snapshots_are_guarded_but_never_deduplicated() {
        let known = stored(&[(Entity::Users, "u", Some(5), false)]);
        let events = vec![
            snap("s", user("u", 4)),
            snap("s", user("u", 6)),
            snap("n", user("new", 1)),
        ];
        let p = run(&events, &known, &["s"]);
        assert_eq!(
            p.outcomes,
            vec![Outcome::Stale, Outcome::Updated, Outcome::Created]
        );
        assert!(p.processed.is_empty());
        assert_eq!(p.writes.len(), 2);
        // Snapshots are not recorded, so their writes have no source to check.
        assert!(
            p.writes
                .iter()
                .all(|w| matches!(w, Write::Upsert { source: None, .. }))
        );
    }

    #[test]
    fn snapshots_refresh_the_refresh_column_when_updated_at_is_equal() {
        let mut known = stored(&[(Entity::Users, "u", Some(5), false)]);
        if let Some(e) = known.rows.get_mut(&(Entity::Users, "u".to_string())) {
            e.refresh_at = Some(t(100));
        }
        let refresh = Entity::Users.declaration().refresh.unwrap();
        let signed_in = |at: i64| {
            let mut u = user("u", 5);
            (refresh.set)(&mut u, t(at));
            u
        };
        // A webhook with the same updated_at never refreshes; a snapshot does, once.
        let events = vec![
            up("w", signed_in(200), 5),
            snap("s1", signed_in(50)),
            snap("s2", signed_in(200)),
            snap("s3", signed_in(200)),
        ];
        let p = run(&events, &known, &[]);
        assert_eq!(
            p.outcomes,
            vec![
                Outcome::Stale,
                Outcome::Stale,
                Outcome::Refreshed,
                Outcome::Stale
            ]
        );
        assert_eq!(
            p.writes,
            vec![Write::Refresh {
                key: (Entity::Users, "u".into()),
                at: t(200)
            }]
        );
    }

    #[test]
    fn children_of_a_deleted_parent_are_never_written() {
        // Before the user and organization exist: stored. After either is deleted: not.
        let p = run(
            &[up("m1", membership("om_1", "u", "o", 1, 1), 1)],
            &Known::default(),
            &[],
        );
        assert_eq!(p.outcomes, vec![Outcome::Created]);
        for parent in [Entity::Users, Entity::Organizations] {
            let id = if parent == Entity::Users { "u" } else { "o" };
            let known = stored(&[(parent, id, None, true)]);
            let p = run(
                &[up("m1", membership("om_1", "u", "o", 1, 1), 1)],
                &known,
                &[],
            );
            assert_eq!(p.outcomes, vec![Outcome::Tombstoned], "{parent}");
            assert!(p.writes.is_empty());
        }
        // Created earlier in the same batch as the organization's delete: not written
        // (the delete's statement removes what is stored).
        let events = vec![
            up("m1", membership("om_1", "u", "o", 1, 1), 1),
            del("d", org("o", 2), 2),
            up("m2", membership("om_2", "w", "o", 3, 3), 3),
        ];
        let p = run(&events, &Known::default(), &[]);
        assert_eq!(
            p.outcomes,
            vec![Outcome::Created, Outcome::Deleted, Outcome::Tombstoned]
        );
        assert_eq!(p.writes.len(), 1);
        assert!(
            matches!(&p.writes[0], Write::Delete { key, .. } if key.0 == Entity::Organizations)
        );
    }

    #[test]
    fn a_recreated_membership_replaces_the_old_one_in_any_order() {
        let old = membership("om_old", "u", "o", 1, 1);
        let new = membership("om_new", "u", "o", 5, 5);
        for events in [
            vec![up("a", old.clone(), 1), up("b", new.clone(), 5)],
            vec![up("b", new.clone(), 5), up("a", old.clone(), 1)],
        ] {
            let p = run(&events, &Known::default(), &[]);
            let upserts: Vec<String> = p
                .writes
                .iter()
                .filter_map(|w| match w {
                    Write::Upsert { record, .. } => Some(record.key()),
                    _ => None,
                })
                .collect();
            assert_eq!(upserts, vec!["om_new".to_string()], "{:?}", p.outcomes);
            assert!(
                p.writes
                    .iter()
                    .any(|w| matches!(w, Write::Delete { key, .. } if key.1 == "om_old"))
            );
        }
        // The old one stored: the new one removes it. The new one stored: the old one
        // is superseded.
        let mut known = Known::default();
        known.rows.insert(
            (Entity::OrganizationMemberships, "om_old".into()),
            Existing {
                updated_at: Some(t(1)),
                ..Existing::default()
            },
        );
        known
            .pairs
            .insert(("u".into(), "o".into()), ("om_old".into(), t(1)));
        let p = run(&[up("b", new.clone(), 5)], &known, &[]);
        assert_eq!(p.outcomes, vec![Outcome::Created]);
        assert!(p.writes.iter().any(|w| matches!(w, Write::Delete { key, source: Some(s), .. } if key.1 == "om_old" && s == "b")));
        let mut known = Known::default();
        known
            .pairs
            .insert(("u".into(), "o".into()), ("om_new".into(), t(5)));
        let p = run(&[up("a", old, 1)], &known, &[]);
        assert_eq!(p.outcomes, vec![Outcome::Superseded]);
        assert!(matches!(&p.writes[..], [Write::Delete { key, .. }] if key.1 == "om_old"));
    }

    #[test]
    fn disabled_entities_are_ignored() {
        let seen = HashSet::new();
        let events = vec![up("a", org("o", 1), 1), up("b", user("u", 1), 1)];
        let p = plan(
            &events,
            &Known::default(),
            &seen,
            EntitySet::of(&[Entity::Users]),
        );
        assert_eq!(p.outcomes, vec![Outcome::Ignored, Outcome::Created]);
        assert_eq!(p.processed.len(), 2);
    }
}
