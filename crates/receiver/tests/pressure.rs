//! Input that costs the receiver before it is authenticated: what the headers can refute
//! is refused without reading the body, bodies in flight share a bounded budget, and
//! signed bodies with fields too long for AMQP are refused, not fatal.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use workos_sync_core::now_ms;
use workos_sync_testkit::{
    ReceiverOptions, TestReceiver, drain, read_status, spawn_receiver, user_event,
};

/// The `updated_at` of the test users.
const AT: &str = "2026-01-01T00:00:00.000Z";

/// Sends a request head (and `body_part` of its body) on a raw connection; returns the
/// stream, to read the answer from or to keep open.
async fn raw_request(r: &TestReceiver, headers: &str, body_part: &[u8]) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\n{headers}\r\n",
        r.settings.receiver.path
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body_part).await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_fail_are_refused_before_the_body_is_read() {
    let r = spawn_receiver(ReceiverOptions::default()).await.unwrap();
    let fresh_wrong = format!("t={}, v1={}", now_ms(), "0".repeat(64));
    for (sig, want) in [
        (None, 401),
        (Some("t=1, v1=".to_owned() + &"0".repeat(64)), 401),
        (Some(format!("t={}, v1=zz", now_ms())), 400),
    ] {
        let sig_line = sig
            .map(|s| format!("WorkOS-Signature: {s}\r\n"))
            .unwrap_or_default();
        // A large declared body that never comes: the answer must not wait for it.
        let started = Instant::now();
        let mut s = raw_request(&r, &format!("Content-Length: 900000\r\n{sig_line}"), b"").await;
        assert_eq!(
            read_status(&mut s, Duration::from_secs(5)).await,
            want,
            "{sig_line}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    // A fresh, well-formed signature needs the body: that one waits for it (408).
    let mut s = raw_request(
        &r,
        &format!("Content-Length: 1000\r\nWorkOS-Signature: {fresh_wrong}\r\n"),
        b"{",
    )
    .await;
    assert_eq!(read_status(&mut s, Duration::from_secs(15)).await, 408);
    r.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_in_flight_share_a_budget_and_valid_requests_still_pass() {
    let r = spawn_receiver(ReceiverOptions {
        env: vec![
            ("WORKOS_SYNC__RECEIVER__MAX_BODY_BYTES", "100000"),
            ("WORKOS_SYNC__RECEIVER__MAX_INFLIGHT_BODY_BYTES", "200000"),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let hog = |_| {
        format!(
            "Content-Length: 70000\r\nWorkOS-Signature: t={}, v1={}\r\n",
            now_ms(),
            "0".repeat(64)
        )
    };
    // Two slow senders of large bodies hold 140,000 of the 150,000 bytes large bodies
    // may use (a quarter of the 200,000 is kept for small ones).
    let mut held = Vec::new();
    for i in 0..2 {
        held.push(raw_request(&r, &hog(i), &[b'x'; 1000]).await);
    }
    // Give the receiver the moment it needs to take their share (poll, bounded). A hog
    // whose handler ran only after a probe took the budget was refused: it is sent
    // again. Each probe sends its whole body, so one admitted early is answered (401)
    // at once and gives its share back.
    let deadline = Instant::now() + Duration::from_secs(10);
    let third = loop {
        for (i, h) in held.iter_mut().enumerate() {
            if read_status(h, Duration::from_millis(20)).await != 0 {
                *h = raw_request(&r, &hog(i), &[b'x'; 1000]).await;
            }
        }
        let mut s = raw_request(&r, &hog(2), &[b'x'; 70000]).await;
        let status = read_status(&mut s, Duration::from_secs(2)).await;
        if status == 503 || Instant::now() > deadline {
            break status;
        }
    };
    assert_eq!(third, 503, "a third large body must be refused at once");
    // A small body that does not fit what is left is refused too; the refusal says when
    // to come back, in the usual JSON shape.
    let wrong = || format!("t={}, v1={}", now_ms(), "0".repeat(64));
    let posted = r.post(vec![b'y'; 64 * 1024], Some(&wrong())).await.unwrap();
    assert_eq!(posted.status, 503);
    assert_eq!(posted.headers["retry-after"], "1");
    assert_eq!(posted.json["error"], "overloaded");
    // A real webhook (a few KiB) still fits and is stored.
    let body = user_event("event_budget", "user.created", "user_1", AT);
    assert_eq!(r.post_signed(&body).await.unwrap().status, 200);
    // When the hogs go, their share comes back (as soon as the receiver sees them close).
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        let status = r
            .post(vec![b'y'; 90_000], Some(&wrong()))
            .await
            .unwrap()
            .status;
        if status != 503 || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, 401, "the budget was not given back");
    assert_eq!(drain(&r.topology().events_queue()).await.unwrap().len(), 1);
    r.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_ids_and_types_too_long_for_amqp_are_400() {
    let r = spawn_receiver(ReceiverOptions::default()).await.unwrap();
    let long = "e".repeat(300);
    for body in [
        user_event(&long, "user.created", "user_1", AT),
        user_event("event_lt", &format!("user.{long}"), "user_1", AT),
    ] {
        for _ in 0..3 {
            let posted = r.post_signed(&body).await.unwrap();
            assert_eq!(posted.status, 400);
            assert_eq!(posted.json["error"], "malformed_body");
        }
    }
    // Still serving, nothing queued but the valid one.
    let body = user_event("event_ok", "user.created", "user_1", AT);
    assert_eq!(r.post_signed(&body).await.unwrap().status, 200);
    assert_eq!(drain(&r.topology().events_queue()).await.unwrap().len(), 1);
    r.teardown().await.unwrap();
}

/// Sends a small wrongly signed request on `s` and reads the answer's head (status line
/// and headers, lowercased), within `within`.
async fn ask(s: &mut tokio::net::TcpStream, path: &str, within: Duration) -> String {
    use tokio::io::AsyncReadExt;
    let body = b"{\"id\":\"event_x\",\"event\":\"user.created\"}";
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nWorkOS-Signature: t={}, v1={}\r\n\r\n",
        body.len(),
        now_ms(),
        "0".repeat(64)
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(within, s.read(&mut buf))
        .await
        .map_or(0, |r| r.unwrap_or(0));
    String::from_utf8_lossy(&buf[..n]).to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_past_the_cap_gets_a_prompt_503_and_a_close() {
    let r = spawn_receiver(ReceiverOptions {
        env: vec![
            ("WORKOS_SYNC__RECEIVER__MAX_CONNECTIONS", "4"),
            ("WORKOS_SYNC__RECEIVER__WORKERS", "1"),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let path = r.settings.receiver.path.clone();
    // Four keep-alive connections, each answered (401: wrong signature) and kept open.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
        let answer = ask(&mut s, &path, Duration::from_secs(5)).await;
        assert!(answer.starts_with("http/1.1 401"), "{answer}");
        held.push(s);
    }
    // Past the cap: every one answered at once with 503, Retry-After and a close (not
    // left waiting in the accept queue).
    for _ in 0..4 {
        let started = Instant::now();
        let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
        let answer = ask(&mut s, &path, Duration::from_secs(5)).await;
        assert!(answer.starts_with("http/1.1 503"), "{answer}");
        assert!(answer.contains("retry-after: 1"), "{answer}");
        assert!(answer.contains("connection: close"), "{answer}");
        assert!(answer.contains("too_many_connections"), "{answer}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    // The held ones still work; when they close, a new connection is served again.
    let answer = ask(&mut held[0], &path, Duration::from_secs(5)).await;
    assert!(answer.starts_with("http/1.1 401"), "{answer}");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    let answer = loop {
        let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
        let answer = ask(&mut s, &path, Duration::from_secs(5)).await;
        if answer.starts_with("http/1.1 401") || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(answer.starts_with("http/1.1 401"), "{answer}");
    r.teardown().await.unwrap();
}
