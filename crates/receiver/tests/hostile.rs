//! Hostile and malformed input: only 4xx answers, never 5xx, no panic, and the receiver
//! keeps serving valid requests. Secrets never reach the logs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::{
    io::{Read, Write},
    time::Duration,
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::io::AsyncWriteExt;
use workos_sync_core::{now_ms, signature};
use workos_sync_testkit::{
    ReceiverOptions, TEST_SECRET, drain, sign_now, spawn_receiver, user_event,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_hostile_requests_get_only_4xx() {
    let r = spawn_receiver(ReceiverOptions {
        env: vec![("WORKOS_SYNC__RECEIVER__MAX_BODY_BYTES", "65536")],
        ..Default::default()
    })
    .await
    .unwrap();
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(42);
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    let mut sent = 0;
    // Slow bodies: a declared length that never arrives, in parallel with the rest.
    let mut slow = Vec::new();
    for _ in 0..5 {
        let addr = r.addr;
        let path = r.settings.receiver.path.clone();
        slow.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            // A fresh, well-formed (wrong) signature: only the body can refute it.
            let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nWorkOS-Signature: t={}, v1={}\r\n\r\nabc", now_ms(), "0".repeat(64));
            s.write_all(head.as_bytes()).await.unwrap();
            let mut buf = vec![0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(30), tokio::io::AsyncReadExt::read(&mut s, &mut buf)).await.unwrap().unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            text.split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok()).unwrap_or(0)
        }));
    }
    while sent < 995 {
        let kind = sent % 9;
        sent += 1;
        let resp = match kind {
            0 => {
                // Random bytes, random (or no) signature.
                let len = rng.random_range(0..4096);
                let body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                let mut req = c.post(&r.url).body(body.clone());
                if rng.random_bool(0.5) {
                    req = req.header(
                        "WorkOS-Signature",
                        signature::signature_header(TEST_SECRET.as_bytes(), now_ms(), &body),
                    );
                }
                req.send().await
            }
            1 => {
                // A huge header.
                let big = "a".repeat(rng.random_range(10_000..200_000));
                c.post(&r.url)
                    .header("WorkOS-Signature", big)
                    .body("{}")
                    .send()
                    .await
            }
            2 => {
                // Signature header with bytes that are not UTF-8.
                let v =
                    reqwest::header::HeaderValue::from_bytes(b"t=1\xff\xfe, v1=\x80\x81").unwrap();
                c.post(&r.url)
                    .header("WorkOS-Signature", v)
                    .body("{}")
                    .send()
                    .await
            }
            3 => {
                // Deeply nested JSON, correctly signed.
                let depth = rng.random_range(200..20_000);
                let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
                c.post(&r.url)
                    .header("WorkOS-Signature", sign_now(body.as_bytes()))
                    .body(body)
                    .send()
                    .await
            }
            4 => {
                let m = ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"][rng.random_range(0..5)];
                c.request(reqwest::Method::from_bytes(m.as_bytes()).unwrap(), &r.url)
                    .body("{}")
                    .send()
                    .await
            }
            5 => {
                // Garbage signature headers.
                let junk: String = (0..rng.random_range(0..300))
                    .map(|_| rng.random_range(32u8..127) as char)
                    .collect();
                c.post(&r.url)
                    .header("WorkOS-Signature", junk)
                    .body("{\"event\":\"user.created\"}")
                    .send()
                    .await
            }
            6 => {
                // Signed JSON that is not an event (wrong shapes).
                let bodies = [
                    "null",
                    "[]",
                    "{\"event\":null}",
                    "{\"event\":\"\"}",
                    "{\"event\":{}}",
                    "\"str\"",
                    "1e999999",
                ];
                let b = bodies[rng.random_range(0..bodies.len())];
                c.post(&r.url)
                    .header("WorkOS-Signature", sign_now(b.as_bytes()))
                    .body(b)
                    .send()
                    .await
            }
            7 => {
                // Oversized bodies, with and without Content-Length.
                let body = vec![b'x'; rng.random_range(65_537..300_000)];
                c.post(&r.url)
                    .header("WorkOS-Signature", sign_now(&body))
                    .body(body)
                    .send()
                    .await
            }
            _ => {
                // Encodings we refuse.
                let enc = ["gzip", "br", "deflate", "zstd", "x-unknown"][rng.random_range(0..5)];
                c.post(&r.url)
                    .header("Content-Encoding", enc)
                    .header("WorkOS-Signature", sign_now(b"{}"))
                    .body("{}")
                    .send()
                    .await
            }
        };
        let status = match resp {
            Ok(resp) => resp.status().as_u16(),
            // The server may close the connection on a huge header: that is a refusal,
            // not a 5xx; record it as 0 and check the server is still alive below.
            Err(_) => 0,
        };
        *statuses.entry(status).or_default() += 1;
    }
    for s in slow {
        let status = s.await.unwrap();
        *statuses.entry(status).or_default() += 1;
    }
    assert!(
        statuses.keys().all(|s| *s == 0 || (400..500).contains(s)),
        "non-4xx answers: {statuses:?}"
    );
    assert!(
        statuses.get(&0).copied().unwrap_or(0) < 200,
        "too many dropped connections: {statuses:?}"
    );
    assert!(
        statuses.contains_key(&408),
        "slow bodies were not timed out: {statuses:?}"
    );

    // Still serving.
    let body = user_event(
        "event_after_storm",
        "user.created",
        "user_1",
        "2026-01-01T00:00:00.000Z",
    );
    let resp = c
        .post(&r.url)
        .header("WorkOS-Signature", sign_now(body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let msgs = drain(&r.topology().events_queue()).await.unwrap();
    assert_eq!(msgs.len(), 1, "only the valid event is queued");
    r.teardown().await.unwrap();
}

/// Runs the real binary at trace level and feeds it valid and invalid requests: neither
/// the webhook secrets nor the API key may appear in any line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs() {
    let secret = "whsec_Sup3rS3cretValue";
    let old_secret = "whsec_0ldS3cretValue";
    let api_key = "sk_test_L0gLeakCheck";
    let prefix = workos_sync_testkit::unique_prefix();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // Logs go to a file: a pipe nobody reads would fill up at trace level and block.
    let log_path = std::env::temp_dir().join(format!("{prefix}.log"));
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_workos-sync-receiver"))
        .env("AMQP_URL", workos_sync_testkit::amqp_url())
        .env("WORKOS_WEBHOOK_SECRET", format!("{secret},{old_secret}"))
        .env("WORKOS_API_KEY", api_key)
        .env("WORKOS_SYNC__AMQP__PREFIX", &prefix)
        .env("WORKOS_SYNC__RECEIVER__BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "trace")
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/api/webhooks/workos");
    let c = reqwest::Client::new();
    let ready = workos_sync_testkit::eventually(Duration::from_secs(15), || async {
        c.get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(ready, "receiver did not become ready");
    let body = user_event(
        "event_log1",
        "user.created",
        "user_1",
        "2026-01-01T00:00:00.000Z",
    );
    let good = signature::signature_header(secret.as_bytes(), now_ms(), body.as_bytes());
    let old = signature::signature_header(old_secret.as_bytes(), now_ms(), body.as_bytes());
    for sig in [good.as_str(), old.as_str(), "t=1, v1=00", secret] {
        let _ = c
            .post(&url)
            .header("WorkOS-Signature", sig)
            .body(body.clone())
            .send()
            .await
            .unwrap();
    }
    // SIGHUP without TLS configured: nothing to reload, and the receiver keeps serving
    // (its default action would end the process with status 129).
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status();
    let logged = workos_sync_testkit::eventually(Duration::from_secs(10), || async {
        std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains("SIGHUP received"))
    })
    .await;
    assert!(logged, "SIGHUP not taken");
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP ended the receiver"
    );
    let after_hup = c
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .unwrap();
    assert!(after_hup.status().is_success());
    // SIGTERM: graceful stop, then read everything it printed.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "receiver exited with {status:?}");
    let mut logs = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(logs.lines().count() > 5, "expected trace logs, got: {logs}");
    assert!(logs.contains("webhook accepted"));
    for s in [secret, old_secret, api_key] {
        // The header value that equals the secret was sent by the client; it must not be
        // echoed either.
        let leaked: Vec<&str> = logs.lines().filter(|l| l.contains(s)).collect();
        assert!(leaked.is_empty(), "{s} leaked: {leaked:?}");
    }
    let _ = std::io::stdout().flush();
    workos_sync_testkit::delete_topology(&workos_sync_testkit::test_topology(&prefix).unwrap())
        .await
        .unwrap();
}

/// Malformed broker URLs (no scheme, a slash short, a bad port; alone and in a list of
/// nodes) never print their passwords, in any line the receiver writes while it keeps
/// retrying them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_broker_url_never_prints_its_password() {
    let urls = [
        "user:pw_Sup3rS3cret1@host:5672",
        "amqp:/user:pw_Sup3rS3cret2@127.0.0.1:5672/%2f",
        "amqp://user:pw_Sup3rS3cret3@host:notaport/%2f",
        "amqp://user:pw_Sup3rS3cret4@127.0.0.1:5672/%2f,amqp://u:pw_Sup3rS3cret5@[::1:5672/%2f",
    ];
    for url in urls {
        let prefix = workos_sync_testkit::unique_prefix();
        let log_path = std::env::temp_dir().join(format!("{prefix}.url.log"));
        let log_file = std::fs::File::create(&log_path).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_workos-sync-receiver"))
            .env("AMQP_URL", url)
            .env("WORKOS_WEBHOOK_SECRET", "whsec_x")
            .env("WORKOS_SYNC__AMQP__PREFIX", &prefix)
            .env("WORKOS_SYNC__RECEIVER__BIND", "127.0.0.1:0")
            .env("RUST_LOG", "debug")
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        // Until it has tried (and refused) the URL a few times.
        let tried = workos_sync_testkit::eventually(Duration::from_secs(15), || async {
            std::fs::read_to_string(&log_path).is_ok_and(|l| {
                l.matches("no broker node answered").count() >= 2 || l.contains("receiver failed")
            })
        })
        .await;
        let _ = child.kill();
        let _ = child.wait();
        let logs = std::fs::read_to_string(&log_path).unwrap();
        let _ = std::fs::remove_file(&log_path);
        assert!(tried, "{url}: {logs}");
        assert!(!logs.contains("Sup3rS3cret"), "{url}: {logs}");
    }
}
