//! One creator's live state: its configuration snapshot, its customers with their tier
//! assignment and counters, and the idempotency keys it has seen. The hot path reads and
//! updates this without locks of its own (one shard read lock of a `DashMap` and one
//! compare-and-swap per event); the tenant actor is the only writer of configuration and
//! assignments, and the meter actors the only ones that drop closed periods.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use dashmap::DashMap;
use tokio::sync::watch;

use crate::hashing::FastHash;
use crate::meters::model::MeterId;
use crate::telemetry::metric_names;
use crate::tenants::config::TenantConfig;
use crate::tiers::model::TierId;
use crate::usage::decide::{decide, thresholds_passed, Counter, CounterOverflow, Outcome};
use crate::usage::period::{period_containing, Period};
use crate::usage::quantity::Quantity;

/// Commit state of the request that first used an idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitState {
    Pending,
    Committed,
    Failed,
}

/// An idempotency key's first answer, and whether that answer is durable yet.
pub struct KeyRecord {
    /// The first answer as JSON: the same text is written to the store, and only a retry
    /// (rare) pays for parsing it back.
    pub result: Arc<str>,
    pub created_at: i64,
    /// `None` once known committed (loaded from the store).
    pub commit: Option<watch::Receiver<CommitState>>,
}

impl KeyRecord {
    pub fn state(&self) -> CommitState {
        self.commit
            .as_ref()
            .map_or(CommitState::Committed, |rx| *rx.borrow())
    }
}

/// A customer's assignment and counters (one per meter and period still open to events).
#[derive(Debug, Default)]
pub struct CustomerState {
    pub tier: Option<TierId>,
    /// Billing-cycle anchor (Unix seconds). 0 without an assignment, which makes a
    /// billing cycle a calendar month.
    pub anchor: i64,
    /// Whether the creator declared the customer (`PUT /v1/customers/{id}`).
    pub declared: bool,
    pub counters: Vec<CounterSlot>,
}

#[derive(Debug)]
pub struct CounterSlot {
    pub meter: MeterId,
    pub period_start: i64,
    pub used: Counter,
    /// Thresholds already told for this period (`Threshold` bits), so that events refused
    /// by a cap, one after another, make work once. Lost at a restart, which is harmless:
    /// the outbox keeps one event per cause.
    told: AtomicU8,
}

impl CounterSlot {
    /// Of the thresholds `passed`, those not told before; marks them told.
    fn tell(&self, passed: u8) -> u8 {
        if passed == 0 || self.told.load(Ordering::Relaxed) & passed == passed {
            return 0;
        }
        passed & !self.told.fetch_or(passed, Ordering::AcqRel)
    }
}

impl CustomerState {
    fn slot(&self, meter: MeterId, period_start: i64) -> Option<&CounterSlot> {
        self.counters
            .iter()
            .find(|slot| slot.meter == meter && slot.period_start == period_start)
    }

    /// Usage of `meter` in the period starting at `period_start`.
    pub fn used(&self, meter: MeterId, period_start: i64) -> Quantity {
        self.slot(meter, period_start)
            .map_or(Quantity::ZERO, |slot| slot.used.get())
    }

    fn ensure_slot(&mut self, meter: MeterId, period_start: i64) -> &CounterSlot {
        let at = match self
            .counters
            .iter()
            .position(|slot| slot.meter == meter && slot.period_start == period_start)
        {
            Some(at) => at,
            None => {
                self.counters.push(CounterSlot {
                    meter,
                    period_start,
                    used: Counter::default(),
                    told: AtomicU8::new(0),
                });
                metrics::gauge!(metric_names::LIVE_COUNTERS).increment(1.0);
                self.counters.len() - 1
            }
        };
        &self.counters[at]
    }
}

/// What applying one event did, enough to answer it, write it and take it back.
#[derive(Debug, Clone)]
pub struct Applied {
    pub outcome: Outcome,
    pub customer_id: Arc<str>,
    pub period: Period,
    /// Usage before the event.
    pub before: Quantity,
    /// The cap's limit on the customer's tier, if any.
    pub limit: Option<Quantity>,
    /// Thresholds this event is the first to pass in the period (`Threshold` bits).
    pub thresholds: u8,
}

pub struct Tenant {
    pub id: Arc<str>,
    pub slug: Arc<str>,
    config: ArcSwap<TenantConfig>,
    pub customers: DashMap<Arc<str>, CustomerState, FastHash>,
    pub keys: DashMap<Arc<str>, KeyRecord, FastHash>,
    /// Customers being erased: their events are refused until the erase is done.
    erasing: std::sync::Mutex<Vec<Arc<str>>>,
    /// How many: the hot path reads this one atomic, and the list only while one is.
    erasing_count: AtomicUsize,
    /// Events decided since the daemon started, by decision (`Decision as usize`): the
    /// dashboard's mix. Added once per request, not per event.
    pub decisions: [AtomicU64; 3],
}

