//! `workos-sync sync-user`: lazy sync of one user now, from the CLI.

use std::io::Write;

use anyhow::Context;
use workos_sync_core::Settings;
use workos_sync_pull as sync;

use super::api_and_store;

pub async fn run(
    settings: &Settings,
    id: String,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let (api, store) = api_and_store(settings)?;
    workos_sync_core::check_object_id(&id).with_context(|| format!("{id:?}"))?;
    match sync::sync_user(&api, &store, &id, None).await? {
        sync::SyncResult::Synced(row) => writeln!(out, "{}", serde_json::to_string_pretty(&row)?)?,
        sync::SyncResult::Gone => {
            anyhow::bail!("WorkOS has no user {id}; the local row is gone too")
        }
    }
    Ok(())
}
