//! The usage reporter: an actor that, on a timer, turns the usage counted since its last
//! report into Billing Meter events on each creator's connected account, exactly once.
//!
//! Each tick has two halves, then retries the sync of any priced tier not in step with
//! Stripe (a failed sync is not left waiting for the next change) and the tidy-ups of
//! deleted meters and tiers that Stripe has not taken yet (`tidy`). *Cut*: for every customer with a Stripe customer id, a cursor
//! per meter says how many whole units of its all-time durable usage are accounted for.
//! Whatever has grown past it becomes a report when the customer's tier bills that
//! meter's overage, and is passed over when it does not (so usage is billed by the tier
//! in force when a pass sees it; a customer first seen is billed from the hour it could
//! first be: its last change of tier or Stripe id, or the Stripe meter's creation). The report and the advanced cursor are written in one transaction,
//! with a deterministic identifier (`stry_<hash of creator, customer, meter>_<sequence>`),
//! before anything is sent; the fraction below a whole unit stays behind and goes out once
//! it adds up. *Send*: every report due is sent with its identifier until Stripe accepts
//! it, then marked sent. A restart between the two resends the same identifier (and the
//! same `Idempotency-Key`), which Stripe takes once: a report is never cut twice and never
//! dropped.
//!
//! Sending respects Stripe's limits: at most `meter_events_per_second` v1 requests a
//! second; 429s, 5xx, network errors and `Stripe-Should-Retry: true` back off
//! exponentially with jitter; other refusals mark the report `failed` (kept, with
//! Stripe's reason). A report older than Stripe's 35-day window is sent stamped at the
//! window's edge. Past a second's worth of v1 requests (or always, by configuration) the
//! reports go through the v2 meter event stream instead, 100 to a request.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use futures::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use sha2::{Digest, Sha256};
use stripe_billing::billing_meter_event::CreateBillingMeterEvent;

use crate::billing::catalog::{CUSTOMER_PAYLOAD_KEY, VALUE_PAYLOAD_KEY};
use crate::billing::client::{MeterEventTaken, StreamEvent, StreamPayload, StripeError};
use crate::billing::Billing;
use crate::config::MeterEventTransport;
use crate::store::billing::{ReportCursorRow, ReportRow};
use crate::store::StoreError;
use crate::telemetry::metric_names;
use crate::tenants::registry::Registry;
use crate::usage::model::MAX_PAST_SECS;
use crate::usage::period::rfc3339;
use crate::usage::quantity::SCALE;

/// Reports read from the store per send round: ten seconds of v1 at Stripe's limit, so
/// that `auto` sees a backlog larger than one second's worth.
const SEND_BATCH: i64 = 10_000;
/// v1 requests in flight at once (the rate limiter sets the pace; this hides latency).
const V1_CONCURRENCY: usize = 32;
/// Events per v2 stream request (Stripe's maximum).
const V2_EVENTS_PER_REQUEST: usize = 100;
/// Longest wait between two attempts of one report.
const MAX_BACKOFF_SECS: i64 = 600;
/// A report is stamped no earlier than this inside Stripe's 35-day window.
const WINDOW_MARGIN_SECS: i64 = 3_600;

pub struct Reporter {
    billing: Billing,
    registry: Arc<Registry>,
    interval: Duration,
    limiter: Arc<DefaultDirectRateLimiter>,
    /// v2 meter event session per account: (token, expires at, Unix seconds).
    sessions: Arc<Mutex<HashMap<String, (String, i64)>>>,
}

impl Reporter {
    pub fn start(billing: Billing, registry: Arc<Registry>) -> Addr<Reporter> {
        let per_second =
            NonZeroU32::new(billing.config.meter_events_per_second).unwrap_or(NonZeroU32::MIN);
        Reporter {
            interval: Duration::from_millis(billing.config.report_interval_ms),
            billing,
            registry,
            limiter: Arc::new(RateLimiter::direct(Quota::per_second(per_second))),
            sessions: Arc::default(),
        }
        .start()
    }
}

