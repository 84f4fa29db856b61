//! The ceiling of the receiver's stack: a bare relay on the same parts, actix-web with
//! one HTTP worker and the same supervised lapin publisher, that publishes the raw body
//! to the events exchange (`mandatory`, persistent, publisher confirm awaited) and
//! answers 200, verifying and parsing nothing, logging nothing. What the receiver costs
//! beyond it (signature, header parsing, the envelope read, the bounded body read,
//! metrics, its log line) is `scripts/bench-ingress.sh`'s receiver / relay ratio.
//!
//! Usage: `bare-relay ADDR PREFIX` (AMQP_URL from the environment).

use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use workos_sync_queue::{Broker, BrokerConfig, Outgoing, event_properties};

struct Relay {
    broker: Broker,
    exchange: String,
}

async fn relay(body: web::Bytes, state: web::Data<Relay>) -> HttpResponse {
    let msg = Outgoing {
        exchange: &state.exchange,
        routing_key: "user.updated",
        body: &body,
        properties: event_properties("relay", "user.updated", 0, false),
    };
    match state.broker.publish(msg, Duration::from_secs(5)).await {
        Ok(()) => HttpResponse::Ok().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:18082".into());
    let prefix = args.next().unwrap_or_else(|| "wst-relay".into());
    let env = [("WORKOS_SYNC__AMQP__PREFIX", prefix.as_str())];
    let settings = workos_sync_testkit::test_settings(&prefix, &env)?;
    let broker = Broker::start(BrokerConfig::from_settings(&settings.amqp, "bare-relay"));
    anyhow::ensure!(
        broker.wait_connected(Duration::from_secs(15)).await,
        "broker not reachable"
    );
    let state = web::Data::new(Relay {
        exchange: broker.topology().events_exchange(),
        broker: broker.clone(),
    });
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .route("/api/webhooks/workos", web::post().to(relay))
    })
    .workers(1)
    .bind(bind)?
    .run()
    .await?;
    broker.close().await;
    Ok(())
}
