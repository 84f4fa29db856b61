//! `workos-sync tombstones list|remove`: the deletions that are final, and the way back
//! from one written by mistake (a wrong API key or base URL once made lazy sync delete
//! live users). Removing a tombstone deletes nothing else; the user comes back with the
//! next event or a lazy sync / backfill.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use workos_sync_store::Store;

#[derive(Subcommand)]
pub enum TombstoneCommand {
    /// The newest tombstones: user id, when it was deleted, by which event.
    List {
        /// At most this many (newest first).
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// JSON output (one array).
        #[arg(long)]
        json: bool,
    },
    /// Forget one tombstone, so that the user may be synced again.
    Remove {
        /// WorkOS user id (user_…).
        id: String,
    },
}

pub async fn run(
    store: &Store,
    command: TombstoneCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    match command {
        TombstoneCommand::List { limit, json } => {
            let all = store.tombstones(limit).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
                return Ok(());
            }
            writeln!(out, "{:<36} {:<25} EVENT", "USER", "DELETED AT")?;
            for t in &all {
                writeln!(
                    out,
                    "{:<36} {:<25} {}",
                    t.user_id,
                    t.deleted_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    t.event_id
                )?;
            }
            writeln!(out, "{} tombstone(s)", all.len())?;
        }
        TombstoneCommand::Remove { id } => {
            workos_sync_core::check_object_id(&id).with_context(|| format!("{id:?}"))?;
            match store.remove_tombstone(&id).await? {
                Some(t) => writeln!(
                    out,
                    "removed the tombstone of {} (deleted at {} by {}); the next event or \
                     `workos-sync sync-user {}` may bring the user back",
                    t.user_id,
                    t.deleted_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    t.event_id,
                    t.user_id
                )?,
                None => anyhow::bail!("no tombstone for {id}"),
            }
        }
    }
    Ok(())
}
