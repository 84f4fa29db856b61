//! `workos-sync archive list|prune`: the event archive's day partitions, and retention
//! run now (the worker also runs it hourly). Prune drops whole partitions of days older
//! than `archive.retention_days` (or `--keep-days`), never single rows; it works whether
//! or not the archive is enabled in this process's settings (an archive switched off
//! still has its days).

use std::io::Write;

use clap::Subcommand;
use serde_json::json;
use workos_sync_core::Settings;

#[derive(Subcommand)]
pub enum ArchiveCommand {
    /// The archive's day partitions, oldest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Drop the partitions of days older than the retention.
    Prune {
        /// Whole days kept (default: archive.retention_days).
        #[arg(long)]
        keep_days: Option<u32>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(
    settings: &Settings,
    command: ArchiveCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let store = workos_sync_store::Store::from_settings(&settings.database)?;
    match command {
        ArchiveCommand::List { json } => {
            let names = store.archive_partitions().await?;
            if json {
                writeln!(out, "{}", json!({ "partitions": names }))?;
            } else if names.is_empty() {
                writeln!(out, "no event archive partitions")?;
            } else {
                for n in names {
                    writeln!(out, "{n}")?;
                }
            }
        }
        ArchiveCommand::Prune { keep_days, json } => {
            let keep = keep_days.unwrap_or(settings.archive.retention_days);
            let dropped = store
                .archive_prune(keep, chrono::Utc::now().date_naive())
                .await?;
            if json {
                writeln!(out, "{}", json!({ "kept_days": keep, "dropped": dropped }))?;
            } else {
                writeln!(
                    out,
                    "dropped {} partition(s) older than {keep} days",
                    dropped.len()
                )?;
                for n in dropped {
                    writeln!(out, "  {n}")?;
                }
            }
        }
    }
    Ok(())
}
