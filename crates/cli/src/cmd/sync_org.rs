//! `workos-sync sync-org`: lazy sync of one organization (with its domains) now, from
//! the CLI: the same step as `POST /v1/organizations/{id}/sync`.

use std::io::Write;

use anyhow::Context;
use workos_sync_core::{Entity, Settings};
use workos_sync_pull as sync;

use super::api_and_store;

pub async fn run(
    settings: &Settings,
    id: String,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let (api, store) = api_and_store(settings)?;
    workos_sync_core::check_object_id(&id).with_context(|| format!("{id:?}"))?;
    anyhow::ensure!(
        store.entities().contains(Entity::Organizations),
        "organizations are not synced (sync.entities)"
    );
    match sync::sync_organization(&api, &store, &id, None).await? {
        sync::SyncResult::Synced(row) => writeln!(out, "{}", serde_json::to_string_pretty(&row)?)?,
        sync::SyncResult::Gone => anyhow::bail!(
            "WorkOS has no organization {id}; the local row (with its domains, memberships \
             and roles) is gone too"
        ),
    }
    Ok(())
}
