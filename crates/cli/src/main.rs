//! `workos-sync`: the admin CLI. Errors print one line and exit 1; a command's verdict
//! (`verify`'s drift: 3) is its own exit code.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = workos_sync_cli::Cli::parse();
    // Plain logs to stderr (progress of long commands when not on a terminal).
    let _ = tracing_subscriber_init();
    let mut stdout = std::io::stdout();
    match workos_sync_cli::run(cli, &mut stdout).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<workos_sync_cli::Exit>().is_some() => {
            let code = e.downcast_ref::<workos_sync_cli::Exit>().map_or(1, |x| x.0);
            std::process::ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("workos-sync: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn tracing_subscriber_init() -> Option<()> {
    let log = workos_sync_core::settings::LogSettings {
        format: workos_sync_core::settings::LogFormat::Text,
        filter: "warn,workos_sync_cli=info".into(),
    };
    workos_sync_core::telemetry::init_stderr(&log);
    Some(())
}
