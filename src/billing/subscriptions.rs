//! A customer's subscription after Checkout made it: moving it to another tier (the one
//! subscription, updated: never a second one), cancelling and resuming it, and Stripe's
//! own customer portal for payment methods and invoices.
//!
//! Staryer's tier follows Stripe: an upgrade, or a downgrade the creator applies at once
//! (`BillingSettings::downgrades`), changes the tier as soon as Stripe took the update,
//! prorated per `proration_behavior`. A downgrade at period end is a subscription schedule
//! whose next phase holds the new prices; the tier follows when Stripe starts that phase
//! (`customer.subscription.updated` names the new prices, `webhooks`). A move to a tier
//! with nothing to sell ends the subscription, at period end or at once by the same
//! setting.
//!
//! The subscription is read from Stripe before each change (its items, schedule and
//! period are Stripe's to know), so a retry after a lost answer finds the change made and
//! sends nothing again: items already swapped, a schedule already attached, the end
//! already set. An item update's idempotency key is the caller's, or is made of the
//! subscription's current item ids and the target (item ids change with every update, so
//! a later change back gets a key of its own); a schedule's phases are keyed by the
//! schedule, and a schedule release or a cancellation by the object they end. What can be
//! asked again on the same state (a new schedule, cancel or resume at period end, a
//! portal link) carries the caller's key or a new one: a key derived from the state would
//! replay the first answer and do nothing the second time.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::subscription::{
    CancelSubscription, RetrieveSubscription, UpdateSubscription, UpdateSubscriptionItems,
    UpdateSubscriptionProrationBehavior,
};
use stripe_billing::subscription_schedule::{
    CreateSubscriptionSchedule, ReleaseSubscriptionSchedule, UpdateSubscriptionSchedule,
    UpdateSubscriptionSchedulePhases, UpdateSubscriptionSchedulePhasesAutomaticTax,
    UpdateSubscriptionSchedulePhasesDiscounts, UpdateSubscriptionSchedulePhasesDuration,
    UpdateSubscriptionSchedulePhasesDurationInterval, UpdateSubscriptionSchedulePhasesEndDate,
    UpdateSubscriptionSchedulePhasesItems, UpdateSubscriptionSchedulePhasesProrationBehavior,
    UpdateSubscriptionSchedulePhasesStartDate, UpdateSubscriptionSchedulePhasesTrialEnd,
};
use stripe_shared::SubscriptionScheduleEndBehavior;

use crate::audit::model::Who;
use crate::billing::client::{Created, Redirect, StripeError};
use crate::billing::settings::{DowngradeTiming, Proration};
use crate::billing::{change_key, request_key, Billing};
use crate::customers::model::{Customer, CustomerUpdate};
use crate::error::ApiError;
use crate::store::audit::AuditEntry;
use crate::store::billing::SubscriptionRow;
use crate::tenants::registry::Creator;
use crate::tiers::model::{Interval, Tier};
use crate::usage::period::rfc3339;

/// A subscription as Stripe answers it: the fields read.
#[derive(Debug, miniserde::Deserialize)]
pub struct Subscription {
    pub id: String,
    pub status: String,
    pub cancel_at_period_end: bool,
    pub schedule: Option<String>,
    pub items: SubscriptionItems,
}

#[derive(Debug, miniserde::Deserialize)]
pub struct SubscriptionItems {
    pub data: Vec<SubscriptionItem>,
}

#[derive(Debug, miniserde::Deserialize)]
pub struct SubscriptionItem {
    pub id: String,
    pub price: PriceRef,
    /// Since API version 2025-03-31 the period is the item's.
    pub current_period_end: Option<i64>,
}

#[derive(Debug, miniserde::Deserialize)]
pub struct PriceRef {
    pub id: String,
}

/// A subscription schedule: its phases, each with its prices.
#[derive(Debug, miniserde::Deserialize)]
struct Schedule {
    id: String,
    phases: Vec<Phase>,
}

