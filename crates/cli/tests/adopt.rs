//! Adoption into an application's existing database (real Postgres and RabbitMQ,
//! WorkOS's emulator for the backfill): a guide-following application's camelCase
//! `users` table with rows and a `posts` table referencing it `ON DELETE RESTRICT`;
//! `migrate` refuses it unchanged, `migrate --adopt` keeps it; backfill and webhooks
//! keep the application's columns and posts; soft and hard deletes. And two
//! installations in two schemas of one database, each with its own stack.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on setup failures

use std::{process::Command, time::Duration};

use serde_json::Value;
use workos_sync_testkit::{
    EMULATOR_API_KEY, Emulator, ReceiverOptions, TestDb, empty_database, eventually, publish_event,
    queue_len, spawn_receiver, spawn_worker, test_broker, unique_prefix, user_event,
};

fn cli(db_url: &str, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut all = vec![("WORKOS_SYNC__LOG__FORMAT", "text")];
    all.extend_from_slice(env);
    workos_sync_testkit::run_binary(env!("CARGO_BIN_EXE_workos-sync"), db_url, &all, args).unwrap()
}

/// The whole schema as `pg_dump` prints it (its per-run `\restrict` key left out).
fn dump(db: &TestDb) -> String {
    let name = db.url.rsplit('/').next().unwrap();
    let out = Command::new("pg_dump")
        .args(["--schema-only", "-h", "127.0.0.1", "-U", "postgres", name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn query(db: &TestDb, sql: &str) -> Vec<Value> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        j: Value,
    }
    let mut conn =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&db.url)
            .await
            .unwrap();
    let rows: Vec<Row> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(format!("SELECT to_jsonb(t) AS j FROM ({sql}) t")),
        &mut conn,
    )
    .await
    .unwrap();
    rows.into_iter().map(|r| r.j).collect()
}

async fn one(db: &TestDb, sql: &str) -> Value {
    let mut rows = query(db, sql).await;
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows.remove(0)
}

