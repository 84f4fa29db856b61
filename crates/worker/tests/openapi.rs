//! `/openapi.json`: the worker documents lazy sync of each entity (the user's at
//! `/v1/users/{id}/sync`, no `servers` base path) behind the bearer scheme, and its
//! probes; every documented path is served.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use serde_json::Value;
use workos_sync_testkit::{fresh_database, spawn_worker, unique_prefix};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_what_is_served() {
    let db = fresh_database().await.unwrap();
    let prefix = unique_prefix();
    let w = spawn_worker(
        &prefix,
        &db.url,
        &[("WORKOS_SYNC__WORKER__API_TOKEN", "tok_openapi")],
    )
    .await
    .unwrap();
    let base = format!("http://{}", w.http_addr);
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc.get("servers").is_none(), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    let mut names: Vec<&str> = paths.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "/healthz",
            "/metrics",
            "/readyz",
            "/v1/directory_users/{id}/sync",
            "/v1/organizations/{id}/sync",
            "/v1/users/{id}/sync",
        ],
        "{doc}"
    );
    let user = &paths["/v1/users/{id}/sync"]["post"];
    // One `id` parameter: the one the handler reads (not a second, inferred one).
    let params = user["parameters"].as_array().unwrap();
    assert_eq!(params.len(), 1, "{user}");
    assert_eq!(params[0]["name"], "id");
    assert!(params[0]["schema"]["pattern"].is_string(), "{user}");
    assert_eq!(
        user["security"][0]["bearer"],
        serde_json::json!([]),
        "{user}"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let statuses: Vec<&str> = user["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // Each documented path is served: GETs answer 2xx, a lazy sync of a bad id 400.
    for (path, item) in paths {
        if item.get("get").is_some() {
            let status = http
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .status();
            assert!(status.is_success(), "{path}: {status}");
        } else {
            let status = http
                .post(format!("{base}{}", path.replace("{id}", "not-an-id")))
                .bearer_auth("tok_openapi")
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status.as_u16(), 400, "{path}");
            assert!(statuses.contains(&"400"));
        }
    }
    w.shutdown().await;
    db.teardown().await.unwrap();
}
