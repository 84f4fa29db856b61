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

// The broker connection and its supervisor live on this runtime; one thread is enough
// for them, and in the ingress benchmark a current-thread runtime here served 6-24 %
// more requests than the multi-thread default (fewer cross-thread wake-ups on the
// publish → confirm path). The HTTP workers run on threads of their own.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // A settings error is one line naming the key (no error chain, no backtrace).
    let settings = match workos_sync_core::Settings::load(args.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            #[allow(clippy::print_stderr)] // before logging is set up
            {
                eprintln!("workos-sync-receiver: {e}");
            }
            std::process::exit(2);
        }
    };
    workos_sync_core::telemetry::init(&settings.log);
    if let Err(e) = workos_sync_receiver::run(settings).await {
        tracing::error!(error = %e, "receiver failed");
        return Err(e);
    }
    Ok(())
}