/// A customer's erase under way: its events are refused until this is dropped.
pub struct Erasing {
    tenant: Arc<Tenant>,
    customer_id: Arc<str>,
}

impl Drop for Erasing {
    fn drop(&mut self) {
        let mut erasing = self
            .tenant
            .erasing
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(at) = erasing.iter().position(|id| *id == self.customer_id) {
            erasing.swap_remove(at);
            self.tenant.erasing_count.fetch_sub(1, Ordering::Release);
        }
    }
}

impl Tenant {
    pub fn new(id: Arc<str>, slug: Arc<str>, config: TenantConfig) -> Self {
        Tenant {
            id,
            slug,
            config: ArcSwap::from_pointee(config),
            customers: DashMap::default(),
            keys: DashMap::default(),
            erasing: std::sync::Mutex::default(),
            erasing_count: AtomicUsize::new(0),
            decisions: Default::default(),
        }
    }

    /// Notes a request's decisions (`[allow, warn, block]`).
    pub fn tally(&self, decisions: [u64; 3]) {
        for (slot, n) in self.decisions.iter().zip(decisions) {
            if n > 0 {
                slot.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// For each of `meters`, the `n` customers with the most usage in their current
    /// period, most first: one pass over the counters in memory, keeping `n` a meter.
    pub fn top_customers(&self, meters: &[MeterId], n: usize) -> Vec<Vec<(Arc<str>, Quantity)>> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        // Per meter, the `n` most so far, least on top (a min-heap).
        type Top = BinaryHeap<Reverse<(Quantity, Arc<str>)>>;
        let mut tops: Vec<Top> = meters
            .iter()
            .map(|_| BinaryHeap::with_capacity(n + 1))
            .collect();
        for customer in self.customers.iter() {
            for (meter, top) in meters.iter().zip(&mut tops) {
                let current = customer
                    .counters
                    .iter()
                    .filter(|slot| slot.meter == *meter)
                    .max_by_key(|slot| slot.period_start);
                let Some(used) = current.map(|slot| slot.used.get()) else {
                    continue;
                };
                let beats_last =
                    top.len() < n || top.peek().is_some_and(|Reverse((least, _))| used > *least);
                if used > Quantity::ZERO && beats_last {
                    top.push(Reverse((used, customer.key().clone())));
                    if top.len() > n {
                        top.pop();
                    }
                }
            }
        }
        tops.into_iter()
            .map(|top| {
                let mut top: Vec<(Arc<str>, Quantity)> = top
                    .into_iter()
                    .map(|Reverse((used, id))| (id, used))
                    .collect();
                top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                top
            })
            .collect()
    }

    /// Marks the customer as being erased until the answer is dropped.
    pub fn start_erasing(self: &Arc<Self>, customer_id: &str) -> Erasing {
        let mut erasing = self.erasing.lock().unwrap_or_else(|e| e.into_inner());
        erasing.push(Arc::from(customer_id));
        self.erasing_count.fetch_add(1, Ordering::Release);
        Erasing {
            tenant: self.clone(),
            customer_id: Arc::from(customer_id),
        }
    }

    /// Whether the customer is being erased (one atomic load while none is).
    pub fn is_erasing(&self, customer_id: &str) -> bool {
        if self.erasing_count.load(Ordering::Acquire) == 0 {
            return false;
        }
        let erasing = self.erasing.lock().unwrap_or_else(|e| e.into_inner());
        erasing.iter().any(|id| &**id == customer_id)
    }

    pub fn config(&self) -> Arc<TenantConfig> {
        self.config.load_full()
    }

    /// Replaces the configuration (tenant actor only).
    pub fn set_config(&self, config: TenantConfig) {
        self.config.store(Arc::new(config));
    }

    /// The period of `meter` that contains `at`, for this customer's anchor.
    fn period(
        config: &TenantConfig,
        state: Option<&CustomerState>,
        meter: MeterId,
        at: i64,
    ) -> Period {
        let anchor = state.map_or(0, |s| s.anchor);
        period_containing(config.meter(meter).reset, at, anchor)
    }

    /// Decides the event and counts it when the decision says so, atomically.
    pub fn apply(
        &self,
        config: &TenantConfig,
        customer_id: &str,
        meter: MeterId,
        value: Quantity,
        at: i64,
    ) -> Result<Applied, CounterOverflow> {
        let meter_def = config.meter(meter);
        let aggregation = meter_def.aggregation;
        let value = aggregation.effective_value(value);
        loop {
            if let Some(state) = self.customers.get(customer_id) {
                let period = Self::period(config, Some(&state), meter, at);
                if let Some(slot) = state.slot(meter, period.start) {
                    let cap = config
                        .effective_tier(state.tier)
                        .and_then(|tier| tier.cap(meter));
                    let (outcome, before) = slot.used.apply(aggregation, cap, value)?;
                    let thresholds =
                        cap.map_or(0, |cap| slot.tell(thresholds_passed(cap, before, &outcome)));
                    return Ok(Applied {
                        outcome,
                        customer_id: state.key().clone(),
                        period,
                        before,
                        limit: cap.map(|c| c.limit),
                        thresholds,
                    });
                }
            }
            // First event of this customer, or of this meter and period: make the slot
            // under the shard's write lock, then decide under the read lock as usual.
            let mut state = self.customers.entry(Arc::from(customer_id)).or_default();
            let period = Self::period(config, Some(&state), meter, at);
            state.ensure_slot(meter, period.start);
        }
    }

    /// The decision the event would get now, counting nothing; with the cap's limit.
    pub fn check(
        &self,
        config: &TenantConfig,
        customer_id: &str,
        meter: MeterId,
        value: Quantity,
        now: i64,
    ) -> Result<(Outcome, Option<Quantity>), CounterOverflow> {
        let aggregation = config.meter(meter).aggregation;
        let state = self.customers.get(customer_id);
        let period = Self::period(config, state.as_deref(), meter, now);
        let (tier, used) = state.as_deref().map_or((None, Quantity::ZERO), |s| {
            (s.tier, s.used(meter, period.start))
        });
        let cap = config.effective_tier(tier).and_then(|t| t.cap(meter));
        let outcome = decide(aggregation, cap, used, aggregation.effective_value(value))?;
        Ok((outcome, cap.map(|c| c.limit)))
    }

    /// Takes back an event whose write failed: its count, and the thresholds it told.
    pub fn undo(&self, config: &TenantConfig, meter: MeterId, value: Quantity, applied: &Applied) {
        let aggregation = config.meter(meter).aggregation;
        if let Some(state) = self.customers.get(&*applied.customer_id) {
            if let Some(slot) = state.slot(meter, applied.period.start) {
                if applied.outcome.counted {
                    slot.used.undo(
                        aggregation,
                        aggregation.effective_value(value),
                        applied.before,
                        applied.outcome.used,
                    );
                }
                slot.told.fetch_and(!applied.thresholds, Ordering::AcqRel);
            }
        }
    }

    /// Sets a counter from the store (start-up).
    pub fn load_counter(
        &self,
        customer_id: &str,
        meter: MeterId,
        period_start: i64,
        used: Quantity,
    ) {
        let mut state = self.customers.entry(Arc::from(customer_id)).or_default();
        state.ensure_slot(meter, period_start).used.load(used);
    }

    /// Drops `meter`'s counters of periods that ended before `closed_before`; returns how
    /// many went.
    pub fn evict_closed_periods(
        &self,
        config: &TenantConfig,
        meter: MeterId,
        closed_before: i64,
    ) -> usize {
        let reset = config.meter(meter).reset;
        let mut evicted = 0;
        for mut state in self.customers.iter_mut() {
            let anchor = state.anchor;
            let before = state.counters.len();
            state.counters.retain(|slot| {
                slot.meter != meter
                    || period_containing(reset, slot.period_start, anchor)
                        .end
                        .is_none_or(|end| end >= closed_before)
            });
            evicted += before - state.counters.len();
        }
        if evicted > 0 {
            metrics::gauge!(metric_names::LIVE_COUNTERS).decrement(evicted as f64);
        }
        evicted
    }

    /// Drops every counter of a deleted meter; returns how many went.
    pub fn drop_meter_counters(&self, meter: MeterId) -> usize {
        let mut dropped = 0;
        for mut state in self.customers.iter_mut() {
            let before = state.counters.len();
            state.counters.retain(|slot| slot.meter != meter);
            dropped += before - state.counters.len();
        }
        if dropped > 0 {
            metrics::gauge!(metric_names::LIVE_COUNTERS).decrement(dropped as f64);
        }
        dropped
    }

    /// Forgets an erased customer: its assignment, counters, and the idempotency answers
    /// about it (those starting with `answer_prefix`, see `usage::model::answer_prefix`).
    pub fn forget_customer(&self, customer_id: &str, answer_prefix: &str) {
        if let Some((_, state)) = self.customers.remove(customer_id) {
            let counters = state.counters.len();
            metrics::gauge!(metric_names::LIVE_COUNTERS).decrement(counters as f64);
        }
        self.keys
            .retain(|_, key| !key.result.starts_with(answer_prefix));
    }

    /// Counters held in memory.
    pub fn live_counters(&self) -> usize {
        self.customers.iter().map(|s| s.counters.len()).sum()
    }
}
