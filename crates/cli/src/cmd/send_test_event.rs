//! `workos-sync send-test-event`: sign and post a realistic user event to a receiver,
//! like the test button of WorkOS's dashboard.

use std::{io::Write, time::Duration};

use anyhow::Context;
use chrono::Utc;
use workos_sync_core::{Settings, now_ms, signature};

/// A realistic signed event body for `event_type`.
pub fn test_event(event_type: &str, user_id: &str) -> (String, String) {
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let id = format!("event_test_{}", uuid::Uuid::new_v4().simple());
    let body = workos_sync_core::event::sample_user_event(&id, event_type, user_id, &now, &now);
    (id, body)
}

pub async fn run(
    settings: &Settings,
    event_type: &str,
    user_id: Option<String>,
    url: Option<String>,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    anyhow::ensure!(
        workos_sync_core::event_type::USER_EVENTS.contains(&event_type),
        "--type must be user.created, user.updated or user.deleted"
    );
    let secrets = settings.webhook_secrets();
    let secret = secrets
        .first()
        .context("no webhook secret configured; set WORKOS_WEBHOOK_SECRET")?;
    let url = url.unwrap_or_else(|| {
        let port = settings.receiver.bind.rsplit(':').next().unwrap_or("8080");
        format!("http://127.0.0.1:{port}{}", settings.receiver.path)
    });
    let user_id = user_id.unwrap_or_else(|| {
        format!(
            "user_test_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        )
    });
    let (id, body) = test_event(event_type, &user_id);
    let sig = signature::signature_header(secret, now_ms(), body.as_bytes());
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?
        .post(&url)
        .header("content-type", "application/json")
        .header("WorkOS-Signature", sig)
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    writeln!(
        out,
        "{event_type} {id} for {user_id} → {} {}",
        status.as_u16(),
        text.trim()
    )?;
    anyhow::ensure!(status.is_success(), "receiver answered {}", status.as_u16());
    Ok(())
}
