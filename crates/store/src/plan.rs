//! The pure part of applying a batch: given the events and what the database already
//! holds for their users (read under the users' locks), decide each event's outcome and
//! the final state to write. No I/O, so the ordering rules are unit- and property-tested.
//!
//! Rules (docs/architecture.md, invariants 3-4): an event id seen before is a duplicate and changes
//! nothing; a user upsert applies only when its `updated_at` is strictly newer than the
//! stored one; a delete tombstones the user for good, and nothing after (or before)
//! brings a tombstoned id back.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use workos_sync_core::{Event, EventKind, User};

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The user row was inserted.
    Created,
    /// The user row was updated (newer `updated_at`).
    Updated,
    /// Not newer than what is stored: nothing changed.
    Stale,
    /// The user was removed and tombstoned.
    Deleted,
    /// The user is tombstoned: the event changes nothing.
    Tombstoned,
    /// This event id was applied before.
    Duplicate,
    /// Not a user event: recorded and otherwise ignored.
    Ignored,
    /// A snapshot with the stored `updated_at` but a newer `last_sign_in_at` (which
    /// changes on sign-in without a new `updated_at`): only that column was updated.
    Refreshed,
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
        }
    }
}

/// What the database holds for one user before the batch.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    pub updated_at: Option<DateTime<Utc>>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub tombstoned: bool,
}

/// The final write for one user.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Insert (when `new`) or guarded update with this WorkOS user. `source` is the
    /// recorded event whose data this is (`None` for a snapshot, which is not recorded).
    Upsert {
        user: Box<User>,
        new: bool,
        source: Option<String>,
    },
    /// Set `last_sign_in_at` only (see [`Outcome::Refreshed`]).
    RefreshSignIn {
        user_id: String,
        last_sign_in_at: DateTime<Utc>,
    },
    /// Delete the row and record a tombstone.
    Delete {
        user_id: String,
        deleted_at: DateTime<Utc>,
        event_id: String,
    },
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
    last_sign_in_at: Option<DateTime<Utc>>,
    tombstoned: bool,
    newly_deleted: Option<(DateTime<Utc>, String)>,
    /// The user data to write, and the recorded event it came from (`None`: a snapshot).
    pending: Option<(User, Option<String>)>,
    refresh: Option<DateTime<Utc>>,
}

