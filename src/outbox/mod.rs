//! The durable outbox every integration shares (notices by email, outgoing webhooks,
//! analytics). Work to send is an event written in the same transaction as its cause (the
//! group commit that counted a threshold crossing, a tier change, a Stripe webhook),
//! keyed by the cause, so a cause retried or replayed makes one event. Loops move it:
//!
//! - **dispatch** turns a batch of new events into messages, one per integration and
//!   target (an email address, a webhook endpoint, a PostHog project), rendered then and
//!   written with the events' `dispatched_at` in one transaction;
//! - **delivery**, one loop per integration, sends the messages that are due, a few
//!   batches at a time and at the service's pace (`requests_per_second`), and records a
//!   pass's tries in one transaction: delivered; tried again later, with exponential
//!   backoff, jitter and never sooner than a `Retry-After`; or parked, when the service
//!   refuses it for good or it has failed for `outbox.give_up_after_hours`. A parked
//!   message is listed and can be retried by hand; it never holds up the rest;
//! - **pruning** (hourly) and the **backlog metrics** (every 15 s).
//!
//! Sending is at least once; each message carries its id to the service as an idempotency
//! key (Resend's `Idempotency-Key`, the `webhook-id`, PostHog's event `uuid`), so a
//! message sent again after a crash between the send and its record is not a second
//! email, event or delivery. Times are the daemon's clock (seconds).

pub mod model;
pub mod routes;
pub mod service;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use rand::Rng;
use tokio::task::JoinHandle;

use crate::clock::{every, SharedClock, Stopping};
use crate::config::OutboxConfig;
use crate::outbound::Sent;
use crate::outbox::model::Integration;
use crate::store::outbox::{AttemptRecord, MessageRow, NewMessage, OutboxEventRow};
use crate::store::{Store, StoreError};
use crate::telemetry::{metric_names, LogLimiter};

/// Events dispatched per pass.
const DISPATCH_BATCH: i64 = 100;
/// How often what is past its retention is deleted, and how many rows a statement takes.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3_600);
const PRUNE_BATCH: i64 = 1_000;
/// How often the backlog metrics are measured.
const BACKLOG_INTERVAL: Duration = Duration::from_secs(15);

/// How many messages a channel sends in one request, and how long a partial batch waits.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    pub size: usize,
    pub linger_secs: i64,
}

/// One service the outbox delivers to.
pub trait Channel: Send + Sync + 'static {
    fn integration(&self) -> Integration;

    /// The messages this channel sends for each of `events` (a pass's batch, so that what
    /// they share is read once), in order; none for an event it has nothing to say about.
    fn messages_for<'a>(
        &'a self,
        events: &'a [OutboxEventRow],
    ) -> BoxFuture<'a, Result<Vec<Vec<NewMessage>>, StoreError>>;

    /// Sends due messages (at most `batching().size`); answers one result each, in order.
    fn deliver<'a>(&'a self, messages: &'a [MessageRow]) -> BoxFuture<'a, Vec<Sent>>;

    fn batching(&self) -> Batching {
        Batching {
            size: 1,
            linger_secs: 0,
        }
    }
}

