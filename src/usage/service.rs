//! Where an event goes: checked events are decided and counted in memory, their deltas go
//! to the group commit, and the answer waits for the commit. If the commit fails, every
//! count the request made is taken back and its idempotency keys forgotten, so a retry
//! starts clean: nothing is ever half-counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::mapref::entry::{Entry, VacantEntry};
use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::customers::model::{Entitlement, MeterUsage, Usage};
use crate::error::ApiError;
use crate::outbox::model::{
    announcement, USAGE_LIMIT_REACHED, USAGE_OVERAGE_STARTED, USAGE_WARNING,
};
use crate::store::flusher::SubmitError;
use crate::store::outbox::Announcement;
use crate::store::{BucketWrite, FlushHandle, FlushJob, KeyWrite, StoreHealth};
use crate::telemetry::metric_names;
use crate::tenants::config::TenantConfig;
use crate::tenants::state::{Applied, CommitState, CustomerState, KeyRecord, Tenant};
use crate::usage::decide::{CounterOverflow, Decision, Threshold};
use crate::usage::model::{CheckQuery, EventResult, UsageEvent};
use crate::usage::period::{hour_bucket, period_containing, rfc3339};

/// Longest wait for another request that holds the same idempotency key.
const KEY_WAIT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct UsageService {
    pub flusher: FlushHandle,
    pub health: StoreHealth,
    pub clock: SharedClock,
}

/// The counts one request made, kept until its commit answers.
struct Pending<'a> {
    tenant: &'a Tenant,
    config: &'a TenantConfig,
    /// Events counted, or that passed a threshold: what a failed commit takes back.
    applied: Vec<(usize, Applied)>,
    /// Outbox events for the thresholds passed, committed with the counts.
    announcements: Vec<Announcement>,
    new_keys: Vec<Arc<str>>,
    commit: Option<(watch::Sender<CommitState>, watch::Receiver<CommitState>)>,
}

impl Pending<'_> {
    /// Keeps the key's first answer, pending until this request's commit answers, and
    /// queues it to be committed with the counts.
    fn remember(
        &mut self,
        slot: VacantEntry<'_, Arc<str>, KeyRecord>,
        result: &EventResult,
        now: i64,
        keys: &mut Vec<KeyWrite>,
    ) {
        let result: Arc<str> = serde_json::to_string(result)
            .expect("a result always serializes")
            .into();
        keys.push(KeyWrite {
            creator_id: self.tenant.id.clone(),
            key: slot.key().clone(),
            result: result.clone(),
            created_at: now,
        });
        self.new_keys.push(slot.key().clone());
        slot.insert(KeyRecord {
            result,
            created_at: now,
            commit: self.commit.as_ref().map(|(_, rx)| rx.clone()),
        });
    }

    /// Takes back every count and forgets every key this request made.
    fn roll_back(self, events: &[UsageEvent<'_>]) {
        for (index, applied) in &self.applied {
            let event = &events[*index];
            self.tenant
                .undo(self.config, event.meter, event.value, applied);
        }
        if let Some((tx, rx)) = &self.commit {
            for key in &self.new_keys {
                self.tenant.keys.remove_if(key, |_, record| {
                    record.commit.as_ref().is_some_and(|c| c.same_channel(rx))
                });
            }
            let _ = tx.send(CommitState::Failed);
        }
    }
}

