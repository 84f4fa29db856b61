//! A typed client for the parts of the WorkOS API that workos-sync reads:
//! `GET /user_management/users/{id}`, `GET /user_management/users` (cursor pages), the
//! organization, membership, role and permission endpoints (`organizations` module),
//! Directory Sync's lists (`directories` module, paced per directory) and
//! `GET /events` (the Events API, asked oldest first with `order=asc` behind an `after`
//! cursor: the API's default order is newest first).
//!
//! Failure model: every call has a timeout; 429 and 5xx (and connection failures) are
//! retried with the project's one backoff (`core::backoff`) plus equal jitter (half the
//! delay fixed, half random), honouring `Retry-After` (seconds or an HTTP date:
//! `retry_after`); a client-side budget keeps reads below WorkOS's
//! documented 1,000 per 10 s. A call may also carry a deadline (lazy sync): it never
//! waits past it and ends with [`ApiError::OutOfTime`]. What is left comes back as an
//! [`ApiError`] whose variant decides the caller's answer. Only `NotFound` may remove a
//! row, so it is given only for WorkOS's own JSON `entity_not_found` about the very id
//! asked for; any other 404 (a wrong base URL, a proxy's HTML page) is `Refused`.

use std::{
    num::NonZeroU32,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::{StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;
use workos_sync_core::{Entity, IdError, User, backoff::Backoff, record::Object};

/// The user event types the reconciler asks for.
pub use workos_sync_core::event_type::USER_EVENTS;

mod directories;
mod objects;
mod organizations;
mod retry_after;
pub mod webhooks;
pub use directories::DirectoryUsersOf;
pub use organizations::{MEMBERSHIP_STATUSES, MembershipsOf};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// WorkOS answered 404 `entity_not_found` for this id: the object is gone.
    #[error("not found in WorkOS")]
    NotFound,
    /// The id cannot be a WorkOS id; nothing was sent.
    #[error("not a WorkOS id: {0}")]
    InvalidId(#[from] IdError),
    #[error("WorkOS refused the API key ({0})")]
    Unauthorized(u16),
    #[error("rate limited by WorkOS (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    #[error("WorkOS unavailable: {0}")]
    Unavailable(String),
    /// The caller's deadline came before an answer; `retry_after` is WorkOS's own hint
    /// when the last answer was a 429.
    #[error("WorkOS did not answer within the time allowed")]
    OutOfTime { retry_after: Option<Duration> },
    /// A 4xx other than 401/403/429 and WorkOS's own not-found, e.g. a 404 page that is
    /// not WorkOS's JSON, or a cursor the Events API no longer accepts.
    #[error("WorkOS refused the request: HTTP {status}{}", describe_refusal(.code, .message))]
    Refused {
        status: u16,
        code: Option<String>,
        message: Option<String>,
    },
    #[error("unexpected WorkOS response: {0}")]
    BadResponse(String),
}

fn describe_refusal(code: &Option<String>, message: &Option<String>) -> String {
    match (code, message) {
        (Some(c), Some(m)) => format!(" {c}: {m}"),
        (Some(c), None) => format!(" {c}"),
        (None, Some(m)) => format!(": {m}"),
        (None, None) => String::new(),
    }
}

impl ApiError {
    fn retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable(_))
    }
}

/// Client configuration.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub base_url: String,
    pub api_key: SecretString,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Attempts per call (first try included) for 429/5xx/connection errors.
    pub max_attempts: u32,
    /// Backoff base and cap.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Client-side read budget per second (WorkOS allows 1,000 per 10 s).
    pub reads_per_second: u32,
    /// Directory Users calls per second per directory (WorkOS allows 4).
    pub directory_users_per_second: u32,
}

impl ApiConfig {
    pub fn new(base_url: impl Into<String>, api_key: SecretString) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            timeout: Duration::from_secs(10),
            max_attempts: 6,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            reads_per_second: 80,
            directory_users_per_second: 3,
        }
    }

    pub fn from_settings(s: &workos_sync_core::settings::WorkosSettings) -> Self {
        Self {
            reads_per_second: s.reads_per_second,
            directory_users_per_second: s.directory_users_per_second,
            ..Self::new(s.api_base_url.clone(), s.api_key.clone())
        }
    }
}

