//! Receiver against the real RabbitMQ: each test has its own queue prefix.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::time::{Duration, Instant};

use lapin::types::AMQPValue;
use workos_sync_core::{now_ms, signature};
use workos_sync_testkit::{
    ReceiverOptions, TEST_SECRET, TestReceiver, drain, eventually, queue_len, sign_now,
    spawn_receiver, user_event,
};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post(
    c: &reqwest::Client,
    r: &TestReceiver,
    body: &str,
    sig: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = c
        .post(&r.url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(sig) = sig {
        req = req.header("WorkOS-Signature", sig);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let json = resp.json().await.unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_request_is_queued_with_exact_bytes_and_properties() {
    let r = spawn_receiver(ReceiverOptions::default()).await.unwrap();
    let c = client();
    // Odd whitespace on purpose: the queue must hold these exact bytes.
    let body = format!(
        "{}  \n",
        user_event(
            "event_01ABC",
            "user.created",
            "user_1",
            "2026-01-01T00:00:00.000Z"
        )
    );
    let before = now_ms();
    let (status, json) = post(&c, &r, &body, Some(&sign_now(body.as_bytes()))).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["id"], "event_01ABC");

    // The emulator's format: seconds, no space after the comma.
    let body2 = user_event(
        "event_02DEF",
        "user.updated",
        "user_1",
        "2026-01-02T00:00:00.000Z",
    );
    let t = (now_ms() / 1000).to_string();
    let v1 = signature::sign(TEST_SECRET.as_bytes(), &t, body2.as_bytes());
    let (status, _) = post(&c, &r, &body2, Some(&format!("t={t},v1={v1}"))).await;
    assert_eq!(status, 200);

    let msgs = drain(&r.topology().events_queue()).await.unwrap();
    assert_eq!(msgs.len(), 2);
    let m = &msgs[0];
    assert_eq!(m.delivery.data, body.as_bytes());
    let p = &m.delivery.properties;
    assert_eq!(p.message_id().as_ref().unwrap().as_str(), "event_01ABC");
    assert_eq!(p.kind().as_ref().unwrap().as_str(), "user.created");
    assert_eq!(
        p.content_type().as_ref().unwrap().as_str(),
        "application/json"
    );
    assert_eq!(*p.delivery_mode(), Some(2), "must be persistent");
    assert!(p.timestamp().unwrap() >= before / 1000);
    let headers = p.headers().as_ref().unwrap();
    match headers.inner().get("x-received-at") {
        Some(AMQPValue::LongLongInt(v)) => assert!(*v as u64 >= before),
        other => panic!("x-received-at: {other:?}"),
    }
    assert_eq!(m.delivery.routing_key.as_str(), "user.created");
    assert_eq!(msgs[1].delivery.data, body2.as_bytes());
    r.teardown().await.unwrap();
}

/// A body just under the default 1 MiB limit travels as ~60 AMQP body frames of
/// `amqp.frame_max` (16 KiB) and must reach the queue byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_near_the_size_limit_arrives_intact() {
    let r = spawn_receiver(ReceiverOptions::default()).await.unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&user_event(
        "event_big",
        "user.updated",
        "user_1",
        "2026-01-01T00:00:00.000Z",
    ))
    .unwrap();
    // Unknown fields are accepted; make the body ~1,000,000 bytes.
    event["padding"] = serde_json::Value::String("p".repeat(1_000_000));
    let body = serde_json::to_string(&event).unwrap();
    assert!(body.len() > 1_000_000 && body.len() < r.settings.receiver.max_body_bytes);
    let (status, json) = post(&client(), &r, &body, Some(&sign_now(body.as_bytes()))).await;
    assert_eq!(status, 200, "{json}");
    let msgs = drain(&r.topology().events_queue()).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0].delivery.data == body.as_bytes(),
        "body changed in transit"
    );
    r.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_body_without_id_gets_a_hash_id() {
    let r = spawn_receiver(ReceiverOptions::default()).await.unwrap();
    let body = r#"{"event":"user.created","data":{"id":"user_9","email":"a@b.c","created_at":"2021-01-01T00:00:00.000Z","updated_at":"2021-01-01T00:00:00.000Z"}}"#;
    let (status, json) = post(&client(), &r, body, Some(&sign_now(body.as_bytes()))).await;
    assert_eq!(status, 200);
    let expected = workos_sync_core::event::body_hash_id(body.as_bytes());
    assert_eq!(json["id"], expected.as_str());
    let msgs = drain(&r.topology().events_queue()).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        msgs[0]
            .delivery
            .properties
            .message_id()
            .as_ref()
            .unwrap()
            .as_str(),
        expected
    );
    r.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_status_and_queue_nothing() {
    let r = spawn_receiver(ReceiverOptions {
        env: vec![("WORKOS_SYNC__RECEIVER__MAX_BODY_BYTES", "4096")],
        ..Default::default()
    })
    .await
    .unwrap();
    let c = client();
    let body = user_event(
        "event_bad",
        "user.created",
        "user_1",
        "2026-01-01T00:00:00.000Z",
    );
    let b = body.as_bytes();
    let now = now_ms();
    let sig_other = signature::signature_header(b"wrong-secret", now, b);
    let stale = signature::signature_header(TEST_SECRET.as_bytes(), now - 181_000, b);
    let future = signature::signature_header(TEST_SECRET.as_bytes(), now + 181_000, b);
    let cases: Vec<(&str, String, Option<String>, u16, &str)> = vec![
        (
            "bad signature",
            body.clone(),
            Some(sig_other),
            401,
            "bad_signature",
        ),
        ("stale", body.clone(), Some(stale), 401, "stale_timestamp"),
        (
            "future",
            body.clone(),
            Some(future),
            401,
            "future_timestamp",
        ),
        (
            "malformed header",
            body.clone(),
            Some("t=abc,v1=zz".into()),
            400,
            "malformed_signature",
        ),
        (
            "missing header",
            body.clone(),
            None,
            401,
            "missing_signature",
        ),
        (
            "tampered body",
            body.replace("user_1", "user_2"),
            Some(sign_now(b)),
            401,
            "bad_signature",
        ),
        (
            "malformed json",
            "{not json".into(),
            Some(sign_now(b"{not json")),
            400,
            "malformed_body",
        ),
        (
            "json without event",
            "{\"id\":\"x\"}".into(),
            Some(sign_now(b"{\"id\":\"x\"}")),
            400,
            "malformed_body",
        ),
    ];
    for (name, body, sig, want, reason) in cases {
        let (status, json) = post(&c, &r, &body, sig.as_deref()).await;
        assert_eq!(status, want, "{name}: {json}");
        assert_eq!(json["error"], reason, "{name}");
        assert!(json["message"].is_string(), "{name}");
    }

    // Oversize, signed correctly.
    let big = format!(
        "{{\"event\":\"user.created\",\"pad\":\"{}\"}}",
        "x".repeat(5000)
    );
    let (status, json) = post(&c, &r, &big, Some(&sign_now(big.as_bytes()))).await;
    assert_eq!(status, 413, "{json}");
    assert_eq!(json["error"], "too_large");

    // Oversize without Content-Length (chunked): still 413.
    let stream =
        futures_util::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 1000])));
    let resp = c
        .post(&r.url)
        .header("WorkOS-Signature", sign_now(b"x"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);

    // A gzip-encoded body signed over its wire bytes is still refused: we never decode.
    let gz =
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\xae\x05\x00\x43\xbf\xa6\xa3\x02\x00\x00\x00";
    let resp = c
        .post(&r.url)
        .header("Content-Encoding", "gzip")
        .header("WorkOS-Signature", sign_now(gz))
        .body(gz.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let json: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(json["error"], "encoded_body");

    // Identity encoding is fine.
    let ok = user_event(
        "event_ok",
        "user.created",
        "user_1",
        "2026-01-01T00:00:00.000Z",
    );
    let resp = c
        .post(&r.url)
        .header("Content-Encoding", "identity")
        .header("WorkOS-Signature", sign_now(ok.as_bytes()))
        .body(ok.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // Wrong method (any of them, even signed with a body) and unknown path.
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let resp = c
            .request(method.clone(), &r.url)
            .header("WorkOS-Signature", sign_now(ok.as_bytes()))
            .body(ok.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 405, "{method}");
        assert_eq!(resp.headers()["allow"], "POST", "{method}");
    }
    let resp = c
        .post(format!("{}/nope", r.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    // Only the one valid event reached the queue.
    let msgs = drain(&r.topology().events_queue()).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].delivery.data, ok.as_bytes());

    // Every refusal was counted.
    let metrics = c
        .get(format!("{}/metrics", r.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for outcome in [
        "bad_signature",
        "stale_timestamp",
        "too_large",
        "encoded_body",
        "malformed_body",
    ] {
        assert!(
            metrics.contains(&format!(
                "workos_sync_webhooks_total{{outcome=\"{outcome}\"}}"
            )),
            "{outcome} missing from metrics"
        );
    }
    r.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlist_and_trusted_proxy() {
    let r = spawn_receiver(ReceiverOptions {
        env: vec![
            ("WORKOS_SYNC__RECEIVER__ALLOWED_IPS", "3.3.3.0/24"),
            ("WORKOS_SYNC__RECEIVER__TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let c = client();
    let body = user_event(
        "event_ip",
        "user.created",
        "user_1",
        "2026-01-01T00:00:00.000Z",
    );
    // Direct from 127.0.0.1 (a trusted proxy, no XFF): not allowed.
    let (status, json) = post(&c, &r, &body, Some(&sign_now(body.as_bytes()))).await;
    assert_eq!(status, 403, "{json}");
    assert_eq!(json["error"], "forbidden_ip");
    // Through the trusted proxy on behalf of an allowed client.
    let resp = c
        .post(&r.url)
        .header("X-Forwarded-For", "9.9.9.9, 3.3.3.3")
        .header("WorkOS-Signature", sign_now(body.as_bytes()))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Spoofing by prepending an allowed address fails.
    let resp = c
        .post(&r.url)
        .header("X-Forwarded-For", "3.3.3.3, 9.9.9.9")
        .header("WorkOS-Signature", sign_now(body.as_bytes()))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    // A proxy that appends a line of its own instead of extending the client's: both
    // lines are one chain, so the forged first line does not win.
    let resp = c
        .post(&r.url)
        .header("X-Forwarded-For", "3.3.3.3")
        .header("X-Forwarded-For", "9.9.9.9")
        .header("WorkOS-Signature", sign_now(body.as_bytes()))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(queue_len(&r.topology().events_queue()).await.unwrap(), 1);
    r.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let r = spawn_receiver(ReceiverOptions::default()).await.unwrap();
    let c = client();
    let resp = c
        .get(format!("{}/healthz", r.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = c
        .get(format!("{}/readyz", r.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    r.teardown().await.unwrap();
}

/// Broker connection cut: prompt 503s, /readyz fails, and service resumes without a
/// restart. Every 200 corresponds to a message in the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_cut_gives_503_then_recovers() {
    let r = spawn_receiver(ReceiverOptions {
        via_proxy: true,
        env: vec![("WORKOS_SYNC__RECEIVER__CONFIRM_TIMEOUT_MS", "2000")],
        ..Default::default()
    })
    .await
    .unwrap();
    let c = client();
    let proxy = r.proxy.as_ref().unwrap();
    let mut accepted = 0usize;
    let mut n = 0usize;
    let mut send = |c: reqwest::Client, url: String| {
        n += 1;
        let body = user_event(
            &format!("event_{n}"),
            "user.updated",
            "user_1",
            "2026-01-01T00:00:00.000Z",
        );
        async move {
            let started = Instant::now();
            let resp = c
                .post(&url)
                .header("WorkOS-Signature", sign_now(body.as_bytes()))
                .body(body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), started.elapsed())
        }
    };
    for _ in 0..5 {
        let (s, _) = send(c.clone(), r.url.clone()).await;
        assert_eq!(s, 200);
        accepted += 1;
    }

    proxy.cut();
    // The supervisor notices within its check interval; from then on, fast 503s.
    let ready_url = format!("{}/readyz", r.base_url());
    assert!(
        eventually(Duration::from_secs(10), || async {
            c.get(&ready_url).send().await.unwrap().status().as_u16() == 503
        })
        .await,
        "/readyz never failed"
    );
    for _ in 0..5 {
        let (s, took) = send(c.clone(), r.url.clone()).await;
        assert_eq!(s, 503);
        assert!(took < Duration::from_millis(2500), "503 took {took:?}");
    }

    proxy.restore();
    let mut recovered = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let (s, _) = send(c.clone(), r.url.clone()).await;
        if s == 200 {
            accepted += 1;
            recovered = true;
            break;
        }
        assert_eq!(s, 503);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "no 200 after the broker came back");
    for _ in 0..5 {
        let (s, _) = send(c.clone(), r.url.clone()).await;
        assert_eq!(s, 200);
        accepted += 1;
    }
    let resp = c.get(&ready_url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        queue_len(&r.topology().events_queue()).await.unwrap() as usize,
        accepted
    );
    r.teardown().await.unwrap();
}

/// A silent network partition: confirms never come; the answer is 503 bounded by the
/// confirm timeout, and the broker is reconnected after repeated timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackholed_broker_times_out_with_503() {
    let r = spawn_receiver(ReceiverOptions {
        via_proxy: true,
        env: vec![("WORKOS_SYNC__RECEIVER__CONFIRM_TIMEOUT_MS", "1000")],
        ..Default::default()
    })
    .await
    .unwrap();
    let c = client();
    let proxy = r.proxy.as_ref().unwrap();
    proxy.blackhole();
    for i in 0..3 {
        let body = user_event(
            &format!("event_bh{i}"),
            "user.updated",
            "user_1",
            "2026-01-01T00:00:00.000Z",
        );
        let started = Instant::now();
        let resp = c
            .post(&r.url)
            .header("WorkOS-Signature", sign_now(body.as_bytes()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 503);
        assert!(
            started.elapsed() < Duration::from_millis(1800),
            "{:?}",
            started.elapsed()
        );
    }
    proxy.restore();
    let c2 = c.clone();
    let url = r.url.clone();
    let ok = eventually(Duration::from_secs(30), || {
        let c = c2.clone();
        let url = url.clone();
        async move {
            let body = user_event(
                "event_after",
                "user.updated",
                "user_1",
                "2026-01-01T00:00:00.000Z",
            );
            c.post(&url)
                .header("WorkOS-Signature", sign_now(body.as_bytes()))
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16() == 200)
                .unwrap_or(false)
        }
    })
    .await;
    assert!(ok, "never recovered after the partition");
    // Messages whose confirm timed out may or may not have been stored (we answered 503,
    // so WorkOS would resend); the one acknowledged message must be there.
    let msgs = drain(&r.topology().events_queue()).await.unwrap();
    assert!(msgs.iter().any(|m| {
        m.delivery
            .properties
            .message_id()
            .as_ref()
            .unwrap()
            .as_str()
            == "event_after"
    }));
    r.teardown().await.unwrap();
}

/// An unroutable publish (the queue is gone) is returned by the broker: 503, not 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_publish_is_503() {
    let r = spawn_receiver(ReceiverOptions::default()).await.unwrap();
    let conn = workos_sync_testkit::connect().await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.queue_delete(r.topology().events_queue().into(), Default::default())
        .await
        .unwrap();
    let body = user_event(
        "event_lost",
        "user.created",
        "user_1",
        "2026-01-01T00:00:00.000Z",
    );
    let (status, json) = post(&client(), &r, &body, Some(&sign_now(body.as_bytes()))).await;
    assert_eq!(status, 503, "{json}");
    assert_eq!(json["error"], "broker_unavailable");
    conn.close(200, "bye".into()).await.unwrap();
    r.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_requests() {
    let r = spawn_receiver(ReceiverOptions::default()).await.unwrap();
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(1000)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let c = c.clone();
        let url = r.url.clone();
        tasks.push(tokio::spawn(async move {
            let body = user_event(
                &format!("event_c{i}"),
                "user.updated",
                &format!("user_{}", i % 50),
                "2026-01-01T00:00:00.000Z",
            );
            // As WorkOS does: a 503 (connections past the cap are answered so at once)
            // is sent again after its Retry-After.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let status = c
                    .post(&url)
                    .header("WorkOS-Signature", sign_now(body.as_bytes()))
                    .body(body.clone())
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                if status != 503 || std::time::Instant::now() > deadline {
                    break status;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 1000);
    let msgs = drain(&r.topology().events_queue()).await.unwrap();
    assert_eq!(msgs.len(), 1000);
    let ids: std::collections::HashSet<_> = msgs
        .iter()
        .map(|m| {
            m.delivery
                .properties
                .message_id()
                .as_ref()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1000);
    r.teardown().await.unwrap();
}
