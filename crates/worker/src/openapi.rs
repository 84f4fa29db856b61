//! The worker's OpenAPI document, served at [`PATH`]: its paths come from the
//! handlers' `#[utoipa::path]` annotations as they are registered (`crate::http`), so
//! the document cannot list a route the worker does not serve or miss one it does;
//! this file holds what the annotations share: the document's head, the bearer scheme
//! and the bodies' schemas. Nothing here fails at run time.

use actix_web::{HttpResponse, web};
use utoipa::{
    IntoParams, IntoResponses, Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

/// Where the document is served.
pub const PATH: &str = "/openapi.json";

/// An error answer: a stable code and a short message (no internals).
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: the answers are built as JSON values
pub struct ErrorBody {
    /// Stable code, e.g. `invalid_id`, `not_found`, `busy`.
    pub error: String,
    pub message: String,
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
pub struct WorkerReady {
    /// `ready` or `unavailable`.
    pub status: String,
    pub database: bool,
    pub broker: bool,
}

/// A synced row as stored, every column as JSON, with its children (a user's
/// `memberships`, an organization's `domains`, a directory user's groups).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SyncedRow {
    /// The WorkOS id.
    pub id: String,
}

/// The path parameter of every lazy sync: a WorkOS id (`user_…`, `org_…`,
/// `directory_user_…`), as `workos_sync_core::check_object_id` accepts it; the
/// handlers read their path into it, so the document's parameter is the one served.
#[derive(IntoParams, serde::Deserialize)]
#[into_params(parameter_in = Path)]
pub struct ObjectId {
    /// The WorkOS id of the object to sync.
    #[param(pattern = r"^[A-Za-z][A-Za-z0-9_]{0,99}$")]
    pub id: String,
}

/// Every answer of a lazy sync (`crate::lazy::answer` and the checks before it), for
/// every entity alike.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum LazySyncAnswers {
    /// The row as stored after the sync, with its children: a user's `memberships`, an
    /// organization's `domains`, a directory user's `groups`.
    #[response(status = 200)]
    Synced(SyncedRow),
    /// Not a WorkOS id (never sent to WorkOS).
    #[response(status = 400)]
    InvalidId(ErrorBody),
    /// Missing or wrong bearer token.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Not in WorkOS (the local row is gone too), the entity is not synced, or lazy
    /// sync is off (no token).
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// WorkOS deleted it but an application's foreign key keeps the row.
    #[response(status = 409)]
    DeleteBlocked(ErrorBody),
    /// The table does not fit (`schema_mismatch`) or the store failed.
    #[response(status = 500)]
    StoreError(ErrorBody),
    /// No WorkOS API key configured.
    #[response(status = 501)]
    NoApiKey(ErrorBody),
    /// WorkOS failed.
    #[response(status = 502)]
    WorkosUnavailable(ErrorBody),
    /// Busy, rate limited by WorkOS, WorkOS out of time or the database unavailable.
    #[response(status = 503, headers(("Retry-After" = u64, description = "Seconds to wait")))]
    Unavailable(ErrorBody),
}

/// Adds the bearer scheme lazy sync calls use (`worker.api_token`).
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "workos-sync worker",
        description = "Lazy sync of one object from WorkOS, and the worker's probes and metrics."
    ),
    components(schemas(ErrorBody, Health, WorkerReady, SyncedRow)),
    modifiers(&Bearer)
)]
struct Head;

/// The document's head, before the handlers add their paths.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Head::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// `GET /openapi.json`.
pub async fn serve(doc: web::Data<utoipa::openapi::OpenApi>) -> HttpResponse {
    HttpResponse::Ok().json(doc.get_ref())
}
