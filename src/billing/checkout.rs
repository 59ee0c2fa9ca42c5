//! Selling a tier: a subscription Checkout Session on the creator's account with the
//! tier's recurring price and overage prices, the platform's fee, the customer's Stripe
//! Customer (made first, so every purchase of one customer lands on one Stripe
//! customer), a trial for a first subscription, and promotion codes and tax as the
//! creator chose. A customer that already has a live subscription is not sold a second
//! one: its subscription moves to the tier (`subscriptions`), and the answer says so.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAutomaticTax, CreateCheckoutSessionCustomerUpdate,
    CreateCheckoutSessionCustomerUpdateAddress, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionSubscriptionData,
};
use stripe_shared::CheckoutSessionMode;

use crate::audit::model::Who;
use crate::billing::client::Redirect;
use crate::billing::subscriptions::PlanChange;
use crate::billing::{request_key, Billing, RETRY_WINDOW_SECS};
use crate::error::ApiError;
use crate::meters::model::slug_schema;
use crate::tenants::actor::tier_not_found;
use crate::tenants::registry::Creator;
use crate::usage::model::id_schema;

/// `POST /v1/checkout/sessions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"customer_id": "alice", "tier": "pro",
    "success_url": "https://acme.example/thanks", "cancel_url": "https://acme.example/pricing"}))]
pub struct NewCheckout {
    /// The creator's id for the buying customer.
    #[schema(schema_with = id_schema)]
    pub customer_id: String,
    /// The tier to buy.
    #[schema(schema_with = slug_schema)]
    pub tier: String,
    #[schema(schema_with = crate::schema::url_schema)]
    pub success_url: String,
    #[schema(schema_with = crate::schema::url_schema)]
    pub cancel_url: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckoutView {
    /// `checkout`: send the buyer to `url`, Stripe's hosted page. `subscription_update`:
    /// the customer already had a subscription, which moved to the tier (`plan_change`
    /// says how and when); `url` is the `success_url`.
    pub kind: &'static str,
    /// The Checkout Session (`cs_…`), or the subscription (`sub_…`) that moved.
    pub id: Option<String>,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_change: Option<PlanChange>,
}

/// What a checkout sells, to whom, and what it is tagged with.
pub struct Sale<'a> {
    /// The creator's id for the buyer; `None`: an anonymous buyer (a pricing widget with no
    /// customer token), whom Stripe Checkout makes a Stripe customer and Staryer then
    /// knows by that id (`cus_…`, see `billing::webhooks`).
    pub buyer: Option<&'a str>,
    pub tier: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    /// Extra metadata on the session (the widget's embed, version, experiment, variant and
    /// visitor), which its `checkout.session.completed` carries back.
    pub tags: Vec<(&'static str, String)>,
}

/// Metadata that marks a checkout sold to an anonymous buyer.
pub const ANONYMOUS_BUYER_TAG: &str = "staryer_anonymous_buyer";

impl Billing {
    /// Sells the tier to the customer (see the module's note). `caller_key` is the
    /// request's own `Idempotency-Key`: the same key answers the same session; without
    /// one, the same request within `RETRY_WINDOW_SECS` does.
    pub async fn checkout(
        &self,
        creator: &Creator,
        who: &Who,
        order: &NewCheckout,
        caller_key: Option<&str>,
    ) -> Result<CheckoutView, ApiError> {
        let sale = Sale {
            buyer: Some(&order.customer_id),
            tier: &order.tier,
            success_url: &order.success_url,
            cancel_url: &order.cancel_url,
            tags: Vec::new(),
        };
        self.sell(creator, who, &sale, caller_key).await
    }

