//! Every metric name in one place, with its kind and the HELP text `/metrics` shows.
//! Labels never carry customer or creator ids (cardinality); the decision is the only
//! label on the hot path.

/// How a metric is described to Prometheus.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Declares each name as a constant (its HELP text as the doc) and lists them all in
/// `ALL`, so a metric cannot be named without being described.
macro_rules! metrics {
    ($($name:ident = $value:literal, $kind:ident, $help:literal;)*) => {
        $(#[doc = $help] pub const $name: &str = $value;)*
        /// Every metric: name, kind, HELP text.
        pub const ALL: &[(&str, Kind, &str)] = &[$(($value, Kind::$kind, $help)),*];
    };
}

metrics! {
    EVENTS = "staryer_events_total", Counter,
        "Events answered, labelled `decision` = allow | warn | block (a block is not counted).";
    DUPLICATES = "staryer_duplicate_events_total", Counter,
        "Events answered as duplicates of an idempotency key already seen.";
    CHECKS = "staryer_checks_total", Counter,
        "Checks answered (`POST /v1/check`), labelled `decision`.";
    DECISION_SECONDS = "staryer_decision_seconds", Histogram,
        "Time from a parsed request to its decisions (before the durable write), seconds.";
    FLUSH_BATCH_SIZE = "staryer_flush_batch_size", Histogram,
        "Writes (bucket rows and keys) in one group commit.";
    FLUSH_SECONDS = "staryer_flush_seconds", Histogram,
        "Duration of one group commit, seconds.";
    FOLD_SECONDS = "staryer_fold_seconds", Histogram,
        "Duration of one fold of the usage log into the hourly buckets, seconds.";
    STORE_ERRORS = "staryer_store_errors_total", Counter,
        "Failed store writes, and health probes that found the store refusing.";
    STORE_UP = "staryer_store_up", Gauge,
        "1 while the store takes writes, 0 while ingest is refused.";
    LIVE_COUNTERS = "staryer_live_counters", Gauge,
        "Counters held in memory (customer × meter × period).";
    RATE_LIMITED = "staryer_rate_limited_total", Counter,
        "Requests refused by a per-key rate limit.";
    QUEUE_FULL = "staryer_commit_queue_full_total", Counter,
        "Ingest requests refused because the commit queue was full.";
    STRIPE_REPORTS_SENT = "staryer_stripe_reports_sent_total", Counter,
        "Meter events Stripe accepted, labelled `transport` = v1 | v2.";
    STRIPE_REPORTS_RETRIED = "staryer_stripe_reports_retried_total", Counter,
        "Meter event attempts that failed in a way worth retrying (429, 5xx, network).";
    STRIPE_REPORTS_FAILED = "staryer_stripe_reports_failed_total", Counter,
        "Meter events Stripe refused for good (they stay in the store as `failed`).";
    STRIPE_OLDEST_UNSENT_SECONDS = "staryer_stripe_oldest_unsent_report_seconds", Gauge,
        "Age of the oldest report not yet accepted by Stripe, seconds (0 when none).";
    STRIPE_TIER_SYNCS = "staryer_stripe_tier_syncs_total", Counter,
        "Tier catalog syncs to Stripe, labelled `outcome` = synced | failed.";
    STRIPE_WEBHOOKS = "staryer_stripe_webhooks_total", Counter,
        "Stripe webhooks received, labelled `outcome` = handled | duplicate | rejected.";
    STRIPE_METER_ERRORS = "staryer_stripe_meter_errors_total", Counter,
        "Meter events Stripe took and then reported invalid (`v1.billing.meter.error_report_triggered`).";
    STRIPE_USAGE_DRIFT = "staryer_stripe_usage_drift_total", Counter,
        "Usage drifts found by reconciliation: a Stripe customer and meter whose units reported in a closed window differ from Stripe's meter event summary (each is also a `staryer.usage_drift` billing event).";
    OUTBOX_SENT = "staryer_outbox_sent_total", Counter,
        "Outbox messages delivered, labelled `integration` = email | webhook | posthog.";
    OUTBOX_RETRIED = "staryer_outbox_retried_total", Counter,
        "Outbox delivery attempts that failed and will be tried again, labelled `integration`.";
    OUTBOX_FAILED = "staryer_outbox_failed_total", Counter,
        "Outbox messages parked (refused for good, or still failing after outbox.give_up_after_hours), labelled `integration`.";
    OUTBOX_PENDING = "staryer_outbox_pending", Gauge,
        "Outbox messages waiting to be delivered, labelled `integration`.";
    OUTBOX_OLDEST_PENDING_SECONDS = "staryer_outbox_oldest_pending_seconds", Gauge,
        "Age of the oldest outbox message waiting to be delivered, seconds (0 when none), labelled `integration`.";
    RETENTION_REMOVED = "staryer_retention_removed_rows_total", Counter,
        "Rows removed past their retention, labelled `table` = usage_buckets | billing_events | customer_sessions | audit_log.";
    RETENTION_SECONDS = "staryer_retention_run_seconds", Histogram,
        "Duration of one retention run over every table, seconds.";
    AI_TOKENS = "staryer_ai_tokens_total", Counter,
        "Tokens spent on AI suggestions, labelled `kind` = prompt | completion.";
    HTTP_REQUESTS = "staryer_http_requests_total", Counter,
        "HTTP requests answered, labelled `method`, `route` (the route template, `unmatched` for none) and `status` class (2xx, 4xx, ...).";
    HTTP_REQUEST_SECONDS = "staryer_http_request_seconds", Histogram,
        "Time to answer an HTTP request, seconds, labelled like staryer_http_requests_total.";
}