/// Sends `messages` one after another with `send`: the `deliver` of a channel that sends
/// one message a request.
pub async fn one_by_one<'a, F, Fut>(messages: &'a [MessageRow], send: F) -> Vec<Sent>
where
    F: Fn(&'a MessageRow) -> Fut,
    Fut: std::future::Future<Output = Sent>,
{
    let mut sent = Vec::with_capacity(messages.len());
    for message in messages {
        sent.push(send(message).await);
    }
    sent
}

/// Sends `messages` a group at a time: those `key` puts together (one endpoint's, one
/// PostHog project's) go to `send` in one call. Answers one result each, in the messages'
/// order.
pub async fn in_groups<'a, K, Fut>(
    messages: &'a [MessageRow],
    key: impl Fn(&'a MessageRow) -> K,
    send: impl Fn(K, Vec<&'a MessageRow>) -> Fut,
) -> Vec<Sent>
where
    K: Ord,
    Fut: std::future::Future<Output = Vec<Sent>>,
{
    let mut groups: std::collections::BTreeMap<K, Vec<usize>> = Default::default();
    for (at, message) in messages.iter().enumerate() {
        groups.entry(key(message)).or_default().push(at);
    }
    let mut sent = vec![None; messages.len()];
    for (group, members) in groups {
        let batch = members.iter().map(|&at| &messages[at]).collect();
        for (at, outcome) in members.into_iter().zip(send(group, batch).await) {
            sent[at] = Some(outcome);
        }
    }
    sent.into_iter()
        .map(|s| s.expect("a send answers each message of its group"))
        .collect()
}

/// The outbox's settings, from `[outbox]`.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub poll_interval: Duration,
    pub retry_base_secs: i64,
    pub retry_max_secs: i64,
    pub give_up_after_secs: i64,
    pub concurrency: usize,
    pub retention_secs: i64,
}

impl Schedule {
    pub fn from_config(config: &OutboxConfig) -> Schedule {
        Schedule {
            poll_interval: Duration::from_millis(config.poll_interval_ms),
            retry_base_secs: config.retry_base_secs as i64,
            retry_max_secs: config.retry_max_secs as i64,
            give_up_after_secs: config.give_up_after_hours as i64 * 3_600,
            concurrency: config.concurrency,
            retention_secs: config.retention_days as i64 * 86_400,
        }
    }

    /// When to try again after the `attempts`th failed try: `retry_base_secs` doubled per
    /// try, at most `retry_max_secs`, ±20 % jitter (so a service coming back is not hit by
    /// every message at once), never sooner than the service asked (up to
    /// `retry_max_secs`).
    fn next_try(&self, now: i64, attempts: i64, retry_after: Option<u64>) -> i64 {
        let doublings = (attempts - 1).clamp(0, 30) as u32;
        let backoff = self
            .retry_base_secs
            .saturating_mul(1_i64 << doublings)
            .min(self.retry_max_secs);
        let jittered = (backoff as f64 * rand::rng().random_range(0.8..1.2)).round() as i64;
        // A service's wish, within reason: never past the longest wait.
        let asked = retry_after.map_or(0, |secs| secs.min(self.retry_max_secs as u64) as i64);
        now.saturating_add(jittered.max(asked).max(1))
    }

    /// The record of one try of `message`.
    fn record(&self, message: &MessageRow, sent: &Sent, now: i64) -> AttemptRecord {
        let attempts = message.attempts + 1;
        let (status, http_status, error) = match sent {
            Sent::Delivered { status } => ("delivered", Some(*status), None),
            Sent::Failed { status, error, .. } => {
                if now - message.retry_from >= self.give_up_after_secs {
                    let hours = self.give_up_after_secs / 3_600;
                    (
                        "parked",
                        *status,
                        Some(format!("still failing after {hours} h: {error}")),
                    )
                } else {
                    ("pending", *status, Some(error.clone()))
                }
            }
            Sent::Refused { status, error } => ("parked", *status, Some(error.clone())),
        };
        let next_attempt_at = match sent {
            Sent::Failed { retry_after, .. } if status == "pending" => {
                self.next_try(now, attempts, *retry_after)
            }
            _ => now,
        };
        AttemptRecord {
            status,
            at: now,
            next_attempt_at,
            http_status: http_status.map(i64::from),
            error,
        }
    }
}

static STORE_FAILURES: LogLimiter = LogLimiter::every(60);

/// Starts dispatch (with the hourly pruning) and one delivery loop per channel; they run
/// until the daemon stops. Answers their handles.
pub fn spawn(
    store: Store,
    clock: SharedClock,
    schedule: Schedule,
    channels: Vec<Arc<dyn Channel>>,
    stopping: Stopping,
) -> Vec<JoinHandle<()>> {
    let schedule = Arc::new(schedule);
    let mut loops = Vec::new();
    {
        let (store, clock, channels) = (store.clone(), clock.clone(), channels.clone());
        loops.push(every(schedule.poll_interval, stopping.clone(), move || {
            let (store, clock, channels) = (store.clone(), clock.clone(), channels.clone());
            async move {
                if let Err(err) = dispatch(&store, clock.now(), &channels).await {
                    log_store_failure("dispatching outbox events", &err);
                }
            }
        }));
    }
    {
        // Counting the backlog reads every pending message: now and then, not every poll.
        let (store, clock) = (store.clone(), clock.clone());
        loops.push(every(BACKLOG_INTERVAL, stopping.clone(), move || {
            let (store, clock) = (store.clone(), clock.clone());
            async move {
                if let Err(err) = observe_backlog(&store, clock.now()).await {
                    log_store_failure("measuring the outbox backlog", &err);
                }
            }
        }));
    }
    {
        let (store, clock, retention) = (store.clone(), clock.clone(), schedule.retention_secs);
        loops.push(every(PRUNE_INTERVAL, stopping.clone(), move || {
            let (store, clock) = (store.clone(), clock.clone());
            async move { prune(&store, clock.now() - retention).await }
        }));
    }
    for channel in channels {
        let (store, clock, schedule) = (store.clone(), clock.clone(), schedule.clone());
        loops.push(every(schedule.poll_interval, stopping.clone(), move || {
            let (store, clock, schedule, channel) = (
                store.clone(),
                clock.clone(),
                schedule.clone(),
                channel.clone(),
            );
            async move {
                if let Err(err) = deliver_due(&store, &clock, &schedule, channel.as_ref()).await {
                    log_store_failure("delivering outbox messages", &err);
                }
            }
        }));
    }
    loops
}

/// Deletes what is past its retention, a batch at a time.
async fn prune(store: &Store, before: i64) {
    loop {
        match store.prune_outbox(before, PRUNE_BATCH).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) => return log_store_failure("pruning the outbox", &err),
        }
    }
}

