//! The worker's HTTP port: `/healthz` (process up), `/readyz` (database answers and the
//! broker connection is open; 503 otherwise, with which one failed), `/metrics`, and
//! lazy sync `POST /v1/users/{id}/sync` (the user row with a `memberships` array) and
//! `POST /v1/organizations/{id}/sync` (the organization row with a `domains` array),
//! behind a bearer token (off without a token); `/openapi.json` documents them all,
//! generated from the handlers' annotations ([`crate::openapi`]).
//!
//! Lazy sync answers: 200 with the stored rows, 404 when the entity is not synced
//! (`sync.entities`) or WorkOS said `entity_not_found` for that id (the local row is
//! gone too), 400 for an id that cannot be a WorkOS id (never sent to WorkOS nor to the
//! store), 401 bad token; the failures, the coalescing of calls for one id and the
//! limits on new calls are [`crate::lazy`]'s. WorkOS failures never touch the local row.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use actix_web::{
    App, HttpRequest, HttpResponse, HttpServer, dev::Server, get, http::header, post, web,
};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use utoipa_actix_web::AppExt;
use workos_sync_queue::Broker;
use workos_sync_store::Store;
use workos_sync_workos_api::Client;

use crate::lazy::{self, Answer};

use workos_sync_core::Entity;
use workos_sync_pull::{sync_directory_user, sync_organization, sync_user};

pub struct State {
    pub broker: Broker,
    pub store: Store,
    pub api: Option<Client>,
    pub api_token: SecretString,
    /// Longest a lazy sync call waits for WorkOS.
    pub lazy_sync_timeout: Duration,
    /// Coalescing and limits of lazy sync calls.
    pub admission: std::sync::Arc<lazy::Admission>,
}

/// Builds the worker's HTTP server on `bind`, HTTPS with `tls` (reloaded on SIGHUP or
/// change: `workos_sync_tls`); call it on a tokio runtime.
pub fn build(
    bind: &str,
    tls: Option<workos_sync_core::settings::TlsPaths>,
    state: State,
) -> std::io::Result<(Server, SocketAddr)> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        // Each route is registered from its handler, whose `#[utoipa::path]` documents
        // it: what is served and what `/openapi.json` says are one declaration.
        let (app, doc) = App::new()
            .into_utoipa_app()
            .openapi(crate::openapi::document())
            .app_data(state.clone())
            .service(healthz)
            .service(readyz)
            .service(metrics_endpoint)
            .service(lazy_sync_user)
            .service(lazy_sync_organization)
            .service(lazy_sync_directory_user)
            .split_for_parts();
        let doc = web::Data::new(doc);
        app.app_data(doc)
            .route(crate::openapi::PATH, web::get().to(crate::openapi::serve))
            .default_service(web::to(not_found))
    })
    .workers(1)
    .disable_signals();
    let server = match tls {
        Some(files) => {
            let config = workos_sync_tls::serve(files).map_err(std::io::Error::other)?;
            server.bind_rustls_0_23(bind, config)?
        }
        None => {
            workos_sync_tls::ignore_hangup();
            server.bind(bind)?
        }
    };
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("bound to no address"))?;
    Ok((server.run(), addr))
}

/// What a lazy sync call is about.
#[derive(Clone, Copy)]
enum Target {
    User,
    Organization,
    DirectoryUser,
}

/// Lazy sync of one user: fetched from WorkOS now and applied.
#[utoipa::path(
    tag = "lazy sync",
    params(crate::openapi::ObjectId),
    security(("bearer" = [])),
    responses(crate::openapi::LazySyncAnswers)
)]
#[post("/v1/users/{id}/sync")]
async fn lazy_sync_user(
    req: HttpRequest,
    path: web::Path<crate::openapi::ObjectId>,
    state: web::Data<State>,
) -> HttpResponse {
    lazy_sync(req, path.into_inner().id, state, Target::User).await
}

/// Lazy sync of one directory user: fetched from WorkOS now and applied.
#[utoipa::path(
    tag = "lazy sync",
    params(crate::openapi::ObjectId),
    security(("bearer" = [])),
    responses(crate::openapi::LazySyncAnswers)
)]
#[post("/v1/directory_users/{id}/sync")]
async fn lazy_sync_directory_user(
    req: HttpRequest,
    path: web::Path<crate::openapi::ObjectId>,
    state: web::Data<State>,
) -> HttpResponse {
    lazy_sync(req, path.into_inner().id, state, Target::DirectoryUser).await
}

/// Lazy sync of one organization: fetched from WorkOS now and applied.
#[utoipa::path(
    tag = "lazy sync",
    params(crate::openapi::ObjectId),
    security(("bearer" = [])),
    responses(crate::openapi::LazySyncAnswers)
)]
#[post("/v1/organizations/{id}/sync")]
async fn lazy_sync_organization(
    req: HttpRequest,
    path: web::Path<crate::openapi::ObjectId>,
    state: web::Data<State>,
) -> HttpResponse {
    lazy_sync(req, path.into_inner().id, state, Target::Organization).await
}

