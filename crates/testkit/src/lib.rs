//! Test helpers shared by the integration tests and benchmarks: unique queue prefixes on
//! the real RabbitMQ, a receiver started on port 0, signed requests, reading back what
//! reached a queue, and a TCP proxy to cut the broker connection.
//!
//! Everything talks to the real services on loopback (`AMQP_URL`, default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`). Helpers return `anyhow::Result`; tests
//! unwrap them.

pub mod cluster;
pub mod db;
pub mod emulator;
pub mod history;
pub mod policy;
pub mod prefix;
pub mod proxy;
pub mod stack;

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use anyhow::Context;
pub use cluster::Cluster;
pub use db::{TestDb, empty_database, fresh_database};
pub use emulator::{EMULATOR_API_KEY, Emulator};
use lapin::{
    Connection, ConnectionProperties,
    message::BasicGetMessage,
    options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions},
    types::FieldTable,
};
pub use policy::QueuePolicy;
pub use prefix::TestPrefix;
pub use proxy::TcpProxy;
pub use stack::Stack;
use workos_sync_core::{Settings, now_ms, signature};
use workos_sync_queue::{Broker, BrokerConfig, Topology};

/// Prefix of every test prefix, so that leftovers are easy to find and delete.
pub const TEST_PREFIX_STEM: &str = "wst";

pub const TEST_SECRET: &str = "whsec_testkit_secret";

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// `host:port` of the server in `url` (`scheme://[creds@]host[:port]/path`, read by
/// `url::Url`; `localhost` is 127.0.0.1, where the test services listen).
fn url_addr(url: &str, default_port: u16) -> anyhow::Result<SocketAddr> {
    let u = url::Url::parse(url).context("not a URL")?;
    // Schemes other than http(s) keep their host as text (`postgres`, `amqp`): an
    // address is parsed from it.
    let ip: std::net::IpAddr = match u.host().context("URL has no host")? {
        url::Host::Domain("localhost") => std::net::Ipv4Addr::LOCALHOST.into(),
        url::Host::Domain(other) => other
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .with_context(|| format!("host {other} is not an address"))?,
        url::Host::Ipv4(ip) => ip.into(),
        url::Host::Ipv6(ip) => ip.into(),
    };
    Ok(SocketAddr::new(ip, u.port().unwrap_or(default_port)))
}

/// `url` with host and port replaced by `addr` (to go through a proxy); its path is
/// `default_path` when it has none. Unchanged when it is not a URL.
fn url_via(url: &str, addr: SocketAddr, default_path: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return url.to_owned();
    };
    if u.set_ip_host(addr.ip()).is_err() || u.set_port(Some(addr.port())).is_err() {
        return url.to_owned();
    }
    if matches!(u.path(), "" | "/") {
        u.set_path(&format!("/{default_path}"));
    }
    u.to_string()
}

/// `host:port` of the broker in [`amqp_url`].
pub fn amqp_addr() -> anyhow::Result<SocketAddr> {
    url_addr(&amqp_url(), 5672)
}

/// The AMQP URL with host and port replaced by `addr` (to go through a proxy).
pub fn amqp_url_via(addr: SocketAddr) -> String {
    url_via(&amqp_url(), addr, "%2f")
}

/// A fresh queue prefix, `wst-p<pid>-<8 hex>`, whose queues and exchanges are deleted
/// when it is dropped (also when the test fails: see [`TestPrefix`]); the pid tells
/// `scripts/services.sh` whether the run that made it is still alive.
pub fn unique_prefix() -> TestPrefix {
    let id = uuid::Uuid::new_v4().simple().to_string();
    TestPrefix::new(format!(
        "{TEST_PREFIX_STEM}-p{}-{}",
        std::process::id(),
        &id[..8]
    ))
}

