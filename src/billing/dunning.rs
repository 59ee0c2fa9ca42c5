//! Dunning: what a failed payment does to a customer's tier. `invoice.payment_failed` on
//! the customer's subscription starts a grace period (`grace_period_days`, default 7):
//! the customer keeps its paid tier and its usage answers say `billing_status:
//! "past_due"` while Stripe retries the payment. `invoice.paid` for that invoice ends it. When the grace
//! is over, the reporter's pass (`end_overdue_graces`) asks Stripe once more (a
//! subscription that is `active` again was paid, whatever order the webhooks came in),
//! and otherwise puts the customer on the default tier (`grace_ended`) until a paid
//! invoice brings the subscribed tier back. A paused or unpaid subscription drops the
//! paid tier at once (`webhooks`).
//!
//! Each transition is in the creator's billing events: Stripe's own events, and
//! `staryer.grace_ended` for the fall, which no Stripe event marks. Who is not in good
//! standing is also kept in memory, so usage answers show it without the store.

use serde_json::Value;

use crate::audit::model::Who;
use crate::billing::{request_key, Billing};
use crate::error::ApiError;
use crate::outbox::model::{announcement, GRACE_ENDED as GRACE_ENDED_EVENT};
use crate::store::billing::{BillingEventRow, SubscriptionRow};
use crate::store::StoreError;
use crate::tenants::registry::{Creator, Registry};

pub const PAST_DUE: &str = "past_due";
pub const GRACE_ENDED: &str = "grace_ended";

/// The subscription an invoice bills (`parent.subscription_details` since API version
/// 2025-03-31, `subscription` before).
pub fn invoice_subscription(invoice: &Value) -> Option<String> {
    invoice["parent"]["subscription_details"]["subscription"]
        .as_str()
        .or(invoice["subscription"].as_str())
        .map(String::from)
}

impl Billing {
    /// Records the customer's subscription row, and its standing in memory.
    pub async fn save_subscription(
        &self,
        creator_id: &str,
        customer_id: &str,
        row: SubscriptionRow,
    ) -> Result<(), ApiError> {
        self.store
            .set_subscription(creator_id, customer_id, &row)
            .await?;
        let key = (creator_id.to_string(), customer_id.to_string());
        match row.billing_status {
            Some(status) => {
                self.standings.insert(key, status);
            }
            None => {
                self.standings.remove(&key);
            }
        }
        Ok(())
    }

    /// The customer's billing status when it is not in good standing (`past_due`,
    /// `grace_ended`), from memory.
    pub fn standing(&self, creator_id: &str, customer_id: &str) -> Option<String> {
        self.standings
            .get(&(creator_id.to_string(), customer_id.to_string()))
            .map(|status| status.clone())
    }

    /// Loads who is not in good standing (at start).
    pub async fn load_standings(&self) -> Result<(), StoreError> {
        for (creator_id, customer_id, status) in self.store.all_billing_standings().await? {
            self.standings.insert((creator_id, customer_id), status);
        }
        Ok(())
    }

    /// `invoice.payment_failed` for the customer's subscription: the grace period starts
    /// (once: Stripe's retries that fail again do not extend it).
    pub async fn payment_failed(
        &self,
        creator: &Creator,
        customer_id: &str,
        known: SubscriptionRow,
        invoice: &Value,
    ) -> Result<bool, ApiError> {
        if !bills_known_subscription(&known, invoice) || known.billing_status.is_some() {
            return Ok(false);
        }
        let grace = self.settings(&creator.tenant.id).await?.grace_period_secs();
        let grace_ends_at = self.clock.now() + grace;
        tracing::info!(creator = %creator.tenant.slug, grace_ends_at,
            "a payment failed: the customer's grace period starts");
        let row = SubscriptionRow {
            billing_status: Some(PAST_DUE.into()),
            failed_invoice_id: invoice["id"].as_str().map(String::from),
            grace_ends_at: Some(grace_ends_at),
            ..known
        };
        self.save_subscription(&creator.tenant.id, customer_id, row)
            .await?;
        Ok(true)
    }

    /// `invoice.paid` for the invoice whose payment failed: back in good standing, and
    /// back on the subscribed tier if the grace had run out. Another invoice paid (a
    /// proration's, say) leaves the failed one open, and the grace with it.
    pub async fn payment_recovered(
        &self,
        creator: &Creator,
        customer_id: &str,
        known: SubscriptionRow,
        invoice: &Value,
    ) -> Result<bool, ApiError> {
        let settles = known.failed_invoice_id.is_none()
            || known.failed_invoice_id.as_deref() == invoice["id"].as_str();
        if !bills_known_subscription(&known, invoice) || known.billing_status.is_none() || !settles
        {
            return Ok(false);
        }
        self.restore(creator, customer_id, known).await?;
        Ok(true)
    }