impl Actor for Reporter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.notify_later(Tick, self.interval);
    }
}

/// One cut-and-send pass; the next is scheduled when this one ends, so passes never
/// overlap however long Stripe takes.
#[derive(Message)]
#[rtype(result = "()")]
struct Tick;

impl Handler<Tick> for Reporter {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Tick, _: &mut Self::Context) -> Self::Result {
        let pass = Pass {
            billing: self.billing.clone(),
            registry: self.registry.clone(),
            limiter: self.limiter.clone(),
            sessions: self.sessions.clone(),
        };
        AtomicResponse::new(Box::pin(
            async move { pass.run().await }
                .into_actor(self)
                .map(|_, actor, ctx| {
                    ctx.notify_later(Tick, actor.interval);
                }),
        ))
    }
}

/// Stops the reporter after the pass in progress (the daemon is stopping).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for Reporter {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// What one pass needs, detached from the actor so that it can run as a future.
struct Pass {
    billing: Billing,
    registry: Arc<Registry>,
    limiter: Arc<DefaultDirectRateLimiter>,
    sessions: Arc<Mutex<HashMap<String, (String, i64)>>>,
}

/// How one attempt of one report ended.
enum Attempt {
    /// Taken by Stripe through this transport (`v1`, `v2`).
    Accepted(&'static str),
    /// Worth another try: why, and how long Stripe asked to wait (`Retry-After`).
    Retry(String, Option<i64>),
    Refused(String),
}

impl Attempt {
    fn of(result: Result<(), StripeError>, transport: &'static str) -> Self {
        match result {
            Ok(()) => Attempt::Accepted(transport),
            Err(err) => Attempt::failed(&err),
        }
    }

    fn failed(err: &StripeError) -> Self {
        if err.is_retryable() {
            Attempt::Retry(err.to_string(), err.retry_after_secs())
        } else {
            Attempt::Refused(err.to_string())
        }
    }
}

impl Pass {
    async fn run(&self) {
        if let Err(err) = self.cut_reports().await {
            tracing::warn!(error = %err, "cutting usage reports failed; the next pass retries");
        }
        if let Err(err) = self.send_due_reports().await {
            tracing::warn!(error = %err, "sending usage reports failed; the next pass retries");
        }
        // After the reports, so that a slow Stripe catalog never delays billing.
        self.resync_tiers().await;
        self.billing.tidy_up_all().await;
        if let Err(err) = self.billing.end_overdue_graces(&self.registry).await {
            tracing::warn!(error = %err.message, "ending overdue grace periods failed; the next \
                pass retries");
        }
        match self.billing.store.oldest_pending_report().await {
            Ok(oldest) => {
                let age = oldest.map_or(0, |at| (self.billing.clock.now() - at).max(0));
                metrics::gauge!(metric_names::STRIPE_OLDEST_UNSENT_SECONDS).set(age as f64);
            }
            Err(err) => tracing::debug!(error = %err, "reading the report backlog failed"),
        }
    }

    /// Retries the sync of every priced tier that is not in step with Stripe (a sync that
    /// failed, or a change not synced yet), so that a failed sync does not wait for the
    /// next change or checkout. A tier in step costs one read of the store. A tier whose
    /// background sync keeps failing (an account that lost a capability, a refused
    /// parameter) is retried with backoff (`Billing::sync_due`), not on every pass.
    async fn resync_tiers(&self) {
        let connected = match self.billing.store.connected_creators().await {
            Ok(connected) => connected,
            Err(err) => {
                tracing::debug!(error = %err, "listing connected creators failed");
                return;
            }
        };
        let mut failed = 0;
        for (creator_id, _) in connected {
            let Some(creator) = self.registry.creator(&creator_id) else {
                continue;
            };
            let config = creator.tenant.config();
            for tier in config.live_tiers().filter(|tier| tier.is_priced()) {
                if !self.billing.sync_due(&creator_id, &tier.key) {
                    continue;
                }
                let outcome = self.billing.sync_tier(&creator.tenant, &tier.key).await;
                self.billing
                    .note_background_sync(&creator_id, &tier.key, outcome.is_ok());
                if let Err(err) = outcome {
                    failed += 1;
                    tracing::debug!(creator = %creator.tenant.slug, tier = %tier.key,
                        error = %err.message, "retrying a tier sync failed");
                }
            }
        }
        if failed > 0 {
            tracing::warn!(
                failed,
                "tier syncs to Stripe still fail; they are retried with backoff"
            );
        }
    }

