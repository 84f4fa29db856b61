//! `workos-sync verify [--only <entity>] [--json] [--repair [--max-removals N]]`: every
//! enabled entity listed from WorkOS and compared with the tables, one line per entity
//! and kind (ids with `--json`), a spinner with the count on a terminal. Exit 0 without
//! drift, 3 with (the [`crate::Exit`] verdict); a failed listing is an error (exit 1),
//! never drift. A repair refused by its removal bound exits 4 (nothing written); one
//! that could not check some extra rows exits 5 (the rest repaired).

use std::io::Write;

use workos_sync_core::{Entity, Settings};
use workos_sync_pull::{self as sync, RemovalBound, VerifyReport};

use super::{api_and_store, backfill::progress_bar};

pub async fn run(
    settings: &Settings,
    only: Option<Entity>,
    json: bool,
    repair: Option<RemovalBound>,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let (api, store) = api_and_store(settings)?;
    if let Some(e) = only {
        anyhow::ensure!(
            store.entities().contains(e),
            "{e} are not synced (sync.entities)"
        );
    }
    let bar = progress_bar();
    let report = sync::verify(&api, &store, only, repair, |n| match &bar {
        Some(bar) => bar.set_position(n),
        None => tracing::info!(records = n, "verify progress"),
    })
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = report?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        render(&report, out)?;
    }
    if let Some(why) = &report.refused {
        eprintln!("{why}");
        return Err(crate::Exit(4).into());
    }
    let failed = report.failed();
    if failed > 0 {
        eprintln!(
            "{failed} extra rows could not be checked with WorkOS and were left as they are \
             (ids: --json, repair.failed); the rest was repaired. Run the repair again later"
        );
        return Err(crate::Exit(5).into());
    }
    if report.has_drift() {
        return Err(crate::Exit(3).into());
    }
    Ok(())
}

/// `<entity>: N listed, missing A, extra B, stale C, ahead D`, then a verdict.
fn render(r: &VerifyReport, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    for (e, d) in &r.entities {
        writeln!(
            out,
            "{e}: {} listed, missing {}, extra {}, stale {}, ahead {}",
            d.listed,
            d.missing.len(),
            d.extra.len(),
            d.stale.len(),
            d.ahead.len()
        )?;
        if !d.unsynced.is_empty() {
            writeln!(
                out,
                "  {} rows of the application's own (no WorkOS version, not in WorkOS): not drift, never removed",
                d.unsynced.len()
            )?;
        }
        if let Some(r) = &d.repair {
            writeln!(
                out,
                "  repaired: {} written from WorkOS, {} removed (WorkOS: gone), {} still in WorkOS, {} left alone",
                r.applied,
                r.removed.len(),
                r.still_in_workos.len(),
                r.left.len()
            )?;
            if !r.failed.is_empty() {
                writeln!(
                    out,
                    "  {} extra rows not checked (WorkOS did not answer): left as they are",
                    r.failed.len()
                )?;
            }
        }
    }
    if r.has_drift() {
        writeln!(
            out,
            "drift found (ids: --json). missing and stale: `workos-sync backfill --restart` \
             brings them in; extra rows: check each with `workos-sync sync-user` / `sync-org` \
             (removed only if WorkOS says the id is gone); ahead: left alone"
        )?;
    } else {
        writeln!(out, "no drift")?;
    }
    Ok(())
}
