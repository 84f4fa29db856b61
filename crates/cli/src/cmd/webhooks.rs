//! `workos-sync webhooks setup|status`: the WorkOS webhook endpoint for this deployment,
//! through WorkOS's webhook endpoints API, subscribed to exactly the event types of the
//! enabled entities (`sync.entities`; the list `event-types` prints).
//!
//! `setup --url U` creates the endpoint for `U`, or updates ours in place when one with
//! that URL exists (its events set to exactly those wanted, enabled), and says what it
//! did; run again, it finds nothing to change and says so. The signing secret of a
//! created endpoint is printed once on stdout, or written to `--secret-file` (mode 0600)
//! and then not printed; never logged. An updated endpoint keeps its secret.
//! `status` lists every endpoint, its events and what each lacks of the wanted types;
//! exit 3 when no enabled endpoint (or none for `--url`) has them all.
//!
//! Failure model: a WorkOS failure is the command's error (exit 1), named by the client
//! (`ApiError`); nothing is half-written (one call per change).

use std::{collections::BTreeSet, io::Write, path::Path};

use anyhow::Context;
use clap::Subcommand;
use secrecy::ExposeSecret;
use serde_json::json;
use workos_sync_core::Settings;
use workos_sync_workos_api::{Client, webhooks::WebhookEndpoint};

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Create (or update in place) the endpoint for --url with the enabled entities'
    /// event types; prints the new endpoint's signing secret once.
    Setup {
        /// The receiver's public URL, e.g. https://sync.example.com/api/webhooks/workos.
        #[arg(long)]
        url: String,
        /// Write a new endpoint's signing secret to this file (mode 0600) instead of
        /// printing it.
        #[arg(long)]
        secret_file: Option<std::path::PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Every endpoint, its events and what each lacks of the enabled entities' types.
    Status {
        /// The endpoint to judge (default: any enabled one).
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// The event types the enabled entities need.
fn wanted(settings: &Settings) -> Vec<&'static str> {
    settings.sync.entity_set().subscribed_event_types()
}

/// `a` and `b` the same URL (a trailing slash aside).
fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

pub async fn run(
    settings: &Settings,
    command: &WebhooksCommand,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let api = Client::new(workos_sync_workos_api::ApiConfig::from_settings(
        &settings.workos,
    ))?;
    anyhow::ensure!(
        api.has_key(),
        "no WorkOS API key: set WORKOS_API_KEY (webhook endpoints are managed through the API)"
    );
    let wanted = wanted(settings);
    match command {
        WebhooksCommand::Setup {
            url,
            secret_file,
            json,
        } => setup(&api, url, &wanted, secret_file.as_deref(), *json, out).await,
        WebhooksCommand::Status { url, json } => {
            status(&api, url.as_deref(), &wanted, *json, out).await
        }
    }
}

async fn setup(
    api: &Client,
    url: &str,
    wanted: &[&str],
    secret_file: Option<&Path>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).with_context(|| format!("--url {url:?} is not a URL"))?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "https" | "http"),
        "--url must be an https:// URL (WorkOS delivers to a public HTTPS endpoint)"
    );
    let endpoints = api.list_webhook_endpoints().await?;
    let ours = endpoints.iter().find(|e| same_url(&e.endpoint_url, url));
    let want: BTreeSet<&str> = wanted.iter().copied().collect();
    let (action, endpoint) = match ours {
        Some(e) if e.is_enabled() && e.event_set() == want => ("unchanged", e.clone()),
        Some(e) => ("updated", api.update_webhook_endpoint(&e.id, wanted).await?),
        None => ("created", api.create_webhook_endpoint(url, wanted).await?),
    };
    let before = ours.map(WebhookEndpoint::event_set).unwrap_or_default();
    let added: Vec<&str> = want.difference(&before).copied().collect();
    let removed: Vec<&str> = before.difference(&want).copied().collect();
    let mut secret_shown = None;
    if action == "created" {
        let secret = endpoint
            .secret
            .as_ref()
            .context("WorkOS's answer carried no signing secret: read it in the dashboard")?;
        match secret_file {
            Some(path) => {
                write_secret(path, secret.expose_secret())?;
                secret_shown = Some(format!("written to {}", path.display()));
            }
            None => secret_shown = Some(secret.expose_secret().to_owned()),
        }
    }
    if json {
        let mut v = json!({"action": action, "id": endpoint.id, "url": url,
                           "events": wanted, "added": added, "removed": removed});
        if let Some(s) = &secret_shown {
            v["secret"] = json!(s);
        }
        writeln!(out, "{v}")?;
        return Ok(());
    }
    match action {
        "unchanged" => writeln!(
            out,
            "webhook endpoint {} for {url} is up to date ({} event types, enabled); nothing changed",
            endpoint.id,
            want.len()
        )?,
        "updated" => {
            writeln!(
                out,
                "updated webhook endpoint {} for {url}: {} event types, enabled",
                endpoint.id,
                want.len()
            )?;
            if !added.is_empty() {
                writeln!(out, "  added: {}", added.join(", "))?;
            }
            if !removed.is_empty() {
                writeln!(out, "  removed: {}", removed.join(", "))?;
            }
            writeln!(out, "  its signing secret is unchanged")?;
        }
        _ => {
            writeln!(
                out,
                "created webhook endpoint {} for {url}: {} event types",
                endpoint.id,
                want.len()
            )?;
            match (secret_file, &secret_shown) {
                (Some(path), _) => writeln!(
                    out,
                    "  signing secret written to {} (mode 0600): give it to the receiver as WORKOS_WEBHOOK_SECRET",
                    path.display()
                )?,
                (None, Some(s)) => writeln!(
                    out,
                    "  signing secret (shown this once; give it to the receiver as WORKOS_WEBHOOK_SECRET):\n  {s}"
                )?,
                (None, None) => {}
            }
        }
    }
    Ok(())
}

