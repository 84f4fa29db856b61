//! `workos-sync migrate`: apply pending migrations (advisory-locked, so several replicas
//! may run it at once).

use std::io::Write;

use anyhow::Context;
use secrecy::ExposeSecret;
use workos_sync_core::Settings;

pub async fn run(settings: &Settings, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let applied = workos_sync_store::migrate::run(settings.database.url.expose_secret())
        .await
        .context("migrate")?;
    if applied.is_empty() {
        writeln!(out, "database is up to date")?;
    } else {
        for m in applied {
            writeln!(out, "applied {m}")?;
        }
    }
    Ok(())
}
