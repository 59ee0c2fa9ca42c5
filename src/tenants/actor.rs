//! The actors that own each tenant's lifecycle (actix). A `TenantActor` per creator is the
//! single writer of its configuration and customer assignments: each change is written to
//! the store first, then swapped into memory, one message at a time (`AtomicResponse`), so
//! positions and defaults never race. It also prunes expired idempotency keys. A
//! `MeterActor` per meter rolls its periods over: counters of periods that can no longer
//! receive events (ended more than 35 days ago) leave memory.
//!
//! Deleting a meter or a tier follows the same order (store, then memory) and leaves a
//! tombstone at its position (`tenants::config`): a meter's actor keeps running and clears
//! any counter of its deleted meter (an event that resolved the meter just before the
//! delete may still make one), and is gone at the next start with the tombstone.
//!
//! Callers hold a `TenantHandle` with named async methods, never a raw mailbox.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::clock::SharedClock;
use crate::customers::model::{Customer, CustomerUpdate};
use crate::error::ApiError;
use crate::meters::model::{Meter, MeterId, MeterView};
use crate::outbox::model::{announcement, TIER_CHANGED};
use crate::store::audit::AuditEntry;
use crate::store::privacy::{Erased, Erasure};
use crate::store::{CustomerRow, MeterRow, Store, TierRow};
use crate::tenants::state::{CommitState, Tenant};
use crate::tiers::model::{NewTier, Tier, TierDefinition, TierPatch, TierView};
use crate::usage::model::MAX_PAST_SECS;

/// How long a caller waits for the tenant actor before answering 503.
const ACTOR_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings every tenant actor shares.
#[derive(Clone)]
pub struct ActorSettings {
    pub store: Store,
    /// The group commit (an erase drains it).
    pub flusher: crate::store::FlushHandle,
    pub clock: SharedClock,
    pub key_retention_secs: i64,
    pub maintenance_interval: Duration,
}

pub struct TenantActor {
    tenant: Arc<Tenant>,
    settings: ActorSettings,
    meters: Vec<Addr<MeterActor>>,
}

impl TenantActor {
    fn start_meter_actor(&mut self, meter: MeterId) {
        self.meters.push(
            MeterActor {
                tenant: self.tenant.clone(),
                meter,
                clock: self.settings.clock.clone(),
                interval: self.settings.maintenance_interval,
            }
            .start(),
        );
    }
}

impl TenantActor {
    /// Runs `work` with the tenant and the store, to completion before the next message:
    /// each change is written to the store, then swapped into memory, one at a time.
    fn in_turn<R, F, Fut>(&self, work: F) -> AtomicResponse<Self, R>
    where
        R: 'static,
        F: FnOnce(Arc<Tenant>, Store) -> Fut,
        Fut: std::future::Future<Output = R> + 'static,
    {
        let work = work(self.tenant.clone(), self.settings.store.clone());
        AtomicResponse::new(Box::pin(work.into_actor(self)))
    }
}

impl Actor for TenantActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        for meter in 0..self.tenant.config().meter_slots() {
            self.start_meter_actor(meter as MeterId);
        }
        ctx.run_interval(self.settings.maintenance_interval, |_, ctx| {
            ctx.address().do_send(PruneKeys);
        });
    }
}

#[derive(Message)]
#[rtype(result = "Result<Arc<Meter>, ApiError>")]
struct CreateMeter(Meter, AuditEntry);

/// Starts the roll-over actor of a meter just created.
#[derive(Message)]
#[rtype(result = "()")]
struct StartMeterActor(MeterId);

impl Handler<StartMeterActor> for TenantActor {
    type Result = ();

    fn handle(&mut self, StartMeterActor(meter): StartMeterActor, _: &mut Self::Context) {
        self.start_meter_actor(meter);
    }
}

impl Handler<CreateMeter> for TenantActor {
    type Result = AtomicResponse<Self, Result<Arc<Meter>, ApiError>>;

