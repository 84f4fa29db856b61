//! Baseline HTTP server for the receiver benchmark: actix-web, reads the body, answers
//! 200 with a small JSON body, nothing else. Shows what the HTTP stack and the load
//! generator alone cost on this machine.

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    HttpServer::new(|| {
        App::new().route(
            "/api/webhooks/workos",
            web::post().to(|body: web::Bytes| async move {
                HttpResponse::Ok()
                    .json(serde_json::json!({"status": "accepted", "len": body.len()}))
            }),
        )
    })
    .bind(bind)?
    .run()
    .await
}
