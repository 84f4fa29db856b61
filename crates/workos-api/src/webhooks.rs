//! WorkOS's webhook endpoints (`/webhook_endpoints`): list them, create one, set one's
//! events and status. What `workos-sync webhooks setup|status` needs.
//!
//! Two shapes are accepted, and said here: the API reference's (`status`
//! `"enabled"|"disabled"`, updates by `PATCH`, the `secret` in every answer) and WorkOS's
//! emulator's, version 0.14.0 (`enabled` true/false, updates by `PUT` only, the secret
//! whole only in the create answer and masked as `whsec_12****` elsewhere). An update is
//! sent as `PATCH` with the reference's body; a 404 or 405 that is not WorkOS's own
//! not-found (the emulator has no `PATCH` route) is sent again as `PUT` with the
//! emulator's.
//!
//! Secrets: an endpoint's `secret` is a [`SecretString`]: never in `Debug`, a log line
//! or an error; the caller decides where it goes (the create answer's, once).
//!
//! Failure model: reads as the rest of the client (retries of 429 and 5xx); a write is
//! sent once (a create retried after a lost answer could make a second endpoint), its
//! failure an [`ApiError`].

use std::collections::BTreeSet;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::{ApiError, Client};

const PATH: &str = "/webhook_endpoints";

/// One webhook endpoint as WorkOS (or its emulator) describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookEndpoint {
    pub id: String,
    #[serde(default, alias = "url")]
    pub endpoint_url: String,
    #[serde(default)]
    pub events: Vec<String>,
    /// The API reference's `"enabled"` / `"disabled"`.
    #[serde(default)]
    status: Option<String>,
    /// The emulator's boolean.
    #[serde(default)]
    enabled: Option<bool>,
    /// The signing secret: whole in a create answer (masked by the emulator elsewhere).
    #[serde(default)]
    pub secret: Option<SecretString>,
}

impl WebhookEndpoint {
    /// Delivering: `status = "enabled"` (the reference) or `enabled = true` (the
    /// emulator); neither said means enabled.
    pub fn is_enabled(&self) -> bool {
        match (&self.status, self.enabled) {
            (Some(s), _) => s == "enabled",
            (None, Some(e)) => e,
            (None, None) => true,
        }
    }

    /// The event types it is subscribed to.
    pub fn event_set(&self) -> BTreeSet<&str> {
        self.events.iter().map(String::as_str).collect()
    }
}

/// An endpoint in a list page, decoded as it is (no raw object to keep).
impl workos_sync_core::record::Object for WebhookEndpoint {
    fn decode(object: &serde_json::value::RawValue) -> Result<Self, String> {
        serde_json::from_str(object.get()).map_err(|e| e.to_string())
    }
}

impl Client {
    /// Every webhook endpoint of the environment (all pages).
    pub async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, ApiError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q = vec![("limit", "100".to_owned())];
            if let Some(a) = &after {
                q.push(("after", a.clone()));
            }
            let page = self.get_page::<WebhookEndpoint>(PATH, &q).await?;
            let n = page.data.len();
            out.extend(page.data);
            match page.after {
                Some(a) if n > 0 && Some(&a) != after.as_ref() => after = Some(a),
                _ => return Ok(out),
            }
        }
    }

    /// Creates an endpoint for `url` subscribed to `events`, enabled; its answer holds
    /// the signing secret.
    pub async fn create_webhook_endpoint(
        &self,
        url: &str,
        events: &[&str],
    ) -> Result<WebhookEndpoint, ApiError> {
        let body = json!({"endpoint_url": url, "events": events});
        self.write(Method::POST, PATH, &body).await
    }

    /// Sets endpoint `id`'s events to `events` and enables it.
    pub async fn update_webhook_endpoint(
        &self,
        id: &str,
        events: &[&str],
    ) -> Result<WebhookEndpoint, ApiError> {
        workos_sync_core::check_object_id(id)?;
        let path = format!("{PATH}/{id}");
        let reference = json!({"events": events, "status": "enabled"});
        match self.write(Method::PATCH, &path, &reference).await {
            // The emulator (0.14.0) has no PATCH route: the same change as its PUT.
            Err(ApiError::Refused {
                status: 404 | 405,
                code,
                ..
            }) if code.as_deref() != Some("entity_not_found") => {
                let emulator = json!({"events": events, "enabled": true});
                self.write(Method::PUT, &path, &emulator).await
            }
            other => other,
        }
    }

    /// One write, sent once; the answer decoded as an endpoint.
    async fn write(
        &self,
        method: Method,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<WebhookEndpoint, ApiError> {
        self.budget.until_ready().await;
        let resp = self
            .http
            .request(method, self.url(path))
            .bearer_auth(self.config.api_key.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(|e| ApiError::Unavailable(crate::without_url(&e)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ApiError::Unavailable(crate::without_url(&e)))?;
        if !status.is_success() {
            return Err(crate::answer_error(status, &bytes, None, None));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadResponse(format!("a webhook endpoint: {e}")))
    }
}