    fn handle(
        &mut self,
        CreateMeter(meter, record): CreateMeter,
        ctx: &mut Self::Context,
    ) -> Self::Result {
        let me = ctx.address();
        self.in_turn(move |tenant, store| async move {
            let config = tenant.config();
            if config.meter_id(&meter.key).is_some() {
                return Err(ApiError::conflict(
                    "already_exists",
                    format!("meter `{}` already exists", meter.key),
                ));
            }
            let row = MeterRow {
                key: meter.key.to_string(),
                name: meter.name.clone(),
                unit: meter.unit.clone(),
                aggregation: meter.aggregation.as_str().into(),
                reset: meter.reset.as_str().into(),
                created_at: meter.created_at,
                serial: meter.serial,
            };
            let record = record.after(&MeterView::from(&meter));
            store.insert_meter(&tenant.id, &row, &record).await?;
            let next = config.with_meter(meter);
            let id = (next.meter_slots() - 1) as MeterId;
            let created = next.meter(id).clone();
            tenant.set_config(next);
            me.do_send(StartMeterActor(id));
            Ok(created)
        })
    }
}

enum TierChange {
    Create(NewTier),
    Patch(Arc<str>, TierPatch),
}

#[derive(Message)]
#[rtype(result = "Result<Arc<Tier>, ApiError>")]
struct SaveTier(TierChange, AuditEntry);

impl Handler<SaveTier> for TenantActor {
    type Result = AtomicResponse<Self, Result<Arc<Tier>, ApiError>>;

    fn handle(
        &mut self,
        SaveTier(change, record): SaveTier,
        _: &mut Self::Context,
    ) -> Self::Result {
        let now = self.settings.clock.now();
        self.in_turn(move |tenant, store| async move {
            let config = tenant.config();
            let mut record = record;
            let (key, definition, is_default, created_at, serial) = match change {
                TierChange::Create(new) => {
                    let key = crate::meters::model::parse_slug("key", &new.key)?;
                    if config.tier_id(&key).is_some() {
                        return Err(ApiError::conflict(
                            "already_exists",
                            format!("tier `{key}` already exists"),
                        ));
                    }
                    let definition = TierDefinition::parse(
                        &new.name,
                        new.price,
                        new.caps,
                        new.features,
                        new.trial_days,
                    )?;
                    (key, definition, new.default, now, None)
                }
                TierChange::Patch(key, patch) => {
                    let current = config
                        .tier_id(&key)
                        .map(|id| config.tier(id).clone())
                        .ok_or_else(|| tier_not_found(&key))?;
                    record = record.before(&TierView::from(&*current));
                    let old = &current.definition;
                    let definition = TierDefinition::parse(
                        patch.name.as_deref().unwrap_or(&old.name),
                        patch.price.unwrap_or_else(|| old.price.clone()),
                        patch.caps.unwrap_or_else(|| old.caps.clone()),
                        patch.features.unwrap_or_else(|| old.features.clone()),
                        patch.trial_days.unwrap_or(old.trial_days),
                    )?;
                    let is_default = patch.default.unwrap_or(current.is_default);
                    (
                        current.key.clone(),
                        definition,
                        is_default,
                        current.created_at,
                        Some(current.serial),
                    )
                }
            };
            let is_new = serial.is_none();
            let serial = serial.unwrap_or_else(crate::meters::model::new_serial);
            let tier = Tier::build(
                key, definition, is_default, &config, created_at, now, serial,
            )?;
            let row = TierRow {
                key: tier.key.to_string(),
                definition: serde_json::to_string(&tier.definition)
                    .map_err(|e| ApiError::internal(&e))?,
                is_default: i64::from(tier.is_default),
                created_at: tier.created_at,
                updated_at: tier.updated_at,
                serial: tier.serial,
            };
            let record = record.after(&TierView::from(&tier));
            store.save_tier(&tenant.id, &row, is_new, &record).await?;
            let next = config.with_tier(tier);
            let saved = next
                .tier(next.tier_id(&row.key).expect("just saved"))
                .clone();
            tenant.set_config(next);
            Ok(saved)
        })
    }
}

pub fn tier_not_found(key: &str) -> ApiError {
    ApiError::not_found("tier_not_found", format!("no tier `{key}`"))
}