/// Decides outcomes in event order. `existing` has an entry for every user id of the
/// batch that the database knows; `seen` holds event ids already processed.
pub fn plan(
    events: &[Event],
    existing: &HashMap<String, Existing>,
    seen: &HashSet<String>,
) -> Plan {
    let mut plan = Plan::default();
    let mut states: HashMap<String, State> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut batch_ids: HashSet<&str> = HashSet::new();
    for ev in events {
        let snapshot = matches!(ev.kind, EventKind::UserSnapshot(_));
        if !snapshot && (seen.contains(&ev.id) || !batch_ids.insert(ev.id.as_str())) {
            plan.outcomes.push(Outcome::Duplicate);
            continue;
        }
        let user = match &ev.kind {
            EventKind::UserCreated(u)
            | EventKind::UserUpdated(u)
            | EventKind::UserDeleted(u)
            | EventKind::UserSnapshot(u) => u,
            EventKind::Other => {
                plan.outcomes.push(Outcome::Ignored);
                plan.processed.push(Processed {
                    event_id: ev.id.clone(),
                    event_type: ev.event_type.clone(),
                    user_id: None,
                    outcome: Outcome::Ignored,
                });
                continue;
            }
        };
        let st = states.entry(user.id.clone()).or_insert_with(|| {
            order.push(user.id.clone());
            let ex = existing.get(&user.id).cloned().unwrap_or_default();
            State {
                existed: ex.updated_at.is_some(),
                updated_at: ex.updated_at,
                last_sign_in_at: ex.last_sign_in_at,
                tombstoned: ex.tombstoned,
                ..State::default()
            }
        });
        let outcome = if st.tombstoned {
            Outcome::Tombstoned
        } else if let EventKind::UserDeleted(_) = ev.kind {
            st.tombstoned = true;
            st.newly_deleted = Some((ev.created_at, ev.id.clone()));
            st.pending = None;
            Outcome::Deleted
        } else {
            match st.updated_at {
                Some(current) if user.updated_at < current => Outcome::Stale,
                Some(current) if user.updated_at == current => {
                    // Sign-ins move last_sign_in_at without a new updated_at; only a
                    // snapshot from the API (lazy sync, backfill) may carry that.
                    match user.last_sign_in_at {
                        Some(t) if snapshot && Some(t) > st.last_sign_in_at => {
                            st.last_sign_in_at = Some(t);
                            match st.pending.as_mut() {
                                Some((p, _)) => p.last_sign_in_at = Some(t),
                                None => st.refresh = Some(t),
                            }
                            Outcome::Refreshed
                        }
                        _ => Outcome::Stale,
                    }
                }
                current => {
                    st.updated_at = Some(user.updated_at);
                    st.last_sign_in_at = user.last_sign_in_at;
                    st.refresh = None;
                    st.pending = Some((user.clone(), (!snapshot).then(|| ev.id.clone())));
                    if current.is_none() {
                        Outcome::Created
                    } else {
                        Outcome::Updated
                    }
                }
            }
        };
        plan.outcomes.push(outcome);
        if snapshot {
            continue;
        }
        plan.processed.push(Processed {
            event_id: ev.id.clone(),
            event_type: ev.event_type.clone(),
            user_id: Some(user.id.clone()),
            outcome,
        });
    }
    for id in order {
        let Some(st) = states.remove(&id) else {
            continue;
        };
        if let Some((deleted_at, event_id)) = st.newly_deleted {
            plan.writes.push(Write::Delete {
                user_id: id,
                deleted_at,
                event_id,
            });
        } else if let Some((user, source)) = st.pending {
            plan.writes.push(Write::Upsert {
                user: Box::new(user),
                new: !st.existed,
                source,
            });
        } else if let Some(t) = st.refresh {
            plan.writes.push(Write::RefreshSignIn {
                user_id: id,
                last_sign_in_at: t,
            });
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use workos_sync_core::event_type;

    fn user(id: &str, t: i64) -> User {
        User {
            email: format!("{id}@x.io"),
            email_verified: true,
            updated_at: DateTime::from_timestamp(t, 0).unwrap(),
            ..User::stub(id, DateTime::from_timestamp(0, 0).unwrap())
        }
    }

    fn ev(id: &str, kind: EventKind, t: i64) -> Event {
        let event_type = match &kind {
            EventKind::UserCreated(_) => event_type::USER_CREATED,
            EventKind::UserUpdated(_) => event_type::USER_UPDATED,
            EventKind::UserDeleted(_) => event_type::USER_DELETED,
            EventKind::UserSnapshot(_) => "snapshot",
            EventKind::Other => "organization.created",
        };
        Event {
            id: id.into(),
            event_type: event_type.into(),
            created_at: DateTime::from_timestamp(t, 0).unwrap(),
            kind,
        }
    }

    #[test]
    fn newest_wins_within_a_batch() {
        let events = vec![
            ev("e2", EventKind::UserUpdated(user("u", 2)), 2),
            ev("e1", EventKind::UserCreated(user("u", 1)), 1),
            ev("e3", EventKind::UserUpdated(user("u", 3)), 3),
        ];
        let p = plan(&events, &HashMap::new(), &HashSet::new());
        assert_eq!(
            p.outcomes,
            vec![Outcome::Created, Outcome::Stale, Outcome::Updated]
        );
        assert_eq!(p.writes.len(), 1);
        match &p.writes[0] {
            Write::Upsert { user, new, source } => {
                assert!(new);
                assert_eq!(user.updated_at.timestamp(), 3);
                // The write is e3's: if e3 turns out to be a duplicate, it is not made.
                assert_eq!(source.as_deref(), Some("e3"));
            }
            w => panic!("{w:?}"),
        }
    }

    #[test]
    fn duplicates_and_tombstones() {
        let events = vec![
            ev("e1", EventKind::UserCreated(user("u", 1)), 1),
            ev("e1", EventKind::UserCreated(user("u", 1)), 1),
            ev("d", EventKind::UserDeleted(user("u", 1)), 5),
            ev("e9", EventKind::UserUpdated(user("u", 9)), 9),
            ev("old", EventKind::UserUpdated(user("v", 1)), 1),
            ev("x", EventKind::Other, 1),
        ];
        let mut existing = HashMap::new();
        existing.insert(
            "v".to_string(),
            Existing {
                updated_at: Some(DateTime::from_timestamp(1, 0).unwrap()),
                last_sign_in_at: None,
                tombstoned: false,
            },
        );
        let seen: HashSet<String> = ["old".to_string()].into();
        let p = plan(&events, &existing, &seen);
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
        assert!(matches!(&p.writes[0], Write::Delete { user_id, .. } if user_id == "u"));
        assert_eq!(p.processed.len(), 4);
    }

    #[test]
    fn existing_tombstone_blocks_everything() {
        let mut existing = HashMap::new();
        existing.insert(
            "u".to_string(),
            Existing {
                updated_at: None,
                last_sign_in_at: None,
                tombstoned: true,
            },
        );
        let events = vec![
            ev("a", EventKind::UserCreated(user("u", 100)), 100),
            ev("b", EventKind::UserDeleted(user("u", 100)), 100),
        ];
        let p = plan(&events, &existing, &HashSet::new());
        assert_eq!(p.outcomes, vec![Outcome::Tombstoned, Outcome::Tombstoned]);
        assert!(p.writes.is_empty());
    }

    #[test]
    fn snapshots_are_guarded_but_never_deduplicated() {
        let existing: HashMap<String, Existing> = [(
            "u".to_string(),
            Existing {
                updated_at: Some(DateTime::from_timestamp(5, 0).unwrap()),
                last_sign_in_at: None,
                tombstoned: false,
            },
        )]
        .into();
        let seen: HashSet<String> = ["s".to_string()].into();
        let events = vec![
            ev("s", EventKind::UserSnapshot(user("u", 4)), 4),
            ev("s", EventKind::UserSnapshot(user("u", 6)), 6),
            ev("n", EventKind::UserSnapshot(user("new", 1)), 1),
        ];
        let p = plan(&events, &existing, &seen);
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
    fn snapshots_refresh_last_sign_in_at_when_updated_at_is_equal() {
        let t = |s| DateTime::from_timestamp(s, 0).unwrap();
        let existing: HashMap<String, Existing> = [(
            "u".to_string(),
            Existing {
                updated_at: Some(t(5)),
                last_sign_in_at: Some(t(100)),
                tombstoned: false,
            },
        )]
        .into();
        let signed_in = |at: i64| {
            let mut u = user("u", 5);
            u.last_sign_in_at = Some(t(at));
            u
        };
        // A webhook with the same updated_at never refreshes; a snapshot does, once.
        let events = vec![
            ev("w", EventKind::UserUpdated(signed_in(200)), 5),
            ev("s1", EventKind::UserSnapshot(signed_in(50)), 5),
            ev("s2", EventKind::UserSnapshot(signed_in(200)), 5),
            ev("s3", EventKind::UserSnapshot(signed_in(200)), 5),
        ];
        let p = plan(&events, &existing, &HashSet::new());
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
            vec![Write::RefreshSignIn {
                user_id: "u".into(),
                last_sign_in_at: t(200)
            }]
        );
    }
}
