//! A RabbitMQ policy for one test's queues, set with `rabbitmqctl` and cleared when the
//! guard drops (also when the test panics). Used to give a test's quorum queues the
//! delivery limit RabbitMQ 4.x applies by default (3.10 has none), so that losses 4.x
//! would cause show here.

use std::process::Command;

use anyhow::Context;

pub struct QueuePolicy {
    name: String,
}

impl QueuePolicy {
    /// Applies `definition` (JSON) to the queues whose names match `pattern` (a regex).
    pub fn set(name: &str, pattern: &str, definition: &str) -> anyhow::Result<Self> {
        let out = Command::new("rabbitmqctl")
            .args([
                "set_policy",
                "--apply-to",
                "queues",
                "--priority",
                "100",
                name,
                pattern,
                definition,
            ])
            .output()
            .context("run rabbitmqctl")?;
        anyhow::ensure!(
            out.status.success(),
            "rabbitmqctl set_policy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(Self { name: name.into() })
    }
}

impl Drop for QueuePolicy {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["clear_policy", &self.name])
            .output();
    }
}