pub fn meter_not_found(key: &str) -> ApiError {
    ApiError::not_found("meter_not_found", format!("no meter `{key}`"))
}

/// Deletes a meter no tier caps: its usage with it (`Store::delete_meter`).
#[derive(Message)]
#[rtype(result = "Result<(), ApiError>")]
struct DeleteMeter(Arc<str>, AuditEntry);

impl Handler<DeleteMeter> for TenantActor {
    type Result = AtomicResponse<Self, Result<(), ApiError>>;

    fn handle(
        &mut self,
        DeleteMeter(key, record): DeleteMeter,
        _: &mut Self::Context,
    ) -> Self::Result {
        let now = self.settings.clock.now();
        self.in_turn(move |tenant, store| async move {
            let config = tenant.config();
            let id = config.meter_id(&key).ok_or_else(|| meter_not_found(&key))?;
            let capping: Vec<String> = config
                .live_tiers()
                .filter(|tier| tier.cap(id).is_some())
                .map(|tier| format!("`{}`", tier.key))
                .collect();
            if !capping.is_empty() {
                return Err(ApiError::conflict(
                    "in_use",
                    format!(
                        "meter `{key}` is capped by tier {}; remove those caps first",
                        capping.join(", ")
                    ),
                ));
            }
            let record = record.before(&MeterView::from(&**config.meter(id)));
            store.delete_meter(&tenant.id, &key, now, &record).await?;
            tenant.set_config(config.without_meter(id));
            tenant.drop_meter_counters(id);
            Ok(())
        })
    }
}

/// Deletes a tier no customer is on.
#[derive(Message)]
#[rtype(result = "Result<(), ApiError>")]
struct DeleteTier(Arc<str>, AuditEntry);

impl Handler<DeleteTier> for TenantActor {
    type Result = AtomicResponse<Self, Result<(), ApiError>>;

    fn handle(
        &mut self,
        DeleteTier(key, record): DeleteTier,
        _: &mut Self::Context,
    ) -> Self::Result {
        let now = self.settings.clock.now();
        self.in_turn(move |tenant, store| async move {
            let config = tenant.config();
            let id = config.tier_id(&key).ok_or_else(|| tier_not_found(&key))?;
            let is_default = config.default_tier == Some(id);
            // Customers without a tier (declared so, or only seen in events) are on the
            // default tier; this actor is the only writer of assignments, so none moves
            // onto the tier while it goes.
            let on_it = tenant
                .customers
                .iter()
                .filter(|state| state.tier == Some(id) || (is_default && state.tier.is_none()))
                .count();
            if on_it > 0 {
                let why = if is_default {
                    "; customers without a tier are on the default tier"
                } else {
                    ""
                };
                return Err(ApiError::conflict(
                    "in_use",
                    format!(
                        "{on_it} customer(s) are on tier `{key}`{why}; move them to another \
                         tier first"
                    ),
                ));
            }
            let record = record.before(&TierView::from(&**config.tier(id)));
            store.delete_tier(&tenant.id, &key, now, &record).await?;
            tenant.set_config(config.without_tier(id));
            Ok(())
        })
    }
}

#[derive(Message)]
#[rtype(result = "Result<Customer, ApiError>")]
struct UpsertCustomer(CustomerUpdate, AuditEntry);

impl Handler<UpsertCustomer> for TenantActor {
    type Result = AtomicResponse<Self, Result<Customer, ApiError>>;

