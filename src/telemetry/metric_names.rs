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
