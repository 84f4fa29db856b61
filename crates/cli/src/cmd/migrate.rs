//! `workos-sync migrate [--adopt] [--dry-run]`: apply pending migrations in
//! `database.schema` (advisory-locked per schema, so several replicas may run it at
//! once), or adopt an application's existing users table. A refusal changes nothing and
//! says which table and what to do, in one line (exit code 1).

use std::io::Write;

use anyhow::Context;
use secrecy::ExposeSecret;
use workos_sync_core::Settings;
use workos_sync_store::migrate::{self, MigrateOptions};

pub async fn run(
    settings: &Settings,
    adopt: bool,
    dry_run: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let opts = MigrateOptions {
        schema: settings.database.schema.clone(),
        adopt,
        dry_run,
        users_columns: settings.database.users_columns.clone(),
        users_raw: settings.database.users_raw,
    };
    let report = migrate::migrate(settings.database.url.expose_secret(), &opts)
        .await
        .context("migrate")?;
    let schema = &opts.schema;
    if dry_run {
        if report.sql.is_empty() {
            writeln!(
                out,
                "-- dry run in schema {schema}: nothing would change (up to date)"
            )?;
            return Ok(());
        }
        writeln!(out, "-- dry run in schema {schema}: nothing was changed")?;
        for s in &report.sql {
            writeln!(out, "{s};")?;
        }
        return Ok(());
    }
    if report.adopted {
        writeln!(out, "adopted the existing users table in schema {schema}")?;
    }
    for s in report.sql.iter().filter_map(|s| s.strip_prefix("-- ")) {
        writeln!(out, "{s}")?;
    }
    if !report.added_columns.is_empty() {
        writeln!(
            out,
            "added users columns: {} (`migrate --dry-run` shows the SQL)",
            report.added_columns.join(", ")
        )?;
    }
    if settings.archive.enabled {
        // The archive's table and the partitions of yesterday to two days ahead (the
        // worker makes any other day's on demand).
        let store = workos_sync_store::Store::from_settings(&settings.database)?;
        let today = chrono::Utc::now().date_naive();
        let days: Vec<chrono::NaiveDate> = (-1..=2)
            .map(|d| today + chrono::Duration::days(d))
            .collect();
        store
            .make_partitions(&days)
            .await
            .context("event archive")?;
        writeln!(
            out,
            "event archive ready (schema {schema}, partitions {} to {})",
            days[0], days[3]
        )?;
    }
    if report.applied.is_empty() && !report.adopted {
        writeln!(out, "database is up to date (schema {schema})")?;
    } else {
        for m in report.applied {
            writeln!(out, "applied {m}")?;
        }
    }
    Ok(())
}