    /// Sells a tier, to a known customer or an anonymous buyer.
    pub async fn sell(
        &self,
        creator: &Creator,
        who: &Who,
        sale: &Sale<'_>,
        caller_key: Option<&str>,
    ) -> Result<CheckoutView, ApiError> {
        let config = creator.tenant.config();
        let tier = config
            .tier_id(sale.tier)
            .map(|id| config.tier(id).clone())
            .ok_or_else(|| tier_not_found(sale.tier))?;
        if !tier.is_priced() {
            return Err(ApiError::invalid(
                "tier_not_priced",
                format!(
                    "tier `{}` is free and bills no overage: nothing to buy",
                    tier.key
                ),
            ));
        }
        let account = self.account_of(&creator.tenant.id).await?;
        let mut stripe_customer = None;
        let mut first_subscription = true;
        if let Some(customer_id) = sale.buyer {
            let turn = self.subscription_turn(&creator.tenant.id).await;
            if let Some(subscription) = self
                .live_subscription(creator, &account, customer_id)
                .await?
            {
                let change = self
                    .change_plan(
                        creator,
                        &account,
                        customer_id,
                        &subscription,
                        &tier,
                        caller_key,
                    )
                    .await?;
                if change.applies_now() {
                    self.assign_tier(creator, who, customer_id, Some(&tier.key), None)
                        .await?;
                }
                return Ok(CheckoutView {
                    kind: "subscription_update",
                    id: Some(subscription.id),
                    url: sale.success_url.to_string(),
                    plan_change: Some(change),
                });
            }
            drop(turn);
            stripe_customer = Some(
                self.ensure_stripe_customer(creator, &account, customer_id)
                    .await?,
            );
            let known = self
                .store
                .subscription(&creator.tenant.id, customer_id)
                .await?;
            // A trial is for a customer's first subscription, not for each one.
            first_subscription =
                known.stripe_subscription_id.is_none() && known.subscription_event_at.is_none();
        }
        let prices = self.tier_prices(&creator.tenant, &tier).await?;
        let settings = self.settings(&creator.tenant.id).await?;

        let line_items: Vec<CreateCheckoutSessionLineItems> = prices
            .into_iter()
            .map(|(price, quantity)| CreateCheckoutSessionLineItems {
                price: Some(price),
                quantity,
                ..Default::default()
            })
            .collect();
        let mut tags = HashMap::from([("staryer_tier".to_string(), tier.key.to_string())]);
        match sale.buyer {
            Some(customer_id) => {
                tags.insert("staryer_customer_id".into(), customer_id.to_string());
            }
            None => {
                tags.insert(ANONYMOUS_BUYER_TAG.into(), "true".into());
            }
        }
        tags.extend(sale.tags.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut subscription = CreateCheckoutSessionSubscriptionData::new();
        subscription.metadata = Some(tags.clone());
        let fee = self.config.platform_fee_percent;
        if fee > 0.0 {
            subscription.application_fee_percent = Some(fee);
        }
        if tier.definition.trial_days > 0 && first_subscription {
            subscription.trial_period_days = Some(tier.definition.trial_days);
        }
        let mut create = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .line_items(line_items)
            .success_url(sale.success_url)
            .cancel_url(sale.cancel_url)
            .metadata(tags)
            .subscription_data(subscription);
        if let (Some(customer_id), Some(stripe_customer)) = (sale.buyer, &stripe_customer) {
            create = create
                .client_reference_id(customer_id)
                .customer(stripe_customer);
        }
        if settings.allow_promotion_codes {
            create = create.allow_promotion_codes(true);
        }
        if settings.automatic_tax {
            // Stripe Tax needs the buyer's address: Checkout asks for it and keeps it on
            // the customer (a new one keeps it anyway).
            create = create.automatic_tax(CreateCheckoutSessionAutomaticTax::new(true));
            if stripe_customer.is_some() {
                create = create.customer_update(CreateCheckoutSessionCustomerUpdate {
                    address: Some(CreateCheckoutSessionCustomerUpdateAddress::Auto),
                    ..Default::default()
                });
            }
        }
        let key = match caller_key {
            Some(caller_key) => request_key("checkout", &[&creator.tenant.id, caller_key]),
            // Everything the session is made from, so that a key never meets other
            // parameters.
            None => {
                let tagged: Vec<String> =
                    sale.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                request_key(
                    "checkout",
                    &[
                        &creator.tenant.id,
                        sale.buyer.unwrap_or("(anonymous)"),
                        &tier.key,
                        &tier.updated_at.to_string(),
                        sale.success_url,
                        sale.cancel_url,
                        stripe_customer.as_deref().unwrap_or_default(),
                        &serde_json::to_string(&settings).unwrap_or_default(),
                        &tagged.join("&"),
                        &(self.clock.now() / RETRY_WINDOW_SECS).to_string(),
                    ],
                )
            }
        };
        let session: Redirect = self
            .client
            .send(&create, Some(&account), Some(&key))
            .await?;
        Ok(CheckoutView {
            kind: "checkout",
            id: session.id,
            url: session.url,
            plan_change: None,
        })
    }
}
