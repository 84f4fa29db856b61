//! The broker connection and the confirmed publisher.
//!
//! A supervisor task owns the AMQP connection: it connects, declares the topology on a
//! channel of its own, opens a publishing channel in confirm mode and publishes it to
//! callers. When the connection or channel dies (I/O error, broker restart, a channel
//! closed by an error, repeated confirm timeouts) it drops them and reconnects with
//! exponential backoff, without restarting the process. We do not rely on lapin's
//! auto-recovery: it is best effort (confirms in flight were never failed, and
//! `wait_for_recovery` was seen to hang), while a fresh connection is deterministic.
//!
//! A cluster is a list of node URLs: each connect round tries them in order, starting
//! with the one after the node whose connection was lost (a node that just dropped us is
//! the least likely to answer), and takes the first that answers; backoff only after a
//! round in which none did.
//!
//! Failure model of [`Broker::publish`]: it succeeds only on a publisher confirm `Ack`
//! without a `basic.return` (the message is persisted in a queue). Everything else is a
//! distinct [`PublishError`]: no connection, nack, returned (unroutable), timeout,
//! connection lost. Callers map all of them to "not stored" (the receiver answers 503).

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    types::ShortString,
};
use tokio::sync::{Notify, RwLock};
use tokio_util::sync::CancellationToken;

use crate::{QueueError, topology::Topology};

/// How many publishes in a row without a confirm (timed out, or nacked) make us replace a
/// connection that still claims to be up. Timeouts: a half-open TCP connection is only
/// noticed by heartbeats otherwise. Nacks: on RabbitMQ 3.10 a channel whose first publish
/// to a quorum queue came while the queue's leader node had just died keeps nacking
/// every publish to it until that node is back (seen on the three-node test cluster:
/// 20 of 20 nacked on that channel, 20 of 20 confirmed on a fresh one a moment later),
/// so the channel is replaced rather than trusted.
const MAX_CONSECUTIVE_UNCONFIRMED: u32 = 3;

/// Why a publish did not result in a stored message.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("broker unavailable: no open connection")]
    Unavailable,
    #[error("broker refused the message (nack)")]
    Nacked,
    #[error("message was unroutable and returned ({code} {text})")]
    Returned { code: u16, text: String },
    #[error("no publisher confirm within {0:?}")]
    Timeout(Duration),
    #[error("connection lost while publishing: {0}")]
    ConnectionLost(#[from] lapin::Error),
    #[error("channel is not in confirm mode")]
    NotConfirmed,
    /// An exchange or routing key longer than an AMQP short string (255 bytes): refused
    /// here, before lapin would panic building the frame.
    #[error("{0} is longer than 255 bytes")]
    TooLong(&'static str),
}

impl PublishError {
    /// Stable label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::Nacked => "nacked",
            Self::Returned { .. } => "returned",
            Self::Timeout(_) => "timeout",
            Self::TooLong(_) => "too_long",
            Self::ConnectionLost(_) => "connection_lost",
            Self::NotConfirmed => "not_confirmed",
        }
    }
}

/// Connection parameters for [`Broker::start`].
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The nodes, in order of preference (at least one).
    pub urls: Vec<String>,
    pub topology: Topology,
    pub connection_name: String,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub connect_timeout: Duration,
}

impl BrokerConfig {
    pub fn from_settings(s: &workos_sync_core::settings::AmqpSettings, name: &str) -> Self {
        use secrecy::ExposeSecret;
        Self {
            urls: s
                .url
                .iter()
                .map(|u| with_frame_max(u.expose_secret(), s.frame_max))
                .collect(),
            topology: Topology::from_settings(s),
            connection_name: name.to_owned(),
            reconnect_min: Duration::from_millis(s.reconnect_min_ms),
            reconnect_max: Duration::from_millis(s.reconnect_max_ms),
            connect_timeout: Duration::from_millis(s.connect_timeout_ms),
        }
    }
}

/// `url` asking for `frame_max` (AMQP URI query parameter), unless it names one already
/// or `frame_max` is 0 (the broker's choice).
pub fn with_frame_max(url: &str, frame_max: u32) -> String {
    if frame_max == 0 || url.contains("frame_max=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}frame_max={frame_max}")
}

/// One live connection with its confirm-mode publishing channel.
#[derive(Clone)]
pub struct Live {
    pub connection: Arc<Connection>,
    pub channel: Channel,
    pub generation: u64,
}

