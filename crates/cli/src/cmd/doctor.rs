//! `workos-sync doctor`: the troubleshooting list as one command. Checks, in order,
//! and prints one line per check (what holds, or what is wrong and what to do):
//! settings; the database (reachable, migrations current, the users table usable and
//! whose it is); the broker (reachable, topology as declared, a consumer on the events
//! queue: the worker); the receiver (a signed test event posted to its URL, followed to
//! `processed_events` and the users table, then removed); the WorkOS API key (and the
//! environment its prefix names); the webhook endpoint for the receiver's URL with every
//! event type of the enabled entities; the DLQ (depth, oldest, reasons); time since the
//! last event was applied, and the reconcile cursor's age. Exit 0 when nothing failed
//! (a `warn` line is advice), 1 otherwise (the report is the output, no error line).
//!
//! A check that needs what an earlier one found missing (the database, the broker, the
//! API) is `skip`, naming why. Every wait is bounded: connections and API calls by their
//! timeouts, the test event by `--wait-secs`.
//!
//! The test event is a `user.created` for `user_doctor_<hex>`: doctor removes its row,
//! processed record and archived body afterwards (`Store::remove_probe_user`, which
//! refuses any other id). A row that lands after the deadline is removed by the next
//! run of doctor, which first clears earlier test users it left.

use std::{collections::BTreeMap, io::Write, time::Duration};

use secrecy::ExposeSecret;
use serde::Serialize;
use workos_sync_core::{Settings, now_ms, signature};
use workos_sync_queue::{check::Report, dlq};
use workos_sync_store::{
    Store,
    diagnose::{PROBE_USER_PREFIX, probe_event_id},
};
use workos_sync_workos_api::{ApiError, Client, webhooks::WebhookEndpoint};

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    /// Holds, with advice.
    Warn,
    Fail,
    /// Not run: what it needs failed earlier.
    Skip,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "FAIL",
            Self::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    /// What to do, for a `warn` or `FAIL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            verdict: Verdict::Ok,
            detail: detail.into(),
            fix: None,
        }
    }
    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            verdict: Verdict::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Warn,
            ..Self::fail(name, detail, fix)
        }
    }
    fn skip(name: &'static str, why: impl Into<String>) -> Self {
        Self {
            name,
            verdict: Verdict::Skip,
            detail: why.into(),
            fix: None,
        }
    }
}

/// What `doctor` was asked.
pub struct Options {
    /// The receiver's webhook URL (default: this host's `receiver.bind` port and path).
    pub url: Option<String>,
    /// How long the test event may take from the receiver to the table.
    pub wait: Duration,
    pub json: bool,
}

/// Timeout of each connection and API call doctor makes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest DLQ whose messages doctor reads for their reasons (reading walks it).
const DLQ_READ_MAX: u32 = 1000;

/// Runs every check on `settings`, or reports the settings' own error.
pub async fn run(
    settings: Result<Settings, workos_sync_core::settings::SettingsError>,
    opts: &Options,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let checks = match settings {
        Ok(s) => checks(&s, opts).await,
        Err(e) => vec![Check::fail(
            "settings",
            e.to_string(),
            "fix the key named (config/default.toml documents each); `workos-sync config show` prints what is in effect",
        )],
    };
    render(&checks, opts.json, out)?;
    if checks.iter().any(|c| c.verdict == Verdict::Fail) {
        return Err(crate::Exit(1).into());
    }
    Ok(())
}

fn render(checks: &[Check], json: bool, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    if json {
        let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
        writeln!(
            out,
            "{}",
            serde_json::json!({"healthy": failed == 0, "checks": checks})
        )?;
        return Ok(());
    }
    for c in checks {
        let fix = c
            .fix
            .as_deref()
            .map_or_else(String::new, |f| format!(" → {f}"));
        writeln!(
            out,
            "{:<4}  {:<18} {}{fix}",
            c.verdict.label(),
            c.name,
            c.detail
        )?;
    }
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    if failed == 0 {
        writeln!(out, "healthy: every check holds")?;
    } else {
        writeln!(out, "{failed} check(s) failed")?;
    }
    Ok(())
}