/// Settings for a test: defaults, loopback services, the given prefix and secret, port 0.
pub fn test_settings(prefix: &str, extra: &[(&str, &str)]) -> anyhow::Result<Settings> {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("AMQP_URL".into(), amqp_url());
    env.insert("WORKOS_WEBHOOK_SECRET".into(), TEST_SECRET.into());
    env.insert("WORKOS_SYNC__AMQP__PREFIX".into(), prefix.into());
    env.insert("WORKOS_SYNC__RECEIVER__BIND".into(), "127.0.0.1:0".into());
    env.insert("WORKOS_SYNC__RECEIVER__WORKERS".into(), "2".into());
    env.insert(
        "WORKOS_SYNC__WORKER__HTTP_BIND".into(),
        "127.0.0.1:0".into(),
    );
    env.insert(
        "WORKOS_SYNC__RECEIVER__SHUTDOWN_TIMEOUT_SECS".into(),
        "1".into(),
    );
    if let Ok(db) = std::env::var("DATABASE_URL") {
        env.insert("DATABASE_URL".into(), db);
    }
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    Ok(Settings::load_from(None, env)?)
}

/// Runs the binary `bin` (a test's `env!("CARGO_BIN_EXE_…")`) with `args` against the
/// test broker, `db_url` and [`TEST_SECRET`], plus `env`: exit code, stdout, stderr.
pub fn run_binary(
    bin: &str,
    db_url: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> anyhow::Result<(i32, String, String)> {
    let mut cmd = std::process::Command::new(bin);
    cmd.args(args)
        .env("AMQP_URL", amqp_url())
        .env("DATABASE_URL", db_url)
        .env("WORKOS_WEBHOOK_SECRET", TEST_SECRET);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The `WorkOS-Signature` value for `body`, signed now with [`TEST_SECRET`].
pub fn sign_now(body: &[u8]) -> String {
    signature::signature_header(TEST_SECRET.as_bytes(), now_ms(), body)
}

/// A realistic `user.created`/`user.updated`/`user.deleted` body.
pub fn user_event(event_id: &str, event_type: &str, user_id: &str, updated_at: &str) -> String {
    workos_sync_core::event::sample_user_event(
        event_id,
        event_type,
        user_id,
        "2026-01-01T00:00:00.000Z",
        updated_at,
    )
}

/// A receiver running in this process against a unique prefix, optionally through a
/// proxy to the broker.
pub struct TestReceiver {
    pub addr: SocketAddr,
    pub url: String,
    pub settings: Settings,
    pub broker: Broker,
    pub proxy: Option<TcpProxy>,
    handle: actix_web::dev::ServerHandle,
}

/// A receiver's answer to [`TestReceiver::post`].
pub struct Posted {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: serde_json::Value,
}

/// Options for [`spawn_receiver`].
#[derive(Default)]
pub struct ReceiverOptions<'a> {
    /// Route the broker connection through a [`TcpProxy`].
    pub via_proxy: bool,
    /// Extra settings as environment pairs.
    pub env: Vec<(&'a str, &'a str)>,
    /// Use this queue prefix instead of a fresh one (to share it with a worker).
    pub prefix: Option<String>,
}

pub async fn spawn_receiver(opts: ReceiverOptions<'_>) -> anyhow::Result<TestReceiver> {
    let prefix = opts
        .prefix
        .clone()
        .unwrap_or_else(|| unique_prefix().keep());
    let mut settings = test_settings(&prefix, &opts.env)?;
    let proxy = if opts.via_proxy {
        let p = TcpProxy::start(amqp_addr()?).await?;
        settings.amqp.url = vec![amqp_url_via(p.addr()).into()];
        Some(p)
    } else {
        None
    };
    settings.validate_receiver()?;
    let broker = connected_broker(&settings.amqp, "testkit-receiver").await?;
    let (server, addr) = workos_sync_receiver::build_server(&settings, broker.clone())?;
    let handle = server.handle();
    tokio::spawn(server);
    Ok(TestReceiver {
        addr,
        url: format!("http://{addr}{}", settings.receiver.path),
        settings,
        broker,
        proxy,
        handle,
    })
}

impl TestReceiver {
    pub fn topology(&self) -> &Topology {
        self.broker.topology()
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Posts `body` to the webhook path with `signature` (none: no header); the status,
    /// the headers and the JSON body (null when there is none).
    pub async fn post(
        &self,
        body: impl Into<reqwest::Body>,
        signature: Option<&str>,
    ) -> anyhow::Result<Posted> {
        let mut req = reqwest::Client::new().post(&self.url).body(body);
        if let Some(sig) = signature {
            req = req.header("WorkOS-Signature", sig);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let json = resp.json().await.unwrap_or(serde_json::Value::Null);
        Ok(Posted {
            status,
            headers,
            json,
        })
    }

    /// Posts `body` signed now with [`TEST_SECRET`].
    pub async fn post_signed(&self, body: &str) -> anyhow::Result<Posted> {
        self.post(body.to_owned(), Some(&sign_now(body.as_bytes())))
            .await
    }

    /// Stops the server and closes the broker, leaving the topology (on a broker other
    /// than the shared one, which is removed as a whole).
    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.broker.close().await;
    }

    /// Stops the server, deletes the test's queues and exchanges, closes the broker.
    pub async fn teardown(self) -> anyhow::Result<()> {
        self.handle.stop(true).await;
        self.broker.close().await;
        delete_topology(self.broker.topology()).await
    }
}

/// Opens a direct connection to the broker (not through any proxy).
pub async fn connect() -> anyhow::Result<Connection> {
    Ok(Connection::connect(&amqp_url(), ConnectionProperties::default()).await?)
}

/// The status code of the HTTP answer that arrives on a raw connection within `within`;
/// 0 when none came (or the connection closed first).
pub async fn read_status(s: &mut tokio::net::TcpStream, within: Duration) -> u16 {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(within, s.read(&mut buf))
        .await
        .map_or(0, |r| r.unwrap_or(0));
    String::from_utf8_lossy(&buf[..n])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Deletes a test topology.
pub async fn delete_topology(topology: &Topology) -> anyhow::Result<()> {
    let conn = connect().await?;
    let ch = conn.create_channel().await?;
    topology.delete(&ch).await?;
    conn.close(200, "bye".into()).await?;
    Ok(())
}

/// Closes a test's broker handle and deletes its queues and exchanges.
pub async fn close_and_delete(broker: Broker) -> anyhow::Result<()> {
    broker.close().await;
    delete_topology(broker.topology()).await
}

/// Number of ready messages in `queue` (on a connection of its own).
pub async fn queue_len(queue: &str) -> anyhow::Result<u32> {
    let conn = connect().await?;
    // Keep the channel open until the connection closes: dropping it first starts its
    // own close, and the connection's close then fails on a channel in Closing state.
    let ch = conn.create_channel().await?;
    let n = queue_len_on(&ch, queue).await?;
    conn.close(200, "bye".into()).await?;
    Ok(n)
}

/// Ready messages and consumers of `queue` (on a connection of its own).
pub async fn queue_stats(queue: &str) -> anyhow::Result<(u32, u32)> {
    let conn = connect().await?;
    let ch = conn.create_channel().await?;
    let q = passive_declare(&ch, queue).await?;
    conn.close(200, "bye".into()).await?;
    Ok((q.message_count(), q.consumer_count()))
}

/// Number of ready messages in `queue`, asked on an open channel (a passive declare:
/// cheap enough to poll).
pub async fn queue_len_on(ch: &lapin::Channel, queue: &str) -> anyhow::Result<u32> {
    Ok(passive_declare(ch, queue).await?.message_count())
}

pub(crate) async fn passive_declare(
    ch: &lapin::Channel,
    queue: &str,
) -> anyhow::Result<lapin::Queue> {
    Ok(ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?)
}

/// Takes (gets and acks) every message currently in `queue`.
pub async fn drain(queue: &str) -> anyhow::Result<Vec<BasicGetMessage>> {
    let conn = connect().await?;
    let ch = conn.create_channel().await?;
    let mut out = Vec::new();
    while let Some(msg) = ch
        .basic_get(queue.into(), BasicGetOptions::default())
        .await?
    {
        msg.delivery.ack(BasicAckOptions::default()).await?;
        out.push(msg);
    }
    conn.close(200, "bye".into()).await?;
    Ok(out)
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A worker running in this process on `prefix` against `database_url`.
pub async fn spawn_worker(
    prefix: &str,
    database_url: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<workos_sync_worker::WorkerHandle> {
    let mut env: Vec<(&str, &str)> = vec![("DATABASE_URL", database_url)];
    env.extend_from_slice(extra);
    let settings = test_settings(prefix, &env)?;
    workos_sync_worker::start(&settings).await
}

/// A broker handle on `prefix` (declares the topology), for publishing test messages.
pub async fn test_broker(prefix: &str) -> anyhow::Result<Broker> {
    connected_broker(&test_settings(prefix, &[])?.amqp, "testkit").await
}

/// Starts a broker handle for `amqp` (declaring its topology) and waits until it is
/// connected.
pub async fn connected_broker(
    amqp: &workos_sync_core::settings::AmqpSettings,
    name: &str,
) -> anyhow::Result<Broker> {
    let broker = Broker::start(BrokerConfig::from_settings(amqp, name));
    anyhow::ensure!(
        broker.wait_connected(Duration::from_secs(15)).await,
        "broker not reachable at {}",
        amqp_url()
    );
    Ok(broker)
}

/// The topology the services use for `prefix` with the default settings (to clean up
/// after a test that did not keep a handle on it).
pub fn test_topology(prefix: &str) -> anyhow::Result<Topology> {
    Ok(Topology::from_settings(&test_settings(prefix, &[])?.amqp))
}

/// Publishes `body` to the events exchange of `broker` as the receiver would.
pub async fn publish_event(
    broker: &Broker,
    event_id: &str,
    event_type: &str,
    body: &[u8],
) -> anyhow::Result<()> {
    let exchange = broker.topology().events_exchange();
    broker
        .publish(
            workos_sync_queue::Outgoing {
                exchange: &exchange,
                routing_key: event_type,
                body,
                properties: workos_sync_queue::event_properties(
                    event_id,
                    event_type,
                    now_ms(),
                    false,
                ),
            },
            Duration::from_secs(5),
        )
        .await?;
    Ok(())
}

/// `host:port` of a postgres URL.
pub fn postgres_addr(url: &str) -> anyhow::Result<SocketAddr> {
    url_addr(url, 5432)
}

/// A postgres URL with host and port replaced by `addr`.
pub fn postgres_url_via(url: &str, addr: SocketAddr) -> String {
    url_via(url, addr, "postgres")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_are_edited_as_urls() {
        let a: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        assert_eq!(
            url_via("amqp://guest:guest@localhost:5672/%2f", a, "%2f"),
            "amqp://guest:guest@127.0.0.1:40001/%2f"
        );
        // A password holding "localhost" or "@" is left as it is.
        assert_eq!(
            url_via(
                "postgres://u:my%40localhost@db.local:5432/app",
                a,
                "postgres"
            ),
            "postgres://u:my%40localhost@127.0.0.1:40001/app"
        );
        assert_eq!(
            url_via("postgres://u@127.0.0.1", a, "postgres"),
            "postgres://u@127.0.0.1:40001/postgres"
        );
        assert_eq!(
            url_addr("amqp://u:localhost@localhost/%2f", 5672).unwrap(),
            "127.0.0.1:5672".parse().unwrap()
        );
        assert_eq!(
            url_addr("postgres://postgres@127.0.0.1:5432/x", 1).unwrap(),
            "127.0.0.1:5432".parse().unwrap()
        );
        assert_eq!(
            url_addr("postgres://[::1]:6543/x", 5432).unwrap(),
            "[::1]:6543".parse().unwrap()
        );
    }
}
