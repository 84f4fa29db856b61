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

// One thread for the dispatcher, the appliers and the Postgres connections: their work
// is short and I/O-bound, and on the multi-thread runtime the hand-offs between them
// became cross-thread wake-ups (measured with scripts/bench-worker.sh, alternating
// binaries: 23,491 and 22,885 events/s against 20,056 and 20,709). lapin's I/O loop and
// the HTTP server run on threads of their own either way. Nothing here blocks.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // A settings error is one line naming the key (no error chain, no backtrace).
    let settings = match workos_sync_core::Settings::load(args.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            #[allow(clippy::print_stderr)] // before logging is set up
            {
                eprintln!("workos-sync-worker: {e}");
            }
            std::process::exit(2);
        }
    };
    workos_sync_core::telemetry::init(&settings.log);
    if let Err(e) = workos_sync_worker::run(settings).await {
        tracing::error!(error = %e, "worker failed");
        return Err(e);
    }
    Ok(())
}