/// Writes `secret` to a new or truncated file readable by its owner only.
fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("--secret-file {}", path.display()))?;
    // An existing file keeps its mode on open: narrowed too.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(f, "{secret}")?;
    Ok(())
}

async fn status(
    api: &Client,
    url: Option<&str>,
    wanted: &[&str],
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let want: BTreeSet<&str> = wanted.iter().copied().collect();
    let endpoints = api.list_webhook_endpoints().await?;
    let judged: Vec<&WebhookEndpoint> = endpoints
        .iter()
        .filter(|e| url.is_none_or(|u| same_url(&e.endpoint_url, u)))
        .collect();
    let complete = judged
        .iter()
        .any(|e| e.is_enabled() && want.is_subset(&e.event_set()));
    if json {
        let list: Vec<_> = endpoints
            .iter()
            .map(|e| {
                let missing: Vec<&str> = want.difference(&e.event_set()).copied().collect();
                json!({"id": e.id, "url": e.endpoint_url, "enabled": e.is_enabled(),
                       "events": e.events, "missing": missing})
            })
            .collect();
        writeln!(
            out,
            "{}",
            json!({"endpoints": list, "wanted": wanted, "complete": complete})
        )?;
    } else {
        if endpoints.is_empty() {
            writeln!(
                out,
                "no webhook endpoint: run `workos-sync webhooks setup --url <receiver URL>`"
            )?;
        }
        for e in &endpoints {
            let missing: Vec<&str> = want.difference(&e.event_set()).copied().collect();
            writeln!(
                out,
                "{} {} ({}; {} event types)",
                e.id,
                e.endpoint_url,
                if e.is_enabled() {
                    "enabled"
                } else {
                    "disabled"
                },
                e.events.len()
            )?;
            if missing.is_empty() {
                writeln!(out, "  every event type the enabled entities need")?;
            } else {
                writeln!(out, "  missing: {}", missing.join(", "))?;
            }
        }
        match (complete, url) {
            (true, _) => writeln!(
                out,
                "ok: an enabled endpoint has all {} event types",
                want.len()
            )?,
            (false, Some(u)) => writeln!(
                out,
                "not ready: no enabled endpoint for {u} with all {} event types; run `workos-sync webhooks setup --url {u}`",
                want.len()
            )?,
            (false, None) => writeln!(
                out,
                "not ready: no enabled endpoint with all {} event types; run `workos-sync webhooks setup --url <receiver URL>`",
                want.len()
            )?,
        }
    }
    if !complete {
        return Err(crate::Exit(3).into());
    }
    Ok(())
}