    fn handle(
        &mut self,
        UpsertCustomer(update, record): UpsertCustomer,
        _: &mut Self::Context,
    ) -> Self::Result {
        let now = self.settings.clock.now();
        self.in_turn(move |tenant, store| async move {
            let config = tenant.config();
            let tier = match &update.tier {
                Some(key) => Some(config.tier_id(key).ok_or_else(|| tier_not_found(key))?),
                None => None,
            };
            let known = tenant.customers.get(&*update.id).map(|state| {
                let tier = state.tier.map(|id| config.tier(id).key.to_string());
                (state.declared, tier)
            });
            // A new tier starts a new billing cycle; the same tier keeps its anchor.
            let (anchor, previous) = match tenant.customers.get(&*update.id) {
                Some(state) if state.declared && state.tier == tier => (state.anchor, None),
                Some(state) if state.declared => (now, Some(state.tier)),
                _ => (now, None),
            };
            let row = CustomerRow {
                id: update.id.to_string(),
                tier_key: update.tier.as_deref().map(String::from),
                assigned_at: anchor,
                email: update.email.clone(),
                stripe_customer_id: update.stripe_customer_id.clone(),
            };
            // A declared customer moving tier is told to the creator's world, with the move.
            let announcements: Vec<_> = previous
                .map(|from| {
                    let key_of = |id: Option<crate::tiers::model::TierId>| {
                        id.map(|id| config.tier(id).key.to_string())
                    };
                    let from = key_of(from);
                    let to = update.tier.as_deref().map(String::from);
                    let cause = format!(
                        "{TIER_CHANGED}:{}:{}:{}:{now}",
                        update.id,
                        from.as_deref().unwrap_or(""),
                        to.as_deref().unwrap_or("")
                    );
                    let data = serde_json::json!({
                        "customer_id": &*update.id,
                        "from": from,
                        "to": to,
                    });
                    announcement(&tenant.id, cause, TIER_CHANGED, data, now)
                })
                .into_iter()
                .collect();
            // The record names no person: its tier, and whether an email and a Stripe
            // customer are known (both identify the person; the log must not keep them).
            let mut record = record.after(&serde_json::json!({
                "tier": row.tier_key,
                "email_known": row.email.is_some(),
                "stripe_customer_known": row.stripe_customer_id.is_some(),
            }));
            if let Some((true, tier)) = &known {
                record = record.before(&serde_json::json!({"tier": tier}));
            }
            store
                .upsert_customer(&tenant.id, &row, now, &announcements, &record)
                .await?;
            let mut state = tenant.customers.entry(update.id.clone()).or_default();
            state.tier = tier;
            state.anchor = anchor;
            state.declared = true;
            Ok(Customer {
                customer_id: row.id,
                tier: row.tier_key,
                assigned_at: Some(crate::usage::period::rfc3339(anchor)),
                email: row.email,
                stripe_customer_id: row.stripe_customer_id,
            })
        })
    }
}

/// Erases a customer, in the actor's turn (a put of the same customer lands wholly before
/// or after): its events are refused meanwhile (`Tenant::start_erasing`); those decided
/// before are committed (the group commit drained) and folded out of the commit log; its
/// rows go in one transaction; then its counters, assignment and idempotency answers
/// leave memory, and `forget` tells the rest of the daemon (sessions, billing standing,
/// experiment identities). All of it runs in the turn, so a caller that stopped waiting
/// leaves nothing half done.
#[derive(Message)]
#[rtype(result = "Result<Erased, ApiError>")]
struct EraseCustomer {
    erasure: Erasure,
    record: AuditEntry,
    forget: Box<dyn FnOnce(&Erased) + Send>,
}

/// How long a request that passed the erasing check takes to queue its write: it does so
/// without waiting on anything, within microseconds.
const QUEUEING_GRACE: Duration = Duration::from_millis(20);

impl Handler<EraseCustomer> for TenantActor {
    type Result = AtomicResponse<Self, Result<Erased, ApiError>>;

    fn handle(&mut self, erase: EraseCustomer, _: &mut Self::Context) -> Self::Result {
        let flusher = self.settings.flusher.clone();
        self.in_turn(move |tenant, store| async move {
            let EraseCustomer {
                erasure,
                record,
                forget,
            } = erase;
            let _erasing = tenant.start_erasing(&erasure.customer_id);
            tokio::time::sleep(QUEUEING_GRACE).await;
            flusher.drain().await;
            store.fold_written().await?;
            let erased = store.erase_customer(&erasure, &record).await?;
            tenant.forget_customer(&erasure.customer_id, &erasure.answer_prefix);
            forget(&erased);
            Ok(erased)
        })
    }
}

/// Forgets idempotency keys past their retention, in the store and in memory.
#[derive(Message)]
#[rtype(result = "()")]
struct PruneKeys;

