//! Contract tests against WorkOS's own emulator (`workos emulate`, npm workos@0.14.0):
//! webhooks it signs and delivers reach the table through the receiver and the worker;
//! lazy sync, backfill and reconcile read its API. The real Postgres and RabbitMQ.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::time::Duration;

use serde_json::{Value, json};
use workos_sync_core::Entity;
use workos_sync_pull as sync;
use workos_sync_testkit::{EMULATOR_API_KEY, Emulator, Stack, TEST_SECRET, eventually};
use workos_sync_workos_api::{ApiConfig, Client};

async fn lazy_sync(c: &reqwest::Client, addr: std::net::SocketAddr, id: &str) -> (u16, Value) {
    let resp = c
        .post(format!("http://{addr}/v1/users/{id}/sync"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

/// The emulator and a stack whose worker reads the emulator's API (lazy sync token
/// `tok`, reconciler off).
async fn start() -> (Emulator, Stack) {
    let emu = Emulator::start().await.unwrap();
    let stack = Stack::start(&[
        ("WORKOS_API_KEY", EMULATOR_API_KEY),
        ("WORKOS_API_BASE_URL", &emu.url),
        ("WORKOS_SYNC__WORKER__API_TOKEN", "tok"),
        ("WORKOS_SYNC__RECONCILE__INTERVAL_SECS", "0"),
    ])
    .await
    .unwrap();
    (emu, stack)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_emulator_s_webhooks_and_api_keep_the_table_in_step() {
    let (emu, stack) = start().await;
    let (db, r, w) = (&stack.db, &stack.receiver, &stack.worker);
    let store = db.store.clone();

    // 1. Webhooks, signed by the emulator (t in seconds) and delivered at once.
    let hook = emu.add_webhook(&r.url, TEST_SECRET).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let u = emu
            .create_user(serde_json::json!({"email": &format!("emu{i}@example.com"), "first_name": "Ada", "last_name": "Tester", "email_verified": true}))
            .await
            .unwrap();
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    emu.update_user(&ids[1], json!({"first_name": "Grace"}))
        .await
        .unwrap();
    emu.delete_user(&ids[4]).await.unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            let rows = store.all_users().await.unwrap();
            rows.len() == 4
                && rows
                    .iter()
                    .any(|r| r.id == ids[1] && r.first_name.as_deref() == Some("Grace"))
                && store.is_tombstoned(&ids[4]).await.unwrap()
        })
        .await,
        "webhooks did not reach the table: {:?}",
        store.all_users().await.unwrap()
    );

    // 2. Lazy sync reads the emulator's user.
    let c = reqwest::Client::new();
    let (status, row) = lazy_sync(&c, w.http_addr, &ids[0]).await;
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["email"], "emu0@example.com");
    // With webhooks off, a user deleted in the emulator is learnt by lazy sync: the
    // emulator's 404 says `{"code":"not_found"}` where the API reference says
    // `entity_not_found`; both are WorkOS's word that the object is gone (a 404 without
    // that JSON is not: see workos-api's client tests).
    emu.set_webhook_enabled(&hook, false).await.unwrap();
    emu.delete_user(&ids[0]).await.unwrap();
    let (status, body) = lazy_sync(&c, w.http_addr, &ids[0]).await;
    assert_eq!(status, 404, "{body}");
    assert!(store.get_user(&ids[0]).await.unwrap().is_none());
    assert!(store.is_tombstoned(&ids[0]).await.unwrap());

    // 3. Backfill pages through the emulator's users (two pages of 100).
    for i in 0..120 {
        emu.create_user(serde_json::json!({"email": &format!("bulk{i:03}@example.com"), "first_name": "Bulk", "last_name": "Tester", "email_verified": true}))
            .await
            .unwrap();
    }
    let mut cfg = ApiConfig::new(&emu.url, EMULATOR_API_KEY.to_owned().into());
    cfg.backoff_base = Duration::from_millis(10);
    let api = Client::new(cfg).unwrap();
    let report = sync::backfill(&api, &db.store, users_only(false, false), |_| {})
        .await
        .unwrap();
    let users = report.of(workos_sync_core::Entity::Users);
    assert_eq!((report.pages, users.fetched, users.created), (2, 123, 120));
    // The 3 listed and the 120 made (the user lazy sync learnt was deleted is gone).
    assert_eq!(store.all_users().await.unwrap().len(), 123);

    // 4. Reconcile: the emulator answers newest first unless asked; asked oldest first,
    // the cursor ends at the newest event and a later run finds exactly what is new.
    let request = sync::ReconcileRequest::from_cursor(Duration::from_secs(5));
    let first = sync::reconcile_once(&api, &w.broker, &db.store, &request)
        .await
        .unwrap()
        .unwrap();
    // 125 user.created, one user.updated, two user.deleted.
    assert_eq!(first.events, 128, "{first:?}");
    let again = sync::reconcile_once(&api, &w.broker, &db.store, &request)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.events, 0, "{again:?}");
    let late = emu.create_user(serde_json::json!({"email": "late@example.com", "first_name": "Late", "last_name": "Tester", "email_verified": true})).await.unwrap();
    let late_id = late["id"].as_str().unwrap().to_owned();
    let third = sync::reconcile_once(&api, &w.broker, &db.store, &request)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.events, 1, "{third:?}");
    assert!(
        eventually(Duration::from_secs(20), || async {
            store.get_user(&late_id).await.unwrap().is_some()
        })
        .await,
        "the reconciled event was not applied"
    );
    stack.teardown().await.unwrap();
}

