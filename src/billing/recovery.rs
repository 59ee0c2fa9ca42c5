//! Finding again, on the connected account, the objects Staryer made there. The store is
//! the memory of what was made, but a daemon given a new, empty database for a creator
//! whose account already holds its Products, Prices and Billing Meters (a database lost,
//! or moved between SQLite and PostgreSQL) would otherwise make them all a second time:
//! duplicate Products in the creator's dashboard, and a second meter for the same events.
//! So before `catalog` creates one, it looks for one made from the same definition:
//!
//! - a Product by Stripe's search on its metadata (`staryer_creator`, `staryer_tier`);
//! - a Price among its Product's active Prices, by its metadata `staryer_terms` (the
//!   prices part of the tier's definition hash: amount, currency, interval, overage terms
//!   and account) and, for an overage Price, `staryer_meter` and the meter it bills;
//! - a Billing Meter among the account's active meters, by its event name.
//!
//! Lookups are GETs, without idempotency keys. A lookup that fails fails the sync (the
//! reporter's next pass retries it) rather than risk a duplicate. Stripe's search is
//! eventually consistent (usually under a minute behind), so an object made moments ago
//! may not be found: the create's idempotency key still covers that retry. Prices made
//! before `staryer_terms` existed are not matched, and are made again once.

use std::collections::HashMap;

use stripe_billing::billing_meter::ListBillingMeter;
use stripe_billing::BillingMeterStatus;
use stripe_client_core::StripeRequest;
use stripe_product::price::ListPrice;
use stripe_product::product::{SearchProduct, UpdateProduct};

use crate::billing::customers::metadata_term;
use crate::billing::Billing;
use crate::error::ApiError;
use crate::tiers::model::Tier;

/// The metadata key of a Price's terms: the prices part of its tier's definition hash.
pub const TERMS_KEY: &str = "staryer_terms";
/// The metadata key naming the meter an overage Price bills.
pub const METER_KEY: &str = "staryer_meter";

/// Objects per list request (Stripe's maximum).
const PAGE_SIZE: i64 = 100;

/// One page of a list or search answer.
#[derive(miniserde::Deserialize)]
struct Page<T> {
    data: Vec<T>,
    has_more: bool,
}

#[derive(miniserde::Deserialize)]
struct ListedProduct {
    id: String,
    name: String,
}

#[derive(miniserde::Deserialize)]
struct ListedPrice {
    id: String,
    metadata: HashMap<String, String>,
    recurring: Option<ListedRecurring>,
}

#[derive(miniserde::Deserialize)]
struct ListedRecurring {
    meter: Option<String>,
}

#[derive(miniserde::Deserialize)]
struct ListedMeter {
    id: String,
    event_name: String,
}

impl Billing {
    /// The active Product made for this tier on the account, renamed when the tier's name
    /// changed meanwhile (under `key`, as catalog calls go).
    pub(super) async fn recover_product(
        &self,
        account: &str,
        creator_slug: &str,
        tier: &Tier,
        key: &str,
    ) -> Result<Option<String>, ApiError> {
        let Some(found) = self.find_product(account, creator_slug, &tier.key).await? else {
            return Ok(None);
        };
        if found.name != tier.definition.name {
            let rename = UpdateProduct::new(found.id.as_str()).name(&tier.definition.name);
            self.make(&rename, account, key).await?;
        }
        tracing::info!(creator = %creator_slug, tier = %tier.key, product = %found.id,
            "found the tier's Stripe product; reusing it");
        Ok(Some(found.id))
    }

    async fn find_product(
        &self,
        account: &str,
        creator_slug: &str,
        tier_key: &str,
    ) -> Result<Option<ListedProduct>, ApiError> {
        let query = format!(
            "active:'true' AND {} AND {}",
            metadata_term("staryer_creator", creator_slug),
            metadata_term("staryer_tier", tier_key)
        );
        let search = SearchProduct::new(query).limit(PAGE_SIZE);
        let page: Page<ListedProduct> = self.client.send(&search, Some(account), None).await?;
        Ok(page.data.into_iter().next())
    }

    /// The active Price of `product_id` made from these terms: the recurring one
    /// (`overage` None), or the metered one of (meter key, Stripe meter id).
    pub(super) async fn find_price(
        &self,
        account: &str,
        product_id: &str,
        terms: &str,
        overage: Option<(&str, &str)>,
    ) -> Result<Option<String>, ApiError> {
        let same_terms = |price: &ListedPrice| {
            let tag = |key: &str| price.metadata.get(key).map(String::as_str);
            let meter = price.recurring.as_ref().and_then(|r| r.meter.as_deref());
            tag(TERMS_KEY) == Some(terms)
                && tag(METER_KEY) == overage.map(|(key, _)| key)
                && overage.is_none_or(|(_, stripe_meter)| meter == Some(stripe_meter))
        };
        let page = |after: Option<&str>| {
            let list = ListPrice::new()
                .product(product_id)
                .active(true)
                .limit(PAGE_SIZE);
            match after {
                Some(id) => list.starting_after(id),
                None => list,
            }
        };
        let found = self
            .first_listed(account, page, |p: &ListedPrice| &p.id, same_terms)
            .await?;
        Ok(found.map(|price| price.id))
    }

    /// The active Billing Meter of the account that takes `event_name`. Event names are
    /// stable keys (`staryer_<meter key>`), not random ids, so that this finds it.
    pub(super) async fn find_meter(
        &self,
        account: &str,
        event_name: &str,
    ) -> Result<Option<String>, ApiError> {
        let page = |after: Option<&str>| {
            let list = ListBillingMeter::new()
                .status(BillingMeterStatus::Active)
                .limit(PAGE_SIZE);
            match after {
                Some(id) => list.starting_after(id),
                None => list,
            }
        };
        let found = self
            .first_listed(
                account,
                page,
                |m: &ListedMeter| &m.id,
                |m| m.event_name == event_name,
            )
            .await?;
        Ok(found.map(|meter| meter.id))
    }

    /// The first object of a list that `wanted` takes, reading page after page (each
    /// after the last id of the one before) until found or the list ends.
    async fn first_listed<R, T>(
        &self,
        account: &str,
        page: impl Fn(Option<&str>) -> R,
        id_of: impl Fn(&T) -> &str,
        wanted: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, ApiError>
    where
        R: StripeRequest,
        T: miniserde::Deserialize,
    {
        let mut after: Option<String> = None;
        loop {
            let listed: Page<T> = self
                .client
                .send(&page(after.as_deref()), Some(account), None)
                .await?;
            after = listed.data.last().map(|last| id_of(last).to_string());
            if let Some(found) = listed.data.into_iter().find(&wanted) {
                return Ok(Some(found));
            }
            if !listed.has_more || after.is_none() {
                return Ok(None);
            }
        }
    }
}
