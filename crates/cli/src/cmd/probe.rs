//! `workos-sync probe <url>`: one HTTP GET, exit 0 on a 2xx answer and 1 otherwise (any
//! other status, no answer within the timeout, a refused connection), with one line
//! saying which. The image has no curl or wget; this is what the compose healthchecks
//! (and any other probe that can only run a command) call. An `https` URL is checked
//! against the system's roots, or against `--ca <PEM file>` for a private certificate.

use std::{io::Write, time::Duration};

use anyhow::Context;

pub async fn run(
    url: &str,
    timeout: Duration,
    ca: Option<&std::path::Path>,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let mut client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca {
        let pem = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
        client = client.add_root_certificate(cert);
    }
    let client = client.build().context("HTTP client")?;
    let answer = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("{url}: no answer"))?;
    let status = answer.status();
    anyhow::ensure!(status.is_success(), "{url}: {status}");
    writeln!(out, "{url}: {status}")?;
    Ok(())
}