/// An entity's WorkOS list endpoint, as its declaration names it (its objects are at
/// `<list>/{id}`).
pub(crate) fn list_path(e: Entity) -> &'static str {
    e.declaration().list_path.unwrap_or_default()
}

/// One page of a list endpoint.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Cursor for the next page; `None` at the end.
    pub after: Option<String>,
}

#[derive(Deserialize)]
struct ListMetadata {
    #[serde(default)]
    after: Option<String>,
}

#[derive(Deserialize)]
struct RawList<T> {
    data: Vec<T>,
    #[serde(default)]
    list_metadata: Option<ListMetadata>,
}

/// WorkOS's error body: `{"message", "code", "entity_id"}` (every field optional).
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    entity_id: Option<String>,
}

impl ErrorBody {
    fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }
}

/// One object's answer decoded as `T` ([`Object`]: as an event's `data` is, its raw
/// object kept).
pub(crate) fn decode_body<T: Object>(body: &[u8]) -> Result<T, ApiError> {
    let object: &RawValue =
        serde_json::from_slice(body).map_err(|e| ApiError::BadResponse(e.to_string()))?;
    T::decode(object).map_err(ApiError::BadResponse)
}

/// What a non-2xx answer means (see the module header: only WorkOS's own
/// `entity_not_found` for `entity_id` is `NotFound`).
pub(crate) fn answer_error(
    status: StatusCode,
    body: &[u8],
    entity_id: Option<&str>,
    retry_after: Option<Duration>,
) -> ApiError {
    match status {
        StatusCode::NOT_FOUND if is_entity_not_found(body, entity_id) => ApiError::NotFound,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ApiError::Unauthorized(status.as_u16()),
        StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited { retry_after },
        s if s.is_server_error() => ApiError::Unavailable(format!("HTTP {}", s.as_u16())),
        s => {
            let parsed = ErrorBody::parse(body);
            let short =
                |v: Option<String>| v.map(|m| m.chars().take(MAX_MESSAGE).collect::<String>());
            ApiError::Refused {
                status: s.as_u16(),
                code: short(parsed.as_ref().and_then(|b| b.code.clone())),
                message: short(parsed.and_then(|b| b.message)),
            }
        }
    }
}

/// Longest error message kept from a WorkOS answer.
const MAX_MESSAGE: usize = 200;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<ApiConfig>,
    budget: Arc<DefaultDirectRateLimiter>,
    /// Directory Users' budget, per directory (`directories` module).
    per_directory: Arc<DefaultKeyedRateLimiter<String>>,
}

