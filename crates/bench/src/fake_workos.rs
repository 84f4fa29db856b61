//! A fake WorkOS API serving generated records at any scale, for the scale benchmarks:
//! `users` users, `orgs` organizations with `memberships_per_org` memberships each,
//! in WorkOS's documented shapes and paging (`limit` ≤ 100, `after` cursors, `order`
//! ascending; ids sort as their index does), and each user and organization by id
//! (WorkOS's `entity_not_found` for an id it does not have). Roles and permissions are
//! empty lists. It counts the requests it answered; it has no rate limit (the client's
//! own budget, `workos.reads_per_second`, is what a benchmark measures against).
//!
//! Runs on its own thread with one actix worker; stops when the handle is dropped.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// The `i`-th user's id.
pub fn user_id(i: u64) -> String {
    format!("user_{i:020}")
}

/// The `i`-th organization's id.
pub fn org_id(i: u64) -> String {
    format!("org_{i:020}")
}

fn index(id: &str, prefix: &str) -> Option<u64> {
    id.strip_prefix(prefix)?.parse().ok()
}

fn at(i: u64) -> String {
    chrono::DateTime::from_timestamp(1_767_225_600 + i64::try_from(i).unwrap_or(0), 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The `i`-th user as WorkOS returns it.
pub fn user(i: u64) -> Value {
    json!({"object": "user", "id": user_id(i), "email": format!("u{i}@scale.example"),
           "first_name": "Scale", "last_name": format!("User {i}"), "email_verified": true,
           "profile_picture_url": null, "external_id": null, "metadata": {},
           "last_sign_in_at": null, "locale": null, "created_at": at(i), "updated_at": at(i)})
}

fn organization(i: u64) -> Value {
    json!({"object": "organization", "id": org_id(i), "name": format!("Org {i}"),
           "allow_profiles_outside_organization": false, "domains": [],
           "stripe_customer_id": null, "external_id": null, "metadata": {},
           "created_at": at(i), "updated_at": at(i)})
}

/// The sizes of the fake's data set.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub users: u64,
    pub orgs: u64,
    pub memberships_per_org: u64,
}

struct State {
    sizes: Sizes,
    requests: Arc<AtomicU64>,
}

fn membership(s: &Sizes, org: u64, j: u64) -> Value {
    let user = (org * s.memberships_per_org + j) % s.users.max(1);
    json!({"object": "organization_membership", "id": format!("om_{org:012}{j:08}"),
           "user_id": user_id(user), "organization_id": org_id(org), "status": "active",
           "role": {"slug": "member"}, "roles": [{"slug": "member"}],
           "created_at": at(org), "updated_at": at(org)})
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// One page of items `0..n` made by `make`, after the cursor `after` (its index parsed
/// by `parse`).
fn page(
    q: &HashMap<String, String>,
    n: u64,
    parse: impl Fn(&str) -> Option<u64>,
    make: impl Fn(u64) -> Value,
    cursor: impl Fn(u64) -> String,
) -> HttpResponse {
    let limit: u64 = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .min(100);
    let start = q.get("after").and_then(|a| parse(a)).map_or(0, |i| i + 1);
    let end = (start + limit).min(n);
    let data: Vec<Value> = (start..end).map(make).collect();
    let after = (end < n).then(|| cursor(end - 1));
    HttpResponse::Ok().json(json!({"object": "list", "data": data,
                                   "list_metadata": {"before": null, "after": after}}))
}

fn empty() -> HttpResponse {
    HttpResponse::Ok().json(json!({"object": "list", "data": [],
                                   "list_metadata": {"before": null, "after": null}}))
}

fn not_found(id: &str) -> HttpResponse {
    HttpResponse::NotFound().json(json!({"code": "entity_not_found",
        "message": "Not found", "entity_id": id}))
}

async fn route(req: HttpRequest, st: web::Data<State>) -> HttpResponse {
    st.requests.fetch_add(1, Ordering::Relaxed);
    let s = st.sizes;
    let q = query(&req);
    let path = req.path();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["user_management", "users"] => page(&q, s.users, |a| index(a, "user_"), user, user_id),
        ["user_management", "users", id] => match index(id, "user_") {
            Some(i) if i < s.users => HttpResponse::Ok().json(user(i)),
            _ => not_found(id),
        },
        ["organizations"] => page(&q, s.orgs, |a| index(a, "org_"), organization, org_id),
        ["organizations", id] => match index(id, "org_") {
            Some(i) if i < s.orgs => HttpResponse::Ok().json(organization(i)),
            _ => not_found(id),
        },
        ["user_management", "organization_memberships"] => {
            match q
                .get("organization_id")
                .and_then(|o| index(o, "org_"))
                .filter(|o| *o < s.orgs)
            {
                Some(org) => page(
                    &q,
                    s.memberships_per_org,
                    |a| a.get(15..)?.parse().ok(),
                    |j| membership(&s, org, j),
                    |j| format!("om_{org:012}{j:08}"),
                ),
                // A user's memberships (lazy sync): none listed.
                None => empty(),
            }
        }
        ["authorization", "roles"]
        | ["authorization", "permissions"]
        | ["authorization", "organizations", _, "roles"] => empty(),
        _ => not_found(path),
    }
}

/// A running fake: its base URL and the count of requests it answered.
pub struct FakeWorkos {
    pub url: String,
    pub requests: Arc<AtomicU64>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl FakeWorkos {
    pub fn start(sizes: Sizes) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let state = web::Data::new(State {
                    sizes,
                    requests: counter,
                });
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .default_service(web::get().to(route))
                })
                .workers(1)
                .listen(listener)?
                .run();
                let _ = tx.send(server.handle());
                server.await
            })
        });
        let handle = rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the fake WorkOS did not start"))?;
        Ok(Self {
            url,
            requests,
            handle,
            thread: Some(thread),
        })
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for FakeWorkos {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
