//! Every metric name of workos-sync, named once, with its help text. Code records with
//! `metrics::counter!(metric::WEBHOOKS_TOTAL, …)`; [`describe`] registers the help texts
//! when the recorder is installed, so `/metrics` says what each one means. The README's
//! metrics table and the dashboards use the same names.

/// Webhook requests by outcome (accepted or a refusal reason).
pub const WEBHOOKS_TOTAL: &str = "workos_sync_webhooks_total";
/// Time from request to answer of a webhook, seconds.
pub const WEBHOOK_DURATION_SECONDS: &str = "workos_sync_webhook_duration_seconds";
/// Time to RabbitMQ's publisher confirm, seconds.
pub const PUBLISH_CONFIRM_SECONDS: &str = "workos_sync_publish_confirm_seconds";
/// 1 while the broker connection is usable.
pub const AMQP_CONNECTED: &str = "workos_sync_amqp_connected";
/// Broker connections established.
pub const AMQP_CONNECTS_TOTAL: &str = "workos_sync_amqp_connects_total";
/// Failed broker connection attempts.
pub const AMQP_CONNECT_FAILURES_TOTAL: &str = "workos_sync_amqp_connect_failures_total";
/// Events applied to Postgres by type and outcome.
pub const EVENTS_APPLIED_TOTAL: &str = "workos_sync_events_applied_total";
/// Time of one apply transaction, seconds.
pub const APPLY_BATCH_SECONDS: &str = "workos_sync_apply_batch_seconds";
/// Events per apply transaction.
pub const WORKER_BATCH_SIZE: &str = "workos_sync_worker_batch_size";
/// Now minus the event's created_at when first applied, seconds.
pub const EVENT_LAG_SECONDS: &str = "workos_sync_event_lag_seconds";
/// Deliveries resolved by the worker, by outcome (acked, retried, dead_lettered, parked) and reason.
pub const WORKER_MESSAGES_TOTAL: &str = "workos_sync_worker_messages_total";
/// 1 while the worker waits for an unreachable database.
pub const WORKER_HOLDING: &str = "workos_sync_worker_holding";
/// Ready messages per queue.
pub const QUEUE_MESSAGES: &str = "workos_sync_queue_messages";
/// Consumers per queue.
pub const QUEUE_CONSUMERS: &str = "workos_sync_queue_consumers";
/// Lazy sync calls by outcome.
pub const LAZY_SYNC_TOTAL: &str = "workos_sync_lazy_sync_total";
/// WorkOS API requests by HTTP status.
pub const WORKOS_API_REQUESTS_TOTAL: &str = "workos_sync_workos_api_requests_total";
/// Time of one WorkOS API request, seconds.
pub const WORKOS_API_SECONDS: &str = "workos_sync_workos_api_seconds";
/// WorkOS API requests retried.
pub const WORKOS_API_RETRIES_TOTAL: &str = "workos_sync_workos_api_retries_total";
/// Events read from the Events API by the reconciler.
pub const RECONCILE_EVENTS_TOTAL: &str = "workos_sync_reconcile_events_total";
/// Unix time of the last completed reconciliation pass.
pub const RECONCILE_LAST_SUCCESS_TIMESTAMP_SECONDS: &str =
    "workos_sync_reconcile_last_success_timestamp_seconds";
/// 1 while WorkOS refuses the stored events cursor.
pub const RECONCILE_CURSOR_REJECTED: &str = "workos_sync_reconcile_cursor_rejected";
/// Reconciliation passes that ended on a refused cursor.
pub const RECONCILE_CURSOR_REJECTED_TOTAL: &str = "workos_sync_reconcile_cursor_rejected_total";
/// Events from the Events API that could not be queued and went to the DLQ.
pub const RECONCILE_DEAD_LETTERED_TOTAL: &str = "workos_sync_reconcile_dead_lettered_total";
/// Worker background tasks that failed and were restarted, by task.
pub const TASK_RESTARTS_TOTAL: &str = "workos_sync_task_restarts_total";

/// Registers the help text of every metric (called once, when the recorder is installed).
pub fn describe() {
    metrics::describe_counter!(
        WEBHOOKS_TOTAL,
        "Webhook requests by outcome (accepted or a refusal reason)."
    );
    metrics::describe_histogram!(
        WEBHOOK_DURATION_SECONDS,
        "Time from request to answer of a webhook, seconds."
    );
    metrics::describe_histogram!(
        PUBLISH_CONFIRM_SECONDS,
        "Time to RabbitMQ's publisher confirm, seconds."
    );
    metrics::describe_gauge!(AMQP_CONNECTED, "1 while the broker connection is usable.");
    metrics::describe_counter!(AMQP_CONNECTS_TOTAL, "Broker connections established.");
    metrics::describe_counter!(
        AMQP_CONNECT_FAILURES_TOTAL,
        "Failed broker connection attempts."
    );
    metrics::describe_counter!(
        EVENTS_APPLIED_TOTAL,
        "Events applied to Postgres by type and outcome."
    );
    metrics::describe_histogram!(
        APPLY_BATCH_SECONDS,
        "Time of one apply transaction, seconds."
    );
    metrics::describe_histogram!(WORKER_BATCH_SIZE, "Events per apply transaction.");
    metrics::describe_histogram!(
        EVENT_LAG_SECONDS,
        "Now minus the event's created_at when first applied, seconds."
    );
    metrics::describe_counter!(
        WORKER_MESSAGES_TOTAL,
        "Deliveries resolved by the worker, by outcome (acked, retried, dead_lettered, parked) and reason."
    );
    metrics::describe_gauge!(
        WORKER_HOLDING,
        "1 while the worker waits for an unreachable database."
    );
    metrics::describe_gauge!(QUEUE_MESSAGES, "Ready messages per queue.");
    metrics::describe_gauge!(QUEUE_CONSUMERS, "Consumers per queue.");
    metrics::describe_counter!(LAZY_SYNC_TOTAL, "Lazy sync calls by outcome.");
    metrics::describe_counter!(
        WORKOS_API_REQUESTS_TOTAL,
        "WorkOS API requests by HTTP status."
    );
    metrics::describe_histogram!(
        WORKOS_API_SECONDS,
        "Time of one WorkOS API request, seconds."
    );
    metrics::describe_counter!(WORKOS_API_RETRIES_TOTAL, "WorkOS API requests retried.");
    metrics::describe_counter!(
        RECONCILE_EVENTS_TOTAL,
        "Events read from the Events API by the reconciler."
    );
    metrics::describe_gauge!(
        RECONCILE_LAST_SUCCESS_TIMESTAMP_SECONDS,
        "Unix time of the last completed reconciliation pass."
    );
    metrics::describe_gauge!(
        RECONCILE_CURSOR_REJECTED,
        "1 while WorkOS refuses the stored events cursor."
    );
    metrics::describe_counter!(
        RECONCILE_CURSOR_REJECTED_TOTAL,
        "Reconciliation passes that ended on a refused cursor."
    );
    metrics::describe_counter!(
        RECONCILE_DEAD_LETTERED_TOTAL,
        "Events from the Events API that could not be queued and went to the DLQ."
    );
    metrics::describe_counter!(
        TASK_RESTARTS_TOTAL,
        "Worker background tasks that failed and were restarted, by task."
    );
}
