//! The worker's HTTP port: `/healthz` (process up), `/readyz` (database answers and the
//! broker connection is open; 503 otherwise, with which one failed), `/metrics`.

use std::net::SocketAddr;

use actix_web::{App, HttpResponse, HttpServer, dev::Server, web};
use workos_sync_queue::Broker;
use workos_sync_store::Store;

struct State {
    broker: Broker,
    store: Store,
}

pub fn build(bind: &str, broker: Broker, store: Store) -> std::io::Result<(Server, SocketAddr)> {
    let state = web::Data::new(State { broker, store });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics_endpoint))
            .default_service(web::to(not_found))
    })
    .workers(1)
    .disable_signals()
    .bind(bind)?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("bound to no address"))?;
    Ok((server.run(), addr))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

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

async fn metrics_endpoint() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(workos_sync_core::metrics_setup::render())
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .json(serde_json::json!({"error": "not_found", "message": "no such path"}))
}
