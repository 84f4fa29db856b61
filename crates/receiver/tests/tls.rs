//! HTTPS on the receiver's own port (no ingress): a signed webhook over TLS is accepted
//! and queued; plain HTTP to the TLS port gets no HTTP answer; a renewed certificate is
//! served without a restart. Certificates are generated in the test (rcgen); the real
//! RabbitMQ.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::{path::Path, time::Duration};

use tokio::io::AsyncWriteExt;
use workos_sync_testkit::{
    ReceiverOptions, drain, eventually, read_status, sign_now, spawn_receiver, unique_prefix,
    user_event,
};

/// Writes a fresh self-signed certificate for `localhost` to `dir`; its PEM.
fn write_cert(dir: &Path) -> String {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), c.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), c.signing_key.serialize_pem()).unwrap();
    c.cert.pem()
}

/// A client that trusts `pem` alone.
fn client(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_over_https_and_a_renewed_certificate_without_restart() {
    let dir = std::env::temp_dir().join(format!("wst-tls-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let first = write_cert(&dir);
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let prefix = unique_prefix();
    let r = spawn_receiver(ReceiverOptions {
        prefix: Some(prefix.to_string()),
        env: vec![
            ("WORKOS_SYNC__RECEIVER__TLS_CERT", cert.to_str().unwrap()),
            ("WORKOS_SYNC__RECEIVER__TLS_KEY", key.to_str().unwrap()),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let https = format!("https://localhost:{}", r.addr.port());

    // A signed webhook over HTTPS: 200, queued byte for byte.
    let body = user_event(
        "event_tls1",
        "user.created",
        "user_tls",
        "2026-01-01T00:00:00.000Z",
    );
    let resp = client(&first)
        .post(format!("{https}{}", r.settings.receiver.path))
        .header("WorkOS-Signature", sign_now(body.as_bytes()))
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let queued = drain(&r.topology().events_queue()).await.unwrap();
    assert_eq!(queued.len(), 1);

    // Plain HTTP to the TLS port: no HTTP answer at all.
    let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_status(&mut s, Duration::from_secs(2)).await, 0);
    assert!(
        reqwest::get(format!("http://{}/healthz", r.addr))
            .await
            .is_err()
    );

    // Renewal: new files in place; the next handshakes present the new certificate
    // (a client trusting only it gets through), with no restart.
    let renewed_client = {
        let second = write_cert(&dir);
        client(&second)
    };
    let healthz = format!("{https}/healthz");
    assert!(
        eventually(Duration::from_secs(15), || async {
            renewed_client
                .get(&healthz)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await,
        "the renewed certificate was not served"
    );
    assert!(
        client(&first).get(&healthz).send().await.is_err(),
        "the old one still served"
    );
    r.teardown().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn uuid_like() -> String {
    format!("{}-{:?}", std::process::id(), std::time::Instant::now())
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}