/// The receiver URL doctor posts to.
fn receiver_url(settings: &Settings, given: Option<&str>) -> String {
    given.map_or_else(
        || {
            let port = settings.receiver.bind.rsplit(':').next().unwrap_or("8080");
            format!("http://127.0.0.1:{port}{}", settings.receiver.path)
        },
        str::to_owned,
    )
}

/// A loopback `http://` URL: a local stack, reached through a tunnel if at all.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

async fn checks(settings: &Settings, opts: &Options) -> Vec<Check> {
    let mut out = vec![Check::ok(
        "settings",
        format!(
            "valid; {} entities enabled",
            settings.sync.entity_set().iter().count()
        ),
    )];
    let store = database(settings, &mut out).await;
    let broker = broker(settings, &mut out).await;
    // Read before the test event, which would otherwise be the last one applied.
    let mut recent = Vec::new();
    activity(settings, store.as_ref(), &mut recent).await;
    let url = receiver_url(settings, opts.url.as_deref());
    out.push(receiver(settings, store.as_ref(), &url, opts.wait).await);
    let endpoints = api(settings, &mut out).await;
    out.push(endpoint(settings, &url, endpoints));
    out.push(dead_letters(settings, broker.as_ref()).await);
    out.extend(recent);
    out
}

/// Database, migrations, users table; the store when it is usable.
async fn database(settings: &Settings, out: &mut Vec<Check>) -> Option<Store> {
    let skip = |out: &mut Vec<Check>| {
        out.push(Check::skip("migrations", "the database is not reachable"));
        out.push(Check::skip("users table", "the database is not reachable"));
    };
    let store = match Store::from_settings(&settings.database) {
        Ok(s) => s.with_sync(&settings.sync),
        Err(e) => {
            out.push(Check::fail(
                "database",
                e.to_string(),
                "set DATABASE_URL to a postgres:// URL",
            ));
            skip(out);
            return None;
        }
    };
    if let Err(e) = store.ping().await {
        out.push(Check::fail(
            "database",
            format!("not reachable: {e}"),
            "start Postgres or correct DATABASE_URL (host, port, database, credentials)",
        ));
        skip(out);
        return None;
    }
    let schema = settings.database.schema.clone();
    out.push(Check::ok(
        "database",
        format!("reachable (schema {schema})"),
    ));
    let url = settings.database.url.expose_secret();
    match workos_sync_store::migrate::pending(url, &schema).await {
        Ok(p) if p.is_empty() => out.push(Check::ok("migrations", "current")),
        Ok(p) => out.push(Check::fail(
            "migrations",
            format!("{} pending: {}", p.len(), p.join(", ")),
            "run `workos-sync migrate` (or `migrate --adopt` to keep an existing users table)",
        )),
        Err(e) => out.push(Check::fail(
            "migrations",
            format!("cannot read: {e}"),
            "check the role's rights on the schema",
        )),
    }
    match store.prepare().await {
        Ok(()) => {
            let adopted = store.users_adopted().await.unwrap_or(false);
            let mapping = &settings.database.users_columns;
            let whose = if adopted {
                "the application's (adopted)"
            } else {
                "ours"
            };
            let mapped = if mapping.is_empty() {
                String::new()
            } else {
                let pairs: Vec<String> = mapping.iter().map(|(k, v)| format!("{k}→{v}")).collect();
                format!("; columns mapped {}", pairs.join(", "))
            };
            out.push(Check::ok(
                "users table",
                format!("usable, {whose}{mapped}"),
            ));
        }
        Err(e) => out.push(Check::fail(
            "users table",
            e.to_string(),
            "run `workos-sync migrate` (an existing table: `migrate --adopt`, with database.users_columns for columns named otherwise)",
        )),
    }
    Some(store)
}

