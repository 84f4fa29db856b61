//! `workos-sync backfill`: import every enabled entity (or `--only` one), resumable from
//! each list's saved cursor, with a spinner and the counts on a terminal (WorkOS's lists
//! give no total, so there is no bar to fill) and log lines otherwise.

use std::{io::Write, time::Duration};

use workos_sync_core::Settings;
use workos_sync_pull::{self as sync, BackfillOptions, BackfillReport};

use super::api_and_store;

pub async fn run(
    settings: &Settings,
    opts: BackfillOptions,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let (api, store) = api_and_store(settings)?;
    if let Some(e) = opts.only {
        anyhow::ensure!(
            store.entities().contains(e),
            "{e} are not synced (sync.entities)"
        );
        anyhow::ensure!(
            !e.declaration().events_only,
            "WorkOS serves no list of {e}: they are mirrored from webhooks and reconcile \
             (`workos-sync reconcile`) only"
        );
    }
    let bar = progress_bar();
    let started = std::time::Instant::now();
    let report = sync::backfill(&api, &store, opts, |r| {
        let fetched = r.fetched();
        let rate = fetched as f64 / started.elapsed().as_secs_f64().max(0.001);
        let (created, updated) = r
            .entities
            .values()
            .fold((0, 0), |(c, u), n| (c + n.created, u + n.updated));
        match &bar {
            Some(bar) => {
                bar.set_position(fetched);
                bar.set_message(format!(
                    "{rate:.0} records/s, {created} created, {updated} updated"
                ));
            }
            None => tracing::info!(
                pages = r.pages,
                records = fetched,
                created,
                updated,
                rate,
                "backfill progress"
            ),
        }
    })
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    render(&report?, opts.dry_run, out)
}

/// One line per entity seen: `N <entity>: created …`, then the page count.
fn render(r: &BackfillReport, dry_run: bool, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let verb = if dry_run { "would create" } else { "created" };
    for (e, c) in &r.entities {
        writeln!(
            out,
            "{} {e}: {verb} {}, updated {}, unchanged {}, deleted in WorkOS earlier {}",
            c.fetched, c.created, c.updated, c.unchanged, c.tombstoned
        )?;
    }
    writeln!(out, "{} pages read", r.pages)?;
    Ok(())
}

/// A spinner with the count on a terminal; `None` (plain log lines) otherwise.
pub(crate) fn progress_bar() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {pos} records [{elapsed_precise}] {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}