async fn lazy_sync(
    req: HttpRequest,
    id: String,
    state: web::Data<State>,
    target: Target,
) -> HttpResponse {
    let started = Instant::now();
    let token = state.api_token.expose_secret();
    let entity = match target {
        Target::User => Entity::Users,
        Target::Organization => Entity::Organizations,
        Target::DirectoryUser => Entity::DirectoryUsers,
    };
    let mut coalesced = false;
    let answer = if token.is_empty() {
        Answer::error(
            404,
            "not_found",
            "lazy sync is disabled (no API token configured)",
            "disabled",
        )
    } else if !bearer_matches(&req, token) {
        Answer::error(
            401,
            "unauthorized",
            "missing or wrong bearer token",
            "unauthorized",
        )
    } else if let Err(e) = workos_sync_core::check_object_id(&id) {
        Answer::error(400, "invalid_id", &e.to_string(), "invalid_id")
    } else if !state.store.entities().contains(entity) {
        Answer::error(
            404,
            "not_found",
            &format!("{entity} are not synced (sync.entities)"),
            "disabled",
        )
    } else if let Some(api) = state.api.clone().filter(|a| a.has_key()) {
        let budget = Some(state.lazy_sync_timeout);
        let (store, key) = (state.store.clone(), id.clone());
        let (a, joined) = state
            .admission
            .call(entity, &id, move || async move {
                match target {
                    Target::User => {
                        lazy::answer(sync_user(&api, &store, &key, budget).await, "user")
                    }
                    Target::Organization => lazy::answer(
                        sync_organization(&api, &store, &key, budget).await,
                        "organization",
                    ),
                    Target::DirectoryUser => lazy::answer(
                        sync_directory_user(&api, &store, &key, budget).await,
                        "directory user",
                    ),
                }
            })
            .await;
        coalesced = joined;
        a
    } else {
        // Permanent until the worker is configured: not a 503, which callers retry.
        Answer::error(
            501,
            "workos_api_not_configured",
            "set WORKOS_API_KEY",
            "no_api_key",
        )
    };
    let outcome = answer.outcome;
    let resp = respond(answer);
    let status = resp.status().as_u16();
    metrics::counter!(workos_sync_core::metric::LAZY_SYNC_TOTAL, "outcome" => outcome, "entity" => entity.name()).increment(1);
    if coalesced {
        metrics::counter!(workos_sync_core::metric::LAZY_SYNC_COALESCED_TOTAL, "entity" => entity.name()).increment(1);
    }
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    // An id that cannot be a WorkOS id is caller input (control characters, newlines):
    // never written into the log line.
    let id = if workos_sync_core::check_object_id(&id).is_ok() {
        id
    } else {
        "<invalid>".to_owned()
    };
    match (target, status >= 500) {
        (Target::User, true) => {
            tracing::warn!(user.id = %id, outcome, status, duration_ms, "lazy sync failed")
        }
        (Target::User, false) => {
            tracing::info!(user.id = %id, outcome, status, duration_ms, "lazy sync")
        }
        (Target::Organization, true) => {
            tracing::warn!(organization.id = %id, outcome, status, duration_ms, "lazy sync failed")
        }
        (Target::Organization, false) => {
            tracing::info!(organization.id = %id, outcome, status, duration_ms, "lazy sync")
        }
        (Target::DirectoryUser, true) => {
            tracing::warn!(directory_user.id = %id, outcome, status, duration_ms, "lazy sync failed")
        }
        (Target::DirectoryUser, false) => {
            tracing::info!(directory_user.id = %id, outcome, status, duration_ms, "lazy sync")
        }
    }
    resp
}

/// The HTTP response of an [`Answer`].
fn respond(a: Answer) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(a.status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = HttpResponse::build(status).json(a.body);
    if let Some(secs) = a.retry_after
        && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn bearer_matches(req: &HttpRequest, token: &str) -> bool {
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// The process is up.
#[utoipa::path(tag = "probes", responses((status = 200, description = "Up", body = crate::openapi::Health)))]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The database answers and the broker connection is open.
#[utoipa::path(tag = "probes", responses(
    (status = 200, description = "Ready", body = crate::openapi::WorkerReady),
    (status = 503, description = "The database or the broker is not reachable", body = crate::openapi::WorkerReady),
))]
#[get("/readyz")]
async fn readyz(state: web::Data<State>) -> HttpResponse {
    let database = state.store.ping().await.is_ok();
    let broker = state.broker.is_ready().await;
    let body = serde_json::json!({
        "status": if database && broker { "ready" } else { "unavailable" },
        "database": database,
        "broker": broker,
    });
    if database && broker {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(tag = "probes", responses(
    (status = 200, description = "Metrics", body = String, content_type = "text/plain"),
))]
#[get("/metrics")]
async fn metrics_endpoint() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(workos_sync_core::metrics_setup::render())
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .json(serde_json::json!({"error": "not_found", "message": "no such path"}))
}