#[derive(Debug, miniserde::Deserialize)]
struct Phase {
    start_date: i64,
    end_date: Option<i64>,
    items: Vec<PhaseItem>,
    /// A trial the phase runs (kept when the phases are rewritten).
    trial_end: Option<i64>,
    /// Discounts on the phase, a promotion code's among them (kept likewise).
    discounts: Option<Vec<PhaseDiscount>>,
}

#[derive(Debug, miniserde::Deserialize)]
struct PhaseDiscount {
    coupon: Option<String>,
    discount: Option<String>,
    promotion_code: Option<String>,
}

impl Phase {
    /// The phase's discounts as a phase update names them.
    fn discounts(&self) -> Option<Vec<UpdateSubscriptionSchedulePhasesDiscounts>> {
        let discounts = self.discounts.as_ref()?;
        Some(
            discounts
                .iter()
                .map(|d| UpdateSubscriptionSchedulePhasesDiscounts {
                    coupon: d.coupon.clone().filter(|_| d.discount.is_none()),
                    discount: d.discount.clone(),
                    promotion_code: d.promotion_code.clone().filter(|_| d.discount.is_none()),
                })
                .collect(),
        )
        .filter(|list: &Vec<_>| !list.is_empty())
    }
}

#[derive(Debug, miniserde::Deserialize)]
struct PhaseItem {
    /// The price's id (schedules answer it unexpanded).
    price: String,
    quantity: Option<u64>,
}

impl Subscription {
    /// Whether it still bills: not ended, not expired before its first payment.
    fn is_live(&self) -> bool {
        !matches!(self.status.as_str(), "canceled" | "incomplete_expired")
    }

    /// Stripe changes a subscription's tier only while it is paid up or within its
    /// retries; an unpaid, paused or not yet paid one must be paid first (Stripe's
    /// customer portal), not moved to a tier nobody pays for.
    fn ensure_changeable(&self) -> Result<(), ApiError> {
        if matches!(self.status.as_str(), "active" | "trialing" | "past_due") {
            return Ok(());
        }
        Err(ApiError::conflict(
            "subscription_not_active",
            format!(
                "the customer's subscription is `{}`: it must be paid (Stripe's customer \
                 portal, POST /v1/customers/{{id}}/billing_portal) before it changes tier",
                self.status
            ),
        ))
    }

    fn period_end(&self) -> Option<i64> {
        self.items
            .data
            .iter()
            .filter_map(|item| item.current_period_end)
            .max()
    }
}

/// How a tier change went through the customer's subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The subscription bills the new tier from now.
    Updated,
    /// It will from `effective_at`, the end of the period paid for.
    Scheduled,
    /// The new tier sells nothing: the subscription ends at `effective_at`.
    Canceling,
    /// The new tier sells nothing: the subscription ended now.
    Canceled,
}

/// What a tier change did to the customer's subscription.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanChange {
    pub change: Change,
    pub subscription_id: String,
    /// When the new tier applies (RFC 3339).
    pub effective_at: Option<String>,
}

impl PlanChange {
    /// Whether Staryer's tier changes now (else when Stripe's webhook says it did).
    pub fn applies_now(&self) -> bool {
        matches!(self.change, Change::Updated | Change::Canceled)
    }
}

/// `PUT /v1/customers/{id}`'s answer: the customer, and what its subscription did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssignedCustomer {
    #[serde(flatten)]
    pub customer: Customer,
    /// Present when the customer has a subscription the tier change went through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_change: Option<PlanChange>,
}

/// A subscription's state, as cancel and resume answer it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    pub subscription_id: String,
    /// Stripe's status: `active`, `trialing`, `past_due`, `canceled`, …
    pub status: String,
    /// The subscription ends at `current_period_end` unless resumed.
    pub cancel_at_period_end: bool,
    pub current_period_end: Option<String>,
}

impl From<&Subscription> for SubscriptionView {
    fn from(subscription: &Subscription) -> Self {
        SubscriptionView {
            subscription_id: subscription.id.clone(),
            status: subscription.status.clone(),
            cancel_at_period_end: subscription.cancel_at_period_end,
            current_period_end: subscription.period_end().map(rfc3339),
        }
    }
}

