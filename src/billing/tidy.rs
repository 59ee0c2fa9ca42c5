//! Tidy-up: a deleted meter's Billing Meter is deactivated, and a deleted tier's Product
//! and Prices are archived, on the creator's connected account. Nothing is deleted at
//! Stripe: invoices and subscriptions made with these objects keep them, they just can no
//! longer be sold or receive events.
//!
//! The delete itself is local and final: the transaction that deletes the meter or tier
//! also moves its `stripe_meters` / `stripe_tiers` row into `stripe_tidy_ups`, one row per
//! object (so a meter or tier made again with the key starts anew at Stripe). Right after
//! the delete, and then on every pass of the reporter, those rows are sent; a row goes once
//! Stripe took it. A Stripe failure never fails the delete: it is logged once (at its
//! first failure) and retried by the next pass. A refusal that no retry changes (Stripe
//! answering 4xx other than 409 and 429) is logged and dropped; a 404 means there is
//! nothing left to put away.
//!
//! Every request carries the `Stripe-Account` and an `Idempotency-Key` made of what it does
//! and the object's id, the same on every retry. An object in use again (a meter made
//! again with the key found the still-active Billing Meter before its deactivation was
//! sent) is left alone. Tidy-ups of one creator run in its catalog turn, so a tidy-up and
//! a tier sync never interleave.

use stripe_billing::billing_meter::DeactivateBillingMeter;
use stripe_product::price::UpdatePrice;
use stripe_product::product::UpdateProduct;

use crate::billing::catalog::{base_price, overage_prices};
use crate::billing::client::{Created, StripeError};
use crate::billing::{request_key, turn, Billing};
use crate::store::billing::TidyUpRow;
use crate::store::StoreError;

impl Billing {
    /// Sends what the creator has left to tidy at Stripe. Failures are recorded and left
    /// for the reporter's next pass.
    pub async fn tidy_up(&self, creator_id: &str) {
        if let Err(err) = self.try_tidy_up(creator_id).await {
            tracing::warn!(creator_id = %creator_id, error = %err,
                "reading Stripe tidy-ups failed; the next pass retries");
        }
    }

    /// Every creator's tidy-ups (the reporter's pass).
    pub async fn tidy_up_all(&self) {
        match self.store.creators_with_tidy_ups().await {
            Ok(creators) => {
                for creator_id in creators {
                    self.tidy_up(&creator_id).await;
                }
            }
            Err(err) => tracing::debug!(error = %err, "listing Stripe tidy-ups failed"),
        }
    }

    async fn try_tidy_up(&self, creator_id: &str) -> Result<(), StoreError> {
        let creator: std::sync::Arc<str> = creator_id.into();
        let _turn = turn(&self.sync_turns, &creator).await;
        let due = self.store.tidy_ups(creator_id).await?;
        if due.is_empty() {
            return Ok(());
        }
        let in_use = self.objects_in_use(creator_id).await?;
        for tidy in due {
            if in_use.contains(&tidy.object_id) {
                tracing::info!(creator_id = %creator_id, kind = %tidy.kind,
                    object = %tidy.object_id, "a Stripe object to put away is in use again; kept");
                self.store
                    .tidy_up_done(creator_id, &tidy.kind, &tidy.object_id)
                    .await?;
                continue;
            }
            match self.send_tidy_up(&tidy).await {
                Ok(()) => {
                    self.store
                        .tidy_up_done(creator_id, &tidy.kind, &tidy.object_id)
                        .await?
                }
                Err(StripeError::Api { status: 404, .. }) => {
                    tracing::info!(creator_id = %creator_id, kind = %tidy.kind,
                        object = %tidy.object_id, "a Stripe object to put away is gone already");
                    self.store
                        .tidy_up_done(creator_id, &tidy.kind, &tidy.object_id)
                        .await?;
                }
                Err(err) if !err.is_retryable() => {
                    tracing::warn!(creator_id = %creator_id, kind = %tidy.kind,
                        object = %tidy.object_id, error = %err,
                        "Stripe refused to put away an object of a deleted meter or tier; dropped");
                    self.store
                        .tidy_up_done(creator_id, &tidy.kind, &tidy.object_id)
                        .await?;
                }
                Err(err) => {
                    if tidy.attempts == 0 {
                        tracing::warn!(creator_id = %creator_id, kind = %tidy.kind,
                            object = %tidy.object_id, error = %err,
                            "putting away a Stripe object of a deleted meter or tier failed; \
                             the reporter retries it");
                    }
                    self.store
                        .tidy_up_failed(creator_id, &tidy.kind, &tidy.object_id, &err.to_string())
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The Stripe ids the creator's current meters and tiers use.
    async fn objects_in_use(&self, creator_id: &str) -> Result<Vec<String>, StoreError> {
        let meters = self.store.load_stripe_meters(creator_id).await?;
        let tiers = self.store.load_stripe_tiers(creator_id).await?;
        let mut ids: Vec<String> = meters.into_iter().map(|m| m.stripe_meter_id).collect();
        for tier in tiers {
            ids.extend(overage_prices(&tier).into_values());
            ids.extend(base_price(&tier).map(str::to_string));
            ids.push(tier.product_id);
        }
        Ok(ids)
    }

    /// One request: deactivate the meter, or archive the product or price.
    async fn send_tidy_up(&self, tidy: &TidyUpRow) -> Result<(), StripeError> {
        let id = tidy.object_id.as_str();
        let account = Some(tidy.account_id.as_str());
        match tidy.kind.as_str() {
            "meter" => {
                let key = request_key("meter_deactivate", &[id]);
                let request = DeactivateBillingMeter::new(id);
                self.client
                    .send::<_, Created>(&request, account, Some(&key))
                    .await
            }
            "product" => {
                let key = request_key("product_archive", &[id]);
                let request = UpdateProduct::new(id).active(false);
                self.client
                    .send::<_, Created>(&request, account, Some(&key))
                    .await
            }
            _ => {
                let key = request_key("price_archive", &[id]);
                let request = UpdatePrice::new(id).active(false);
                self.client
                    .send::<_, Created>(&request, account, Some(&key))
                    .await
            }
        }
        .map(drop)
    }
}
