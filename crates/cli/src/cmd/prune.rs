//! `workos-sync prune`: remove processed-event ids older than a cutoff — whole day
//! partitions dropped, and the rows of the table that predates them deleted in batches
//! (`Store::prune_processed`) — refusing a cutoff inside WorkOS's 3-day retry window
//! unless forced.

use std::{io::Write, time::Duration};

use anyhow::Context;
use chrono::Utc;
use workos_sync_core::Settings;

pub async fn run(
    settings: &Settings,
    older_than: String,
    force_short_window: bool,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let age = parse_age(&older_than)?;
    let store =
        workos_sync_store::Store::from_settings(&settings.database)?.with_sync(&settings.sync);
    let p = prune(&store, age, force_short_window).await?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"deleted": p.deleted, "dropped_partitions": p.dropped,
                               "dropped_rows_estimate": p.dropped_rows_estimate,
                               "older_than_secs": age.as_secs()})
        )?;
    } else {
        writeln!(
            out,
            "deleted {} processed-event id(s) older than {older_than}; dropped {} partition(s) (~{} ids, Postgres's estimate)",
            p.deleted,
            p.dropped.len(),
            p.dropped_rows_estimate
        )?;
    }
    Ok(())
}

/// WorkOS retries failed deliveries for up to 3 days: an event id younger than that may
/// still arrive again, so its dedupe record must stay.
pub const RETRY_WINDOW: Duration = Duration::from_secs(3 * 24 * 3600);

/// Parses `30d`, `72h`, `90m`, `3600s` (or plain seconds).
pub fn parse_age(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("not a duration: {s:?} (use e.g. 30d, 72h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        "w" => n * 7 * 86_400,
        other => anyhow::bail!("unknown unit {other:?} in {s:?} (use s, m, h, d, w)"),
    };
    Ok(Duration::from_secs(secs))
}

/// Removes processed-event ids older than `older_than` (a day's ids go when the whole
/// day is older).
pub async fn prune(
    store: &workos_sync_store::Store,
    older_than: Duration,
    force_short_window: bool,
) -> anyhow::Result<workos_sync_store::processed::Pruned> {
    anyhow::ensure!(
        older_than >= RETRY_WINDOW || force_short_window,
        "refusing to prune ids younger than 3 days (WorkOS may still redeliver them); pass --force-short-window to override"
    );
    let cutoff = Utc::now() - chrono::Duration::from_std(older_than)?;
    Ok(store.prune_processed(cutoff, 10_000).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_age("72h").unwrap(), RETRY_WINDOW);
        assert_eq!(parse_age("90").unwrap(), Duration::from_secs(90));
        assert!(parse_age("abc").is_err());
        assert!(parse_age("3y").is_err());
    }
}
