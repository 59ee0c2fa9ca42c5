//! Every metric name in one place. Labels never carry customer or creator ids
//! (cardinality); the decision is the only label on the hot path.

/// Events answered, labelled `decision` = allow | warn | block and `counted` = true | false.
pub const EVENTS: &str = "staryer_events_total";
/// Events answered as duplicates of an idempotency key already seen.
pub const DUPLICATES: &str = "staryer_duplicate_events_total";
/// Checks answered (`POST /v1/check`), labelled `decision`.
pub const CHECKS: &str = "staryer_checks_total";
/// Time from a parsed request to its decisions (before the durable write), seconds.
pub const DECISION_SECONDS: &str = "staryer_decision_seconds";
/// Writes (bucket rows and keys) in one group commit.
pub const FLUSH_BATCH_SIZE: &str = "staryer_flush_batch_size";
/// Duration of one group commit, seconds.
pub const FLUSH_SECONDS: &str = "staryer_flush_seconds";
/// Duration of one fold of the usage log into the hourly buckets, seconds.
pub const FOLD_SECONDS: &str = "staryer_fold_seconds";
/// Failed store writes.
pub const STORE_ERRORS: &str = "staryer_store_errors_total";
/// 1 while the store takes writes, 0 while ingest is refused.
pub const STORE_UP: &str = "staryer_store_up";
/// Counters held in memory (customer × meter × period).
pub const LIVE_COUNTERS: &str = "staryer_live_counters";
/// Requests refused by a per-key rate limit.
pub const RATE_LIMITED: &str = "staryer_rate_limited_total";
/// Ingest requests refused because the commit queue was full.
pub const QUEUE_FULL: &str = "staryer_commit_queue_full_total";
/// Meter events Stripe accepted, labelled `transport` = v1 | v2.
pub const STRIPE_REPORTS_SENT: &str = "staryer_stripe_reports_sent_total";
/// Meter event attempts that failed in a way worth retrying (429, 5xx, network).
pub const STRIPE_REPORTS_RETRIED: &str = "staryer_stripe_reports_retried_total";
/// Meter events Stripe refused for good (they stay in the store as `failed`).
pub const STRIPE_REPORTS_FAILED: &str = "staryer_stripe_reports_failed_total";
/// Age of the oldest report not yet accepted by Stripe, seconds (0 when none).
pub const STRIPE_OLDEST_UNSENT_SECONDS: &str = "staryer_stripe_oldest_unsent_report_seconds";
/// Tier catalog syncs to Stripe, labelled `outcome` = synced | failed.
pub const STRIPE_TIER_SYNCS: &str = "staryer_stripe_tier_syncs_total";
/// Stripe webhooks received, labelled `outcome` = handled | duplicate | rejected.
pub const STRIPE_WEBHOOKS: &str = "staryer_stripe_webhooks_total";
