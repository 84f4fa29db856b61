//! `workos-sync tombstones list|remove`: the deletions that are final, and the way back
//! from one written by mistake (a wrong API key or base URL once made lazy sync delete
//! live users). Removing a tombstone deletes nothing else; the record comes back with the
//! next event or a lazy sync / backfill. Every entity has tombstones (`--entity`, default
//! users).

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use workos_sync_core::Entity;
use workos_sync_store::Store;

#[derive(Subcommand)]
pub enum TombstoneCommand {
    /// The newest tombstones: entity, key, when it was deleted, by which event.
    List {
        /// Only this entity's (users, organizations, organization_memberships, …).
        #[arg(long, value_parser = Entity::parse)]
        entity: Option<Entity>,
        /// At most this many (newest first).
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// JSON output (one array).
        #[arg(long)]
        json: bool,
    },
    /// Forget one tombstone, so that the record may be synced again.
    Remove {
        /// The key: a WorkOS id (user_…, org_…, om_…), or a role's or permission's key.
        id: String,
        /// The entity it belongs to.
        #[arg(long, value_parser = Entity::parse, default_value = "users")]
        entity: Entity,
    },
}

pub async fn run(
    store: &Store,
    command: TombstoneCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    match command {
        TombstoneCommand::List {
            entity,
            limit,
            json,
        } => {
            let all = store.tombstones(entity, limit).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
                return Ok(());
            }
            writeln!(
                out,
                "{:<24} {:<36} {:<25} EVENT",
                "ENTITY", "KEY", "DELETED AT"
            )?;
            for t in &all {
                writeln!(
                    out,
                    "{:<24} {:<36} {:<25} {}",
                    t.entity,
                    t.id,
                    t.deleted_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    t.event_id
                )?;
            }
            writeln!(out, "{} tombstone(s)", all.len())?;
        }
        TombstoneCommand::Remove { id, entity } => {
            match entity {
                // Keyed by slug (or a group:user pair): any short printable text.
                Entity::Roles
                | Entity::Permissions
                | Entity::DirectoryGroupMemberships
                | Entity::GroupMemberships => {
                    anyhow::ensure!(
                        !id.is_empty()
                            && id.len() <= 255
                            && id.chars().all(|c| c.is_ascii_graphic()),
                        "{id:?}: not a role, permission or group membership key"
                    )
                }
                _ => workos_sync_core::check_object_id(&id).with_context(|| format!("{id:?}"))?,
            }
            match store.remove_tombstone(entity, &id).await? {
                Some(t) => writeln!(
                    out,
                    "removed the tombstone of {} {} (deleted at {} by {}); the next event, \
                     lazy sync or backfill may bring it back",
                    t.entity,
                    t.id,
                    t.deleted_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    t.event_id,
                )?,
                None => anyhow::bail!("no tombstone for {entity} {id}"),
            }
        }
    }
    Ok(())
}