    /// Clears the customer's standing, putting it back on its subscribed tier if the
    /// grace had ended.
    async fn restore(
        &self,
        creator: &Creator,
        customer_id: &str,
        known: SubscriptionRow,
    ) -> Result<(), ApiError> {
        if known.billing_status.as_deref() == Some(GRACE_ENDED) {
            let config = creator.tenant.config();
            if let Some(tier) = known
                .subscribed_tier
                .as_deref()
                .filter(|key| config.tier_id(key).is_some())
            {
                self.assign_tier(
                    creator,
                    &Who::system("dunning"),
                    customer_id,
                    Some(tier),
                    None,
                )
                .await?;
            }
        }
        let row = SubscriptionRow {
            billing_status: None,
            failed_invoice_id: None,
            grace_ends_at: None,
            ..known
        };
        self.save_subscription(&creator.tenant.id, customer_id, row)
            .await
    }

    /// Puts every customer whose grace period is over on the default tier, unless Stripe
    /// now says its subscription is paid up. A customer Stripe cannot be asked about now,
    /// or whose fall fails, waits for the next pass; the others go on. Answers how many
    /// fell.
    pub async fn end_overdue_graces(&self, registry: &Registry) -> Result<usize, ApiError> {
        let mut fell = 0;
        for (creator_id, customer_id) in self.store.all_overdue_graces(self.clock.now()).await? {
            let Some(creator) = registry.creator(&creator_id) else {
                continue;
            };
            match self.end_grace(&creator, &customer_id).await {
                Ok(true) => fell += 1,
                Ok(false) => {}
                Err(err) => tracing::debug!(creator = %creator.tenant.slug, error = %err.message,
                    "ending an overdue grace period failed; the next pass retries"),
            }
        }
        Ok(fell)
    }

    /// Ends one customer's grace period, in the creator's subscription turn: the row is
    /// read again under it (a webhook may have settled the payment meanwhile).
    async fn end_grace(&self, creator: &Creator, customer_id: &str) -> Result<bool, ApiError> {
        let _turn = self.subscription_turn(&creator.tenant.id).await;
        let creator_id = &creator.tenant.id;
        let now = self.clock.now();
        let known = self.store.subscription(creator_id, customer_id).await?;
        let overdue = known.billing_status.as_deref() == Some(PAST_DUE)
            && known.grace_ends_at.is_some_and(|at| at <= now);
        let Some(account) = self.store.stripe_account(creator_id).await? else {
            return Ok(false);
        };
        if !overdue {
            return Ok(false);
        }
        if let Some(subscription) = self
            .live_subscription(creator, &account, customer_id)
            .await?
        {
            if matches!(subscription.status.as_str(), "active" | "trialing") {
                self.restore(creator, customer_id, known).await?;
                return Ok(false);
            }
        }
        // The event first: its id is fixed, so a fall retried after a failure records it
        // once, and a fall is never left without its event.
        let event = BillingEventRow {
            event_id: request_key(
                "grace_ended",
                &[
                    creator_id,
                    customer_id,
                    &known.grace_ends_at.unwrap_or_default().to_string(),
                ],
            ),
            creator_id: Some(creator_id.to_string()),
            r#type: "staryer.grace_ended".into(),
            customer_id: Some(customer_id.to_string()),
            stripe_customer_id: None,
            object_id: known.stripe_subscription_id.clone(),
            amount: None,
            currency: None,
            status: Some(GRACE_ENDED.into()),
            stripe_created: now,
            received_at: now,
        };
        let notice = announcement(
            creator_id,
            format!("{GRACE_ENDED_EVENT}:{}", event.event_id),
            GRACE_ENDED_EVENT,
            serde_json::json!({
                "customer_id": customer_id,
                "stripe_subscription_id": known.stripe_subscription_id,
            }),
            now,
        );
        self.store.record_billing_event(&event, &[notice]).await?;
        self.assign_tier(creator, &Who::system("dunning"), customer_id, None, None)
            .await?;
        let row = SubscriptionRow {
            billing_status: Some(GRACE_ENDED.into()),
            ..known
        };
        self.save_subscription(creator_id, customer_id, row).await?;
        tracing::info!(creator = %creator.tenant.slug,
            "a grace period ended unpaid: the customer is on the default tier");
        Ok(true)
    }
}

/// Whether the invoice is for the subscription that decides the customer's tier (an
/// invoice naming no subscription, a one-off, is not).
fn bills_known_subscription(known: &SubscriptionRow, invoice: &Value) -> bool {
    known.stripe_subscription_id.is_some()
        && invoice_subscription(invoice) == known.stripe_subscription_id
}
