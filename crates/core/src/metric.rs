//! Every metric name of workos-sync, named once, with its help text. Code records with
//! `metrics::counter!(metric::WEBHOOKS_TOTAL, …)`; [`describe`] registers the help texts
//! when the recorder is installed, so `/metrics` says what each one means. The README's
//! metrics table and the dashboards use the same names.

/// Declares each metric once: its kind, its constant (documented with the help text),
/// its name and its help text.
macro_rules! metrics_table {
    ($($kind:ident $name:ident = $value:literal, $help:literal;)*) => {
        $(#[doc = $help] pub const $name: &str = $value;)*

        /// Every metric name.
        pub const ALL: &[&str] = &[$($name),*];

        /// Registers the help text of every metric (called once, when the recorder is
        /// installed).
        pub fn describe() {
            $(metrics_table!(@describe $kind $name, $help);)*
        }
    };
    (@describe counter $name:ident, $help:literal) => { metrics::describe_counter!($name, $help) };
    (@describe gauge $name:ident, $help:literal) => { metrics::describe_gauge!($name, $help) };
    (@describe histogram $name:ident, $help:literal) => { metrics::describe_histogram!($name, $help) };
}

metrics_table! {
    counter WEBHOOKS_TOTAL = "workos_sync_webhooks_total",
        "Webhook requests by outcome (accepted or a refusal reason).";
    histogram WEBHOOK_DURATION_SECONDS = "workos_sync_webhook_duration_seconds",
        "Time from request to answer of a webhook, seconds.";
    gauge RECEIVER_CONNECTIONS = "workos_sync_receiver_connections",
        "Open HTTP connections of the receiver (past receiver.max_connections x workers, webhooks get 503).";
    histogram PUBLISH_CONFIRM_SECONDS = "workos_sync_publish_confirm_seconds",
        "Time to RabbitMQ's publisher confirm, seconds.";
    gauge AMQP_CONNECTED = "workos_sync_amqp_connected",
        "1 while the broker connection is usable.";
    counter AMQP_CONNECTS_TOTAL = "workos_sync_amqp_connects_total",
        "Broker connections established.";
    counter AMQP_CONNECT_FAILURES_TOTAL = "workos_sync_amqp_connect_failures_total",
        "Failed broker connection attempts.";
    counter EVENTS_APPLIED_TOTAL = "workos_sync_events_applied_total",
        "Events applied to Postgres by entity, type and outcome.";
    gauge TABLE_ROWS = "workos_sync_table_rows",
        "Rows per entity table (Postgres's planner estimate, sampled every minute).";
    histogram APPLY_BATCH_SECONDS = "workos_sync_apply_batch_seconds",
        "Time of one apply transaction, seconds.";
    histogram WORKER_BATCH_SIZE = "workos_sync_worker_batch_size",
        "Events per apply transaction.";
    histogram EVENT_LAG_SECONDS = "workos_sync_event_lag_seconds",
        "Now minus the event's created_at when first applied, seconds.";
    counter WORKER_MESSAGES_TOTAL = "workos_sync_worker_messages_total",
        "Deliveries resolved by the worker, by outcome (acked, retried, dead_lettered, parked) and reason.";
    gauge WORKER_HOLDING = "workos_sync_worker_holding",
        "1 while the worker waits for an unreachable database.";
    gauge QUEUE_MESSAGES = "workos_sync_queue_messages",
        "Ready messages per queue.";
    gauge QUEUE_CONSUMERS = "workos_sync_queue_consumers",
        "Consumers per queue.";
    counter LAZY_SYNC_TOTAL = "workos_sync_lazy_sync_total",
        "Lazy sync calls by entity (users, organizations) and outcome.";
    counter LAZY_SYNC_COALESCED_TOTAL = "workos_sync_lazy_sync_coalesced_total",
        "Lazy sync calls that joined a call in flight for the same id (no WorkOS call of their own).";
    counter WORKOS_API_REQUESTS_TOTAL = "workos_sync_workos_api_requests_total",
        "WorkOS API requests by HTTP status.";
    histogram WORKOS_API_SECONDS = "workos_sync_workos_api_seconds",
        "Time of one WorkOS API request, seconds.";
    counter WORKOS_API_RETRIES_TOTAL = "workos_sync_workos_api_retries_total",
        "WorkOS API requests retried.";
    counter RECONCILE_EVENTS_TOTAL = "workos_sync_reconcile_events_total",
        "Events read from the Events API by the reconciler.";
    gauge RECONCILE_LAST_SUCCESS_TIMESTAMP_SECONDS = "workos_sync_reconcile_last_success_timestamp_seconds",
        "Unix time of the last completed reconciliation pass.";
    gauge RECONCILE_CURSOR_REJECTED = "workos_sync_reconcile_cursor_rejected",
        "1 while WorkOS refuses the stored events cursor.";
    counter RECONCILE_CURSOR_REJECTED_TOTAL = "workos_sync_reconcile_cursor_rejected_total",
        "Reconciliation passes that ended on a refused cursor.";
    counter RECONCILE_DEAD_LETTERED_TOTAL = "workos_sync_reconcile_dead_lettered_total",
        "Events from the Events API that could not be queued and went to the DLQ.";
    gauge DRIFT_ROWS = "workos_sync_drift_rows",
        "Rows of the last drift check by entity and kind (missing, extra, stale, ahead).";
    gauge VERIFY_LAST_SUCCESS_TIMESTAMP_SECONDS = "workos_sync_verify_last_success_timestamp_seconds",
        "Unix time of the last completed drift check.";
    gauge VERIFY_REPAIR_REFUSED = "workos_sync_verify_repair_refused",
        "1 while the periodic repair refuses to run: its removals would exceed the bound (verify.max_removals, verify.max_removal_percent).";
    gauge VERIFY_REPAIR_FAILED_ROWS = "workos_sync_verify_repair_failed_rows",
        "Extra rows the last periodic repair could not check with WorkOS (left as they are).";
    counter PASS_TIMEOUTS_TOTAL = "workos_sync_pass_timeouts_total",
        "Reconciliation passes and drift checks abandoned at their pass timeout, by task.";
    counter TLS_RELOADS_TOTAL = "workos_sync_tls_reloads_total",
        "TLS certificate reloads (SIGHUP or changed files) by outcome (ok, failed).";
    counter ARCHIVE_EVENTS_TOTAL = "workos_sync_archive_events_total",
        "Events newly kept in the event archive (a redelivery or replay of an archived event adds none).";
    counter TASK_RESTARTS_TOTAL = "workos_sync_task_restarts_total",
        "Worker background tasks that failed and were restarted, by task.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for name in ALL {
            assert!(name.starts_with("workos_sync_"), "{name}");
            assert!(seen.insert(*name), "{name} twice");
        }
        assert_eq!(ALL.len(), 34);
    }
}
