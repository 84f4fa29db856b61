//! `workos-sync reconcile`: one pass over the Events API into the queue, from the stored
//! cursor, `--since` a time, or `--reset` to forget the cursor.

use std::{io::Write, time::Duration};

use workos_sync_core::Settings;
use workos_sync_pull as sync;

use super::{api_and_store, connect};

pub async fn run(
    settings: &Settings,
    since: Option<chrono::DateTime<chrono::Utc>>,
    reset: bool,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let (api, store) = api_and_store(settings)?;
    let broker = connect(settings).await?;
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
