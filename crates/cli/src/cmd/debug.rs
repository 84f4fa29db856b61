//! `workos-sync debug topology|metrics` (hidden): what the binaries themselves declare
//! and emit, as JSON, so that checks compare the deploy files with the code instead of a
//! hand-kept mirror (`scripts/validate-deploy.sh` uses both). Needs no broker.

use std::io::Write;

use clap::Subcommand;
use workos_sync_core::Settings;
use workos_sync_queue::Topology;

#[derive(Subcommand)]
pub enum DebugCommand {
    /// The RabbitMQ topology for these settings: exchanges, queues with their
    /// arguments, bindings.
    Topology,
    /// Every metric name the binaries emit.
    Metrics,
}

pub fn run(
    settings: &Settings,
    command: DebugCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let value = match command {
        DebugCommand::Topology => Topology::from_settings(&settings.amqp).describe(),
        DebugCommand::Metrics => serde_json::json!(workos_sync_core::metric::ALL),
    };
    writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    Ok(())
}
