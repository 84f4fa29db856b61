//! The WorkOS client against a fake API serving the documented shapes (SDK fixtures).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::time::{Duration, Instant};

use secrecy::SecretString;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method, path, query_param},
};
use workos_sync_workos_api::{ApiConfig, ApiError, Client};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../tests/fixtures/workos/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn client(base: &str, attempts: u32, timeout: Duration) -> Client {
    let mut cfg = ApiConfig::new(base, SecretString::from("sk_test_client"));
    cfg.max_attempts = attempts;
    cfg.timeout = timeout;
    cfg.backoff_base = Duration::from_millis(10);
    cfg.backoff_max = Duration::from_millis(20);
    Client::new(cfg).unwrap()
}

#[tokio::test]
async fn decodes_the_documented_shapes() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(
            "/user_management/users/user_01E4ZCR3C56J083X43JQXF3JK5",
        ))
        .and(header("authorization", "Bearer sk_test_client"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("user.get-response.sdk-fixture.json"),
            "application/json",
        ))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/user_management/users"))
        .and(query_param("limit", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("users.list-response.sdk-fixture.json"),
            "application/json",
        ))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/events"))
        // The documented filter form (one `events[]` per type) and oldest first.
        .and(query_param("events[]", "user.created"))
        .and(query_param("events[]", "user.updated"))
        .and(query_param("events[]", "user.deleted"))
        .and(query_param("order", "asc"))
        .and(query_param("range_start", "2026-01-01T00:00:00.000Z"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("events.list-response.openapi-example.json"),
            "application/json",
        ))
        .mount(&s)
        .await;
    let c = client(&s.uri(), 1, Duration::from_secs(5));
    let u = c.get_user("user_01E4ZCR3C56J083X43JQXF3JK5").await.unwrap();
    assert_eq!(u.email, "marcelina.davis@example.com");
    let page = c.list_users(None, 100).await.unwrap();
    assert_eq!((page.data.len(), page.after), (1, None));
    let since = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let events = c
        .list_events(workos_sync_workos_api::USER_EVENTS, None, Some(since), 100)
        .await
        .unwrap();
    assert_eq!(events.data.len(), 1);
    assert!(
        events.data[0]
            .get()
            .contains("event_01EHZNVPK3SFK441A1RGBFSHRT")
    );
    assert_eq!(
        events.after.as_deref(),
        Some("event_01EHZNVPK3SFK441A1RGBFSHRT")
    );
}

