//! `workos-sync backfill`: import every WorkOS user, resumable from its saved cursor,
//! with a spinner and the count on a terminal (the total is not known in advance) and
//! log lines otherwise.

use std::{io::Write, time::Duration};

use workos_sync_core::Settings;
use workos_sync_pull as sync;

use super::api_and_store;

pub async fn run(
    settings: &Settings,
    restart: bool,
    dry_run: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let (api, store) = api_and_store(settings)?;
    let bar = progress_bar();
    let started = std::time::Instant::now();
    let report = sync::backfill(&api, &store, restart, dry_run, |r| {
        let rate = r.users as f64 / started.elapsed().as_secs_f64().max(0.001);
        match &bar {
            Some(bar) => {
                bar.set_position(r.users);
                bar.set_message(format!(
                    "{rate:.0} users/s, {} created, {} updated",
                    r.created, r.updated
                ));
            }
            None => tracing::info!(
                pages = r.pages,
                users = r.users,
                created = r.created,
                updated = r.updated,
                rate,
                "backfill progress"
            ),
        }
    })
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = report?;
    let verb = if dry_run { "would create" } else { "created" };
    writeln!(
        out,
        "{} users in {} pages: {verb} {}, updated {}, unchanged {}, deleted in WorkOS earlier {}",
        report.users,
        report.pages,
        report.created,
        report.updated,
        report.unchanged,
        report.tombstoned
    )?;
    Ok(())
}

/// A progress bar on a terminal; `None` (plain log lines) otherwise.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {pos} users [{elapsed_precise}] {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}