impl Live {
    fn healthy(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

struct Inner {
    config: BrokerConfig,
    live: RwLock<Option<Live>>,
    wake: Notify,
    connected: Notify,
    shutdown: CancellationToken,
    consecutive_unconfirmed: AtomicU32,
    generation: AtomicU64,
    /// The confirm-latency histogram, looked up at the first publish (by then every
    /// binary has installed its recorder) instead of on each one: the lookup hashed the
    /// name and allocated its key per publish.
    confirm_seconds: OnceLock<metrics::Histogram>,
}

/// A handle to the supervised broker connection. Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

/// A message to publish.
pub struct Outgoing<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub body: &'a [u8],
    pub properties: BasicProperties,
}

impl Broker {
    /// Starts the supervisor; returns at once. Use [`Broker::wait_connected`] to wait for
    /// the first connection.
    pub fn start(config: BrokerConfig) -> Self {
        let inner = Arc::new(Inner {
            config,
            live: RwLock::new(None),
            wake: Notify::new(),
            connected: Notify::new(),
            shutdown: CancellationToken::new(),
            consecutive_unconfirmed: AtomicU32::new(0),
            generation: AtomicU64::new(0),
            confirm_seconds: OnceLock::new(),
        });
        tokio::spawn(supervise(inner.clone()));
        Self { inner }
    }

    pub fn topology(&self) -> &Topology {
        &self.inner.config.topology
    }

    /// The current connection, if one is open.
    pub async fn live(&self) -> Option<Live> {
        self.inner.live.read().await.clone()
    }

    /// True when a connection and its publishing channel are open.
    pub async fn is_ready(&self) -> bool {
        self.inner
            .live
            .read()
            .await
            .as_ref()
            .is_some_and(Live::healthy)
    }

    /// Waits until a connection is open or `timeout` passes.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.inner.connected.notified();
            if self.is_ready().await {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }

    /// Asks the supervisor to check the connection now (after an error seen elsewhere).
    pub fn report_failure(&self) {
        self.inner.wake.notify_one();
    }