fn subscription_not_found(customer_id: &str) -> ApiError {
    ApiError::not_found(
        "subscription_not_found",
        format!("customer `{customer_id}` has no subscription"),
    )
}

/// What a tier costs a year, to tell an upgrade from a downgrade.
fn yearly_amount(tier: &Tier) -> i64 {
    let price = &tier.definition.price;
    match price.interval {
        Interval::Month => price.amount.saturating_mul(12),
        Interval::Year => price.amount,
    }
}

fn update_proration(proration: Proration) -> UpdateSubscriptionProrationBehavior {
    match proration {
        Proration::CreateProrations => UpdateSubscriptionProrationBehavior::CreateProrations,
        Proration::AlwaysInvoice => UpdateSubscriptionProrationBehavior::AlwaysInvoice,
        Proration::None => UpdateSubscriptionProrationBehavior::None,
    }
}

impl Billing {
    /// The customer's live subscription, read from Stripe; `None` when it has none (or
    /// the one it had ended).
    pub async fn live_subscription(
        &self,
        creator: &Creator,
        account: &str,
        customer_id: &str,
    ) -> Result<Option<Subscription>, ApiError> {
        let known = self
            .store
            .subscription(&creator.tenant.id, customer_id)
            .await?;
        let Some(id) = known.stripe_subscription_id else {
            return Ok(None);
        };
        let retrieve = RetrieveSubscription::new(id.as_str());
        match self
            .client
            .send::<_, Subscription>(&retrieve, Some(account), None)
            .await
        {
            Ok(subscription) => Ok(Some(subscription).filter(Subscription::is_live)),
            // Stripe no longer knows it (deleted with its customer): nothing bills.
            Err(StripeError::Api { status: 404, .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Creates or updates a customer and its tier. A customer with a live subscription
    /// moving to another tier goes through the subscription (`change_plan`), and its tier
    /// here changes only when that change applies now; a customer with an email put on a
    /// paid tier gets its Stripe Customer.
    pub async fn put_customer(
        &self,
        creator: &Creator,
        mut update: CustomerUpdate,
        record: AuditEntry,
    ) -> Result<AssignedCustomer, ApiError> {
        let Some(account) = self.store.stripe_account(&creator.tenant.id).await? else {
            let customer = creator.actor.upsert_customer(update, record).await?;
            return Ok(AssignedCustomer {
                customer,
                plan_change: None,
            });
        };
        let _turn = self.subscription_turn(&creator.tenant.id).await;
        let known = self.store.customer(&creator.tenant.id, &update.id).await?;
        let current_tier = known.as_ref().and_then(|row| row.tier_key.clone());
        // A creator that leaves the Stripe customer out keeps the one it has (made here,
        // or named before).
        if update.stripe_customer_id.is_none() {
            update.stripe_customer_id = known.and_then(|row| row.stripe_customer_id);
        }
        let config = creator.tenant.config();
        let target = update
            .tier
            .as_deref()
            .and_then(|key| config.tier_id(key))
            .map(|id| config.tier(id).clone());
        // Through the subscription: a move to another tier, or back to the tier it is on
        // while a downgrade waits (which drops the downgrade).
        let pending = self
            .store
            .subscription(&creator.tenant.id, &update.id)
            .await?
            .pending_tier;
        let mut plan_change = None;
        if let Some(tier) = target
            .as_ref()
            .filter(|t| Some(&*t.key) != current_tier.as_deref() || pending.is_some())
        {
            if let Some(subscription) = self
                .live_subscription(creator, &account, &update.id)
                .await?
            {
                let change = self
                    .change_plan(creator, &account, &update.id, &subscription, tier, None)
                    .await?;
                if !change.applies_now() {
                    update.tier = current_tier.map(Arc::from);
                }
                plan_change = Some(change);
            }
        }
        let mut customer = creator.actor.upsert_customer(update, record).await?;
        let wants_stripe_customer = plan_change.is_none()
            && customer.stripe_customer_id.is_none()
            && customer.email.is_some()
            && target.as_ref().is_some_and(|tier| tier.is_priced());
        if wants_stripe_customer {
            // The assignment stands either way: the next checkout makes the customer.
            match self
                .ensure_stripe_customer(creator, &account, &customer.customer_id)
                .await
            {
                Ok(stripe_id) => customer.stripe_customer_id = Some(stripe_id),
                Err(err) => tracing::warn!(creator = %creator.tenant.slug,
                    error = %err.message, "making the Stripe customer failed"),
            }
        }
        Ok(AssignedCustomer {
            customer,
            plan_change,
        })
    }

    /// Moves a live subscription to `tier`: an update of its items now, a schedule for
    /// period end, or its end when the tier sells nothing. When the change applies now,
    /// the tier the subscription pays for is recorded (the caller assigns it).
    pub async fn change_plan(
        &self,
        creator: &Creator,
        account: &str,
        customer_id: &str,
        subscription: &Subscription,
        tier: &Tier,
        caller_key: Option<&str>,
    ) -> Result<PlanChange, ApiError> {
        subscription.ensure_changeable()?;
        let settings = self.settings(&creator.tenant.id).await?;
        let known = self
            .store
            .subscription(&creator.tenant.id, customer_id)
            .await?;
        // What the subscription pays for: as its events said, else (a subscription from
        // before Staryer kept that) the customer's tier.
        let paid_for_key = match known.subscribed_tier.clone() {
            Some(key) => Some(key),
            None => self
                .store
                .customer(&creator.tenant.id, customer_id)
                .await?
                .and_then(|row| row.tier_key),
        };
        let config = creator.tenant.config();
        let paid_for = paid_for_key
            .as_deref()
            .and_then(|key| config.tier_id(key))
            .map(|id| config.tier(id));
        let downgrade = paid_for.is_none_or(|old| yearly_amount(tier) < yearly_amount(old))
            || !tier.is_priced();
        let at_period_end = downgrade && settings.downgrades == DowngradeTiming::PeriodEnd;
        let changed = if !tier.is_priced() {
            let key = change_key(
                "cancel_at_period_end",
                &creator.tenant.id,
                &subscription.id,
                caller_key,
            );
            self.end_for_free_tier(
                account,
                subscription,
                at_period_end,
                settings.proration_behavior,
                &key,
            )
            .await
        } else if at_period_end {
            self.schedule_downgrade(creator, account, subscription, tier, caller_key)
                .await
        } else {
            self.update_items(
                creator,
                account,
                subscription,
                tier,
                settings.proration_behavior,
                caller_key,
            )
            .await
        };
        let change = match changed {
            Ok(change) => change,
            Err(err) => {
                // A refusal after the schedule was released: no downgrade waits any more.
                if subscription.schedule.is_some() {
                    self.forget_pending_downgrade(&creator.tenant.id, customer_id, known)
                        .await?;
                }
                return Err(err);
            }
        };
        let ended = change.change == Change::Canceled;
        let row = match change.change {
            Change::Scheduled => SubscriptionRow {
                pending_tier: Some(tier.key.to_string()),
                ..known
            },
            Change::Updated | Change::Canceled => SubscriptionRow {
                stripe_subscription_id: known.stripe_subscription_id.clone().filter(|_| !ended),
                subscribed_tier: Some(tier.key.to_string()).filter(|_| !ended),
                pending_tier: None,
                ..known
            },
            // Ending at period end: the tier holds until Stripe ends it.
            Change::Canceling => SubscriptionRow {
                pending_tier: None,
                ..known
            },
        };
        self.save_subscription(&creator.tenant.id, customer_id, row)
            .await?;
        tracing::info!(creator = %creator.tenant.slug, tier = %tier.key,
            subscription = %subscription.id, change = ?change.change, "plan changed");
        Ok(change)
    }

    /// Swaps the subscription's items for the tier's prices, at once.
    async fn update_items(
        &self,
        creator: &Creator,
        account: &str,
        subscription: &Subscription,
        tier: &Tier,
        proration: Proration,
        caller_key: Option<&str>,
    ) -> Result<PlanChange, ApiError> {
        let wanted = self.tier_prices(&creator.tenant, tier).await?;
        // A change now replaces a downgrade scheduled for later.
        self.release_schedule(account, subscription).await?;
        let mut items: Vec<UpdateSubscriptionItems> = subscription
            .items
            .data
            .iter()
            .filter(|item| !wanted.iter().any(|(price, _)| *price == item.price.id))
            .map(|item| UpdateSubscriptionItems {
                id: Some(item.id.clone()),
                deleted: Some(true),
                ..Default::default()
            })
            .collect();
        items.extend(
            wanted
                .iter()
                .filter(|(price, _)| !subscription.items.data.iter().any(|i| i.price.id == *price))
                .map(|(price, quantity)| UpdateSubscriptionItems {
                    price: Some(price.clone()),
                    quantity: *quantity,
                    ..Default::default()
                }),
        );
        let updated = PlanChange {
            change: Change::Updated,
            subscription_id: subscription.id.clone(),
            effective_at: Some(rfc3339(self.clock.now())),
        };
        // Already on the tier's prices (a retry whose first attempt went through).
        if items.is_empty() && !subscription.cancel_at_period_end {
            return Ok(updated);
        }
        let update = UpdateSubscription::new(subscription.id.as_str())
            .items(items)
            .proration_behavior(update_proration(proration))
            // A plan change keeps a subscription that was to end at period end.
            .cancel_at_period_end(false)
            .metadata(HashMap::from([(
                "staryer_tier".to_string(),
                tier.key.to_string(),
            )]));
        let key = change_key(
            "subscription_update",
            &creator.tenant.id,
            &subscription.id,
            caller_key,
        );
        let _: Subscription = self.client.send(&update, Some(account), Some(&key)).await?;
        Ok(updated)
    }

    /// A downgrade at period end: a schedule whose current phase keeps the prices paid
    /// for and whose next phase, from the period's end, carries the new tier's; released
    /// afterwards, so the subscription goes on as a plain one. A subscription that has a
    /// schedule already (an earlier downgrade, or a retry of this one) gets its phases
    /// rewritten instead of a second schedule.
    async fn schedule_downgrade(
        &self,
        creator: &Creator,
        account: &str,
        subscription: &Subscription,
        tier: &Tier,
        caller_key: Option<&str>,
    ) -> Result<PlanChange, ApiError> {
        let wanted = self.tier_prices(&creator.tenant, tier).await?;
        // A plan change keeps a subscription that was to end at period end (as an update
        // now does); the schedule then decides what the next period bills.
        let resume_key = change_key("resume", &creator.tenant.id, &subscription.id, caller_key);
        self.cancel_at_period_end(account, subscription, false, &resume_key)
            .await?;
        let schedule: Schedule = match &subscription.schedule {
            Some(id) => {
                let retrieve =
                    stripe_billing::subscription_schedule::RetrieveSubscriptionSchedule::new(
                        id.as_str(),
                    );
                self.client.send(&retrieve, Some(account), None).await?
            }
            None => {
                let create = CreateSubscriptionSchedule::new().from_subscription(&subscription.id);
                let key = change_key("schedule", &creator.tenant.id, &subscription.id, caller_key);
                self.client.send(&create, Some(account), Some(&key)).await?
            }
        };
        let now = self.clock.now();
        let current = schedule
            .phases
            .iter()
            .find(|phase| phase.start_date <= now && phase.end_date.is_none_or(|end| now < end))
            .or(schedule.phases.first())
            .ok_or_else(|| {
                ApiError::internal(&std::io::Error::other(
                    "a subscription schedule has no phase",
                ))
            })?;
        let period_end = current
            .end_date
            .or(subscription.period_end())
            .ok_or_else(|| {
                ApiError::internal(&std::io::Error::other("the subscription has no period end"))
            })?;
        let mut paid = UpdateSubscriptionSchedulePhases::new(
            current
                .items
                .iter()
                .map(|item| UpdateSubscriptionSchedulePhasesItems {
                    price: Some(item.price.clone()),
                    quantity: item.quantity,
                    ..Default::default()
                })
                .collect::<Vec<_>>(),
        );
        paid.start_date = Some(UpdateSubscriptionSchedulePhasesStartDate::Timestamp(
            current.start_date,
        ));
        paid.end_date = Some(UpdateSubscriptionSchedulePhasesEndDate::Timestamp(
            period_end,
        ));
        // A phase rewritten is a phase replaced: what Checkout gave it (a trial, a
        // promotion code, tax, the platform's fee) is said again, or it is gone.
        paid.trial_end = current
            .trial_end
            .map(UpdateSubscriptionSchedulePhasesTrialEnd::Timestamp);
        paid.discounts = current.discounts();
        let settings = self.settings(&creator.tenant.id).await?;
        let fee = Some(self.config.platform_fee_percent).filter(|fee| *fee > 0.0);
        let tax = settings
            .automatic_tax
            .then(|| UpdateSubscriptionSchedulePhasesAutomaticTax::new(true));
        paid.application_fee_percent = fee;
        paid.automatic_tax = tax.clone();
        let mut next = UpdateSubscriptionSchedulePhases::new(
            wanted
                .iter()
                .map(|(price, quantity)| UpdateSubscriptionSchedulePhasesItems {
                    price: Some(price.clone()),
                    quantity: *quantity,
                    ..Default::default()
                })
                .collect::<Vec<_>>(),
        );
        next.duration = Some(UpdateSubscriptionSchedulePhasesDuration {
            interval: match tier.definition.price.interval {
                Interval::Month => UpdateSubscriptionSchedulePhasesDurationInterval::Month,
                Interval::Year => UpdateSubscriptionSchedulePhasesDurationInterval::Year,
            },
            interval_count: Some(1),
        });
        next.proration_behavior = Some(UpdateSubscriptionSchedulePhasesProrationBehavior::None);
        next.discounts = current.discounts();
        next.application_fee_percent = fee;
        next.automatic_tax = tax;
        next.metadata = Some(HashMap::from([(
            "staryer_tier".to_string(),
            tier.key.to_string(),
        )]));
        let update = UpdateSubscriptionSchedule::new(schedule.id.as_str())
            .phases(vec![paid, next])
            .end_behavior(SubscriptionScheduleEndBehavior::Release);
        let key = change_key(
            "schedule_phases",
            &creator.tenant.id,
            &schedule.id,
            caller_key,
        );
        let _: Created = self.client.send(&update, Some(account), Some(&key)).await?;
        Ok(PlanChange {
            change: Change::Scheduled,
            subscription_id: subscription.id.clone(),
            effective_at: Some(rfc3339(period_end)),
        })
    }

    /// A move to a tier that sells nothing: the subscription ends, at period end or now.
    async fn end_for_free_tier(
        &self,
        account: &str,
        subscription: &Subscription,
        at_period_end: bool,
        proration: Proration,
        ending_key: &str,
    ) -> Result<PlanChange, ApiError> {
        if at_period_end {
            let ending = self
                .cancel_at_period_end(account, subscription, true, ending_key)
                .await?;
            return Ok(PlanChange {
                change: Change::Canceling,
                subscription_id: subscription.id.clone(),
                effective_at: ending.current_period_end,
            });
        }
        self.cancel_now(account, subscription, proration).await?;
        Ok(PlanChange {
            change: Change::Canceled,
            subscription_id: subscription.id.clone(),
            effective_at: Some(rfc3339(self.clock.now())),
        })
    }

    /// Forgets a downgrade that waited for the period's end (its schedule was released).
    async fn forget_pending_downgrade(
        &self,
        creator_id: &str,
        customer_id: &str,
        known: SubscriptionRow,
    ) -> Result<(), ApiError> {
        if known.pending_tier.is_none() {
            return Ok(());
        }
        let row = SubscriptionRow {
            pending_tier: None,
            ..known
        };
        self.save_subscription(creator_id, customer_id, row).await
    }

    /// Detaches the subscription's schedule, if it has one (a downgrade waiting for period
    /// end): Stripe refuses direct changes to a subscription a schedule manages.
    async fn release_schedule(
        &self,
        account: &str,
        subscription: &Subscription,
    ) -> Result<(), ApiError> {
        let Some(schedule) = &subscription.schedule else {
            return Ok(());
        };
        let release = ReleaseSubscriptionSchedule::new(schedule.as_str());
        let key = request_key("schedule_release", &[schedule]);
        let _: Created = self
            .client
            .send(&release, Some(account), Some(&key))
            .await?;
        Ok(())
    }

    /// Ends the subscription now, crediting the unused time unless proration is off.
    async fn cancel_now(
        &self,
        account: &str,
        subscription: &Subscription,
        proration: Proration,
    ) -> Result<Subscription, ApiError> {
        let cancel = CancelSubscription::new(subscription.id.as_str())
            .prorate(proration != Proration::None)
            .invoice_now(proration == Proration::AlwaysInvoice);
        let key = request_key("cancel", &[&subscription.id]);
        Ok(self.client.send(&cancel, Some(account), Some(&key)).await?)
    }

    /// Sets whether the subscription ends at period end (nothing sent when it already
    /// does as asked).
    async fn cancel_at_period_end(
        &self,
        account: &str,
        subscription: &Subscription,
        ending: bool,
        key: &str,
    ) -> Result<SubscriptionView, ApiError> {
        if subscription.cancel_at_period_end == ending {
            return Ok(SubscriptionView::from(subscription));
        }
        if ending {
            // Ending at period end drops a downgrade scheduled for then.
            self.release_schedule(account, subscription).await?;
        }
        let update = UpdateSubscription::new(subscription.id.as_str()).cancel_at_period_end(ending);
        let updated: Subscription = self.client.send(&update, Some(account), Some(key)).await?;
        Ok(SubscriptionView::from(&updated))
    }

    /// A Checkout completed for a customer whose earlier subscription still bills (a
    /// session opened before that subscription began, or a second tab): the latest
    /// purchase decides, and the earlier subscription ends now, prorated per the
    /// settings, so that the customer never pays for two.
    pub async fn end_superseded(
        &self,
        creator: &Creator,
        account: &str,
        superseded: &str,
    ) -> Result<(), ApiError> {
        let retrieve = RetrieveSubscription::new(superseded);
        let subscription = match self
            .client
            .send::<_, Subscription>(&retrieve, Some(account), None)
            .await
        {
            Ok(subscription) if subscription.is_live() => subscription,
            Ok(_) | Err(StripeError::Api { status: 404, .. }) => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        let settings = self.settings(&creator.tenant.id).await?;
        self.cancel_now(account, &subscription, settings.proration_behavior)
            .await?;
        tracing::warn!(creator = %creator.tenant.slug, subscription = %superseded,
            "a second subscription was bought; the earlier one was canceled");
        Ok(())
    }

    /// `POST /v1/customers/{id}/subscription/cancel`: at period end (the customer keeps
    /// its tier until then; resume undoes it), or now (the customer is back on the default
    /// tier at once).
    pub async fn cancel_subscription(
        &self,
        creator: &Creator,
        who: &Who,
        customer_id: &str,
        at_period_end: bool,
        caller_key: Option<&str>,
    ) -> Result<SubscriptionView, ApiError> {
        let account = self.account_of(&creator.tenant.id).await?;
        let _turn = self.subscription_turn(&creator.tenant.id).await;
        let subscription = self
            .live_subscription(creator, &account, customer_id)
            .await?
            .ok_or_else(|| subscription_not_found(customer_id))?;
        if at_period_end {
            let key = change_key(
                "cancel_at_period_end",
                &creator.tenant.id,
                &subscription.id,
                caller_key,
            );
            let ending = self
                .cancel_at_period_end(&account, &subscription, true, &key)
                .await?;
            // Ending drops a downgrade that waited for the period's end.
            let known = self
                .store
                .subscription(&creator.tenant.id, customer_id)
                .await?;
            self.forget_pending_downgrade(&creator.tenant.id, customer_id, known)
                .await?;
            return Ok(ending);
        }
        let settings = self.settings(&creator.tenant.id).await?;
        let ended = self
            .cancel_now(&account, &subscription, settings.proration_behavior)
            .await?;
        let known = self
            .store
            .subscription(&creator.tenant.id, customer_id)
            .await?;
        self.assign_tier(creator, who, customer_id, None, None)
            .await?;
        let row = SubscriptionRow {
            stripe_subscription_id: None,
            subscribed_tier: None,
            pending_tier: None,
            billing_status: None,
            failed_invoice_id: None,
            grace_ends_at: None,
            ..known
        };
        self.save_subscription(&creator.tenant.id, customer_id, row)
            .await?;
        Ok(SubscriptionView::from(&ended))
    }

    /// `POST /v1/customers/{id}/subscription/resume`: a subscription set to end at period
    /// end goes on.
    pub async fn resume_subscription(
        &self,
        creator: &Creator,
        customer_id: &str,
        caller_key: Option<&str>,
    ) -> Result<SubscriptionView, ApiError> {
        let account = self.account_of(&creator.tenant.id).await?;
        let _turn = self.subscription_turn(&creator.tenant.id).await;
        let subscription = self
            .live_subscription(creator, &account, customer_id)
            .await?
            .ok_or_else(|| subscription_not_found(customer_id))?;
        let key = change_key("resume", &creator.tenant.id, &subscription.id, caller_key);
        self.cancel_at_period_end(&account, &subscription, false, &key)
            .await
    }

    /// `POST /v1/customers/{id}/billing_portal`: a session of Stripe's customer portal
    /// (payment methods, invoices) on the creator's account; the URL is single-use.
    pub async fn billing_portal(
        &self,
        creator: &Creator,
        customer_id: &str,
        return_url: &str,
        caller_key: Option<&str>,
    ) -> Result<String, ApiError> {
        let account = self.account_of(&creator.tenant.id).await?;
        // A portal for a customer nobody made would make one, here and at Stripe.
        if self
            .store
            .customer(&creator.tenant.id, customer_id)
            .await?
            .is_none()
        {
            return Err(ApiError::not_found(
                "customer_not_found",
                format!("no customer `{customer_id}`"),
            ));
        }
        let stripe_customer = self
            .ensure_stripe_customer(creator, &account, customer_id)
            .await?;
        let create = CreateBillingPortalSession::new()
            .customer(stripe_customer)
            .return_url(return_url);
        let key = change_key(
            "billing_portal",
            &creator.tenant.id,
            customer_id,
            caller_key,
        );
        let session: Redirect = self
            .client
            .send(&create, Some(&account), Some(&key))
            .await?;
        Ok(session.url)
    }

    /// Puts the customer on `tier` (`None`: the default tier), keeping its email, and its
    /// Stripe customer unless `stripe_customer_id` names one.
    pub async fn assign_tier(
        &self,
        creator: &Creator,
        who: &Who,
        customer_id: &str,
        tier: Option<&str>,
        stripe_customer_id: Option<String>,
    ) -> Result<Customer, ApiError> {
        let known = self.store.customer(&creator.tenant.id, customer_id).await?;
        let (email, known_stripe_id) = known
            .map(|row| (row.email, row.stripe_customer_id))
            .unwrap_or_default();
        let update = CustomerUpdate {
            id: Arc::from(customer_id),
            tier: tier.map(Arc::from),
            email,
            stripe_customer_id: stripe_customer_id.or(known_stripe_id),
        };
        let record =
            who.customer_change(&creator.tenant.id, self.clock.now(), "assign", customer_id);
        creator.actor.upsert_customer(update, record).await
    }
}
