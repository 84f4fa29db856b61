//! `/openapi.json`: the receiver documents what it serves, the webhook under the
//! configured `receiver.path`, with every status it answers; and each documented path
//! is served (no "no such path").

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use serde_json::Value;
use workos_sync_testkit::{ReceiverOptions, spawn_receiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_what_is_served() {
    let r = spawn_receiver(ReceiverOptions {
        env: vec![("WORKOS_SYNC__RECEIVER__PATH", "/hooks/in")],
        ..Default::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(format!("{}/openapi.json", r.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert!(doc.get("servers").is_none(), "no servers base path: {doc}");
    let paths = doc["paths"].as_object().unwrap();
    let mut names: Vec<&str> = paths.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["/healthz", "/hooks/in", "/metrics", "/readyz"],
        "{doc}"
    );
    let hook = &paths["/hooks/in"]["post"];
    let statuses: Vec<&str> = hook["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for s in ["200", "400", "401", "413", "503"] {
        assert!(statuses.contains(&s), "{s} undocumented: {hook}");
    }
    // Every documented GET is served; the webhook answers an unsigned POST with a
    // documented status.
    for (path, item) in paths {
        if item.get("get").is_some() {
            let status = http
                .get(format!("{}{path}", r.base_url()))
                .send()
                .await
                .unwrap()
                .status();
            assert!(status.is_success(), "{path}: {status}");
        }
    }
    let status = http
        .post(format!("{}/hooks/in", r.base_url()))
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert!(statuses.contains(&status.as_str()), "{status} undocumented");
    r.teardown().await.unwrap();
}
