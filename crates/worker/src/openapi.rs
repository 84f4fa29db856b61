//! The worker's OpenAPI document, served at [`PATH`]: its paths come from the
//! handlers' `#[utoipa::path]` annotations as they are registered (`crate::http`), so
//! the document cannot list a route the worker does not serve or miss one it does;
//! this file holds what the annotations share: the document's head, the bearer scheme
//! and the bodies' schemas. Nothing here fails at run time.

use actix_web::{HttpResponse, web};
use utoipa::{
    Modify, OpenApi, ToSchema,
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
