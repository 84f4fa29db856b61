//! The webhook receiver: HTTP ingress only (no database).
//!
//! `POST {path}`: allowlist → Content-Encoding → declared size → signature header
//! (present, well-formed, fresh) → body read within the in-flight body budget →
//! signature over the raw bytes → envelope decode → persistent publish with a confirm →
//! 200. Each refusal is an [`IngressError`] with its status code, JSON body, one log
//! line and a metric. A 200 is given only after RabbitMQ confirmed a routed, persistent
//! publish (invariant 1).
//!
//! Memory before authentication is bounded: everything that can be refused from the
//! headers is refused before a byte of the body is read, and the bodies of all requests
//! together may hold at most `receiver.max_inflight_body_bytes` (a request that would
//! go over gets a prompt 503 with `Retry-After`, never a wait); connections per HTTP
//! worker are capped by `receiver.max_connections` (one accepted past the cap gets a
//! prompt 503 and a close: `connections`).
//!
//! actix-web is built without default features, so request bodies are never
//! decompressed: the HMAC is checked over the bytes on the wire, and an encoded body is
//! refused with 415.

pub mod answer;
pub mod client_ip;
pub mod connections;
pub mod error;
pub mod openapi;

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use actix_web::{
    App, HttpRequest, HttpResponse, HttpServer,
    dev::Server,
    get,
    http::{
        Method,
        header::{self, HeaderName, HeaderValue},
    },
    web::{self, Bytes, BytesMut},
};
use futures_util::{FutureExt, StreamExt};
use utoipa_actix_web::AppExt;
use workos_sync_core::{Envelope, Settings, now_ms, signature};
use workos_sync_queue::{Broker, Outgoing, event_properties};

pub use client_ip::IpPolicy;
pub use error::IngressError;

/// Largest body that may use the whole in-flight budget; larger ones (and bodies of
/// unknown length) leave 1/[`SMALL_BODY_SHARE`] of it to small ones. WorkOS events are
/// a few KiB.
const SMALL_BODY: usize = 64 * 1024;
const SMALL_BODY_SHARE: usize = 4;

/// Time allowed for the whole body to arrive once headers are in.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a request handler needs; shared by all HTTP workers.
pub struct AppState {
    pub broker: Broker,
    /// The events exchange, named once rather than formatted on every request.
    pub exchange: String,
    pub secrets: signature::Secrets,
    pub tolerance: Duration,
    pub max_body_bytes: usize,
    /// Body bytes held by all requests together, in permits of one byte.
    pub body_budget: Arc<tokio::sync::Semaphore>,
    /// The part of the budget that bodies over [`SMALL_BODY`] (or of unknown length) may
    /// use: the rest stays free for small bodies, which real webhooks are, so a flood
    /// of large ones cannot crowd them out.
    pub large_body_budget: Arc<tokio::sync::Semaphore>,
    pub confirm_timeout: Duration,
    pub ip_policy: IpPolicy,
    /// The accepted path's metrics, looked up once (a lookup per request cost 120 ns of
    /// the 150 it took, `ingress-pieces`).
    accepted: metrics::Counter,
    duration: metrics::Histogram,
}

impl AppState {
    pub fn from_settings(settings: &Settings, broker: Broker) -> Self {
        Self {
            exchange: broker.topology().events_exchange(),
            broker,
            secrets: signature::Secrets::new(&settings.webhook_secrets()),
            tolerance: settings.receiver.tolerance(),
            max_body_bytes: settings.receiver.max_body_bytes,
            body_budget: Arc::new(tokio::sync::Semaphore::new(
                settings.receiver.max_inflight_body_bytes,
            )),
            large_body_budget: Arc::new(tokio::sync::Semaphore::new(
                settings.receiver.max_inflight_body_bytes
                    - settings.receiver.max_inflight_body_bytes / SMALL_BODY_SHARE,
            )),
            confirm_timeout: settings.receiver.confirm_timeout(),
            ip_policy: IpPolicy {
                allowed: settings.receiver.allowed_ips.clone(),
                trusted_proxies: settings.receiver.trusted_proxies.clone(),
            },
            accepted: metrics::counter!(
                workos_sync_core::metric::WEBHOOKS_TOTAL, "outcome" => "accepted"
            ),
            duration: metrics::histogram!(workos_sync_core::metric::WEBHOOK_DURATION_SECONDS),
        }
    }
}

