//! `workos-sync`: the admin CLI. Errors print one line and exit 1.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = workos_sync_cli::Cli::parse();
    let mut stdout = std::io::stdout();
    match workos_sync_cli::run(cli, &mut stdout).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workos-sync: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