    /// Publishes persistently with `mandatory` and waits for the confirm, all within
    /// `timeout`. Ok only for `Ack` without a return.
    pub async fn publish(&self, msg: Outgoing<'_>, timeout: Duration) -> Result<(), PublishError> {
        let started = Instant::now();
        let channel = match self.inner.live.read().await.as_ref() {
            Some(live) if live.healthy() => live.channel.clone(),
            _ => return Err(PublishError::Unavailable),
        };
        let result = self.publish_on(&channel, msg, timeout).await;
        match &result {
            Ok(()) => {
                self.inner
                    .consecutive_unconfirmed
                    .store(0, Ordering::Relaxed);
            }
            Err(PublishError::Timeout(_) | PublishError::Nacked) => {
                let n = self
                    .inner
                    .consecutive_unconfirmed
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                if n >= MAX_CONSECUTIVE_UNCONFIRMED {
                    self.inner.wake.notify_one();
                }
            }
            Err(PublishError::ConnectionLost(_)) => self.inner.wake.notify_one(),
            Err(_) => {}
        }
        self.inner
            .confirm_seconds
            .get_or_init(|| metrics::histogram!(workos_sync_core::metric::PUBLISH_CONFIRM_SECONDS))
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn publish_on(
        &self,
        channel: &Channel,
        msg: Outgoing<'_>,
        timeout: Duration,
    ) -> Result<(), PublishError> {
        let exchange =
            ShortString::try_new(msg.exchange).map_err(|_| PublishError::TooLong("exchange"))?;
        let routing_key = ShortString::try_new(msg.routing_key)
            .map_err(|_| PublishError::TooLong("routing key"))?;
        let fut = async {
            let confirm = channel
                .basic_publish(
                    exchange,
                    routing_key,
                    // mandatory: an unroutable message comes back as a return instead of
                    // being acked and silently dropped.
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    msg.body,
                    // delivery_mode 2 = persistent (written to disk before the confirm).
                    msg.properties.with_delivery_mode(2),
                )
                .await?;
            confirm.await
        };
        match tokio::time::timeout(timeout, fut).await {
            Err(_) => Err(PublishError::Timeout(timeout)),
            Ok(Err(e)) => Err(PublishError::ConnectionLost(e)),
            Ok(Ok(Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(Confirmation::Ack(Some(ret)))) => Err(PublishError::Returned {
                code: ret.reply_code,
                text: ret.reply_text.to_string(),
            }),
            Ok(Ok(Confirmation::Nack(_))) => Err(PublishError::Nacked),
            Ok(Ok(Confirmation::NotRequested)) => Err(PublishError::NotConfirmed),
        }
    }

    /// Stops the supervisor and closes the connection cleanly.
    pub async fn close(&self) {
        self.inner.shutdown.cancel();
        if let Some(live) = self.inner.live.write().await.take() {
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                live.connection.close(200, "shutdown".into()),
            )
            .await;
        }
    }
}

async fn connect_once(inner: &Inner, url: &str) -> Result<Live, QueueError> {
    let cfg = &inner.config;
    let props =
        ConnectionProperties::default().with_connection_name(cfg.connection_name.clone().into());
    let uri = parse_url(url)?;
    let connection = Connection::connect_uri(uri, props).await?;
    // On channels of its own: a failed declaration closes its channel.
    cfg.topology.declare(&connection).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let generation = inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
    Ok(Live {
        connection: Arc::new(connection),
        channel,
        generation,
    })
}

async fn supervise(inner: Arc<Inner>) {
    let mut backoff = workos_sync_core::backoff::Backoff::new(
        inner.config.reconnect_min,
        inner.config.reconnect_max,
    );
    // The node the next round starts with.
    let mut first = 0;
    // The last connection was replaced for unconfirmed publishes while it was up: the
    // backoff keeps growing across such replacements (a cluster without a quorum nacks
    // everything; that must not become a reconnect loop at full speed).
    let mut replaced_unconfirmed = false;
    loop {
        if inner.shutdown.is_cancelled() {
            return;
        }
        let Some((node, live)) = connect_round(&inner, first).await else {
            let wait = backoff.next_delay();
            tracing::warn!(
                backoff_ms = wait.as_millis() as u64,
                nodes = inner.config.urls.len(),
                "no broker node answered"
            );
            if sleep_or_shutdown(&inner, wait).await {
                return;
            }
            continue;
        };
        first = (node + 1) % inner.config.urls.len().max(1);
        if !replaced_unconfirmed {
            backoff.reset();
        }
        inner.consecutive_unconfirmed.store(0, Ordering::Relaxed);
        tracing::info!(
            generation = live.generation,
            broker.node = %node_label(&inner.config.urls[node]),
            "broker connected"
        );
        metrics::counter!(workos_sync_core::metric::AMQP_CONNECTS_TOTAL).increment(1);
        metrics::gauge!(workos_sync_core::metric::AMQP_CONNECTED).set(1.0);
        *inner.live.write().await = Some(live.clone());
        inner.connected.notify_waiters();

        // Forward connection errors to the wake-up signal.
        let errors_done = CancellationToken::new();
        {
            let inner = inner.clone();
            let done = errors_done.clone();
            let mut events = live.connection.events_listener();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = done.cancelled() => return,
                        ev = events.next() => match ev {
                            Some(lapin::Event::Error(e)) => {
                                tracing::warn!(error = %e, "broker connection error");
                                inner.wake.notify_one();
                            }
                            Some(_) => {}
                            None => return,
                        }
                    }
                }
            });
        }

        // Watch until unhealthy.
        loop {
            tokio::select! {
                () = inner.shutdown.cancelled() => {
                    errors_done.cancel();
                    return;
                }
                () = inner.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            let unconfirmed = inner.consecutive_unconfirmed.load(Ordering::Relaxed);
            let healthy = live.healthy();
            if !healthy || unconfirmed >= MAX_CONSECUTIVE_UNCONFIRMED {
                replaced_unconfirmed = healthy;
                tracing::warn!(
                    connection_up = live.connection.status().connected(),
                    channel_up = live.channel.status().connected(),
                    unconfirmed_publishes = unconfirmed,
                    "broker connection unusable; reconnecting"
                );
                break;
            }
        }
        errors_done.cancel();
        metrics::gauge!(workos_sync_core::metric::AMQP_CONNECTED).set(0.0);
        {
            let mut guard = inner.live.write().await;
            if guard.as_ref().map(|l| l.generation) == Some(live.generation) {
                *guard = None;
            }
        }
        // Best effort: a dead socket cannot be closed politely.
        let conn = live.connection.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                conn.close(320, "reconnecting".into()),
            )
            .await;
        });
        let wait = if replaced_unconfirmed {
            backoff.next_delay()
        } else {
            inner.config.reconnect_min
        };
        if sleep_or_shutdown(&inner, wait).await {
            return;
        }
    }
}

/// Tries every node once, starting with `first`; the index and connection of the first
/// that answers.
async fn connect_round(inner: &Inner, first: usize) -> Option<(usize, Live)> {
    let urls = &inner.config.urls;
    for i in (0..urls.len()).map(|k| (first + k) % urls.len()) {
        if inner.shutdown.is_cancelled() {
            return None;
        }
        let node = node_label(&urls[i]);
        let attempt =
            tokio::time::timeout(inner.config.connect_timeout, connect_once(inner, &urls[i])).await;
        match attempt {
            Ok(Ok(live)) => return Some((i, live)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, broker.node = %node, "broker connect failed");
            }
            Err(_) => tracing::warn!(broker.node = %node, "broker connect timed out"),
        }
        metrics::counter!(workos_sync_core::metric::AMQP_CONNECT_FAILURES_TOTAL).increment(1);
    }
    None
}