/// Builds the HTTP server bound to `receiver.bind` (port 0 allowed), HTTPS when
/// `receiver.tls_cert` and `tls_key` are set (reloaded on SIGHUP or change:
/// `workos_sync_tls`). Returns the server future (to spawn or await) and the bound
/// address. Call it on a tokio runtime (the certificate reloader runs there).
pub fn build_server(settings: &Settings, broker: Broker) -> std::io::Result<(Server, SocketAddr)> {
    // Install the recorder before the first request so no count is lost (and before the
    // state takes its metric handles, which belong to the recorder installed then).
    let _ = workos_sync_core::metrics_setup::prometheus();
    let state = web::Data::new(AppState::from_settings(settings, broker));
    let path: Arc<str> = settings.receiver.path.clone().into();
    let workers = match settings.receiver.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let counter = connections::Counter::new(settings.receiver.max_connections, workers);
    let server = HttpServer::new(move || {
        // The probes are registered from their handlers, whose `#[utoipa::path]`
        // documents them; the webhook's path is the configured one (`openapi`).
        let (app, doc) = App::new()
            .into_utoipa_app()
            .openapi(openapi::document(&path))
            .app_data(state.clone())
            .service(healthz)
            .service(readyz)
            .service(metrics_endpoint)
            .split_for_parts();
        app.app_data(web::Data::new(doc))
            .service(web::resource(&*path).to(webhook))
            .route(openapi::PATH, web::get().to(openapi::serve))
            .default_service(web::to(not_found))
    })
    .workers(workers)
    .on_connect(move |io, data| counter.connected(io, data))
    .max_connections(connections::accept_limit(settings.receiver.max_connections))
    // Headers must arrive within 5 s (slowloris guard); the body has BODY_TIMEOUT.
    .client_request_timeout(Duration::from_secs(5))
    .shutdown_timeout(settings.receiver.shutdown_timeout_secs);
    let bind = settings.receiver.bind.as_str();
    let server = match settings.receiver_tls().map_err(std::io::Error::other)? {
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
        .ok_or_else(|| std::io::Error::other("server bound to no address"))?;
    Ok((server.run(), addr))
}

/// The signature header, named once: a lookup by `&str` parsed the name and allocated a
/// copy of it on every request.
const WORKOS_SIGNATURE: HeaderName = HeaderName::from_static("workos-signature");

/// The webhook path's handler, for every method: a method guard on the route allocated
/// per request (it records the methods it saw, for the 405), so the method is checked
/// here and anything but POST gets that 405.
async fn webhook(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    if req.method() != Method::POST {
        return method_not_allowed();
    }
    let started = Instant::now();
    let refused = |err: IngressError, env: Option<&Envelope<'_>>| refuse(&state, started, err, env);
    if connections::over_cap(&req) {
        return refused(IngressError::TooManyConnections, None);
    }
    let admitted = match admit(&req, &state) {
        Ok(a) => a,
        Err(e) => return refused(e, None),
    };
    // `_held` keeps the body's share of the budget until the request is answered.
    let (body, _held) = match read_body(payload, admitted.declared, &state).await {
        Ok(b) => b,
        Err(e) => return refused(e, None),
    };
    let env = match open(&admitted.header, &body, &state) {
        Ok(env) => env,
        Err(e) => return refused(e, None),
    };
    let msg = Outgoing {
        exchange: &state.exchange,
        routing_key: &env.event_type,
        body: &body,
        properties: event_properties(&env.id, &env.event_type, now_ms(), env.id_from_hash),
    };
    match state.broker.publish(msg, state.confirm_timeout).await {
        Ok(()) => accepted(&state, started, &env),
        Err(e) => refused(e.into(), Some(&env)),
    }
}

/// A stored webhook's 200, metric and (debug) line.
fn accepted(state: &AppState, started: Instant, env: &Envelope<'_>) -> HttpResponse {
    let elapsed = started.elapsed().as_secs_f64();
    state.duration.record(elapsed);
    state.accepted.increment(1);
    // At debug, not info: the line cost 1.5 µs of the receiver's ~3 µs of work per
    // request beyond a bare relay (`ingress-pieces`); accepted webhooks are counted in
    // workos_sync_webhooks_total{outcome="accepted"}, and every refusal still logs a
    // line at warn or error.
    tracing::debug!(
        event.id = %env.id,
        event.r#type = %env.event_type,
        outcome = "accepted",
        duration_ms = elapsed * 1000.0,
        "webhook accepted"
    );
    HttpResponse::Ok()
        // A static value: `ContentType::json()` formatted and copied it per request.
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ))
        .body(answer::accepted_body(&env.id))
}

