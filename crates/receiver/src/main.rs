//! `workos-sync-receiver`: verifies WorkOS webhooks and stores them durably in RabbitMQ.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "Receive WorkOS webhooks, verify them and queue them durably"
)]
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
    if let Err(e) = workos_sync_receiver::run(settings).await {
        tracing::error!(error = %e, "receiver failed");
        return Err(e);
    }
    Ok(())
}