/// Broker, topology, worker; the broker's queues when reachable.
async fn broker(settings: &Settings, out: &mut Vec<Check>) -> Option<Report> {
    let topology = workos_sync_queue::Topology::from_settings(&settings.amqp);
    let mut last = None;
    let mut conn = None;
    for u in &settings.amqp.url {
        match workos_sync_queue::check::connect(u.expose_secret(), CONNECT_TIMEOUT).await {
            Ok(c) => {
                conn = Some(c);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(conn) = conn else {
        let why = last.map_or_else(|| "no AMQP_URL".to_owned(), |e| e.to_string());
        out.push(Check::fail(
            "broker",
            format!("not reachable: {why}"),
            "start RabbitMQ or correct AMQP_URL",
        ));
        out.push(Check::skip("topology", "the broker is not reachable"));
        out.push(Check::skip("worker", "the broker is not reachable"));
        return None;
    };
    out.push(Check::ok(
        "broker",
        format!("reachable (prefix {})", settings.amqp.prefix),
    ));
    let report = workos_sync_queue::check::check(&topology, &conn).await;
    let _ = conn.close(200, "doctor".into()).await;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            out.push(Check::fail(
                "topology",
                format!("cannot be read: {e}"),
                "check the user's rights on the vhost",
            ));
            out.push(Check::skip("worker", "the topology could not be read"));
            return None;
        }
    };
    if report.findings.is_empty() {
        out.push(Check::ok(
            "topology",
            format!("{} queues as declared", report.queues.len()),
        ));
    } else {
        let found: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
        out.push(Check::fail(
            "topology",
            found.join("; "),
            "start the receiver or the worker (they declare it); a queue with other arguments was made by something else: see docs/runbook.md",
        ));
    }
    let events = topology.events_queue();
    match report.queues.iter().find(|q| q.queue == events) {
        Some(q) if q.consumers > 0 => out.push(Check::ok(
            "worker",
            format!(
                "{} consumer(s) on {events}, {} message(s) waiting",
                q.consumers, q.messages
            ),
        )),
        Some(q) => out.push(Check::fail(
            "worker",
            format!(
                "no consumer on {events} ({} message(s) waiting)",
                q.messages
            ),
            "start the worker (`workos-sync-worker`) with the same AMQP_URL and amqp.prefix",
        )),
        None => out.push(Check::skip("worker", format!("{events} is missing"))),
    }
    Some(report)
}

/// Posts a signed test event and follows it to the table.
async fn receiver(settings: &Settings, store: Option<&Store>, url: &str, wait: Duration) -> Check {
    const NAME: &str = "receiver";
    let parsed = match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        _ => {
            return Check::fail(
                NAME,
                format!("{url:?} is not an http(s) URL"),
                "pass --url <the receiver's webhook URL>",
            );
        }
    };
    if parsed.scheme() == "http" && !is_loopback(&parsed) {
        return Check::fail(
            NAME,
            format!("{url} is plain http on a public host"),
            "WorkOS delivers to https:// URLs; serve TLS (receiver.tls_*) or a proxy in front",
        );
    }
    let secrets = settings.webhook_secrets();
    let Some(secret) = secrets.first() else {
        return Check::fail(
            NAME,
            "no webhook secret configured",
            "set WORKOS_WEBHOOK_SECRET to the endpoint's signing secret (`workos-sync webhooks setup` prints it)",
        );
    };
    if let Some(s) = store {
        clear_earlier_probes(s).await;
    }
    let hex = uuid::Uuid::new_v4().simple().to_string();
    let user_id = format!("{PROBE_USER_PREFIX}{}", &hex[..20]);
    let event_id = probe_event_id(&user_id);
    if let Some(s) = store
        && s.mark_probe_user(&user_id).await.is_err()
    {
        return Check::fail(
            NAME,
            "cannot write to sync_cursors (to remember the test user)",
            "check the role's rights on our tables",
        );
    }
    let now = now_rfc3339();
    let body = workos_sync_core::event::sample_user_event(
        &event_id,
        workos_sync_core::event_type::USER_CREATED,
        &user_id,
        &now,
        &now,
    );
    let sig = signature::signature_header(secret, now_ms(), body.as_bytes());
    let client = match reqwest::Client::builder()
        .timeout(CONNECT_TIMEOUT + wait)
        .build()
    {
        Ok(c) => c,
        Err(e) => return Check::fail(NAME, format!("HTTP client: {e}"), "report this"),
    };
    let started = std::time::Instant::now();
    let answer = client
        .post(url)
        .header("content-type", "application/json")
        .header("WorkOS-Signature", sig)
        .body(body)
        .send()
        .await;
    let status = match answer {
        Ok(a) => a.status().as_u16(),
        Err(e) => {
            let why = if e.is_timeout() {
                "no answer in time"
            } else if e.is_connect() {
                "connection refused or unreachable"
            } else {
                "no answer"
            };
            return Check::fail(
                NAME,
                format!("{url}: {why}"),
                "start the receiver, or pass --url with its address",
            );
        }
    };
    match status {
        200 => {}
        401 => {
            return Check::fail(
                NAME,
                format!("{url} refused the test event's signature (401)"),
                "the receiver's WORKOS_WEBHOOK_SECRET differs from this one: give both the endpoint's signing secret",
            );
        }
        403 => {
            return Check::fail(
                NAME,
                format!("{url} refused this address (403)"),
                "receiver.allowed_ips does not include it; WorkOS's own addresses must be listed too",
            );
        }
        404 => {
            return Check::fail(
                NAME,
                format!("{url}: 404"),
                "the path differs from receiver.path",
            );
        }
        other => {
            return Check::fail(
                NAME,
                format!("{url} answered {other}"),
                "see the receiver's log and `workos-sync status`",
            );
        }
    }
    let Some(store) = store else {
        return Check::warn(
            NAME,
            format!("{url} accepted a signed test event (200)"),
            "its effect in the table was not followed: the database is not reachable",
        );
    };
    let deadline = tokio::time::Instant::now() + wait;
    let outcome = loop {
        match store.event_outcome(&event_id).await {
            Ok(Some(o)) => break Some(o),
            Ok(None) | Err(_) if tokio::time::Instant::now() >= deadline => break None,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let took = started.elapsed();
    let Some(outcome) = outcome else {
        // Still queued: its row is removed by a later run, once it has landed.
        return Check::fail(
            NAME,
            format!(
                "{url} accepted a signed test event (200) but it was not applied within {}s",
                wait.as_secs()
            ),
            "the worker is not consuming or not writing: see the worker check, `workos-sync status` and the worker's log",
        );
    };
    let row = store.get_user(&user_id).await.ok().flatten().is_some();
    let removed = match store.remove_probe_user(&user_id).await {
        Ok(()) => "test row removed",
        Err(_) => "the test row could not be removed (the next doctor run retries)",
    };
    if outcome == workos_sync_store::Outcome::Created.as_str() && row {
        Check::ok(
            NAME,
            format!(
                "{url} accepted a signed test event; applied to the users table in {} ms; {removed}",
                took.as_millis()
            ),
        )
    } else {
        Check::warn(
            NAME,
            format!(
                "{url} accepted a signed test event; the worker recorded it as {outcome}; {removed}"
            ),
            "users are not applied: check sync.entities",
        )
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Removes the test users an earlier doctor run left (applied after its deadline).
async fn clear_earlier_probes(store: &Store) {
    let Ok(ids) = store.probe_users().await else {
        return;
    };
    for id in ids {
        // Only once its event was processed: a queued one would land after.
        if let Ok(Some(_)) = store.event_outcome(&probe_event_id(&id)).await {
            let _ = store.remove_probe_user(&id).await;
        }
    }
}

/// The API key, and the webhook endpoints it lists.
async fn api(settings: &Settings, out: &mut Vec<Check>) -> Option<Vec<WebhookEndpoint>> {
    const NAME: &str = "workos api";
    let mut config = workos_sync_workos_api::ApiConfig::from_settings(&settings.workos);
    config.timeout = CONNECT_TIMEOUT;
    config.max_attempts = 2;
    let client = match Client::new(config) {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::fail(
                NAME,
                e.to_string(),
                "check workos.api_base_url",
            ));
            return None;
        }
    };
    if !client.has_key() {
        out.push(Check::fail(
            NAME,
            "no API key",
            "set WORKOS_API_KEY (lazy sync, reconcile, backfill, verify and webhooks setup use it)",
        ));
        return None;
    }
    let key = settings.workos.api_key.expose_secret();
    let environment = if key.starts_with("sk_live_") {
        "a production key"
    } else if key.starts_with("sk_test_") {
        "a test (staging) key"
    } else {
        "a key of unknown environment"
    };
    match client.list_webhook_endpoints().await {
        Ok(list) => {
            out.push(Check::ok(
                NAME,
                format!("{} accepted {environment}", settings.workos.api_base_url),
            ));
            Some(list)
        }
        Err(ApiError::Unauthorized(code)) => {
            out.push(Check::fail(
                NAME,
                format!("WorkOS refused the API key ({code})"),
                "set WORKOS_API_KEY to a current secret key of this environment (dashboard: API Keys)",
            ));
            None
        }
        Err(e) => {
            out.push(Check::fail(
                NAME,
                e.to_string(),
                "check workos.api_base_url and the network path to WorkOS",
            ));
            None
        }
    }
}

/// The webhook endpoint for `url`, subscribed to every needed event type.
fn endpoint(settings: &Settings, url: &str, endpoints: Option<Vec<WebhookEndpoint>>) -> Check {
    const NAME: &str = "webhook endpoint";
    let Some(endpoints) = endpoints else {
        return Check::skip(NAME, "the WorkOS API could not be asked");
    };
    let wanted = settings.sync.entity_set().subscribed_event_types();
    let same =
        |e: &&WebhookEndpoint| e.endpoint_url.trim_end_matches('/') == url.trim_end_matches('/');
    let setup = format!("run `workos-sync webhooks setup --url {url}`");
    let lacking = |e: &WebhookEndpoint| -> Vec<&str> {
        let have = e.event_set();
        wanted
            .iter()
            .copied()
            .filter(|t| !have.contains(t))
            .collect()
    };
    if let Some(e) = endpoints.iter().find(same) {
        let missing = lacking(e);
        return match (e.is_enabled(), missing.is_empty()) {
            (true, true) => Check::ok(
                NAME,
                format!(
                    "{} for {url}: enabled, all {} event types",
                    e.id,
                    wanted.len()
                ),
            ),
            (false, _) => Check::fail(NAME, format!("{} for {url} is disabled", e.id), setup),
            (true, false) => Check::fail(
                NAME,
                format!(
                    "{} for {url} lacks {} event type(s): {}",
                    e.id,
                    missing.len(),
                    missing.join(", ")
                ),
                setup,
            ),
        };
    }
    let loopback = url::Url::parse(url).is_ok_and(|u| is_loopback(&u));
    if loopback {
        // A local stack: WorkOS reaches it through a tunnel under another URL, if at all.
        if let Some(e) = endpoints
            .iter()
            .find(|e| e.is_enabled() && lacking(e).is_empty())
        {
            return Check::ok(
                NAME,
                format!(
                    "{} ({}) has all {} event types; {url} is local (a tunnel's target)",
                    e.id,
                    e.endpoint_url,
                    wanted.len()
                ),
            );
        }
        return Check::warn(
            NAME,
            format!(
                "no enabled endpoint with all {} event types; {url} is local",
                wanted.len()
            ),
            "for WorkOS to deliver here, expose it through a tunnel and run `workos-sync webhooks setup --url <tunnel URL>`",
        );
    }
    Check::fail(NAME, format!("no endpoint for {url}"), setup)
}

/// DLQ depth, oldest message and reasons.
async fn dead_letters(settings: &Settings, report: Option<&Report>) -> Check {
    const NAME: &str = "dlq";
    let Some(report) = report else {
        return Check::skip(NAME, "the broker could not be read");
    };
    let topology = workos_sync_queue::Topology::from_settings(&settings.amqp);
    let dead = topology.dead_queue();
    let Some(q) = report.queues.iter().find(|q| q.queue == dead) else {
        return Check::skip(NAME, format!("{dead} is missing"));
    };
    if q.messages == 0 {
        return Check::ok(NAME, "empty");
    }
    let fix = "see `workos-sync dlq list`; after fixing the cause, `workos-sync dlq replay --all`";
    if q.messages > DLQ_READ_MAX {
        return Check::fail(
            NAME,
            format!("{} message(s) dead-lettered", q.messages),
            fix,
        );
    }
    let broker = match super::connect(settings).await {
        Ok(b) => b,
        Err(_) => {
            return Check::fail(
                NAME,
                format!("{} message(s) dead-lettered", q.messages),
                fix,
            );
        }
    };
    let listed = dlq::list(&broker).await;
    broker.close().await;
    let Ok(messages) = listed else {
        return Check::fail(
            NAME,
            format!("{} message(s) dead-lettered", q.messages),
            fix,
        );
    };
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &messages {
        *reasons.entry(m.reason.as_str()).or_default() += 1;
    }
    let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
    let oldest = messages
        .iter()
        .filter_map(|m| m.first_seen_at_ms)
        .min()
        .map_or_else(String::new, |ms| {
            format!("; oldest {}", age((dlq::now_ms_i64() - ms).max(0) / 1000))
        });
    Check::fail(
        NAME,
        format!(
            "{} message(s) dead-lettered ({}){oldest}",
            messages.len(),
            reasons.join(", ")
        ),
        fix,
    )
}

/// `3s`, `4m`, `2h`, `5d`.
fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// The last applied event and the reconcile cursor.
async fn activity(settings: &Settings, store: Option<&Store>, out: &mut Vec<Check>) {
    let Some(store) = store else {
        out.push(Check::skip("last event", "the database is not reachable"));
        out.push(Check::skip("reconcile", "the database is not reachable"));
        return;
    };
    let now = chrono::Utc::now();
    match store.last_applied().await {
        Ok(Some(at)) => out.push(Check::ok(
            "last event",
            format!("applied {}", age((now - at).num_seconds().max(0))),
        )),
        Ok(None) => out.push(Check::ok("last event", "none applied in the last 90 days")),
        Err(e) => out.push(Check::fail(
            "last event",
            format!("cannot read: {e}"),
            "check the database",
        )),
    }
    let interval = settings.reconcile.interval_secs;
    if interval == 0 {
        out.push(Check::ok("reconcile", "off (reconcile.interval_secs = 0)"));
        return;
    }
    let cursors = match store.cursors().await {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::fail(
                "reconcile",
                format!("cannot read: {e}"),
                "check the database",
            ));
            return;
        }
    };
    let cursor = cursors
        .iter()
        .find(|(n, _, _)| n == workos_sync_pull::EVENTS_CURSOR)
        .and_then(|(_, _, at)| *at);
    match cursor {
        None => out.push(Check::warn(
            "reconcile",
            "the events cursor has not been set yet",
            format!("the worker sets it on its first pass (every {interval}s); `workos-sync reconcile` runs one now"),
        )),
        Some(at) => {
            let secs = (now - at).num_seconds().max(0);
            out.push(Check::ok(
                "reconcile",
                format!("events cursor moved {} (it moves when WorkOS has new events)", age(secs)),
            ));
        }
    }
}