/// Backfill options for users alone (the fake serves no other list).
fn users_only(restart: bool, dry_run: bool) -> sync::BackfillOptions {
    sync::BackfillOptions {
        restart,
        dry_run,
        only: Some(workos_sync_core::Entity::Users),
    }
}

/// `POST` (or another method) to the emulator, the JSON answer.
async fn emu_call(
    emu: &Emulator,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    emu.call(method, path, body).await.unwrap()
}

/// Organizations, their domains and memberships: webhooks, lazy sync, backfill and
/// reconcile against WorkOS's emulator reach the same tables, with every status.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn organizations_memberships_and_domains_from_the_emulator() {
    use reqwest::Method as M;
    let (emu, stack) = start().await;
    let (db, r, w) = (&stack.db, &stack.receiver, &stack.worker);
    let store = db.store.clone();
    let hook = emu.add_webhook(&r.url, TEST_SECRET).await.unwrap();

    // 1. Webhooks: two organizations with domains, three users, memberships in every
    // status; one membership deleted, one organization deleted.
    let mut orgs = Vec::new();
    for (i, domain) in ["acme.test", "globex.test"].iter().enumerate() {
        let o = emu_call(&emu, M::POST, "/organizations", Some(json!({
            "name": format!("Org {i}"), "external_id": format!("ext-{i}"), "metadata": {"tier": "gold"},
            "domain_data": [{"domain": domain, "state": "verified"}]}))).await;
        orgs.push(o["id"].as_str().unwrap().to_owned());
    }
    let mut users = Vec::new();
    for i in 0..3 {
        let u = emu
            .create_user(serde_json::json!({"email": &format!("member{i}@example.com"), "first_name": "Member", "last_name": "Tester", "email_verified": true}))
            .await
            .unwrap();
        users.push(u["id"].as_str().unwrap().to_owned());
    }
    let mut ms = Vec::new();
    for (u, o) in [(0, 0), (1, 0), (2, 1), (0, 1)] {
        let m = emu_call(
            &emu,
            M::POST,
            "/user_management/organization_memberships",
            Some(json!({
            "organization_id": orgs[o], "user_id": users[u], "role_slug": "member"})),
        )
        .await;
        ms.push(m["id"].as_str().unwrap().to_owned());
    }
    emu_call(
        &emu,
        M::PUT,
        &format!(
            "/user_management/organization_memberships/{}/deactivate",
            ms[1]
        ),
        None,
    )
    .await;
    emu_call(
        &emu,
        M::PUT,
        &format!("/organizations/{}", orgs[0]),
        Some(json!({"name": "Org 0 renamed"})),
    )
    .await;
    emu_call(
        &emu,
        M::DELETE,
        &format!("/user_management/organization_memberships/{}", ms[3]),
        None,
    )
    .await;
    emu_call(
        &emu,
        M::DELETE,
        &format!("/organizations/{}", orgs[1]),
        None,
    )
    .await;
    let settled = || async {
        let o = store.get_organization(&orgs[0]).await.unwrap();
        let m = store.all_memberships().await.unwrap();
        o.is_some_and(|o| o.name == "Org 0 renamed")
            && store.get_organization(&orgs[1]).await.unwrap().is_none()
            && store.domains_of(&orgs[0]).await.unwrap().len() == 1
            && m.len() == 2
            && m.iter().any(|m| m.id == ms[1] && m.status == "inactive")
    };
    assert!(
        eventually(Duration::from_secs(20), settled).await,
        "webhooks: {:?} {:?}",
        store.all_organizations().await.unwrap(),
        store.all_memberships().await.unwrap()
    );
    assert!(
        store
            .is_tombstoned_in(workos_sync_core::Entity::Organizations, &orgs[1])
            .await
            .unwrap()
    );
    assert!(store.domains_of(&orgs[1]).await.unwrap().is_empty());
    let leaked = db
        .exec("SELECT 1 FROM organization_domains d WHERE row_to_json(d)::text ILIKE '%verification_token%'")
        .await
        .unwrap();
    assert_eq!(leaked, 0);

    // 2. Lazy sync of a user brings its memberships (webhooks off: only the API says).
    emu.set_webhook_enabled(&hook, false).await.unwrap();
    emu_call(
        &emu,
        M::PUT,
        &format!(
            "/user_management/organization_memberships/{}/reactivate",
            ms[1]
        ),
        None,
    )
    .await;
    let c = reqwest::Client::new();
    let (status, row) = lazy_sync(&c, w.http_addr, &users[1]).await;
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["memberships"][0]["id"], ms[1].as_str(), "{row}");
    assert_eq!(row["memberships"][0]["status"], "active", "{row}");
    let org_sync = c
        .post(format!(
            "http://{}/v1/organizations/{}/sync",
            w.http_addr, orgs[0]
        ))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(org_sync.status(), 200);
    let org_row: Value = org_sync.json().await.unwrap();
    assert_eq!(org_row["domains"][0]["domain"], "acme.test", "{org_row}");

    // 3. Backfill into emptied tables: the same rows, inactive memberships included.
    emu_call(
        &emu,
        M::PUT,
        &format!(
            "/user_management/organization_memberships/{}/deactivate",
            ms[0]
        ),
        None,
    )
    .await;
    db.exec("TRUNCATE organizations, organization_domains, organization_memberships")
        .await
        .unwrap();
    let mut cfg = ApiConfig::new(&emu.url, EMULATOR_API_KEY.to_owned().into());
    cfg.backoff_base = Duration::from_millis(10);
    let api = Client::new(cfg).unwrap();
    let opts = sync::BackfillOptions {
        restart: false,
        dry_run: false,
        only: None,
    };
    let report = sync::backfill(&api, &db.store, opts, |_| {}).await.unwrap();
    let m = report.of(workos_sync_core::Entity::OrganizationMemberships);
    assert_eq!((m.fetched, m.created), (2, 2), "{report:?}");
    let rows = store.all_memberships().await.unwrap();
    assert!(
        rows.iter().any(|r| r.id == ms[0] && r.status == "inactive"),
        "{rows:?}"
    );
    assert_eq!(store.domains_of(&orgs[0]).await.unwrap().len(), 1);
    // The deleted organization stays deleted (its tombstone outlives the emptied tables).
    assert!(store.get_organization(&orgs[1]).await.unwrap().is_none());

    // 4. Reconcile: the Events API's organization and membership events, through the
    // queue, bring the emptied tables back too.
    db.exec(
        "TRUNCATE organizations, organization_domains, organization_memberships, processed_events",
    )
    .await
    .unwrap();
    let request = sync::ReconcileRequest::from_cursor(Duration::from_secs(5));
    let rep = sync::reconcile_once(&api, &w.broker, &db.store, &request)
        .await
        .unwrap()
        .unwrap();
    assert!(rep.events > 10, "{rep:?}");
    assert!(
        eventually(Duration::from_secs(20), || async {
            let m = store.all_memberships().await.unwrap();
            store
                .get_organization(&orgs[0])
                .await
                .unwrap()
                .is_some_and(|o| o.name == "Org 0 renamed")
                && m.len() == 2
                && store.get_organization(&orgs[1]).await.unwrap().is_none()
        })
        .await,
        "reconcile: {:?}",
        store.all_memberships().await.unwrap()
    );
    stack.teardown().await.unwrap();
}