/// Turns every new event into its messages, a batch of events a transaction.
async fn dispatch(
    store: &Store,
    now: i64,
    channels: &[Arc<dyn Channel>],
) -> Result<(), StoreError> {
    loop {
        let events = store.undispatched_events(DISPATCH_BATCH).await?;
        let count = events.len() as i64;
        let mut messages: Vec<Vec<NewMessage>> = vec![Vec::new(); events.len()];
        for channel in channels {
            for (all, more) in messages
                .iter_mut()
                .zip(channel.messages_for(&events).await?)
            {
                all.extend(more);
            }
        }
        let dispatched: Vec<(OutboxEventRow, Vec<NewMessage>)> =
            events.into_iter().zip(messages).collect();
        if !dispatched.is_empty() {
            store.dispatch_events(&dispatched, now).await?;
        }
        if count < DISPATCH_BATCH {
            return Ok(());
        }
    }
}

async fn observe_backlog(store: &Store, now: i64) -> Result<(), StoreError> {
    let backlog = store.pending_by_integration().await?;
    for integration in Integration::ALL {
        let name = integration.as_str();
        let (pending, oldest) = backlog
            .iter()
            .find(|(i, _, _)| i == name)
            .map_or((0, now), |(_, n, oldest)| (*n, *oldest));
        metrics::gauge!(metric_names::OUTBOX_PENDING, "integration" => name).set(pending as f64);
        metrics::gauge!(metric_names::OUTBOX_OLDEST_PENDING_SECONDS, "integration" => name)
            .set((now - oldest).max(0) as f64);
    }
    Ok(())
}

/// Sends what is due, `concurrency` batches at a time, until nothing due is left.
async fn deliver_due(
    store: &Store,
    clock: &SharedClock,
    schedule: &Schedule,
    channel: &dyn Channel,
) -> Result<(), StoreError> {
    let integration = channel.integration().as_str();
    let batching = channel.batching();
    let size = batching.size.max(1);
    let limit = (size * schedule.concurrency) as i64;
    loop {
        let now = clock.now();
        let due = store.due_messages(integration, now, limit).await?;
        let oldest = due.iter().map(|m| m.next_attempt_at).min().unwrap_or(now);
        if due.is_empty() || (due.len() < size && now - oldest < batching.linger_secs) {
            return Ok(());
        }
        let batches: Vec<Vec<MessageRow>> = due.chunks(size).map(<[MessageRow]>::to_vec).collect();
        let tried: Vec<Vec<(String, AttemptRecord)>> = futures::stream::iter(batches)
            .map(|batch| async move {
                let sent = channel.deliver(&batch).await;
                let now = clock.now();
                batch
                    .iter()
                    .zip(sent)
                    .map(|(message, sent)| {
                        let record = schedule.record(message, &sent, now);
                        count(integration, record.status);
                        (message.id.clone(), record)
                    })
                    .collect()
            })
            .buffer_unordered(schedule.concurrency)
            .collect()
            .await;
        // One transaction for the pass: on SQLite every write transaction waits its turn
        // with the group commit.
        store.record_attempts(&tried.concat()).await?;
        if (due.len() as i64) < limit {
            return Ok(());
        }
    }
}

fn count(integration: &'static str, status: &str) {
    let name = match status {
        "delivered" => metric_names::OUTBOX_SENT,
        "pending" => metric_names::OUTBOX_RETRIED,
        _ => metric_names::OUTBOX_FAILED,
    };
    metrics::counter!(name, "integration" => integration).increment(1);
}

fn log_store_failure(what: &str, err: &StoreError) {
    if let Some(held_back) = STORE_FAILURES.allow() {
        tracing::warn!(error = %err, held_back, "{what} failed; will retry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            poll_interval: Duration::from_millis(10),
            retry_base_secs: 5,
            retry_max_secs: 3_600,
            give_up_after_secs: 72 * 3_600,
            concurrency: 2,
            retention_secs: 90 * 86_400,
        }
    }

    #[test]
    fn retries_back_off_with_jitter_and_honour_retry_after() {
        let s = schedule();
        for attempts in 1..=12 {
            let wait = s.next_try(1_000, attempts, None) - 1_000;
            let expected = (5_i64 << (attempts - 1)).min(3_600) as f64;
            assert!(
                (wait as f64) >= expected * 0.8 - 1.0 && (wait as f64) <= expected * 1.2 + 1.0,
                "attempt {attempts}: {wait}"
            );
        }
        assert_eq!(s.next_try(1_000, 1, Some(120)) - 1_000, 120);
        assert_eq!(s.next_try(1_000, 1, Some(u64::MAX)) - 1_000, 3_600);
    }
}