    /// Writes a report for every billed customer and meter whose durable usage has grown
    /// by at least one whole unit since the last one.
    async fn cut_reports(&self) -> Result<(), StoreError> {
        let store = &self.billing.store;
        let now = self.billing.clock.now();
        for (creator_id, account) in store.connected_creators().await? {
            let Some(creator) = self.registry.creator(&creator_id) else {
                continue;
            };
            let config = creator.tenant.config();
            let meters: HashMap<String, _> = store
                .load_stripe_meters(&creator_id)
                .await?
                .into_iter()
                .filter(|m| m.account_id == account)
                .map(|m| (m.meter_key.clone(), m))
                .collect();
            if meters.is_empty() {
                continue;
            }
            let mut cursors: HashMap<(String, String), ReportCursorRow> = store
                .load_report_cursors(&creator_id)
                .await?
                .into_iter()
                .map(|c| ((c.customer_id.clone(), c.meter_key.clone()), c))
                .collect();
            let mut reports = Vec::new();
            let mut advanced = Vec::new();
            for total in store.billable_totals(&creator_id).await? {
                let Some(meter) = meters.get(&total.meter_key) else {
                    continue;
                };
                let assigned = total
                    .tier_key
                    .as_deref()
                    .and_then(|key| config.tier_id(key));
                let billed = config.effective_tier(assigned).is_some_and(|tier| {
                    tier.definition
                        .caps
                        .get(&total.meter_key)
                        .is_some_and(|cap| cap.billed_overage().is_some())
                });
                let units = total.total / SCALE;
                let key = (total.customer_id.clone(), total.meter_key.clone());
                let (mut cursor, first_sight) = match cursors.remove(&key) {
                    Some(cursor) => (cursor, false),
                    // Usage from before the customer could be billed (its last change,
                    // the Stripe meter's creation) is nobody's to bill; on a tier that
                    // bills nothing, nothing so far is billed.
                    None => {
                        let baseline = if billed {
                            total.before_billable / SCALE
                        } else {
                            units
                        };
                        let cursor = ReportCursorRow {
                            customer_id: total.customer_id.clone(),
                            meter_key: total.meter_key.clone(),
                            accounted_units: baseline,
                            next_seq: 0,
                            epoch: new_epoch(),
                        };
                        (cursor, true)
                    }
                };
                let delta = units - cursor.accounted_units;
                if delta <= 0 {
                    if first_sight {
                        advanced.push(cursor);
                    }
                    continue;
                }
                cursor.accounted_units = units;
                if !billed {
                    // Units counted while the tier bills nothing are passed over.
                    advanced.push(cursor);
                    continue;
                }
                reports.push(ReportRow {
                    identifier: identifier(
                        &creator_id,
                        &total.customer_id,
                        &total.meter_key,
                        config
                            .meter_id(&total.meter_key)
                            .map_or(0, |id| config.meter(id).serial),
                        &cursor.epoch,
                        cursor.next_seq,
                    ),
                    creator_id: creator_id.clone(),
                    account_id: account.clone(),
                    customer_id: total.customer_id.clone(),
                    meter_key: total.meter_key.clone(),
                    event_name: meter.event_name.clone(),
                    stripe_customer_id: total.stripe_customer_id.clone(),
                    value: delta,
                    event_at: now,
                    created_at: now,
                    state: "pending".into(),
                    attempts: 0,
                    next_attempt_at: now,
                    sent_at: None,
                    last_error: None,
                });
                cursor.next_seq += 1;
                advanced.push(cursor);
            }
            if !advanced.is_empty() {
                store
                    .insert_reports(&creator_id, &reports, &advanced)
                    .await?;
                tracing::debug!(creator = %creator.tenant.slug, reports = reports.len(),
                    "usage reports cut");
            }
        }
        Ok(())
    }

