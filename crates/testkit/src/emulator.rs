//! WorkOS's own emulator (`workos emulate`, npm `workos@0.14.0`, installed by
//! `scripts/emulator.sh`), one process per test on a port of its choosing, killed when
//! the handle drops (also when the test panics). A WorkOS-made counterpart beside
//! wiremock: it serves the API (users, organizations, memberships, `/events`) and signs
//! and delivers webhooks (`t` in seconds, at once, unordered, never retried).
//!
//! Known differences from the real API that matter to us: a missing object is
//! `404 {"code":"not_found"}` (the API says `entity_not_found` with the `entity_id`),
//! `range_start` is ignored on `/events`, and an unknown `after` cursor restarts at the
//! first page. Its rate limit is 1,000 requests a minute per key: keep tests small.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::{Value, json};

/// The API key the emulator accepts by default.
pub const EMULATOR_API_KEY: &str = "sk_test_default";

pub struct Emulator {
    child: Child,
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    http: reqwest::Client,
}

fn binary() -> String {
    std::env::var("WORKOS_EMULATOR_BIN")
        .unwrap_or_else(|_| "/var/tmp/workos-cli/node_modules/.bin/workos".into())
}

impl Emulator {
    /// Starts an emulator and waits until it answers `/health`.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = binary();
        let mut child = Command::new(&bin)
            .args(["emulate", "--port", "0", "--json"])
            // An empty working directory: it would load a workos-emulate.config.* found there.
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {bin} (run scripts/emulator.sh to install it)"))?;
        let stdout = child.stdout.take().context("emulator stdout")?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        });
        let line = match tokio::time::timeout(Duration::from_secs(30), line).await {
            Ok(Ok(Ok(line))) => line,
            _ => {
                let _ = child.kill();
                anyhow::bail!("the emulator printed no start line");
            }
        };
        let port = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v["port"].as_u64())
            .with_context(|| format!("emulator start line {line:?}"))?;
        let mut emu = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        // The start line comes even when the port could not be bound: wait for /health.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let up = emu
                .http
                .get(format!("{}/health", emu.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return Ok(emu);
            }
            if Instant::now() > deadline || emu.child.try_wait()?.is_some() {
                anyhow::bail!("the emulator did not come up");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(EMULATOR_API_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {text}");
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    /// `POST /user_management/users` with `fields` (the API reference's request body);
    /// the created user.
    pub async fn create_user(&self, fields: Value) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/user_management/users",
            Some(fields),
        )
        .await
    }

    /// `PUT /user_management/users/{id}` with `fields`.
    pub async fn update_user(&self, id: &str, fields: Value) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::PUT,
            &format!("/user_management/users/{id}"),
            Some(fields),
        )
        .await
    }

    /// `DELETE /user_management/users/{id}`.
    pub async fn delete_user(&self, id: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/user_management/users/{id}"),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Registers a webhook endpoint for every event, signed with `secret`; its id.
    pub async fn add_webhook(&self, url: &str, secret: &str) -> anyhow::Result<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/webhook_endpoints",
                Some(json!({"endpoint_url": url, "secret": secret, "events": []})),
            )
            .await?;
        v["id"]
            .as_str()
            .map(str::to_owned)
            .context("webhook endpoint id")
    }

    /// Turns a webhook endpoint's deliveries on or off.
    pub async fn set_webhook_enabled(&self, id: &str, enabled: bool) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::PUT,
            &format!("/webhook_endpoints/{id}"),
            Some(json!({"enabled": enabled})),
        )
        .await
        .map(|_| ())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