/// True when `table` has the row `id`.
async fn has_row(db: &workos_sync_testkit::TestDb, table: &str, id: &str) -> bool {
    !db.rows(&format!("SELECT 1 FROM {table} WHERE id = '{id}'"))
        .await
        .unwrap()
        .is_empty()
}

/// The emulator's list at `path` (every page, oldest first): id → object.
async fn emu_list(emu: &Emulator, path: &str) -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("{path}?limit=100&order=asc&after={a}"),
            None => format!("{path}?limit=100&order=asc"),
        };
        let page = emu_call(emu, reqwest::Method::GET, &q, None).await;
        for v in page["data"].as_array().unwrap() {
            out.insert(v["id"].as_str().unwrap().to_owned(), v.clone());
        }
        match page["list_metadata"]["after"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => return out,
        }
    }
}

/// Id → (state, and the connection's domain names) of a table.
async fn stored(
    db: &workos_sync_testkit::TestDb,
    table: &str,
) -> std::collections::BTreeMap<String, Value> {
    let domains = if table == "connections" {
        "domains"
    } else {
        "NULL::text[] AS domains"
    };
    db.rows(&format!("SELECT id, state, {domains} FROM {table}"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                json!([r["state"], r["domains"]]),
            )
        })
        .collect()
}

/// Id → (state, domain names) of the emulator's objects, as [`stored`] shows them.
fn expected(
    objects: &std::collections::BTreeMap<String, Value>,
    connections: bool,
) -> std::collections::BTreeMap<String, Value> {
    objects
        .iter()
        .map(|(id, v)| {
            let domains = if connections {
                json!(
                    v["domains"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d["domain"].clone())
                        .collect::<Vec<_>>()
                )
            } else {
                Value::Null
            };
            (id.clone(), json!([v["state"], domains]))
        })
        .collect()
}