impl UsageService {
    /// Now, per the daemon's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Decides, counts and durably commits `events`; answers one result per event in order.
    /// `events` come checked; `batch` says whether errors should name an index.
    pub async fn record(
        &self,
        tenant: &Tenant,
        config: &TenantConfig,
        events: &[UsageEvent<'_>],
        batch: bool,
    ) -> Result<Vec<EventResult>, ApiError> {
        let started = Instant::now();
        if !self.health.is_up() {
            return Err(ApiError::store_unavailable());
        }
        wait_for_other_holders(tenant, events).await?;
        if events.iter().any(|e| tenant.is_erasing(&e.customer_id)) {
            return Err(ApiError::unavailable(
                "busy",
                "the customer is being erased; retry in a moment (nothing was counted)",
            ));
        }
        let now = self.clock.now();
        let mut pending = Pending {
            tenant,
            config,
            applied: Vec::new(),
            announcements: Vec::new(),
            new_keys: Vec::new(),
            commit: events
                .iter()
                .any(|e| e.idempotency_key.is_some())
                .then(|| watch::channel(CommitState::Pending)),
        };
        let mut results = Vec::with_capacity(events.len());
        let mut buckets = Vec::new();
        let mut keys = Vec::new();
        let mut decisions = [0u64; 3];
        for (index, event) in events.iter().enumerate() {
            let result = match &event.idempotency_key {
                None => self.count(&mut pending, index, event, &mut buckets),
                Some(key) => match tenant.keys.entry(Arc::from(&**key)) {
                    Entry::Occupied(record) => {
                        metrics::counter!(metric_names::DUPLICATES).increment(1);
                        serde_json::from_str(&record.get().result)
                            .map(|first| EventResult {
                                duplicate: true,
                                ..first
                            })
                            .map_err(|e| ApiError::internal(&e))
                    }
                    Entry::Vacant(slot) => {
                        let result = self.count(&mut pending, index, event, &mut buckets);
                        if let Ok(result) = &result {
                            pending.remember(slot, result, now, &mut keys);
                        }
                        result
                    }
                },
            };
            match result {
                Ok(result) => {
                    if !result.duplicate {
                        decisions[result.decision as usize] += 1;
                    }
                    results.push(result);
                }
                Err(err) => {
                    pending.roll_back(events);
                    return Err(if batch { err.at_index(index) } else { err });
                }
            }
        }
        metrics::histogram!(metric_names::DECISION_SECONDS).record(started.elapsed().as_secs_f64());
        tenant.tally(decisions);
        for (decision, n) in [Decision::Allow, Decision::Warn, Decision::Block]
            .into_iter()
            .zip(decisions)
        {
            if n > 0 {
                metrics::counter!(metric_names::EVENTS, "decision" => decision.as_str())
                    .increment(n);
            }
        }
        if buckets.is_empty() && keys.is_empty() && pending.announcements.is_empty() {
            return Ok(results);
        }
        let job = FlushJob {
            buckets,
            keys,
            announcements: std::mem::take(&mut pending.announcements),
            ..FlushJob::default()
        };
        match self.commit(job).await {
            Ok(()) => {
                if let Some((tx, _)) = &pending.commit {
                    let _ = tx.send(CommitState::Committed);
                }
                Ok(results)
            }
            Err(err) => {
                pending.roll_back(events);
                Err(err)
            }
        }
    }

    /// Commits `job` through the group commit and waits for it: 503 when the store is
    /// down or too much is queued (the caller takes back what it counted).
    pub async fn commit(&self, job: FlushJob) -> Result<(), ApiError> {
        if !self.health.is_up() {
            return Err(ApiError::store_unavailable());
        }
        self.flusher.commit(job).await.map_err(|err| match err {
            SubmitError::QueueFull => {
                metrics::counter!(metric_names::QUEUE_FULL).increment(1);
                ApiError::unavailable(
                    "overloaded",
                    "too much is waiting to be committed; nothing was counted, retry later",
                )
            }
            SubmitError::Store(_) => ApiError::store_unavailable(),
        })
    }

    /// Decides and counts one event; a counted event adds a bucket delta.
    fn count(
        &self,
        pending: &mut Pending<'_>,
        index: usize,
        event: &UsageEvent<'_>,
        buckets: &mut Vec<BucketWrite>,
    ) -> Result<EventResult, ApiError> {
        let config = pending.config;
        let applied = pending
            .tenant
            .apply(
                config,
                &event.customer_id,
                event.meter,
                event.value,
                event.at,
            )
            .map_err(overflow)?;
        let meter = config.meter(event.meter);
        let outcome = applied.outcome;
        let result = EventResult {
            customer_id: applied.customer_id.clone(),
            meter: meter.key.clone(),
            decision: outcome.decision,
            used: outcome.used,
            limit: applied.limit,
            remaining: applied
                .limit
                .map(|limit| limit.saturating_sub(outcome.used)),
            overage: outcome.overage,
            duplicate: false,
        };
        if outcome.counted {
            buckets.push(BucketWrite {
                creator_id: pending.tenant.id.clone(),
                customer_id: applied.customer_id.clone(),
                meter_key: meter.key.clone(),
                meter_serial: meter.serial,
                period_start: applied.period.start,
                bucket_start: hour_bucket(event.at),
                value: meter.aggregation.effective_value(event.value).micros(),
                is_max: meter.aggregation == crate::usage::decide::Aggregation::Max,
            });
        }
        if applied.thresholds != 0 {
            announce_thresholds(pending, &result, &applied, event.at);
        }
        if outcome.counted || applied.thresholds != 0 {
            pending.applied.push((index, applied));
        }
        Ok(result)
    }

    /// The decision an event would get now; nothing is counted.
    pub fn check(
        &self,
        tenant: &Tenant,
        config: &TenantConfig,
        query: &CheckQuery<'_>,
    ) -> Result<EventResult, ApiError> {
        let (outcome, limit) = tenant
            .check(
                config,
                &query.customer_id,
                query.meter,
                query.value,
                self.clock.now(),
            )
            .map_err(overflow)?;
        metrics::counter!(metric_names::CHECKS, "decision" => outcome.decision.as_str())
            .increment(1);
        Ok(EventResult {
            customer_id: Arc::from(&*query.customer_id),
            meter: config.meter(query.meter).key.clone(),
            decision: outcome.decision,
            used: outcome.used,
            limit,
            remaining: limit.map(|l| l.saturating_sub(outcome.used)),
            overage: outcome.overage,
            duplicate: false,
        })
    }

    /// The customer's usage of every meter in the current periods.
    pub fn usage(&self, tenant: &Tenant, customer_id: &str) -> Result<Usage, ApiError> {
        let state = tenant
            .customers
            .get(customer_id)
            .ok_or_else(|| customer_not_found(customer_id))?;
        Ok(self.usage_of(tenant, customer_id, &state))
    }

    /// A customer's usage, zero on the default tier for one never seen (a widget shows a
    /// new customer that way).
    pub fn usage_or_new(&self, tenant: &Tenant, customer_id: &str) -> Usage {
        match tenant.customers.get(customer_id) {
            Some(state) => self.usage_of(tenant, customer_id, &state),
            None => self.usage_of(tenant, customer_id, &CustomerState::default()),
        }
    }

    fn usage_of(&self, tenant: &Tenant, customer_id: &str, state: &CustomerState) -> Usage {
        let config = tenant.config();
        let now = self.clock.now();
        let tier = config.effective_tier(state.tier);
        let meters = config
            .live_meters()
            .map(|(id, meter)| {
                let period = period_containing(meter.reset, now, state.anchor);
                let used = state.used(id, period.start);
                let limit = tier.and_then(|t| t.cap(id)).map(|c| c.limit);
                MeterUsage {
                    meter: meter.key.to_string(),
                    used,
                    limit,
                    remaining: limit.map(|l| l.saturating_sub(used)),
                    period_start: rfc3339(period.start),
                    period_end: period.end.map(rfc3339),
                }
            })
            .collect();
        Usage {
            customer_id: customer_id.to_string(),
            tier: tier.map(|t| t.key.to_string()),
            meters,
            billing_status: None,
        }
    }

    /// Whether the customer's tier grants `feature`.
    pub fn entitlement(
        &self,
        tenant: &Tenant,
        customer_id: &str,
        feature: &str,
    ) -> Result<Entitlement, ApiError> {
        let config = tenant.config();
        let state = tenant
            .customers
            .get(customer_id)
            .ok_or_else(|| customer_not_found(customer_id))?;
        let entitled = config
            .effective_tier(state.tier)
            .is_some_and(|tier| tier.has_feature(feature));
        Ok(Entitlement {
            feature: feature.to_string(),
            entitled,
        })
    }
}

/// The outbox events of the thresholds an event was the first to pass in its period, one
/// per customer, meter, period and kind (the cause names all four).
fn announce_thresholds(
    pending: &mut Pending<'_>,
    result: &EventResult,
    applied: &Applied,
    at: i64,
) {
    let tier = pending
        .tenant
        .customers
        .get(&*applied.customer_id)
        .and_then(|state| pending.config.effective_tier(state.tier))
        .map(|tier| tier.key.to_string());
    for threshold in Threshold::ALL {
        if applied.thresholds & threshold.bit() == 0 {
            continue;
        }
        let event_type = match threshold {
            Threshold::Warning => USAGE_WARNING,
            Threshold::LimitReached => USAGE_LIMIT_REACHED,
            Threshold::OverageStarted => USAGE_OVERAGE_STARTED,
        };
        let data = serde_json::json!({
            "customer_id": &*result.customer_id,
            "meter": &*result.meter,
            "tier": tier,
            "used": result.used,
            "limit": result.limit,
            "decision": result.decision,
            "period_start": rfc3339(applied.period.start),
            "period_end": applied.period.end.map(rfc3339),
        });
        let cause = format!(
            "{event_type}:{}:{}:{}",
            result.customer_id, result.meter, applied.period.start
        );
        pending.announcements.push(announcement(
            &pending.tenant.id,
            cause,
            event_type,
            data,
            at,
        ));
    }
}

fn customer_not_found(customer_id: &str) -> ApiError {
    ApiError::not_found("customer_not_found", format!("no customer `{customer_id}`"))
}

fn overflow(_: CounterOverflow) -> ApiError {
    ApiError::invalid(
        "counter_overflow",
        "counting this value would pass the largest count a meter holds",
    )
}

/// Waits until no other in-flight request holds one of these idempotency keys, so that a
/// retry racing its original answers with the original's committed result.
async fn wait_for_other_holders(
    tenant: &Tenant,
    events: &[UsageEvent<'_>],
) -> Result<(), ApiError> {
    let holders: Vec<watch::Receiver<CommitState>> = events
        .iter()
        .filter_map(|e| e.idempotency_key.as_deref())
        .filter_map(|key| {
            let record = tenant.keys.get(key)?;
            (record.state() == CommitState::Pending)
                .then(|| record.commit.clone())
                .flatten()
        })
        .collect();
    for mut holder in holders {
        let settled =
            tokio::time::timeout(KEY_WAIT, holder.wait_for(|s| *s != CommitState::Pending)).await;
        if settled.is_err() {
            return Err(ApiError::unavailable(
                "busy",
                "another request with the same idempotency key is still in flight",
            ));
        }
    }
    Ok(())
}