    /// Sends every report due, in rounds of `SEND_BATCH`, until none is due.
    async fn send_due_reports(&self) -> Result<(), StoreError> {
        loop {
            let now = self.billing.clock.now();
            let due = self.billing.store.due_reports(now, SEND_BATCH).await?;
            if due.is_empty() {
                return Ok(());
            }
            let config = &self.billing.config;
            let use_stream = uses_stream(
                config.meter_event_transport,
                due.len(),
                config.meter_events_per_second,
            );
            let reports: Vec<&ReportRow> = due.iter().collect();
            let outcomes = if use_stream {
                self.send_v2(&reports).await
            } else {
                self.send_v1(&reports).await
            };
            self.record(&due, outcomes).await?;
            if (due.len() as i64) < SEND_BATCH {
                return Ok(());
            }
        }
    }

    /// One v1 request per report, paced by the rate limiter.
    async fn send_v1(&self, due: &[&ReportRow]) -> Vec<Attempt> {
        let now = self.billing.clock.now();
        futures::stream::iter(due)
            .map(|report| async move {
                self.limiter.until_ready().await;
                let timestamp = stamp(report.event_at, now);
                let payload = HashMap::from([
                    (
                        CUSTOMER_PAYLOAD_KEY.to_string(),
                        report.stripe_customer_id.clone(),
                    ),
                    (VALUE_PAYLOAD_KEY.to_string(), report.value.to_string()),
                ]);
                let event = CreateBillingMeterEvent::new(report.event_name.as_str(), payload)
                    .identifier(report.identifier.as_str())
                    .timestamp(timestamp);
                // The key names the exact request: a report restamped into the window is
                // a different request, and must not collide with its earlier attempts.
                let key = format!("{}:{timestamp}", report.identifier);
                let sent = self
                    .billing
                    .client
                    .send::<_, MeterEventTaken>(&event, Some(&report.account_id), Some(&key))
                    .await
                    .map(drop);
                Attempt::of(sent, "v1")
            })
            .buffered(V1_CONCURRENCY)
            .collect()
            .await
    }

    /// The v2 meter event stream: a session per account, 100 events a request. A request
    /// Stripe refuses for good is sent again through v1, so that each report gets its own
    /// answer rather than sharing a refusal.
    async fn send_v2(&self, due: &[&ReportRow]) -> Vec<Attempt> {
        let now = self.billing.clock.now();
        let mut by_account: HashMap<&str, Vec<usize>> = HashMap::new();
        for (index, report) in due.iter().enumerate() {
            by_account
                .entry(&report.account_id)
                .or_default()
                .push(index);
        }
        let mut outcomes: Vec<Option<Attempt>> = due.iter().map(|_| None).collect();
        for (account, indexes) in by_account {
            for chunk in indexes.chunks(V2_EVENTS_PER_REQUEST) {
                let reports: Vec<&ReportRow> = chunk.iter().map(|&i| due[i]).collect();
                let answers = match self.stream(account, &reports, now).await {
                    Ok(()) => reports.iter().map(|_| Attempt::Accepted("v2")).collect(),
                    Err(err) if err.is_retryable() => {
                        reports.iter().map(|_| Attempt::failed(&err)).collect()
                    }
                    Err(_) => self.send_v1(&reports).await,
                };
                for (&index, answer) in chunk.iter().zip(answers) {
                    outcomes[index] = Some(answer);
                }
            }
        }
        outcomes
            .into_iter()
            .map(|outcome| outcome.expect("every report is in one chunk"))
            .collect()
    }

