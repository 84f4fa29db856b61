//! Following a WorkOS list's `list_metadata.after` cursors: the one rule every paged
//! walk shares (backfill, verify, lazy sync's memberships), that a list ends when no
//! cursor comes back, and that a cursor coming back a second time would never end.
//!
//! Failure model: a repeated cursor is [`SyncError::CursorRepeated`] naming the list;
//! the walk stops there (what it applied so far stays, under the usual guards).

use std::collections::HashSet;

use crate::SyncError;

/// The cursors one walk of one list has followed.
pub(crate) struct Cursors {
    list: &'static str,
    seen: HashSet<String>,
}

impl Cursors {
    pub fn new(list: &'static str) -> Self {
        Self {
            list,
            seen: HashSet::new(),
        }
    }

    /// The cursor of the next page (`None`: the list ended), or an error when WorkOS
    /// returned `after` before in this walk.
    pub fn next(&mut self, after: Option<String>) -> Result<Option<String>, SyncError> {
        match after {
            Some(a) if !self.seen.insert(a.clone()) => Err(SyncError::CursorRepeated {
                list: self.list,
                cursor: a,
            }),
            other => Ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_cursor_ends_the_walk() {
        let mut c = Cursors::new("users");
        assert_eq!(c.next(Some("a".into())).ok(), Some(Some("a".into())));
        assert_eq!(c.next(Some("b".into())).ok(), Some(Some("b".into())));
        assert!(matches!(
            c.next(Some("a".into())),
            Err(SyncError::CursorRepeated { list: "users", .. })
        ));
        assert_eq!(c.next(None).ok(), Some(None));
    }
}