impl Client {
    pub fn new(config: ApiConfig) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("workos-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let per_second = NonZeroU32::new(config.reads_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let budget = RateLimiter::direct(Quota::per_second(per_second));
        let per_directory =
            NonZeroU32::new(config.directory_users_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        // A burst of one: calls to one directory are spread evenly, never bunched.
        let per_directory =
            RateLimiter::keyed(Quota::per_second(per_directory).allow_burst(NonZeroU32::MIN));
        Ok(Self {
            http,
            config: Arc::new(config),
            budget: Arc::new(budget),
            per_directory: Arc::new(per_directory),
        })
    }

    pub fn has_key(&self) -> bool {
        !self.config.api_key.expose_secret().is_empty()
    }

    /// Waits for `directory`'s Directory Users budget (never past `deadline`).
    pub(crate) async fn directory_budget(
        &self,
        directory: &str,
        deadline: Option<Instant>,
    ) -> Result<(), ApiError> {
        let key = directory.to_owned();
        within(deadline, None, self.per_directory.until_key_ready(&key)).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// One GET with retries; returns the body of a 2xx. With a `deadline`, no wait
    /// (budget, backoff, `Retry-After`, the request itself) goes past it.
    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        entity_id: Option<&str>,
        deadline: Option<Instant>,
    ) -> Result<bytes_body::Body, ApiError> {
        let mut attempt = 0;
        let mut last_retry_after = None;
        loop {
            attempt += 1;
            within(deadline, last_retry_after, self.budget.until_ready()).await?;
            let result = within(
                deadline,
                last_retry_after,
                self.get_once(path, query, entity_id),
            )
            .await
            .and_then(|r| r);
            match result {
                Ok(body) => return Ok(body),
                Err(e) if e.retryable() && attempt < self.config.max_attempts => {
                    let wait = match &e {
                        ApiError::RateLimited {
                            retry_after: Some(d),
                        } => *d,
                        _ => self.backoff(attempt),
                    };
                    if let ApiError::RateLimited { retry_after } = &e {
                        last_retry_after = *retry_after;
                    }
                    if deadline.is_some_and(|d| Instant::now() + wait > d) {
                        // Waiting would pass the deadline: give up now. A rate limit
                        // says when WorkOS asked us to come back; any other failure is
                        // reported as it was.
                        return Err(match e {
                            ApiError::RateLimited { retry_after } => ApiError::OutOfTime {
                                retry_after: retry_after.or(Some(wait)),
                            },
                            other => other,
                        });
                    }
                    tracing::warn!(path, attempt, wait_ms = wait.as_millis() as u64, error = %e, "WorkOS call failed; retrying");
                    metrics::counter!(workos_sync_core::metric::WORKOS_API_RETRIES_TOTAL)
                        .increment(1);
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The project's one backoff (`core::backoff`: doubling from `backoff_base` up to
    /// `backoff_max`) at `attempt`, with equal jitter on top: a random delay in
    /// `[d/2, d]`, since other callers share WorkOS's rate limit with us.
    fn backoff(&self, attempt: u32) -> Duration {
        let mut b = Backoff::new(self.config.backoff_base, self.config.backoff_max);
        for _ in 1..attempt.min(32) {
            b.next_delay();
        }
        let ms = u64::try_from(b.peek().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
    }

    /// One request. `entity_id` is the object a 404 may be about (see
    /// [`is_entity_not_found`]); list calls have none, so their 404 is never `NotFound`.
    async fn get_once(
        &self,
        path: &str,
        query: &[(&str, String)],
        entity_id: Option<&str>,
    ) -> Result<bytes_body::Body, ApiError> {
        let started = std::time::Instant::now();
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(self.config.api_key.expose_secret())
            .query(query)
            .send()
            .await
            .map_err(|e| ApiError::Unavailable(without_url(&e)))?;
        let status = resp.status();
        metrics::histogram!(workos_sync_core::metric::WORKOS_API_SECONDS)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!(workos_sync_core::metric::WORKOS_API_REQUESTS_TOTAL, "status" => status.as_u16().to_string()).increment(1);
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after::parse(v, std::time::SystemTime::now()));
        let body = resp
            .bytes()
            .await
            .map_err(|e| ApiError::Unavailable(without_url(&e)))?;
        if status.is_success() {
            return Ok(bytes_body::Body(body.to_vec()));
        }
        Err(answer_error(status, &body, entity_id, retry_after))
    }

    /// One page of a list endpoint: `{"data": [...], "list_metadata": {"after": ...}}`.
    async fn get_page<T: Object>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Page<T>, ApiError> {
        self.get_page_within(path, query, None).await
    }

    /// [`Client::get_page`] with a deadline (see [`Client::get`]).
    async fn get_page_within<T: Object>(
        &self,
        path: &str,
        query: &[(&str, String)],
        deadline: Option<Instant>,
    ) -> Result<Page<T>, ApiError> {
        let body = self.get(path, query, None, deadline).await?;
        let list: RawList<Box<RawValue>> =
            serde_json::from_slice(&body.0).map_err(|e| ApiError::BadResponse(e.to_string()))?;
        Ok(Page {
            data: list
                .data
                .iter()
                .map(|o| T::decode(o).map_err(ApiError::BadResponse))
                .collect::<Result<_, _>>()?,
            after: list
                .list_metadata
                .and_then(|m| m.after)
                .filter(|a| !a.is_empty()),
        })
    }

    /// `GET /user_management/users/{id}`.
    pub async fn get_user(&self, id: &str) -> Result<User, ApiError> {
        self.fetch_user(id, None).await
    }

    /// `GET /user_management/users/{id}`, giving up with [`ApiError::OutOfTime`] rather
    /// than waiting past `budget` (lazy sync answers a caller who is waiting).
    pub async fn get_user_within(&self, id: &str, budget: Duration) -> Result<User, ApiError> {
        self.fetch_user(id, Some(Instant::now() + budget)).await
    }

    async fn fetch_user(&self, id: &str, deadline: Option<Instant>) -> Result<User, ApiError> {
        // Ids are opaque, but one that cannot be a WorkOS id is never sent: it could
        // change the path, and any answer would say nothing about a real user.
        workos_sync_core::check_object_id(id)?;
        let body = self
            .get(
                &format!("{}/{id}", list_path(Entity::Users)),
                &[],
                Some(id),
                deadline,
            )
            .await?;
        decode_body(&body.0)
    }

    /// One page of `GET /user_management/users`, oldest first.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<User>, ApiError> {
        let mut q = vec![("limit", limit.to_string()), ("order", "asc".to_string())];
        if let Some(a) = after {
            q.push(("after", a.to_string()));
        }
        self.get_page(list_path(Entity::Users), &q).await
    }

    /// One page of `GET /events` for `types`, after the cursor `after` (an event id) or,
    /// for a first call, from `range_start`. Events come back as their raw JSON, so they
    /// can be fed to the same queue as webhooks byte for byte.
    pub async fn list_events(
        &self,
        types: &[&str],
        after: Option<&str>,
        range_start: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Page<Box<RawValue>>, ApiError> {
        // `events[]` once per type is the documented form (a comma list is ignored by
        // WorkOS's emulator), and `order=asc` is sent explicitly: the API's default is
        // newest first, and an `after` cursor only moves forward oldest first.
        let mut q: Vec<(&str, String)> = types
            .iter()
            .map(|t| ("events[]", (*t).to_owned()))
            .collect();
        q.push(("order", "asc".to_owned()));
        q.push(("limit", limit.to_string()));
        match (after, range_start) {
            (Some(a), _) => q.push(("after", a.to_string())),
            (None, Some(t)) => q.push((
                "range_start",
                t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            )),
            (None, None) => {}
        }
        self.get_page("/events", &q).await
    }
}

/// `fut`, unless `deadline` comes first: then [`ApiError::OutOfTime`] with WorkOS's last
/// `Retry-After`.
async fn within<T>(
    deadline: Option<Instant>,
    retry_after: Option<Duration>,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, ApiError> {
    match deadline {
        None => Ok(fut.await),
        Some(d) => tokio::time::timeout_at(d.into(), fut)
            .await
            .map_err(|_| ApiError::OutOfTime { retry_after }),
    }
}

/// True when a 404 body is WorkOS's own JSON `entity_not_found` about `entity_id`: the
/// code must be there, and an `entity_id` in the body must be the one asked for. A 404
/// of a list call (`entity_id` None) never is. WorkOS's emulator (0.14.0) says
/// `not_found` ("User not found") where the API reference says `entity_not_found`: both
/// are accepted, and nothing else (a 404 page, a JSON 404 without a code).
fn is_entity_not_found(body: &[u8], entity_id: Option<&str>) -> bool {
    let Some(asked) = entity_id else {
        return false;
    };
    let Some(err) = ErrorBody::parse(body) else {
        return false;
    };
    matches!(err.code.as_deref(), Some("entity_not_found" | "not_found"))
        && err.entity_id.as_deref().is_none_or(|id| id == asked)
}

/// reqwest errors print the URL; keep them short and free of query strings.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "bad body"
    } else {
        "request failed"
    };
    kind.to_string()
}

mod bytes_body {
    /// A successful response body.
    pub struct Body(pub Vec<u8>);
}