#[tokio::test]
async fn errors_are_typed() {
    let s = MockServer::start().await;
    // WorkOS's error shape, about the id asked for.
    let not_found =
        fixture("error.user-not-found.node-fixture.json").replace("user_123", "user_404");
    Mock::given(path("/user_management/users/user_404"))
        .respond_with(ResponseTemplate::new(404).set_body_raw(not_found, "application/json"))
        .mount(&s)
        .await;
    // WorkOS's emulator (0.14.0) says the same as `not_found`.
    Mock::given(path("/user_management/users/user_emu404"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(
                serde_json::json!({"code": "not_found", "message": "User not found"}),
            ),
        )
        .mount(&s)
        .await;
    // A JSON 404 without a code is not WorkOS's word.
    Mock::given(path("/user_management/users/user_nocode404"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(serde_json::json!({"message": "Not Found"})),
        )
        .mount(&s)
        .await;
    // 404s that are not WorkOS saying so about this id.
    Mock::given(path("/user_management/users/user_html404"))
        .respond_with(ResponseTemplate::new(404).set_body_raw("<h1>Not Found</h1>", "text/html"))
        .mount(&s)
        .await;
    Mock::given(path("/user_management/users/user_other404"))
        .respond_with(ResponseTemplate::new(404).set_body_raw(
            fixture("error.user-not-found.node-fixture.json"),
            "application/json",
        ))
        .mount(&s)
        .await;
    Mock::given(path("/user_management/users/user_401"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&s)
        .await;
    Mock::given(path("/user_management/users/user_500"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&s)
        .await;
    Mock::given(path("/user_management/users/user_bad"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"id\":"))
        .mount(&s)
        .await;
    Mock::given(path("/user_management/users/user_slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&s)
        .await;
    let c = client(&s.uri(), 2, Duration::from_millis(500));
    assert!(matches!(
        c.get_user("user_404").await,
        Err(ApiError::NotFound)
    ));
    assert!(matches!(
        c.get_user("user_emu404").await,
        Err(ApiError::NotFound)
    ));
    for id in [
        "user_html404",
        "user_other404",
        "user_nocode404",
        "user_unmounted",
    ] {
        assert!(
            matches!(
                c.get_user(id).await,
                Err(ApiError::Refused { status: 404, .. })
            ),
            "{id}"
        );
    }
    assert!(matches!(
        c.get_user("user_401").await,
        Err(ApiError::Unauthorized(401))
    ));
    assert!(matches!(
        c.get_user("user_500").await,
        Err(ApiError::Unavailable(_))
    ));
    assert!(matches!(
        c.get_user("user_bad").await,
        Err(ApiError::BadResponse(_))
    ));
    let t = Instant::now();
    assert!(matches!(
        c.get_user("user_slow").await,
        Err(ApiError::Unavailable(_))
    ));
    assert!(t.elapsed() < Duration::from_secs(3), "timeout not applied");
    // An id that would change the path is never sent.
    assert!(matches!(
        c.get_user("../events").await,
        Err(ApiError::InvalidId(_))
    ));
    assert!(!reqs_contain(&s, "events").await);
    // 500 was retried (2 attempts), 401 was not.
    let reqs = s.received_requests().await.unwrap();
    let count = |p: &str| reqs.iter().filter(|r| r.url.path() == p).count();
    assert_eq!(count("/user_management/users/user_500"), 2);
    assert_eq!(count("/user_management/users/user_401"), 1);
}

async fn reqs_contain(s: &MockServer, needle: &str) -> bool {
    s.received_requests()
        .await
        .unwrap()
        .iter()
        .any(|r| r.url.path().contains(needle))
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_advertised_delay() {
    let s = MockServer::start().await;
    Mock::given(path("/user_management/users/user_rl"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&s)
        .await;
    Mock::given(path("/user_management/users/user_rl"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("user.get-response.sdk-fixture.json"),
            "application/json",
        ))
        .with_priority(2)
        .mount(&s)
        .await;
    let c = client(&s.uri(), 5, Duration::from_secs(5));
    let t = Instant::now();
    c.get_user("user_rl").await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "Retry-After ignored: {:?}",
        t.elapsed()
    );
    // Out of attempts: the rate limit is reported as such.
    Mock::given(path("/user_management/users/user_always"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .mount(&s)
        .await;
    assert!(matches!(
        c.get_user("user_always").await,
        Err(ApiError::RateLimited { .. })
    ));
}

/// A `Retry-After` given as an HTTP date (a proxy in front of WorkOS) is waited out too.
#[tokio::test]
async fn a_retry_after_date_is_honoured() {
    let s = MockServer::start().await;
    let at = std::time::SystemTime::now() + Duration::from_secs(3);
    Mock::given(path("/user_management/users/user_rd"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", httpdate::fmt_http_date(at).as_str()),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s)
        .await;
    Mock::given(path("/user_management/users/user_rd"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("user.get-response.sdk-fixture.json"),
            "application/json",
        ))
        .with_priority(2)
        .mount(&s)
        .await;
    let c = client(&s.uri(), 5, Duration::from_secs(5));
    let t = Instant::now();
    c.get_user("user_rd").await.unwrap();
    // The date has whole seconds: 2 to 3 s from now, where the backoff alone is ~10 ms.
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn client_side_budget_paces_requests() {
    let s = MockServer::start().await;
    Mock::given(path("/user_management/users/user_b"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("user.get-response.sdk-fixture.json"),
            "application/json",
        ))
        .mount(&s)
        .await;
    let mut cfg = ApiConfig::new(s.uri(), SecretString::from("sk"));
    cfg.reads_per_second = 10;
    let c = Client::new(cfg).unwrap();
    let t = Instant::now();
    for _ in 0..25 {
        c.get_user("user_b").await.unwrap();
    }
    // 10/s with a burst of 10: 25 calls need at least ~1.5 s.
    assert!(
        t.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        t.elapsed()
    );
}
