//! The receiver's OpenAPI document, served at [`PATH`]. The probes' paths come from
//! their handlers' `#[utoipa::path]` annotations, registered with them (`crate`); the
//! webhook's path is configured (`receiver.path`), so it is documented here by
//! [`webhook`]'s annotation under the default path and moved to the configured one
//! when the document is made. Its answers are [`crate::error::IngressError`]'s
//! statuses, a 405 for other methods aside. Nothing here fails at run time.

use actix_web::{HttpResponse, web};
use utoipa::{OpenApi, ToSchema};

/// Where the document is served.
pub const PATH: &str = "/openapi.json";

/// The path the webhook's annotation names (the default `receiver.path`).
const DEFAULT_WEBHOOK_PATH: &str = "/api/webhooks/workos";

/// A refusal: a stable reason and a short message (no internals).
#[derive(ToSchema)]
#[allow(dead_code)] // schemas only: the answers are written as JSON directly
pub struct ErrorBody {
    /// Stable reason, e.g. `signature_mismatch`, `malformed_body`, `overloaded`.
    pub error: String,
    pub message: String,
}

/// A stored webhook.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Accepted {
    /// `accepted`.
    pub status: String,
    /// The event's id.
    pub id: String,
}

/// `/healthz`'s answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `/readyz`'s answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReceiverReady {
    /// `ready` or `unavailable`.
    pub status: String,
    pub broker: bool,
}

/// A WorkOS event as delivered to a webhook endpoint.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct WebhookEvent {
    /// The event id (`event_…`).
    pub id: String,
    /// The event type, e.g. `user.created`.
    pub event: String,
    /// The object the event is about.
    pub data: serde_json::Value,
    pub created_at: String,
}

/// Receives one signed WorkOS event and stores it on the queue: 200 only after the
/// broker confirmed it.
#[utoipa::path(
    post,
    path = "/api/webhooks/workos",
    tag = "webhooks",
    params(("WorkOS-Signature" = String, Header,
            description = "t=<milliseconds>, v1=<hex HMAC-SHA256 of `t.body` with the endpoint's secret>")),
    request_body(content = WebhookEvent, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (the broker confirmed it)", body = Accepted),
        (status = 400, description = "Malformed signature header or body", body = ErrorBody),
        (status = 401, description = "Missing, stale or wrong signature", body = ErrorBody),
        (status = 403, description = "Source address not allowed (receiver.allowed_ips)", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody),
        (status = 413, description = "Body larger than receiver.max_body_bytes", body = ErrorBody),
        (status = 415, description = "Content-Encoding other than identity", body = ErrorBody),
        (status = 503, description = "Not stored (broker unavailable, no secret configured, overloaded or too many connections): WorkOS retries; see Retry-After",
         body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[allow(dead_code)] // documents `crate::webhook`, which serves every method
fn webhook() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "workos-sync receiver",
        description = "WorkOS webhooks in, verified and stored on RabbitMQ; probes and metrics."
    ),
    paths(webhook),
    components(schemas(ErrorBody, Accepted, Health, ReceiverReady, WebhookEvent))
)]
struct Document;

/// The document's head with the webhook under `webhook_path` (`receiver.path`), before
/// the probes' handlers add theirs.
pub fn document(webhook_path: &str) -> utoipa::openapi::OpenApi {
    let mut doc = Document::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    if let Some(item) = doc.paths.paths.remove(DEFAULT_WEBHOOK_PATH) {
        doc.paths.paths.insert(webhook_path.to_owned(), item);
    }
    doc
}

/// `GET /openapi.json`.
pub async fn serve(doc: web::Data<utoipa::openapi::OpenApi>) -> HttpResponse {
    HttpResponse::Ok().json(doc.get_ref())
}