/// A refused webhook's answer, metric and log line (with the event's id and type once
/// the body was read).
fn refuse(
    state: &AppState,
    started: Instant,
    err: IngressError,
    env: Option<&Envelope<'_>>,
) -> HttpResponse {
    let elapsed = started.elapsed().as_secs_f64();
    let duration_ms = elapsed * 1000.0;
    state.duration.record(elapsed);
    let reason = err.reason();
    metrics::counter!(workos_sync_core::metric::WEBHOOKS_TOTAL, "outcome" => reason).increment(1);
    let status = err.status().as_u16();
    let (id, ty) = env.map_or(("", ""), |e| (&*e.id, &*e.event_type));
    if status >= 500 && !matches!(err, IngressError::Busy | IngressError::TooManyConnections) {
        tracing::error!(event.id = %id, event.r#type = %ty, outcome = reason, status, duration_ms, error = %err, "webhook not stored");
    } else {
        tracing::warn!(event.id = %id, event.r#type = %ty, outcome = reason, status, duration_ms, error = %err, "webhook refused");
    }
    err.response()
}

/// What the headers alone decide: the source address, the encoding, the declared size
/// and everything the signature header can refuse, all before a byte of the body is read.
struct Admitted<'r> {
    declared: Option<usize>,
    header: signature::SignatureHeader<'r>,
}

fn admit<'r>(req: &'r HttpRequest, state: &AppState) -> Result<Admitted<'r>, IngressError> {
    // Every X-Forwarded-For line is part of one chain (RFC 7230 §3.2.2: repeated
    // fields combine in order): a proxy that appends its own line must not leave the
    // client's first line as the only one read. A line that is not text poisons the
    // chain (the policy then stops at the peer).
    let forwarded: Option<String> = if state.ip_policy.is_enabled() {
        let lines: Option<Vec<&str>> = req
            .headers()
            .get_all(header::X_FORWARDED_FOR)
            .map(|v| v.to_str().ok())
            .collect();
        match lines {
            Some(l) if l.is_empty() => None,
            Some(l) => Some(l.join(",")),
            None => Some("unreadable".to_owned()),
        }
    } else {
        None
    };
    state
        .ip_policy
        .check(req.peer_addr().map(|a| a.ip()), forwarded.as_deref())
        .map_err(IngressError::Forbidden)?;

    for value in req.headers().get_all(header::CONTENT_ENCODING) {
        let v = value.to_str().unwrap_or("?").trim();
        if !v.is_empty() && !v.eq_ignore_ascii_case("identity") {
            return Err(IngressError::Encoded(v.chars().take(40).collect()));
        }
    }

    let declared = declared_length(req)?;
    if declared.is_some_and(|n| n > state.max_body_bytes) {
        return Err(IngressError::TooLarge {
            limit: state.max_body_bytes,
        });
    }

    let sig = match req.headers().get(WORKOS_SIGNATURE) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            IngressError::Signature(workos_sync_core::SignatureError::MalformedHeader(
                "not ASCII",
            ))
        })?),
    };
    let header = signature::precheck(sig, &state.secrets, now_ms(), state.tolerance)?;
    Ok(Admitted { declared, header })
}

/// The signature over the raw bytes, then the envelope (id and type) from them.
fn open<'b>(
    header: &signature::SignatureHeader<'_>,
    body: &'b [u8],
    state: &AppState,
) -> Result<Envelope<'b>, IngressError> {
    signature::verify_body(header, body, &state.secrets)?;
    Ok(Envelope::decode(body)?)
}

/// The request's `Content-Length`, if it declares one; an unreadable one is refused.
fn declared_length(req: &HttpRequest) -> Result<Option<usize>, IngressError> {
    match req.headers().get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .map(Some)
            .ok_or_else(|| IngressError::BodyRead("unreadable Content-Length".into())),
    }
}

