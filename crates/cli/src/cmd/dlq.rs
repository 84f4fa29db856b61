//! `workos-sync dlq list|show|replay|purge`: inspect and redrive the dead-letter queue.
//! Every read goes through `dlq::walk`, so inspecting is lossless under any delivery
//! limit (see `workos_sync_queue::dlq`).

use std::{
    io::{BufRead, Write},
    time::Duration,
};

use anyhow::Context;
use clap::Subcommand;
use workos_sync_core::Settings;
use workos_sync_queue::dlq;

use super::connect;

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

pub async fn run(
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
                writeln!(out, "replayed {} message(s)", replayed.len())?;
                // An id asked for that is not there is a failure (a typo, or replayed
                // already): said by id, exit 1.
                let missing: Vec<&str> = selection
                    .unwrap_or_default()
                    .iter()
                    .filter(|i| !replayed.contains(i))
                    .map(String::as_str)
                    .collect();
                anyhow::ensure!(missing.is_empty(), "not in the DLQ: {}", missing.join(", "));
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