impl Handler<PruneKeys> for TenantActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: PruneKeys, _: &mut Self::Context) -> Self::Result {
        let before = self.settings.clock.now() - self.settings.key_retention_secs;
        self.in_turn(move |tenant, store| async move {
            match store.prune_idempotency_keys(&tenant.id, before).await {
                Ok(pruned) => {
                    tenant.keys.retain(|_, record| {
                        record.created_at >= before || record.state() == CommitState::Pending
                    });
                    if pruned > 0 {
                        tracing::debug!(creator = %tenant.slug, pruned, "idempotency keys pruned");
                    }
                }
                Err(err) => tracing::warn!(error = %err, "pruning idempotency keys failed"),
            }
        })
    }
}

/// Owns one meter's period roll-over.
pub struct MeterActor {
    tenant: Arc<Tenant>,
    meter: MeterId,
    clock: SharedClock,
    interval: Duration,
}

impl Actor for MeterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.interval, |actor, _| {
            let config = actor.tenant.config();
            if !config.is_live_meter(actor.meter) {
                actor.tenant.drop_meter_counters(actor.meter);
                return;
            }
            // An event may be dated 35 days back, so a period stays until it ended before that.
            let closed_before = actor.clock.now() - MAX_PAST_SECS;
            let evicted = actor
                .tenant
                .evict_closed_periods(&config, actor.meter, closed_before);
            if evicted > 0 {
                tracing::debug!(
                    creator = %actor.tenant.slug,
                    meter = %config.meter(actor.meter).key,
                    evicted,
                    "closed periods left memory"
                );
            }
        });
    }
}

/// The cloneable face of a tenant actor.
#[derive(Clone)]
pub struct TenantHandle {
    addr: Addr<TenantActor>,
}

impl TenantHandle {
    pub fn start(tenant: Arc<Tenant>, settings: ActorSettings) -> Self {
        let addr = TenantActor {
            tenant,
            settings,
            meters: Vec::new(),
        }
        .start();
        TenantHandle { addr }
    }

    async fn ask<M>(&self, message: M) -> Result<M::Result, ApiError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        TenantActor: Handler<M>,
    {
        self.addr
            .send(message)
            .timeout(ACTOR_TIMEOUT)
            .await
            .map_err(|_| ApiError::unavailable("busy", "the creator's actor is busy; retry later"))
    }

    // Each change takes its audit record, made by the caller (who, what, from where) and
    // completed here with the object's states; it is written with the change.

    pub async fn create_meter(
        &self,
        meter: Meter,
        record: AuditEntry,
    ) -> Result<Arc<Meter>, ApiError> {
        self.ask(CreateMeter(meter, record)).await?
    }

    pub async fn create_tier(
        &self,
        tier: NewTier,
        record: AuditEntry,
    ) -> Result<Arc<Tier>, ApiError> {
        self.ask(SaveTier(TierChange::Create(tier), record)).await?
    }

    pub async fn update_tier(
        &self,
        key: Arc<str>,
        patch: TierPatch,
        record: AuditEntry,
    ) -> Result<Arc<Tier>, ApiError> {
        self.ask(SaveTier(TierChange::Patch(key, patch), record))
            .await?
    }

    pub async fn delete_meter(&self, key: Arc<str>, record: AuditEntry) -> Result<(), ApiError> {
        self.ask(DeleteMeter(key, record)).await?
    }

    pub async fn delete_tier(&self, key: Arc<str>, record: AuditEntry) -> Result<(), ApiError> {
        self.ask(DeleteTier(key, record)).await?
    }

    pub async fn upsert_customer(
        &self,
        update: CustomerUpdate,
        record: AuditEntry,
    ) -> Result<Customer, ApiError> {
        self.ask(UpsertCustomer(update, record)).await?
    }

    /// Erases the customer; `forget` runs once its rows are gone (see `EraseCustomer`).
    pub async fn erase_customer(
        &self,
        erasure: Erasure,
        record: AuditEntry,
        forget: Box<dyn FnOnce(&Erased) + Send>,
    ) -> Result<Erased, ApiError> {
        self.ask(EraseCustomer {
            erasure,
            record,
            forget,
        })
        .await?
    }
}