/// The application as the WorkOS sync guide has it (Prisma: camelCase, `timestamp(3)`,
/// `updatedAt` without a default), with two users whose ids are WorkOS's, and posts.
async fn guide_application(db: &TestDb, ada: &str, bob: &str) {
    db.exec(
        r#"CREATE TABLE users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT,
            usertag TEXT UNIQUE,
            "avatarUrl" TEXT,
            bio TEXT,
            details JSONB,
            "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
            "updatedAt" TIMESTAMP(3) NOT NULL
        )"#,
    )
    .await
    .unwrap();
    db.exec(
        r#"CREATE TABLE posts (
            id SERIAL PRIMARY KEY,
            "authorId" TEXT NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
            title TEXT NOT NULL
        )"#,
    )
    .await
    .unwrap();
    db.exec(&format!(
        r#"INSERT INTO users (id, email, name, usertag, "avatarUrl", bio, details, "createdAt", "updatedAt") VALUES
           ('{ada}', 'ada.old@example.com', 'Ada Old', 'ada', 'https://old/ada.png', 'Ada writes', '{{"theme": "dark"}}', '2025-01-01', '2025-01-02'),
           ('{bob}', 'bob.old@example.com', 'Bob Old', 'bobby', NULL, 'Bob reads', '{{"theme": "light"}}', '2025-01-01', '2025-01-02')"#
    ))
    .await
    .unwrap();
    db.exec(&format!(
        r#"INSERT INTO posts ("authorId", title) VALUES ('{ada}', 'first'), ('{ada}', 'second'), ('{bob}', 'third')"#
    ))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guide_following_application_is_adopted_and_keeps_its_data() {
    let emu = Emulator::start().await.unwrap();
    let mut ids = Vec::new();
    for (email, first) in [
        ("ada@example.com", "Ada"),
        ("bob@example.com", "Bob"),
        ("cy@example.com", "Cy"),
        ("ada@other.example", "Ada"),
    ] {
        let u = emu.create_user(serde_json::json!({"email": email, "first_name": first, "last_name": "Tester", "email_verified": true})).await.unwrap();
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    let (ada, bob, cy, ada2) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let db = empty_database().await.unwrap();
    guide_application(&db, ada, bob).await;
    let before = dump(&db);

    // 1. Without --adopt: refused in one line, nothing changed.
    let (code, out, err) = cli(&db.url, &[], &["migrate"]);
    assert_ne!(code, 0, "{out}");
    let line = err.trim();
    assert_eq!(line.lines().count(), 1, "{err}");
    assert!(line.contains("public.users"), "{line}");
    assert!(line.contains("--adopt"), "{line}");
    assert!(line.contains("database.schema"), "{line}");
    assert_eq!(dump(&db), before, "migrate changed the schema");

    // 2. --adopt --dry-run prints the SQL and changes nothing.
    let (code, out, err) = cli(&db.url, &[], &["migrate", "--adopt", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(r#"ALTER TABLE users ADD COLUMN "workos_updated_at" TIMESTAMPTZ"#),
        "{out}"
    );
    assert!(
        out.contains(r#"ALTER TABLE users ADD COLUMN "deleted_at" TIMESTAMPTZ"#),
        "{out}"
    );
    assert!(
        !out.contains(r#""avatar_url""#),
        "avatarUrl is recognised: {out}"
    );
    assert!(!out.contains("CREATE TABLE users"), "{out}");
    assert_eq!(dump(&db), before, "a dry run changed the schema");

    // 3. --adopt: the table, its rows, keys and columns stay; only ours are added.
    let (code, out, err) = cli(&db.url, &[], &["migrate", "--adopt"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("adopted"), "{out}");
    let (code, out, _) = cli(&db.url, &[], &["migrate"]);
    assert_eq!(code, 0);
    assert!(out.contains("up to date"), "{out}");
    let a = one(&db, &format!("SELECT * FROM users WHERE id = '{ada}'")).await;
    assert_eq!(a["bio"], "Ada writes");
    assert_eq!(a["avatarUrl"], "https://old/ada.png");
    assert!(a["workos_updated_at"].is_null());
    assert!(
        a.get("raw").is_none(),
        "an adopted table gets raw only if asked: {a}"
    );
    let posts = one(&db, "SELECT count(*) AS n FROM posts").await;
    assert_eq!(posts["n"], 3);

    // 4. Backfill from WorkOS: the WorkOS columns overwritten (no version yet), the
    //    application's kept; a user new to the table is inserted with a fresh usertag
    //    (the taken `ada` is not reused) and the timestamps Prisma gives no default.
    let api = [
        ("WORKOS_API_KEY", EMULATOR_API_KEY),
        ("WORKOS_API_BASE_URL", emu.url.as_str()),
    ];
    let (code, out, err) = cli(&db.url, &api, &["backfill", "--only", "users"]);
    assert_eq!(code, 0, "{out}{err}");
    let a = one(&db, &format!("SELECT * FROM users WHERE id = '{ada}'")).await;
    assert_eq!(a["email"], "ada@example.com");
    assert_eq!(a["first_name"], "Ada");
    assert!(!a["workos_updated_at"].is_null());
    assert_eq!(
        (&a["bio"], &a["usertag"]),
        (&Value::from("Ada writes"), &Value::from("ada"))
    );
    assert_eq!(a["details"]["theme"], "dark");
    let c = one(&db, &format!("SELECT * FROM users WHERE id = '{cy}'")).await;
    assert_eq!(
        (&c["usertag"], &c["bio"]),
        (&Value::from("cy"), &Value::Null)
    );
    assert!(!c["updatedAt"].is_null() && !c["createdAt"].is_null());
    let a2 = one(&db, &format!("SELECT * FROM users WHERE id = '{ada2}'")).await;
    assert_eq!(a2["usertag"], "ada2");

    // 5. Webhooks through a worker in soft-delete mode.
    let prefix = unique_prefix();
    let broker = test_broker(&prefix).await.unwrap();
    let soft = [("WORKOS_SYNC__SYNC__USER_DELETE", "soft")];
    let w = spawn_worker(&prefix, &db.url, &soft).await.unwrap();
    let later = "2030-01-01T00:00:00.000Z";
    let body = user_event("evt_ada_up", "user.updated", ada, later);
    publish_event(&broker, "evt_ada_up", "user.updated", body.as_bytes())
        .await
        .unwrap();
    let store = db.store.clone();
    assert!(
        eventually(Duration::from_secs(20), || async {
            store.get_user(ada).await.unwrap().unwrap().name.as_deref() == Some("Test User")
        })
        .await
    );
    let a = one(&db, &format!("SELECT * FROM users WHERE id = '{ada}'")).await;
    assert_eq!(
        (&a["bio"], &a["usertag"]),
        (&Value::from("Ada writes"), &Value::from("ada"))
    );
    let body = user_event("evt_ada_del", "user.deleted", ada, later);
    publish_event(&broker, "evt_ada_del", "user.deleted", body.as_bytes())
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            store.is_tombstoned(ada).await.unwrap()
        })
        .await
    );
    let a = one(&db, &format!("SELECT * FROM users WHERE id = '{ada}'")).await;
    assert!(!a["deleted_at"].is_null(), "{a}");
    // WorkOS's personal data cleared (email NOT NULL UNIQUE here: a placeholder that
    // is never deliverable); the application's own columns and the posts stay.
    assert_eq!(a["email"], format!("{ada}@deleted.invalid"));
    for c in ["name", "avatarUrl", "first_name", "last_name", "locale"] {
        assert!(a[c].is_null(), "{c}: {a}");
    }
    assert_eq!(a["metadata"], serde_json::json!({}));
    assert_eq!(
        (&a["bio"], &a["usertag"]),
        (&Value::from("Ada writes"), &Value::from("ada"))
    );
    assert_eq!(a["details"]["theme"], "dark");
    let posts = one(
        &db,
        &format!(r#"SELECT count(*) AS n FROM posts WHERE "authorId" = '{ada}'"#),
    )
    .await;
    assert_eq!(posts["n"], 2);
    // Nothing revives it: a newer update is recorded as tombstoned and changes nothing.
    let body = user_event(
        "evt_ada_late",
        "user.updated",
        ada,
        "2031-01-01T00:00:00.000Z",
    );
    publish_event(&broker, "evt_ada_late", "user.updated", body.as_bytes())
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            !query(&db, "SELECT 1 FROM processed_events WHERE event_id = 'evt_ada_late' AND outcome = 'tombstoned'")
                .await
                .is_empty()
        })
        .await
    );
    assert_eq!(
        one(&db, &format!("SELECT * FROM users WHERE id = '{ada}'")).await,
        a
    );
    w.shutdown().await;

    // 6. Hard deletes: blocked by the posts' RESTRICT key, straight to the DLQ (no
    //    retry tier) naming the constraint and the setting; a user without posts goes.
    let w = spawn_worker(&prefix, &db.url, &[]).await.unwrap();
    let body = user_event("evt_bob_del", "user.deleted", bob, later);
    publish_event(&broker, "evt_bob_del", "user.deleted", body.as_bytes())
        .await
        .unwrap();
    let dead_q = broker.topology().dead_queue();
    assert!(
        eventually(Duration::from_secs(20), || async {
            queue_len(&dead_q).await.unwrap() == 1
        })
        .await
    );
    let dead = workos_sync_queue::dlq::list(&broker).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].id.as_str(), dead[0].reason.as_str()),
        ("evt_bob_del", "delete_blocked")
    );
    assert_eq!(dead[0].attempts, 1);
    assert!(
        dead[0].error.contains("posts_authorId_fkey"),
        "{}",
        dead[0].error
    );
    assert!(
        dead[0].error.contains("sync.user_delete"),
        "{}",
        dead[0].error
    );
    for q in broker.topology().retry_queues() {
        assert_eq!(queue_len(&q).await.unwrap(), 0, "{q}");
    }
    assert!(db.store.get_user(bob).await.unwrap().is_some());
    assert!(!db.store.is_tombstoned(bob).await.unwrap());
    let body = user_event("evt_cy_del", "user.deleted", cy, later);
    publish_event(&broker, "evt_cy_del", "user.deleted", body.as_bytes())
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            store.get_user(cy).await.unwrap().is_none()
        })
        .await
    );
    assert!(db.store.is_tombstoned(cy).await.unwrap());
    w.shutdown().await;

    // 7. The raw object, asked for (database.users_raw): `migrate` adds users.raw, and
    //    WorkOS's user object lands there at its next version; without the setting, a
    //    later `migrate` never added it (step 3).
    let (code, out, err) = cli(
        &db.url,
        &[("WORKOS_SYNC__DATABASE__USERS_RAW", "true")],
        &["migrate"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("added users columns: raw"), "{out}");
    emu.update_user(ada2, serde_json::json!({"first_name": "Adabelle"}))
        .await
        .unwrap();
    let (code, out, err) = cli(&db.url, &api, &["backfill", "--only", "users"]);
    assert_eq!(code, 0, "{out}{err}");
    let a2 = one(&db, &format!("SELECT * FROM users WHERE id = '{ada2}'")).await;
    assert_eq!(a2["raw"]["object"], "user", "{a2}");
    assert_eq!(a2["raw"]["first_name"], "Adabelle", "{a2}");
    assert_eq!(a2["bio"], Value::Null);
    workos_sync_testkit::close_and_delete(broker).await.unwrap();
    db.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schemas_of_one_database_are_two_installations() {
    let db = empty_database().await.unwrap();
    for schema in ["a", "b"] {
        let (code, _, err) = cli(
            &db.url,
            &[("WORKOS_SYNC__DATABASE__SCHEMA", schema)],
            &["migrate"],
        );
        assert_eq!(code, 0, "{err}");
    }
    // The default schema, empty while another holds an installation: the previous
    // release's upgrade case (it followed the connection's search_path), refused.
    let (code, _, err) = cli(&db.url, &[], &["migrate"]);
    assert_ne!(code, 0);
    assert!(err.contains("schema a already holds"), "{err}");
    // Nothing of ours in public.
    let public = one(
        &db,
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .await;
    assert_eq!(public["n"], 0);

    let mut stacks = Vec::new();
    for schema in ["a", "b"] {
        let prefix = unique_prefix();
        let r = spawn_receiver(ReceiverOptions {
            prefix: Some(prefix.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
        let w = spawn_worker(
            &prefix,
            &db.url,
            &[("WORKOS_SYNC__DATABASE__SCHEMA", schema)],
        )
        .await
        .unwrap();
        let store = workos_sync_store::Store::new(&db.url, 2, Duration::from_secs(5))
            .unwrap()
            .with_schema(schema)
            .unwrap();
        stacks.push((schema, prefix, r, w, store));
    }
    // Each installation its own user, and one event both receive (same id).
    for (schema, _, r, _, _) in &stacks {
        let own = user_event(
            &format!("evt_own_{schema}"),
            "user.created",
            &format!("user_only_{schema}"),
            "2026-01-01T00:00:00.000Z",
        );
        assert_eq!(r.post_signed(&own).await.unwrap().status, 200);
        let shared = user_event(
            "evt_shared",
            "user.created",
            "user_shared",
            "2026-01-01T00:00:00.000Z",
        );
        assert_eq!(r.post_signed(&shared).await.unwrap().status, 200);
    }
    for (schema, _, _, _, store) in &stacks {
        let want = vec![format!("user_only_{schema}"), "user_shared".to_owned()];
        assert!(
            eventually(Duration::from_secs(20), || async {
                let mut ids: Vec<String> = store
                    .all_users()
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|u| u.id)
                    .collect();
                ids.sort();
                ids == want
            })
            .await,
            "schema {schema}"
        );
        assert_eq!(store.processed_count().await.unwrap(), 2, "schema {schema}");
    }
    // Leader locks are per schema: both reconcilers may lead at once.
    let la = stacks[0]
        .4
        .try_session_lock(workos_sync_store::locks::LOCK_RECONCILE)
        .await
        .unwrap();
    let lb = stacks[1]
        .4
        .try_session_lock(workos_sync_store::locks::LOCK_RECONCILE)
        .await
        .unwrap();
    assert!(la.is_some() && lb.is_some());
    assert!(
        stacks[0]
            .4
            .try_session_lock(workos_sync_store::locks::LOCK_RECONCILE)
            .await
            .unwrap()
            .is_none()
    );
    for l in [la, lb].into_iter().flatten() {
        l.release().await;
    }
    for (_, _, r, w, _) in stacks {
        w.shutdown().await;
        r.teardown().await.unwrap();
    }
    db.teardown().await.unwrap();
}

/// An adopted table holds the application's own users beside WorkOS's: a pre-WorkOS
/// user with a cuid id, one with a uuid and one with an `auth0|…` id, none ever synced,
/// each with posts referencing it `ON DELETE CASCADE`. `verify --repair` against a
/// WorkOS that lists only its own users reports them as unsynced (not extra), asks
/// WorkOS nothing about them, removes none of them (nor their posts), tombstones
/// nothing of theirs, and still removes a synced user WorkOS says is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_repair_never_removes_the_applications_own_users() {
    use wiremock::{
        Mock, MockServer, Request, ResponseTemplate,
        matchers::{path, path_regex},
    };
    let db = empty_database().await.unwrap();
    db.exec(
        r#"CREATE TABLE users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT,
            "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
            "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
        )"#,
    )
    .await
    .unwrap();
    db.exec(
        r#"CREATE TABLE posts (id SERIAL PRIMARY KEY,
            "authorId" TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, title TEXT NOT NULL)"#,
    )
    .await
    .unwrap();
    let own = [
        "ckl9qz0000000pqrs1234abcd",
        "550e8400-e29b-41d4-a716-446655440000",
        "auth0|5f7c8ec7c33c6c004bbafe82",
    ];
    for (i, id) in own.iter().enumerate() {
        db.exec(&format!(
            r#"INSERT INTO users (id, email, name) VALUES ('{id}', 'own{i}@app.example', 'Own {i}')"#
        ))
        .await
        .unwrap();
        db.exec(&format!(
            r#"INSERT INTO posts ("authorId", title) VALUES ('{id}', 'post {i}')"#
        ))
        .await
        .unwrap();
    }
    let (code, out, err) = cli(&db.url, &[], &["migrate", "--adopt"]);
    assert_eq!(code, 0, "{out}{err}");

    let user = |id: &str| {
        serde_json::json!({"object": "user", "id": id, "email": format!("{id}@example.com"),
            "email_verified": true, "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": "2026-01-02T00:00:00.000Z"})
    };
    let list = |ids: &[&str]| {
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "object": "list", "data": ids.iter().map(|i| user(i)).collect::<Vec<_>>(),
            "list_metadata": {"before": null, "after": null}}))
    };
    // Twelve users WorkOS keeps (so that one removal stays within the bound of 25 %).
    let kept: Vec<String> = (0..12).map(|i| format!("user_01K{i:02}")).collect();
    let kept: Vec<&str> = kept.iter().map(String::as_str).collect();
    let with_gone: Vec<&str> = kept.iter().copied().chain(["user_01GONE"]).collect();
    let first = MockServer::start().await;
    Mock::given(path("/user_management/users"))
        .respond_with(list(&with_gone))
        .mount(&first)
        .await;
    let api = |uri: &str| {
        vec![
            ("WORKOS_API_KEY", "sk_test_fake".to_owned()),
            ("WORKOS_API_BASE_URL", uri.to_owned()),
            ("WORKOS_SYNC__SYNC__ENTITIES", "users".to_owned()),
        ]
    };
    let env = |v: &[(&'static str, String)]| -> Vec<(&'static str, String)> { v.to_vec() };
    let run = |e: &[(&'static str, String)], args: &[&str]| {
        let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        cli(&db.url, &e, args)
    };
    let (code, out, err) = run(&env(&api(&first.uri())), &["backfill"]);
    assert_eq!(code, 0, "{out}{err}");
    // Written an hour ago (a verify leaves rows written after it began alone).
    db.exec(r#"UPDATE users SET "updatedAt" = "updatedAt" - interval '1 hour'"#)
        .await
        .unwrap();

    // WorkOS has since deleted user_01GONE.
    let second = MockServer::start().await;
    Mock::given(path("/user_management/users"))
        .respond_with(list(&kept))
        .mount(&second)
        .await;
    Mock::given(path_regex(r"^/user_management/users/.+$"))
        .respond_with(|req: &Request| {
            let id = req.url.path().rsplit('/').next().unwrap_or("").to_owned();
            ResponseTemplate::new(404).set_body_json(serde_json::json!({
                "code": "entity_not_found", "entity_id": id, "message": "Could not find"}))
        })
        .mount(&second)
        .await;
    let (code, out, err) = run(&env(&api(&second.uri())), &["verify", "--repair", "--json"]);
    assert_eq!(code, 3, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let users = &report["entities"]["users"];
    assert_eq!(
        users["extra"],
        serde_json::json!(["user_01GONE"]),
        "{users}"
    );
    let mut unsynced: Vec<String> = users["unsynced"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    unsynced.sort();
    let mut want: Vec<String> = own.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(unsynced, want);
    assert_eq!(
        users["repair"]["removed"],
        serde_json::json!(["user_01GONE"])
    );
    // WorkOS was asked about the gone user only.
    let asked: Vec<String> = second
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .filter(|p| p.starts_with("/user_management/users/"))
        .collect();
    assert_eq!(asked, ["/user_management/users/user_01GONE"]);
    for (i, id) in own.iter().enumerate() {
        let row = one(&db, &format!("SELECT email FROM users WHERE id = '{id}'")).await;
        assert_eq!(row["email"], format!("own{i}@app.example"));
        one(
            &db,
            &format!(r#"SELECT title FROM posts WHERE "authorId" = '{id}'"#),
        )
        .await;
        assert!(
            query(&db, &format!("SELECT 1 FROM tombstones WHERE id = '{id}'"))
                .await
                .is_empty()
        );
    }
    assert!(
        query(&db, "SELECT 1 FROM users WHERE id = 'user_01GONE'")
            .await
            .is_empty()
    );
    // Plain output says what the unsynced rows are.
    let (_, out, _) = run(&env(&api(&second.uri())), &["verify"]);
    assert!(out.contains("3 rows of the application's own"), "{out}");
    db.teardown().await.unwrap();
}

/// `migrate --adopt` behind a long application transaction on `users`: its lock
/// requests give up after 2 s and are tried again, so the application's other queries
/// on the table never queue behind it for more than that; once the transaction ends the
/// adoption completes, its usertag index built concurrently and valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adoption_never_blocks_the_applications_queries() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let db = empty_database().await.unwrap();
    db.exec("CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT)")
        .await
        .unwrap();
    db.exec("INSERT INTO users SELECT 'app_' || i, 'u' || i || '@app.example', 'U' FROM generate_series(1, 500) i")
        .await
        .unwrap();
    // The application's long transaction (a report, a session left idle in it).
    let mut long = AsyncPgConnection::establish(&db.url).await.unwrap();
    long.batch_execute("BEGIN; SELECT count(*) FROM users")
        .await
        .unwrap();
    let url = db.url.clone();
    let migrate = tokio::task::spawn_blocking(move || cli(&url, &[], &["migrate", "--adopt"]));
    // The application's other queries meanwhile, each timed.
    let mut app = AsyncPgConnection::establish(&db.url).await.unwrap();
    app.batch_execute("SET statement_timeout = '20s'")
        .await
        .unwrap();
    let mut worst = Duration::ZERO;
    let until = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < until {
        let started = std::time::Instant::now();
        app.batch_execute("SELECT count(*) FROM users")
            .await
            .unwrap();
        worst = worst.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await; // the application's pace
    }
    assert!(
        !migrate.is_finished(),
        "migrate did not wait for the long transaction"
    );
    long.batch_execute("COMMIT").await.unwrap();
    let (code, out, err) = migrate.await.unwrap();
    assert_eq!(code, 0, "{out}{err}");
    println!("the application's queries waited at most {worst:?}");
    assert!(
        worst < Duration::from_secs(3),
        "an application query waited {worst:?} behind migrate"
    );
    let index = one(
        &db,
        "SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'users_usertag_key'",
    )
    .await;
    assert_eq!(index["valid"], true);
    one(
        &db,
        "SELECT workos_updated_at FROM users WHERE id = 'app_1'",
    )
    .await;
    db.teardown().await.unwrap();
}