    /// One v2 stream request for one account's reports.
    async fn stream(
        &self,
        account: &str,
        reports: &[&ReportRow],
        now: i64,
    ) -> Result<(), StripeError> {
        let token = self.session_token(account, now).await?;
        let events: Vec<StreamEvent> = reports
            .iter()
            .map(|report| StreamEvent {
                event_name: &report.event_name,
                identifier: &report.identifier,
                payload: StreamPayload {
                    stripe_customer_id: &report.stripe_customer_id,
                    value: report.value.to_string(),
                },
                timestamp: rfc3339(stamp(report.event_at, now)),
            })
            .collect();
        match self
            .billing
            .client
            .send_meter_event_stream(&token, &events)
            .await
        {
            Err(StripeError::Api { status: 401, .. }) => {
                // The session ended early: forget it; the retry opens a new one.
                self.sessions_lock().remove(account);
                Err(StripeError::Transport("meter event session expired".into()))
            }
            other => other,
        }
    }

    fn sessions_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, i64)>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A live v2 session token for the account, opening a new session when needed.
    async fn session_token(&self, account: &str, now: i64) -> Result<String, StripeError> {
        if let Some((token, expires_at)) = self.sessions_lock().get(account) {
            if *expires_at > now + 60 {
                return Ok(token.clone());
            }
        }
        let session = self
            .billing
            .client
            .create_meter_event_session(account)
            .await?;
        let expires_at = chrono::DateTime::parse_from_rfc3339(&session.expires_at)
            .map(|t| t.timestamp())
            .unwrap_or(now + 15 * 60);
        self.sessions_lock().insert(
            account.to_string(),
            (session.authentication_token.clone(), expires_at),
        );
        Ok(session.authentication_token)
    }

    /// Writes what each attempt came to: sent, due again after a backoff, or failed.
    async fn record(&self, due: &[ReportRow], outcomes: Vec<Attempt>) -> Result<(), StoreError> {
        let store = &self.billing.store;
        let now = self.billing.clock.now();
        let mut accepted = Vec::new();
        for (report, outcome) in due.iter().zip(outcomes) {
            match outcome {
                Attempt::Accepted(transport) => {
                    accepted.push(report.identifier.as_str());
                    metrics::counter!(metric_names::STRIPE_REPORTS_SENT, "transport" => transport)
                        .increment(1);
                }
                Attempt::Retry(error, retry_after) => {
                    metrics::counter!(metric_names::STRIPE_REPORTS_RETRIED).increment(1);
                    // Never sooner than Stripe asked, and never later than the backoff's
                    // ceiling (retries stay within Stripe's identifier deduplication).
                    let asked = retry_after.unwrap_or(0).min(MAX_BACKOFF_SECS);
                    let next = now.saturating_add(backoff_secs(report.attempts).max(asked));
                    store
                        .mark_report_attempt_failed(&report.identifier, Some(next), &error)
                        .await?;
                }
                Attempt::Refused(error) => {
                    metrics::counter!(metric_names::STRIPE_REPORTS_FAILED).increment(1);
                    tracing::warn!(identifier = %report.identifier, error = %error,
                        "Stripe refused a usage report; it is kept as failed");
                    store
                        .mark_report_attempt_failed(&report.identifier, None, &error)
                        .await?;
                }
            }
        }
        if !accepted.is_empty() {
            store.mark_reports_sent(&accepted, now).await?;
        }
        Ok(())
    }
}