/// Invitations and SSO connections from WorkOS's emulator: its signed webhooks
/// (`invitation.created|accepted|revoked|resent`; for connections the emulator's
/// `connection.created` and `connection.deleted`) reach tables equal to its lists, and
/// so do a backfill into emptied tables; verify finds them in step; no token or accept
/// URL it sends (in answers and in its events) reaches any table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invitations_and_connections_from_the_emulator() {
    use reqwest::Method as M;
    let (emu, stack) = start().await;
    let (db, r) = (&stack.db, &stack.receiver);
    emu.add_webhook(&r.url, TEST_SECRET).await.unwrap();
    let org = emu_call(
        &emu,
        M::POST,
        "/organizations",
        Some(json!({"name": "Invitors"})),
    )
    .await;
    let org = org["id"].as_str().unwrap().to_owned();

    // Each step waits for the previous one's row, so that its newer version wins (the
    // emulator's webhooks are unordered).
    let mut invitations = Vec::new();
    for (i, with_org) in [true, true, true, false].into_iter().enumerate() {
        let mut body = json!({"email": format!("invitee{i}@example.com"), "role_slug": "member"});
        if with_org {
            body["organization_id"] = json!(org);
        }
        let v = emu_call(&emu, M::POST, "/user_management/invitations", Some(body)).await;
        assert!(
            v["token"].is_string(),
            "the emulator answers with the token: {v}"
        );
        invitations.push(v["id"].as_str().unwrap().to_owned());
    }
    for id in &invitations {
        assert!(
            eventually(Duration::from_secs(20), || has_row(db, "invitations", id)).await,
            "{id} not applied"
        );
    }
    for (action, id) in [
        ("accept", &invitations[0]),
        ("revoke", &invitations[1]),
        ("resend", &invitations[2]),
    ] {
        emu_call(
            &emu,
            M::POST,
            &format!("/user_management/invitations/{id}/{action}"),
            None,
        )
        .await;
    }
    let mut connections = Vec::new();
    for (i, ty) in ["OktaSAML", "GoogleOAuth", "GenericOIDC"]
        .into_iter()
        .enumerate()
    {
        let v = emu_call(
            &emu,
            M::POST,
            "/connections",
            Some(json!({
                "organization_id": org, "name": format!("SSO {i}"), "connection_type": ty,
                "domains": [format!("sso{i}.example"), format!("alt{i}.example")]
            })),
        )
        .await;
        connections.push(v["id"].as_str().unwrap().to_owned());
    }
    let gone = connections[2].clone();
    assert!(
        eventually(Duration::from_secs(20), || has_row(
            db,
            "connections",
            &gone
        ))
        .await
    );
    emu_call(&emu, M::DELETE, &format!("/connections/{gone}"), None).await;

    let want_invitations = expected(&emu_list(&emu, "/user_management/invitations").await, false);
    let want_connections = expected(&emu_list(&emu, "/connections").await, true);
    assert_eq!(want_invitations.len(), 4);
    assert_eq!(want_connections.len(), 2);
    let in_step = || async {
        stored(db, "invitations").await == want_invitations
            && stored(db, "connections").await == want_connections
    };
    assert!(
        eventually(Duration::from_secs(20), in_step).await,
        "webhooks: {:?} {:?}",
        stored(db, "invitations").await,
        stored(db, "connections").await
    );
    let t = db
        .store
        .tombstones(Some(Entity::Connections), 10)
        .await
        .unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].id, gone);

    // Backfill from the emulator's lists into emptied tables, then verify.
    db.exec("TRUNCATE invitations, connections").await.unwrap();
    let api = Client::new(ApiConfig::new(&emu.url, EMULATOR_API_KEY.to_owned().into())).unwrap();
    for e in [Entity::Invitations, Entity::Connections] {
        let opts = sync::BackfillOptions {
            restart: true,
            dry_run: false,
            only: Some(e),
        };
        sync::backfill(&api, &db.store, opts, |_| {}).await.unwrap();
        let check = sync::verify(&api, &db.store, Some(e), None, |_| {})
            .await
            .unwrap();
        assert!(!check.has_drift(), "{e}: {check:?}");
    }
    assert_eq!(stored(db, "invitations").await, want_invitations);
    assert_eq!(stored(db, "connections").await, want_connections);

    // No token, nor its accept URL, in any table.
    let tokens: Vec<String> = emu_list(&emu, "/user_management/invitations")
        .await
        .values()
        .map(|v| v["token"].as_str().unwrap().to_owned())
        .collect();
    let pattern = format!(
        "(accept_invitation_url|accept\\?token|{})",
        tokens.join("|")
    );
    let leaked = db.rows_matching(&pattern).await.unwrap();
    assert!(leaked.is_empty(), "{leaked:#?}");
    stack.teardown().await.unwrap();
}
