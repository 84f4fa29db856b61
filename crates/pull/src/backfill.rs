//! Backfill: page through every WorkOS user and apply them; the cursor is saved after
//! each applied page, so a killed run resumes where it stopped. Failures are
//! [`SyncError`]s; the cursor never moves past a page that was not applied.

use workos_sync_core::Event;
use workos_sync_store::{Outcome, Store};
use workos_sync_workos_api::Client;

use crate::{BACKFILL_CURSOR, SyncError};

/// Counts of a backfill run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BackfillReport {
    pub pages: u64,
    pub users: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub tombstoned: u64,
}

impl BackfillReport {
    fn count(&mut self, o: Outcome) {
        match o {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Tombstoned => self.tombstoned += 1,
            _ => self.unchanged += 1,
        }
    }
}

/// Pages through every WorkOS user and applies them. Resumes from the saved cursor
/// unless `restart`; with `dry_run` nothing is written (cursor included) and the report
/// says what would change.
pub async fn backfill(
    api: &Client,
    store: &Store,
    restart: bool,
    dry_run: bool,
    mut progress: impl FnMut(&BackfillReport),
) -> Result<BackfillReport, SyncError> {
    let mut cursor = if restart || dry_run {
        None
    } else {
        store.cursor(BACKFILL_CURSOR).await?
    };
    if restart && !dry_run {
        store.set_cursor(BACKFILL_CURSOR, None).await?;
    }
    let mut report = BackfillReport::default();
    loop {
        let page = api.list_users(cursor.as_deref(), 100).await?;
        report.pages += 1;
        report.users += page.data.len() as u64;
        let events: Vec<Event> = page.data.into_iter().map(Event::user_snapshot).collect();
        let outcomes = if dry_run {
            store.preview(&events).await?
        } else {
            store.apply_batch(&events).await?
        };
        for o in outcomes {
            report.count(o);
        }
        progress(&report);
        match page.after {
            Some(after) => {
                if !dry_run {
                    store.set_cursor(BACKFILL_CURSOR, Some(&after)).await?;
                }
                cursor = Some(after);
            }
            None => break,
        }
    }
    if !dry_run {
        // Done: the next run starts from the beginning again (idempotent).
        store.set_cursor(BACKFILL_CURSOR, None).await?;
    }
    Ok(report)
}
