//! Lazy sync's admission and answers: what `POST /v1/users/{id}/sync` and
//! `/v1/organizations/{id}/sync` cost WorkOS, and what they tell the caller.
//!
//! - **Coalescing.** Calls for the same entity and id while one is in flight join it:
//!   one WorkOS call, one answer for all of them. The sync runs as a task of its own,
//!   so a caller that goes away does not cancel it for the others.
//! - **A cap on calls in flight** (`worker.lazy_sync_max_in_flight`) and **a rate of
//!   its own** (`worker.lazy_sync_per_second`, well below the WorkOS client's shared
//!   read budget): past either, a call is answered at once with 503 `busy` and
//!   `Retry-After: 1` instead of queueing, so one caller cannot starve the others, nor
//!   the reconciler and the drift check that share the client's budget.
//! - **Answers** ([`answer`]): each failure has its own code and a short message with
//!   no internals (constraint, table and statement texts go to the log only):
//!   `not_found` 404, `workos_rate_limited` / `workos_timeout` / `database_unavailable`
//!   / `busy` 503 with `Retry-After`, `workos_unavailable` 502, `delete_blocked` 409 (an
//!   application's foreign key keeps a row WorkOS deleted: retrying cannot help),
//!   `schema_mismatch` and `store_error` 500.
//!
//! Failure model: a sync task that panics answers 500 `internal`; nothing here waits
//! without a bound (the sync itself is bounded by `worker.lazy_sync_timeout_ms` for
//! WorkOS and the store's apply timeout).

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;
use workos_sync_core::Entity;
use workos_sync_pull::{SyncError, SyncResult};
use workos_sync_store::StoreError;
use workos_sync_workos_api::ApiError;

/// A finished call's answer, shared by every caller that joined it.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
    /// Seconds for `Retry-After` (503s only).
    pub retry_after: Option<u64>,
    /// The metric label (`workos_sync_lazy_sync_total{outcome}`).
    pub outcome: &'static str,
}

impl Answer {
    pub fn error(status: u16, code: &str, message: &str, outcome: &'static str) -> Self {
        Self {
            status,
            body: serde_json::json!({"error": code, "message": message}),
            retry_after: None,
            outcome,
        }
    }

    /// A 503 with `Retry-After` (WorkOS's hint when it gave one, else `default`).
    fn unavailable(
        code: &str,
        message: &str,
        retry_after: Option<Duration>,
        default: u64,
        outcome: &'static str,
    ) -> Self {
        Self {
            retry_after: Some(retry_after.map_or(default, |d| d.as_secs().max(1))),
            ..Self::error(503, code, message, outcome)
        }
    }

    fn busy(why: &str) -> Self {
        Self::unavailable("busy", why, None, 1, "busy")
    }
}

/// The answer to a finished sync of a `what` (module header). Failures are logged
/// here with their full text, once.
pub fn answer<T: serde::Serialize>(result: Result<SyncResult<T>, SyncError>, what: &str) -> Answer {
    let err = match result {
        Ok(SyncResult::Synced(row)) => {
            return Answer {
                status: 200,
                body: serde_json::to_value(row).unwrap_or_default(),
                retry_after: None,
                outcome: "synced",
            };
        }
        Ok(SyncResult::Gone) => {
            return Answer::error(
                404,
                "not_found",
                &format!("WorkOS has no such {what}"),
                "gone",
            );
        }
        Err(e) => e,
    };
    tracing::warn!(error = %err, "lazy sync failed");
    match err {
        SyncError::Api(ApiError::RateLimited { retry_after }) => Answer::unavailable(
            "workos_rate_limited",
            "WorkOS rate limit reached; retry later",
            retry_after,
            5,
            "rate_limited",
        ),
        SyncError::Api(ApiError::OutOfTime { retry_after }) => Answer::unavailable(
            "workos_timeout",
            "WorkOS did not answer in time; retry later",
            retry_after,
            5,
            "timeout",
        ),
        SyncError::Api(_) | SyncError::CursorRepeated { .. } => Answer::error(
            502,
            "workos_unavailable",
            "WorkOS failed or refused the request",
            "workos_error",
        ),
        SyncError::Store(StoreError::DeleteBlocked { .. }) => Answer::error(
            409,
            "delete_blocked",
            &format!(
                "WorkOS deleted this {what}, but an application foreign key keeps its row; an operator must resolve it (see the worker log)"
            ),
            "delete_blocked",
        ),
        SyncError::Store(e) if e.is_unavailable() || matches!(e, StoreError::Timeout(_)) => {
            Answer::unavailable(
                "database_unavailable",
                "the database is unavailable; retry later",
                None,
                5,
                "database_unavailable",
            )
        }
        SyncError::Store(StoreError::Schema(_)) => Answer::error(
            500,
            "schema_mismatch",
            "the tables do not fit the settings (see the worker log)",
            "schema_error",
        ),
        _ => Answer::error(
            500,
            "store_error",
            "the database refused the write (see the worker log)",
            "store_error",
        ),
    }
}

type Call = Shared<BoxFuture<'static, Answer>>;

/// Calls in flight by entity and id, and the limits on new ones.
pub struct Admission {
    inflight: Mutex<HashMap<(Entity, String), Call>>,
    permits: Arc<Semaphore>,
    rate: DefaultDirectRateLimiter,
}

impl Admission {
    pub fn new(max_in_flight: usize, per_second: u32) -> Arc<Self> {
        let per_second = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        Arc::new(Self {
            inflight: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
            rate: RateLimiter::direct(Quota::per_second(per_second)),
        })
    }

    /// The answer for (`entity`, `id`): the one of the call in flight for it, else of a
    /// new call made by `sync` (when the limits admit one), else `busy`. Returns
    /// whether it joined a call in flight.
    pub async fn call<F>(
        self: &Arc<Self>,
        entity: Entity,
        id: &str,
        sync: impl FnOnce() -> F,
    ) -> (Answer, bool)
    where
        F: Future<Output = Answer> + Send + 'static,
    {
        let key = (entity, id.to_owned());
        let (call, joined) = match self.admit(key, sync) {
            Ok(admitted) => admitted,
            Err(busy) => return (busy, false),
        };
        (call.await, joined)
    }

    /// The call in flight for `key` (joined: `true`), else a new one made by `sync` and
    /// registered, or the `busy` answer. Never waits.
    fn admit<F>(
        self: &Arc<Self>,
        key: (Entity, String),
        sync: impl FnOnce() -> F,
    ) -> Result<(Call, bool), Answer>
    where
        F: Future<Output = Answer> + Send + 'static,
    {
        let mut inflight = match self.inflight.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(call) = inflight.get(&key) {
            return Ok((call.clone(), true));
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return Err(Answer::busy(
                "too many lazy sync calls in flight; retry shortly",
            ));
        };
        if self.rate.check().is_err() {
            return Err(Answer::busy("lazy sync rate reached; retry shortly"));
        }
        let fut = sync();
        let this = Arc::clone(self);
        let done = key.clone();
        let task = tokio::spawn(async move {
            let answer = fut.await;
            drop(permit);
            match this.inflight.lock() {
                Ok(mut g) => g.remove(&done),
                Err(poisoned) => poisoned.into_inner().remove(&done),
            };
            answer
        });
        let call: Call = async move {
            task.await.unwrap_or_else(|_| {
                Answer::error(
                    500,
                    "internal",
                    "lazy sync failed unexpectedly",
                    "store_error",
                )
            })
        }
        .boxed()
        .shared();
        inflight.insert(key, call.clone());
        Ok((call, false))
    }
}
