//! The admin CLI `workos-sync`: migrate, dlq, tombstones, sync-user, backfill, reconcile,
//! send-test-event, status, prune. Each command is a function returning
//! `anyhow::Result`, so `main` prints one line and exits non-zero on error.

use std::{
    io::{BufRead, Write},
    path::PathBuf,
    time::Duration,
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use workos_sync_core::Settings;
use workos_sync_pull as sync;
use workos_sync_queue::{Broker, BrokerConfig, dlq};

pub mod ops;
pub mod tombstones;

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
    /// List the tombstones of deleted users, or remove one written by mistake.
    Tombstones {
        #[command(subcommand)]
        command: tombstones::TombstoneCommand,
    },
    /// Fetch one user from the WorkOS API now and apply it (WorkOS's entity_not_found:
    /// removed locally).
    SyncUser {
        /// WorkOS user id (user_…).
        id: String,
    },
    /// Import every WorkOS user (resumable: the cursor is saved after each page).
    Backfill {
        /// Start from the first page instead of the saved cursor.
        #[arg(long)]
        restart: bool,
        /// Report what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Sign and post a realistic event to a receiver (like WorkOS's test button).
    SendTestEvent {
        /// user.created, user.updated or user.deleted.
        #[arg(long = "type", default_value = workos_sync_core::event_type::USER_CREATED)]
        event_type: String,
        /// Receiver URL (default: this host's receiver.bind port and receiver.path).
        #[arg(long)]
        url: Option<String>,
        /// User id to use (default: a fresh user_test_… id).
        #[arg(long)]
        user_id: Option<String>,
    },
    /// Queue depths and consumers (events, delay tiers, DLQ), oldest waiting message, cursors.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Delete processed-event ids older than a cutoff, in batches.
    Prune {
        /// Age cutoff, e.g. 30d, 72h.
        #[arg(long, default_value = "30d")]
        older_than: String,
        /// Allow a cutoff under WorkOS's 3-day retry window.
        #[arg(long)]
        force_short_window: bool,
        #[arg(long)]
        json: bool,
    },
    /// Feed events missed by webhooks from the WorkOS Events API into the queue.
    Reconcile {
        /// Start at this time (RFC 3339) when no cursor is stored; with a stored cursor
        /// it is ignored (and said so) unless --reset is given.
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Forget the stored cursor and start from --since (or from the oldest event the
        /// Events API still holds).
        #[arg(long)]
        reset: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
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
        Command::Tombstones { command } => {
            let store = workos_sync_store::Store::from_settings(&settings.database)?;
            tombstones::run(&store, command, out).await
        }
        Command::SendTestEvent {
            event_type,
            url,
            user_id,
        } => ops::send_test_event(&settings, &event_type, user_id, url, out).await,
        Command::Status { json } => {
            let broker = connect(&settings).await?;
            let store = workos_sync_store::Store::from_settings(&settings.database).ok();
            let status = ops::status(&broker, store.as_ref()).await;
            broker.close().await;
            let status = status?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&status)?)?;
            } else {
                ops::print_status(&status, out)?;
            }
            Ok(())
        }
        Command::Prune {
            older_than,
            force_short_window,
            json,
        } => {
            let age = ops::parse_age(&older_than)?;
            let store = workos_sync_store::Store::from_settings(&settings.database)?;
            let n = ops::prune(&store, age, force_short_window).await?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"deleted": n, "older_than_secs": age.as_secs()})
                )?;
            } else {
                writeln!(
                    out,
                    "deleted {n} processed-event id(s) older than {older_than}"
                )?;
            }
            Ok(())
        }
        Command::SyncUser { id } => {
            let (api, store) = api_and_store(&settings)?;
            workos_sync_core::check_object_id(&id).with_context(|| format!("{id:?}"))?;
            match sync::sync_user(&api, &store, &id, None).await? {
                sync::SyncResult::Synced(row) => {
                    writeln!(out, "{}", serde_json::to_string_pretty(&row)?)?
                }
                sync::SyncResult::Gone => {
                    anyhow::bail!("WorkOS has no user {id}; the local row is gone too")
                }
            }
            Ok(())
        }
        Command::Backfill { restart, dry_run } => {
            let (api, store) = api_and_store(&settings)?;
            let bar = progress_bar();
            let started = std::time::Instant::now();
            let report = sync::backfill(&api, &store, restart, dry_run, |r| {
                let rate = r.users as f64 / started.elapsed().as_secs_f64().max(0.001);
                match &bar {
                    Some(bar) => {
                        bar.set_position(r.users);
                        bar.set_message(format!(
                            "{rate:.0} users/s, {} created, {} updated",
                            r.created, r.updated
                        ));
                    }
                    None => tracing::info!(
                        pages = r.pages,
                        users = r.users,
                        created = r.created,
                        updated = r.updated,
                        rate,
                        "backfill progress"
                    ),
                }
            })
            .await;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let report = report?;
            let verb = if dry_run { "would create" } else { "created" };
            writeln!(
                out,
                "{} users in {} pages: {verb} {}, updated {}, unchanged {}, deleted in WorkOS earlier {}",
                report.users,
                report.pages,
                report.created,
                report.updated,
                report.unchanged,
                report.tombstoned
            )?;
            Ok(())
        }
        Command::Reconcile { since, reset, json } => {
            let (api, store) = api_and_store(&settings)?;
            let broker = connect(&settings).await?;
            let request = sync::ReconcileRequest {
                since,
                reset,
                publish_timeout: Duration::from_secs(10),
            };
            let result = sync::reconcile_once(&api, &broker, &store, &request).await;
            broker.close().await;
            let Some(r) = result? else {
                anyhow::bail!("another reconciler is running");
            };
            let start = match &r.start {
                sync::Start::Cursor(c) => format!("the stored cursor {c}"),
                sync::Start::Since(t) => t.to_rfc3339(),
                sync::Start::Beginning => "the oldest event WorkOS holds".to_owned(),
            };
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({
                        "pages": r.pages,
                        "events": r.events,
                        "dead_lettered": r.dead_lettered,
                        "started_from": start,
                        "since_ignored": r.since_ignored,
                        "cursor": r.cursor,
                    })
                )?;
            } else {
                if r.since_ignored {
                    writeln!(
                        out,
                        "--since ignored: started from {start}; add --reset to start from --since"
                    )?;
                }
                writeln!(
                    out,
                    "published {} events from {} pages (started from {start}; {} dead-lettered); cursor {}",
                    r.events,
                    r.pages,
                    r.dead_lettered,
                    r.cursor.as_deref().unwrap_or("-")
                )?;
            }
            Ok(())
        }
    }
}

fn api_and_store(
    settings: &Settings,
) -> anyhow::Result<(workos_sync_workos_api::Client, workos_sync_store::Store)> {
    let api = workos_sync_workos_api::Client::new(
        workos_sync_workos_api::ApiConfig::from_settings(&settings.workos),
    )?;
    anyhow::ensure!(
        api.has_key(),
        "no WorkOS API key configured; set WORKOS_API_KEY"
    );
    let store = workos_sync_store::Store::from_settings(&settings.database)?;
    Ok((api, store))
}

/// A progress bar on a terminal; `None` (plain log lines) otherwise.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {pos} users [{elapsed_precise}] {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
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
