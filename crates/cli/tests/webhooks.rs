//! `webhooks setup|status` against WorkOS's emulator (0.14.0, whose endpoints say
//! `enabled` and take `PUT`), and against a fake of the API reference's shapes (`status`,
//! `PATCH`) and its failures (a refused key, a 5xx after retries).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::collections::BTreeSet;

use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};
use workos_sync_testkit::{EMULATOR_API_KEY, Emulator};

fn cli(api: &str, key: &str, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut all = vec![
        ("WORKOS_API_BASE_URL", api),
        ("WORKOS_API_KEY", key),
        ("WORKOS_SYNC__LOG__FORMAT", "text"),
        ("RUST_LOG", "debug"),
    ];
    all.extend_from_slice(env);
    workos_sync_testkit::run_binary(
        env!("CARGO_BIN_EXE_workos-sync"),
        "postgres://postgres@127.0.0.1:5432/unused",
        &all,
        args,
    )
    .unwrap()
}

fn wanted(env: &[(&str, &str)]) -> BTreeSet<String> {
    let mut all = vec![("WORKOS_SYNC__LOG__FORMAT", "text")];
    all.extend_from_slice(env);
    let (code, out, err) = workos_sync_testkit::run_binary(
        env!("CARGO_BIN_EXE_workos-sync"),
        "postgres://postgres@127.0.0.1:5432/unused",
        &all,
        &["event-types", "--json"],
    )
    .unwrap();
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_creates_once_updates_in_place_and_never_logs_the_secret() {
    let emu = Emulator::start().await.unwrap();
    let url = "https://sync.example.com/api/webhooks/workos";
    // Someone else's endpoint: left alone.
    emu.call(
        reqwest::Method::POST,
        "/webhook_endpoints",
        Some(json!({"endpoint_url": "https://other.example/hook", "events": ["user.created"]})),
    )
    .await
    .unwrap();

    // Before: not ready (exit 3), the missing types said.
    let (code, out, _) = cli(
        &emu.url,
        EMULATOR_API_KEY,
        &[],
        &["webhooks", "status", "--url", url],
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("not ready"), "{out}");

    // First run: created with exactly the enabled entities' types; the secret on stdout
    // once, never in a log line.
    let (code, out, err) = cli(
        &emu.url,
        EMULATOR_API_KEY,
        &[],
        &["webhooks", "setup", "--url", url],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("created webhook endpoint"), "{out}");
    let listed = emu
        .call(reqwest::Method::GET, "/webhook_endpoints", None)
        .await
        .unwrap();
    let ours: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["endpoint_url"] == url)
        .collect();
    assert_eq!(ours.len(), 1, "{listed}");
    let events: BTreeSet<String> = serde_json::from_value(ours[0]["events"].clone()).unwrap();
    assert_eq!(events, wanted(&[]));
    let secret_line = out.lines().last().unwrap().trim().to_owned();
    assert!(secret_line.len() >= 32, "{out}");
    assert!(
        !err.contains(&secret_line),
        "the secret reached a log line: {err}"
    );
    // The emulator signs with it: the printed secret is the endpoint's.
    let masked = ours[0]["secret"].as_str().unwrap_or_default();
    assert!(
        secret_line.starts_with(masked.trim_end_matches('*')),
        "{masked} vs the printed secret"
    );

    // Second run: nothing changes, and it says so; no secret printed.
    let (code, out, err) = cli(
        &emu.url,
        EMULATOR_API_KEY,
        &[],
        &["webhooks", "setup", "--url", url],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing changed"), "{out}");
    assert!(!out.contains(&secret_line) && !err.contains(&secret_line));
    let again = emu
        .call(reqwest::Method::GET, "/webhook_endpoints", None)
        .await
        .unwrap();
    assert_eq!(again["data"].as_array().unwrap().len(), 2, "{again}");
    let (code, out, _) = cli(
        &emu.url,
        EMULATOR_API_KEY,
        &[],
        &["webhooks", "status", "--url", url],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok: an enabled endpoint has all"), "{out}");

    // A type removed and the endpoint disabled by hand: status says what is missing,
    // setup puts it back in place (same endpoint, same secret).
    let id = ours[0]["id"].as_str().unwrap().to_owned();
    emu.call(
        reqwest::Method::PUT,
        &format!("/webhook_endpoints/{id}"),
        Some(json!({"events": ["user.created"], "enabled": false})),
    )
    .await
    .unwrap();
    // Without --url every endpoint counts: the other one is enabled but incomplete.
    let (code, out, _) = cli(&emu.url, EMULATOR_API_KEY, &[], &["webhooks", "status"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("(disabled;"), "{out}");
    let (code, out, _) = cli(
        &emu.url,
        EMULATOR_API_KEY,
        &[],
        &["webhooks", "status", "--url", url],
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("missing: ") && out.contains("user.updated"),
        "{out}"
    );
    // Fewer entities wanted: the endpoint follows sync.entities exactly.
    let users_only = [("WORKOS_SYNC__SYNC__ENTITIES", "users")];
    let (code, out, err) = cli(
        &emu.url,
        EMULATOR_API_KEY,
        &users_only,
        &["webhooks", "setup", "--url", url],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("updated webhook endpoint"), "{out}");
    assert!(out.contains("added: user.deleted, user.updated"), "{out}");
    let ep = emu
        .call(
            reqwest::Method::GET,
            &format!("/webhook_endpoints/{id}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(ep["enabled"], true, "{ep}");
    let events: BTreeSet<String> = serde_json::from_value(ep["events"].clone()).unwrap();
    assert_eq!(events, wanted(&users_only));
    // --secret-file for a new endpoint: mode 0600, nothing on stdout.
    let dir = std::env::temp_dir().join(format!("ws-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    let url2 = "https://sync2.example.com/api/webhooks/workos";
    let (code, out, err) = cli(
        &emu.url,
        EMULATOR_API_KEY,
        &[],
        &[
            "webhooks",
            "setup",
            "--url",
            url2,
            "--secret-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let secret = std::fs::read_to_string(&file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(mode, 0o600);
    assert!(secret.trim().len() >= 32);
    assert!(
        !out.contains(secret.trim()) && !err.contains(secret.trim()),
        "{out}{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reference_shapes_and_failures() {
    let server = MockServer::start().await;
    let url = "https://sync.example.com/api/webhooks/workos";
    // The reference's list shape: `status`, the secret in every item, no `object`.
    Mock::given(method("GET"))
        .and(path("/webhook_endpoints"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"object": "webhook_endpoint", "id": "we_1", "endpoint_url": url,
                      "secret": "whsec_listed_secret", "status": "disabled",
                      "events": ["user.created"], "created_at": "2026-01-15T12:00:00.000Z",
                      "updated_at": "2026-01-15T12:00:00.000Z"}],
            "list_metadata": {"before": null, "after": null}})))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/webhook_endpoints/we_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "webhook_endpoint", "id": "we_1", "endpoint_url": url,
            "secret": "whsec_listed_secret", "status": "enabled",
            "events": ["user.created", "user.updated", "user.deleted"]})))
        .expect(1)
        .mount(&server)
        .await;
    let env = [("WORKOS_SYNC__SYNC__ENTITIES", "users")];
    let (code, out, err) = cli(
        &server.uri(),
        "sk_test_x",
        &env,
        &["webhooks", "setup", "--url", url],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("updated webhook endpoint we_1"), "{out}");
    assert!(!out.contains("whsec_listed_secret") && !err.contains("whsec_listed_secret"));
    let patch = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "PATCH")
        .unwrap();
    let body: Value = serde_json::from_slice(&patch.body).unwrap();
    assert_eq!(body["status"], "enabled");

    // A refused key: one line, exit 1.
    let refused = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "Unauthorized"})))
        .mount(&refused)
        .await;
    let (code, _, err) = cli(
        &refused.uri(),
        "sk_test_wrong",
        &[],
        &["webhooks", "status"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("WorkOS refused the API key (401)"), "{err}");
    assert!(!err.contains("sk_test_wrong"), "{err}");
    // A 5xx after the client's retries: said, exit 1.
    let down = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&down)
        .await;
    let (code, _, err) = cli(&down.uri(), "sk_test_x", &[], &["webhooks", "status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("WorkOS unavailable: HTTP 503"), "{err}");
}
