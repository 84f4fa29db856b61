//! The admin CLI `workos-sync`: migrations and the DLQ tools. Each command is a function
//! returning `anyhow::Result`, so `main` prints one line and exits non-zero on error.

use std::{
    io::{BufRead, Write},
    path::PathBuf,
    time::Duration,
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use workos_sync_core::Settings;
use workos_sync_queue::{Broker, BrokerConfig, dlq};

#[derive(Parser)]
#[command(
    name = "workos-sync",
    version,
    about = "Operate workos-sync: migrations, the dead-letter queue"
)]
pub struct Cli {
    /// Optional settings file (TOML, same shape as config/default.toml).
    #[arg(long, global = true, env = "WORKOS_SYNC_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Apply pending database migrations (safe to run from several places at once).
    Migrate,
    /// Inspect and redrive the dead-letter queue.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
}

#[derive(Subcommand)]
pub enum DlqCommand {
    /// One line per dead message: id, type, reason, attempts, age.
    List {
        /// JSON output (one array).
        #[arg(long)]
        json: bool,
    },
    /// Headers and body of one dead message.
    Show { id: String },
    /// Send messages back to the events exchange with their attempt count reset.
    Replay {
        /// Replay every message in the DLQ.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Event ids to replay.
        ids: Vec<String>,
    },
    /// Delete every message in the DLQ.
    Purge {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn run(cli: Cli, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Migrate => {
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
        Command::Dlq { command } => dlq_command(&settings, command, out).await,
    }
}

async fn connect(settings: &Settings) -> anyhow::Result<Broker> {
    let broker = Broker::start(BrokerConfig::from_settings(
        &settings.amqp,
        "workos-sync-cli",
    ));
    anyhow::ensure!(
        broker.wait_connected(Duration::from_secs(10)).await,
        "cannot reach RabbitMQ (check AMQP_URL)"
    );
    Ok(broker)
}

fn age(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "-".into() };
    let secs = (dlq::now_ms_i64() - ms).max(0) / 1000;
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

pub async fn dlq_command(
    settings: &Settings,
    command: DlqCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let broker = connect(settings).await?;
    let result = async {
        match command {
            DlqCommand::List { json } => {
                let msgs = dlq::list(&broker).await?;
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&msgs)?)?;
                } else {
                    writeln!(
                        out,
                        "{:<40} {:<22} {:<18} {:>8} {:>6}  ERROR",
                        "ID", "TYPE", "REASON", "ATTEMPTS", "AGE"
                    )?;
                    for m in &msgs {
                        let err: String = m.error.chars().take(80).collect();
                        writeln!(
                            out,
                            "{:<40} {:<22} {:<18} {:>8} {:>6}  {}",
                            m.id,
                            m.event_type,
                            m.reason,
                            m.attempts,
                            age(m.first_seen_at_ms),
                            err
                        )?;
                    }
                    writeln!(out, "{} message(s)", msgs.len())?;
                }
            }
            DlqCommand::Show { id } => {
                let msgs = dlq::list(&broker).await?;
                let m = msgs
                    .iter()
                    .find(|m| m.id == id)
                    .with_context(|| format!("no message {id} in the DLQ"))?;
                writeln!(out, "{}", serde_json::to_string_pretty(m)?)?;
            }
            DlqCommand::Replay { all, ids } => {
                anyhow::ensure!(
                    all || !ids.is_empty(),
                    "say which: --all or one or more event ids"
                );
                let selection = if all { None } else { Some(ids.as_slice()) };
                let replayed = dlq::replay(&broker, selection, Duration::from_secs(10)).await?;
                if let Some(ids) = selection {
                    let missing: Vec<_> = ids.iter().filter(|i| !replayed.contains(i)).collect();
                    if !missing.is_empty() {
                        writeln!(
                            out,
                            "not in the DLQ: {}",
                            missing
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )?;
                    }
                }
                writeln!(out, "replayed {} message(s)", replayed.len())?;
            }
            DlqCommand::Purge { yes } => {
                if !yes {
                    write!(
                        out,
                        "Delete every message in {}? Type 'yes': ",
                        broker.topology().dead_queue()
                    )?;
                    out.flush()?;
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line)?;
                    anyhow::ensure!(line.trim() == "yes", "purge cancelled");
                }
                let n = dlq::purge(&broker).await?;
                writeln!(out, "purged {n} message(s)")?;
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    broker.close().await;
    result
}