/// `host:port` of an AMQP URL, for logs (never the credentials).
pub fn node_label(url: &str) -> String {
    match parse_url(url) {
        Ok(u) => format!("{}:{}", u.authority.host, u.authority.port),
        Err(_) => "<invalid url>".to_owned(),
    }
}

/// Parses an AMQP URL. lapin's parser quotes the whole URL, password included, in its
/// errors, and it is lenient (`amqp:/user:pw@host` parses as a vhost named after the
/// credentials, which the broker then echoes back): so the URL is first read by
/// `url::Url`, which must find an `amqp` or `amqps` URL with a host, and an error never
/// quotes lapin's text, only [`redacted`] and a reason.
pub(crate) fn parse_url(url: &str) -> Result<lapin::uri::AMQPUri, QueueError> {
    let bad = |why: &str| QueueError::BadUrl(format!("{} ({why})", redacted(url)));
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "amqp" | "amqps") {
        return Err(bad("the scheme must be amqp or amqps"));
    }
    if !parsed.has_host() || parsed.host_str().is_some_and(str::is_empty) {
        return Err(bad("no host"));
    }
    url.parse::<lapin::uri::AMQPUri>()
        .map_err(|e| bad(&without(&e, url)))
}

/// `url` fit for a log line or an error: its password replaced by `***`; a URL that
/// `url::Url` cannot read is not shown at all (no part of it can be told safe).
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.has_host() => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        _ => "<unreadable URL>".to_owned(),
    }
}

/// lapin's reason for refusing `url`, with no part of the URL in it: a reason that
/// quotes it (with the frame size we add, or decoded) is dropped whole.
fn without(text: &str, url: &str) -> String {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    if text.contains('@') || host.is_some_and(|h| text.contains(&h)) {
        "not a valid AMQP URI".to_owned()
    } else {
        text.to_owned()
    }
}

/// Sleeps for `d`; returns true when shutdown was requested meanwhile.
async fn sleep_or_shutdown(inner: &Inner, d: Duration) -> bool {
    tokio::select! {
        () = inner.shutdown.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_url, with_frame_max};

    #[test]
    fn a_malformed_url_never_shows_its_password() {
        for url in [
            "amqp://user:pw_supersecret@host:notaport/%2f",
            "amqq://user:pw_supersecret@host/%2f",
            "amqp://user:pw_supersecret@/%2f?frame_max=abc",
            "amqp://user:pw_supersecret@host/%2f?heartbeat=abc",
            // No scheme, or a slash short: lapin quotes the first and reads the second
            // as a vhost named after the credentials.
            "user:pw_supersecret@host:5672",
            "amqp:/user:pw_supersecret@host:5672/%2f",
            "amqp://user:pw_super%73ecret@host:x/%2f",
            "amqp://user:pw_supersecret@[::1:5672/%2f",
        ] {
            let err = parse_url(url)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.starts_with("invalid AMQP URL"), "{url}: {err}");
            assert!(!err.contains("supersecret"), "{err}");
        }
        assert!(parse_url("amqp://user:pw@host:5672/%2f").is_ok());
        assert!(parse_url("amqps://user:pw@host/%2f?heartbeat=10").is_ok());
        assert_eq!(
            super::redacted("amqp://user:pw_supersecret@host:5672/%2f"),
            "amqp://user:***@host:5672/%2f"
        );
        assert_eq!(
            super::redacted("user:pw_supersecret@host"),
            "<unreadable URL>"
        );
    }

    #[test]
    fn frame_max_is_added_to_the_url_unless_it_names_one() {
        assert_eq!(
            with_frame_max("amqp://h/%2f", 16384),
            "amqp://h/%2f?frame_max=16384"
        );
        assert_eq!(
            with_frame_max("amqp://h/%2f?heartbeat=10", 16384),
            "amqp://h/%2f?heartbeat=10&frame_max=16384"
        );
        assert_eq!(
            with_frame_max("amqp://h/%2f?frame_max=8192", 16384),
            "amqp://h/%2f?frame_max=8192"
        );
        assert_eq!(with_frame_max("amqp://h/%2f", 0), "amqp://h/%2f");
        // The URL lapin parses asks for that frame size.
        let uri: lapin::uri::AMQPUri = with_frame_max("amqp://h/%2f", 16384).parse().unwrap();
        assert_eq!(uri.query.frame_max, Some(16384));
    }
}
