//! The three-node RabbitMQ cluster of `scripts/rabbit-cluster.sh`, for the tests and the
//! cluster fault run: its URLs (`WST_CLUSTER_URLS`, which `scripts/test.sh` exports
//! after starting it), its nodes' control (stop/start the app, kill -9, boot) and queue
//! figures asked of whichever node answers.
//!
//! Failure model: [`Cluster::from_env`] fails with a message naming the script when the
//! cluster was not started; a node command that fails is an error carrying the script's
//! output. [`NodeDown`] brings a stopped node back when dropped, also when a test fails.

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::Context;
use lapin::{Connection, ConnectionProperties};

/// The variable holding the cluster's comma-separated URLs.
pub const CLUSTER_URLS_VAR: &str = "WST_CLUSTER_URLS";

/// A handle on the running test cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// One AMQP URL per node, node 1 first.
    pub urls: Vec<String>,
    script: PathBuf,
}

impl Cluster {
    /// The cluster started by `scripts/rabbit-cluster.sh start` (URLs in
    /// `WST_CLUSTER_URLS`).
    pub fn from_env() -> anyhow::Result<Self> {
        let urls = std::env::var(CLUSTER_URLS_VAR).with_context(|| {
            format!(
                "{CLUSTER_URLS_VAR} is not set: run the tests with scripts/test.sh, or start \
                 the cluster with `scripts/rabbit-cluster.sh start` and export what it prints"
            )
        })?;
        Ok(Self::new(urls.split(',').map(str::to_owned).collect()))
    }

    pub fn new(urls: Vec<String>) -> Self {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/rabbit-cluster.sh");
        Self { urls, script }
    }

    /// Every URL, comma-separated, starting with node `first` (1-based): what a process
    /// is given as `AMQP_URL`.
    pub fn url_list_from(&self, first: usize) -> String {
        let n = self.urls.len();
        (0..n)
            .map(|k| self.urls[(first - 1 + k) % n].as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs a subcommand of the cluster script; its standard output.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("bash")
            .arg(&self.script)
            .args(args)
            .output()
            .with_context(|| format!("running {}", self.script.display()))?;
        anyhow::ensure!(
            out.status.success(),
            "rabbit-cluster.sh {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `rabbitmqctl stop_app` on node `n`; it comes back when the guard is dropped.
    pub fn stop_app(&self, n: usize) -> anyhow::Result<NodeDown> {
        self.run(&["stop-app", &n.to_string()])?;
        Ok(NodeDown {
            cluster: self.clone(),
            node: n,
            killed: false,
        })
    }

    /// `kill -9` of node `n`'s Erlang VM; booted again when the guard is dropped.
    pub fn kill(&self, n: usize) -> anyhow::Result<NodeDown> {
        self.run(&["kill", &n.to_string()])?;
        Ok(NodeDown {
            cluster: self.clone(),
            node: n,
            killed: true,
        })
    }

    /// The node (1-based) leading quorum queue `queue`.
    pub fn leader(&self, queue: &str) -> anyhow::Result<usize> {
        let name = self.run(&["leader", queue])?;
        node_number(&name).with_context(|| format!("leader of {queue}: {name:?}"))
    }

    /// The nodes (1-based) holding a replica of quorum queue `queue`.
    pub fn members(&self, queue: &str) -> anyhow::Result<Vec<usize>> {
        let out = self.run(&["members", queue])?;
        out.split_whitespace()
            .map(|m| node_number(m).with_context(|| format!("member {m:?}")))
            .collect()
    }

    /// Ready messages and consumers of `queue`, asked of the first node that answers.
    pub async fn queue_stats(&self, queue: &str) -> anyhow::Result<(u32, u32)> {
        let mut last = None;
        for url in &self.urls {
            match queue_stats_at(url, queue).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("the cluster has no nodes")))
    }
}

/// `wstN@localhost` → N.
fn node_number(name: &str) -> Option<usize> {
    name.strip_prefix("wst")?.split('@').next()?.parse().ok()
}

/// Ready messages and consumers of `queue` on the node at `url`.
pub async fn queue_stats_at(url: &str, queue: &str) -> anyhow::Result<(u32, u32)> {
    let conn = tokio::time::timeout(
        Duration::from_secs(5),
        Connection::connect(url, ConnectionProperties::default()),
    )
    .await
    .context("connect timed out")??;
    let ch = conn.create_channel().await?;
    let q = crate::passive_declare(&ch, queue).await?;
    conn.close(200, "bye".into()).await?;
    Ok((q.message_count(), q.consumer_count()))
}

/// A node taken down by a test; brought back (start_app, or a boot after a kill) when
/// dropped, so a failing test leaves the cluster whole for the next one.
pub struct NodeDown {
    cluster: Cluster,
    node: usize,
    killed: bool,
}

impl NodeDown {
    /// Brings the node back now, waiting until it serves.
    pub fn restore(mut self) -> anyhow::Result<()> {
        let r = self.bring_back();
        self.node = 0;
        r
    }

    fn bring_back(&self) -> anyhow::Result<()> {
        let n = self.node.to_string();
        if self.killed {
            self.cluster.run(&["boot", &n]).map(drop)
        } else {
            self.cluster.run(&["start-app", &n]).map(drop)
        }
    }
}

impl Drop for NodeDown {
    fn drop(&mut self) {
        if self.node != 0
            && let Err(e) = self.bring_back()
        {
            tracing::error!(error = %e, node = self.node, "could not bring a cluster node back");
        }
    }
}
