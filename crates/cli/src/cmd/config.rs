//! `workos-sync config show`: every setting in effect (the defaults, the `--config` file,
//! the environment), one `key = value` line each in TOML's syntax, secrets redacted
//! (`Settings::show`). Shown even when the settings would not load, so that the line
//! at fault can be seen; the error follows on stderr and the exit code is 1.

use std::{io::Write, path::Path};

use clap::Subcommand;
use workos_sync_core::Settings;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the settings in effect, secrets redacted.
    Show,
}

pub fn run(
    config: Option<&Path>,
    command: &ConfigCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Show => {
            let env = std::env::vars().collect();
            for line in Settings::show(config, env)? {
                writeln!(out, "{line}")?;
            }
            Settings::load(config)?;
            Ok(())
        }
    }
}