/// Whether `due` reports go through the v2 stream: by configuration, or (`auto`) when
/// they are more than one second's worth of v1 requests.
fn uses_stream(transport: MeterEventTransport, due: usize, v1_per_second: u32) -> bool {
    match transport {
        MeterEventTransport::V1 => false,
        MeterEventTransport::V2 => true,
        MeterEventTransport::Auto => due > v1_per_second as usize,
    }
}

/// `stry_<16 hex of sha256(creator, customer, meter)>_<sequence>`: the same report always
/// has the same identifier, and different ones never share one. The meter is its key and,
/// when not 0, its serial: a meter deleted and made again starts its sequence anew (its
/// cursors went with it) under identifiers of its own.
pub fn identifier(
    creator_id: &str,
    customer_id: &str,
    meter_key: &str,
    meter_serial: i64,
    epoch: &str,
    seq: i64,
) -> String {
    let mut hash = Sha256::new();
    for part in [creator_id, customer_id, meter_key] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    if meter_serial != 0 {
        hash.update(meter_serial.to_be_bytes());
    }
    // Cursors made before epochs have none: their identifiers stay what they were.
    if !epoch.is_empty() {
        hash.update([0]);
        hash.update(epoch.as_bytes());
    }
    format!("stry_{}_{seq}", &hex::encode(hash.finalize())[..16])
}

/// A new cursor's epoch: a customer erased and made again under the same id reports
/// under identifiers of its own.
fn new_epoch() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 12)
}

/// The report's time, moved inside Stripe's 35-day window if it fell out of it.
fn stamp(event_at: i64, now: i64) -> i64 {
    event_at.max(now - MAX_PAST_SECS + WINDOW_MARGIN_SECS)
}

/// Exponential backoff with jitter: 1, 2, 4 … seconds (at most ten minutes) after the
/// `attempts`-th failure, each drawn between half and all of it.
fn backoff_secs(attempts: i64) -> i64 {
    let ceiling = 1i64
        .checked_shl(attempts.clamp(0, 30) as u32)
        .unwrap_or(MAX_BACKOFF_SECS)
        .min(MAX_BACKOFF_SECS);
    rand::rng().random_range((ceiling + 1) / 2..=ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_deterministic_and_distinct() {
        let first = identifier("cr", "cust", "api", 0, "", 0);
        assert_eq!(first, identifier("cr", "cust", "api", 0, "", 0));
        assert_ne!(first, identifier("cr", "cust", "api", 0, "", 1));
        assert_ne!(first, identifier("cr", "cus", "tapi", 0, "", 0));
        assert_ne!(first, identifier("cr", "cust", "api", 7, "", 0));
        assert_ne!(first, identifier("cr", "cust", "api", 0, "e1", 0));
        assert!(first.starts_with("stry_") && first.ends_with("_0"));
        assert!(
            first.len() <= 100,
            "Stripe takes identifiers up to 100 characters"
        );
    }

    #[test]
    fn backoff_grows_to_a_ceiling_with_jitter() {
        for attempts in 0..40 {
            let ceiling = (1i64 << attempts.min(30)).min(MAX_BACKOFF_SECS);
            let wait = backoff_secs(attempts);
            assert!(
                wait <= ceiling && wait >= (ceiling + 1) / 2,
                "{attempts}: {wait}"
            );
        }
    }

    #[test]
    fn auto_takes_the_stream_past_a_second_of_v1() {
        use MeterEventTransport::*;
        assert!(!uses_stream(Auto, 1_000, 1_000));
        assert!(uses_stream(Auto, 1_001, 1_000));
        assert!(!uses_stream(V1, 1_000_000, 1_000));
        assert!(uses_stream(V2, 1, 1_000));
    }

    #[test]
    fn stale_reports_are_stamped_inside_the_window() {
        let now = 100 * 86_400;
        assert_eq!(stamp(now - 10, now), now - 10);
        assert_eq!(
            stamp(now - 40 * 86_400, now),
            now - MAX_PAST_SECS + WINDOW_MARGIN_SECS
        );
    }
}
