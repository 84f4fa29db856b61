//! `workos-sync-worker`: applies queued WorkOS events to Postgres.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Apply queued WorkOS events to the users table")]
struct Args {
    /// Optional settings file (TOML, same shape as config/default.toml).
    #[arg(long, env = "WORKOS_SYNC_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = workos_sync_core::Settings::load(args.config.as_deref())?;
    workos_sync_core::telemetry::init(&settings.log);
    if let Err(e) = workos_sync_worker::run(settings).await {
        tracing::error!(error = %e, "worker failed");
        return Err(e);
    }
    Ok(())
}