/// A body's share of the in-flight budget, given back when dropped: its bytes in the
/// whole budget, and also in the large bodies' part when it is large (over
/// [`SMALL_BODY`], or of unknown length).
struct Held {
    large: bool,
    /// Bytes held so far.
    bytes: usize,
    all: Option<tokio::sync::OwnedSemaphorePermit>,
    large_part: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Held {
    fn new(declared: Option<usize>) -> Self {
        Self {
            large: declared.is_none_or(|n| n > SMALL_BODY),
            bytes: 0,
            all: None,
            large_part: None,
        }
    }

    /// Holds `total` bytes in all, taking what is missing, or fails at once.
    fn hold(&mut self, state: &AppState, total: usize) -> Result<(), IngressError> {
        let more = total.saturating_sub(self.bytes);
        if more == 0 {
            return Ok(());
        }
        if self.large {
            take(&state.large_body_budget, &mut self.large_part, more)?;
        }
        take(&state.body_budget, &mut self.all, more)?;
        self.bytes = total;
        Ok(())
    }
}

/// Takes `n` bytes of `budget` into `held`, or fails at once.
fn take(
    budget: &Arc<tokio::sync::Semaphore>,
    held: &mut Option<tokio::sync::OwnedSemaphorePermit>,
    n: usize,
) -> Result<(), IngressError> {
    let n = u32::try_from(n).map_err(|_| IngressError::Busy)?;
    let permit = budget
        .clone()
        .try_acquire_many_owned(n)
        .map_err(|_| IngressError::Busy)?;
    match held {
        Some(h) => h.merge(permit),
        None => *held = Some(permit),
    }
    Ok(())
}

/// Reads the raw body up to `max_body_bytes` within [`BODY_TIMEOUT`], holding its size
/// in the in-flight body budget: all of a declared length up front, chunk by chunk
/// otherwise. Returns the body and its share of the budget.
async fn read_body(
    mut payload: web::Payload,
    declared: Option<usize>,
    state: &AppState,
) -> Result<(Bytes, Held), IngressError> {
    let limit = state.max_body_bytes;
    let mut held = Held::new(declared);
    held.hold(state, declared.unwrap_or(0))?;
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(4096).min(limit));
    let mut add = |chunk: Result<Bytes, actix_web::error::PayloadError>,
                   buf: &mut BytesMut|
     -> Result<(), IngressError> {
        let chunk = chunk.map_err(|e| IngressError::BodyRead(e.to_string()))?;
        if buf.len() + chunk.len() > limit {
            return Err(IngressError::TooLarge { limit });
        }
        // No declared length (chunked): account for what arrives.
        held.hold(state, buf.len() + chunk.len())?;
        buf.extend_from_slice(&chunk);
        Ok(())
    };
    // A webhook's body has usually arrived with its headers: take what is buffered
    // without arming a timer, and give only a body still on its way BODY_TIMEOUT.
    loop {
        match payload.next().now_or_never() {
            Some(Some(chunk)) => add(chunk, &mut buf)?,
            Some(None) => return Ok((buf.freeze(), held)),
            None => break,
        }
    }
    let read = async {
        while let Some(chunk) = payload.next().await {
            add(chunk, &mut buf)?;
        }
        Ok::<_, IngressError>(())
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| IngressError::BodyTimeout)??;
    Ok((buf.freeze(), held))
}

/// The process is up.
#[utoipa::path(tag = "probes", responses((status = 200, description = "Up", body = openapi::Health)))]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The broker connection is open (webhooks can be stored).
#[utoipa::path(tag = "probes", responses(
    (status = 200, description = "Ready", body = openapi::ReceiverReady),
    (status = 503, description = "The broker is not reachable", body = openapi::ReceiverReady),
))]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.broker.is_ready().await {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready", "broker": true}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "unavailable", "broker": false}))
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

fn method_not_allowed() -> HttpResponse {
    metrics::counter!(workos_sync_core::metric::WEBHOOKS_TOTAL, "outcome" => "method_not_allowed")
        .increment(1);
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .json(serde_json::json!({"error": "method_not_allowed", "message": "use POST"}))
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .json(serde_json::json!({"error": "not_found", "message": "no such path"}))
}

/// Runs the receiver until SIGTERM/SIGINT: starts the broker supervisor, serves, then
/// closes the broker connection after in-flight requests finished.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    settings.validate_receiver()?;
    // The recorder first: the broker takes its metric handles from it.
    let _ = workos_sync_core::metrics_setup::prometheus();
    let broker = Broker::start(workos_sync_queue::BrokerConfig::from_settings(
        &settings.amqp,
        "workos-sync-receiver",
    ));
    if !broker.wait_connected(Duration::from_secs(10)).await {
        tracing::warn!("broker not reachable yet; serving 503 until it is");
    }
    let (server, addr) = build_server(&settings, broker.clone())?;
    tracing::info!(%addr, path = %settings.receiver.path, "receiver listening");
    // actix-server handles SIGTERM (graceful: in-flight requests finish) and SIGINT.
    server.await?;
    broker.close().await;
    tracing::info!("receiver stopped");
    Ok(())
}
