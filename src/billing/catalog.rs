//! Tiers as Stripe objects on the creator's connected account. A priced tier is one
//! Product with one recurring Price (the tier's price) and, for each cap that bills
//! overage, a metered graduated Price on a Billing Meter: the first `limit` units at 0,
//! then `overage_price` each, so Stripe charges only what goes over.
//!
//! Stripe prices cannot change amount, so a changed tier gets new Prices (the old ones are
//! archived; subscriptions already on them keep them until they change plan) and the same
//! Product, renamed. A hash of what the objects were made from decides whether a tier is
//! in sync. Syncs of one creator run one at a time, each on the tier as it is when its
//! turn comes, so a slow sync never writes back an older definition.
//!
//! Every call carries an idempotency key made of the tier, the number of syncs so far, the
//! definition's hash, the step, and how often Stripe refused that step: a sync retried
//! after a lost answer gets back the objects made the first time; a tier changed back and
//! forth makes new objects; and since Stripe replays a refusal for its key's 24 hours, a
//! refused step is retried under a new key (the other steps keep theirs, so nothing made
//! before the refusal is made twice).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sha2::{Digest, Sha256};
use stripe_billing::billing_meter::{
    CreateBillingMeter, CreateBillingMeterCustomerMapping, CreateBillingMeterCustomerMappingType,
    CreateBillingMeterDefaultAggregation, CreateBillingMeterDefaultAggregationFormula,
    CreateBillingMeterValueSettings,
};
use stripe_client_core::StripeRequest;
use stripe_product::price::{
    CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, CreatePriceRecurringUsageType,
    CreatePriceTiers, CreatePriceTiersUpTo, UpdatePrice,
};
use stripe_product::product::{CreateProduct, UpdateProduct};
use stripe_shared::{PriceBillingScheme, PriceTaxBehavior, PriceTiersMode};

use crate::billing::client::{Created, StripeError};
use crate::billing::recovery::{METER_KEY, TERMS_KEY};
use crate::billing::settings::TaxBehavior;
use crate::billing::{turn, Billing};
use crate::error::ApiError;
use crate::meters::model::Meter;
use crate::store::billing::{StripeMeterRow, StripeTierRow};
use crate::telemetry::metric_names;
use crate::tenants::state::Tenant;
use crate::tiers::model::{Interval, Tier};
use crate::usage::quantity::SCALE;

/// How long the background pass waits after a tier's sync failed there, doubling with
/// each failure up to the ceiling.
const SYNC_BACKOFF_FIRST_SECS: i64 = 30;
const SYNC_BACKOFF_MAX_SECS: i64 = 3_600;

/// The payload keys of every meter event the reporter sends.
pub const CUSTOMER_PAYLOAD_KEY: &str = "stripe_customer_id";
pub const VALUE_PAYLOAD_KEY: &str = "value";

/// Where a tier stands with Stripe, as tier and billing answers show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TierSyncView {
    /// `synced`, `failed` (see `error`; the reporter's next pass retries),
    /// `not_synced` (when read: a change not yet synced, or a sync that failed),
    /// `not_connected` (the creator has no Stripe account yet) or `not_priced` (free, no
    /// overage: nothing to sell).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_id: Option<String>,
    /// Meter key -> the metered overage price.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub overage_prices: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TierSyncView {
    fn status(status: &'static str) -> Self {
        TierSyncView {
            status,
            product_id: None,
            price_id: None,
            overage_prices: BTreeMap::new(),
            error: None,
        }
    }

    pub fn synced(row: &StripeTierRow) -> Self {
        TierSyncView {
            product_id: Some(row.product_id.clone()),
            price_id: base_price(row).map(str::to_string),
            overage_prices: overage_prices(row),
            ..Self::status("synced")
        }
    }
}

/// What one sync made at Stripe.
struct TierObjects {
    product_id: String,
    /// Empty for a free tier that only bills overage: no $0 line is sold.
    price_id: String,
    /// Meter key -> metered price id.
    overage_prices: BTreeMap<String, String>,
}

/// The tier's recurring Price; `None` for a free tier that only bills overage (the store
/// keeps an empty id for it).
pub fn base_price(row: &StripeTierRow) -> Option<&str> {
    Some(row.price_id.as_str()).filter(|id| !id.is_empty())
}

/// The metered prices of a synced tier, by meter key.
pub fn overage_prices(row: &StripeTierRow) -> BTreeMap<String, String> {
    serde_json::from_str(&row.overage_prices).unwrap_or_default()
}

/// Each cap that bills overage: meter, limit and unit price.
fn overage_terms(tier: &Tier) -> Vec<(&String, String, String)> {
    tier.definition
        .caps
        .iter()
        .filter_map(|(meter, cap)| {
            cap.billed_overage()
                .map(|price| (meter, cap.limit.to_string(), price.to_string()))
        })
        .collect()
}

/// What a tier's Stripe objects are made from, hashed with the account they live on, in
/// two parts: `<prices>.<product>`. Only a change of the first (amount, currency,
/// interval, overage terms) needs new Prices, since Prices cannot change; a change of the
/// second alone (the name) is an update of the Product.
fn definition_hash(account: &str, tier: &Tier, tax: Option<TaxBehavior>) -> String {
    let overage = overage_terms(tier);
    let digest = |basis: serde_json::Value| hex::encode(&Sha256::digest(basis.to_string())[..16]);
    let mut prices = serde_json::json!({
        "account": account,
        "price": tier.definition.price,
        "overage": overage,
    });
    // Only when set, so that prices made before tax settings existed stay in step.
    if let Some(tax) = tax {
        prices["tax_behavior"] = tax.as_str().into();
    }
    let prices = digest(prices);
    let product = digest(serde_json::json!({"name": tier.definition.name}));
    format!("{prices}.{product}")
}

/// The hash of the objects as syncs before the prices/product split wrote it: a tier
/// whose row still carries it is in step if it matches, and only its row is rewritten.
fn legacy_definition_hash(account: &str, tier: &Tier) -> String {
    let overage = overage_terms(tier);
    let basis = serde_json::json!({
        "account": account,
        "name": tier.definition.name,
        "price": tier.definition.price,
        "overage": overage,
    });
    hex::encode(Sha256::digest(basis.to_string().as_bytes()))
}

/// The prices part of a `definition_hash` (`None` for a hash from before the split).
fn prices_part(hash: &str) -> Option<&str> {
    hash.split_once('.').map(|(prices, _)| prices)
}

fn price_tax_behavior(tax: TaxBehavior) -> PriceTaxBehavior {
    match tax {
        TaxBehavior::Exclusive => PriceTaxBehavior::Exclusive,
        TaxBehavior::Inclusive => PriceTaxBehavior::Inclusive,
    }
}

fn interval(interval: Interval) -> CreatePriceRecurringInterval {
    match interval {
        Interval::Month => CreatePriceRecurringInterval::Month,
        Interval::Year => CreatePriceRecurringInterval::Year,
    }
}

/// The part of an idempotency key that tells a meter's or tier's incarnations apart: none
/// for those made before deletes existed (their keys stay as they were).
fn incarnation(serial: i64) -> String {
    if serial == 0 {
        String::new()
    } else {
        format!("~{serial}")
    }
}

fn metadata(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Billing {
    /// Makes the tier's Stripe objects match it, unless they already do. `Ok(None)` when
    /// there is nothing to sync (no connected account, or a tier with nothing to sell).
    pub async fn sync_tier(
        &self,
        tenant: &Tenant,
        tier_key: &str,
    ) -> Result<Option<StripeTierRow>, ApiError> {
        let _turn = turn(&self.sync_turns, &tenant.id).await;
        let config = tenant.config();
        let Some(tier) = config.tier_id(tier_key).map(|id| config.tier(id).clone()) else {
            return Ok(None);
        };
        let Some(account) = self.store.stripe_account(&tenant.id).await? else {
            return Ok(None);
        };
        if !tier.is_priced() {
            return Ok(None);
        }
        let tax = self.settings(&tenant.id).await?.tax_behavior;
        let hash = definition_hash(&account, &tier, tax);
        let existing = self.store.stripe_tier(&tenant.id, &tier.key).await?;
        if let Some(row) = existing.as_ref().filter(|row| row.definition_hash == hash) {
            return Ok(Some(row.clone()));
        }
        if let Some(row) = existing
            .as_ref()
            .filter(|row| row.definition_hash == legacy_definition_hash(&account, &tier))
        {
            let row = StripeTierRow {
                definition_hash: hash,
                ..row.clone()
            };
            self.store.save_stripe_tier(&tenant.id, &row).await?;
            return Ok(Some(row));
        }
        let syncs = existing.as_ref().map_or(0, |row| row.syncs);
        // The whole hash (prices and product), digested to keep keys short.
        let digest = hex::encode(&Sha256::digest(&hash)[..8]);
        let key_base = format!(
            "staryer:{}:{}{}:{syncs}:{digest}",
            tenant.id,
            tier.key,
            incarnation(tier.serial)
        );
        let same_prices = existing.as_ref().filter(|row| {
            row.account_id == account
                && prices_part(&row.definition_hash)
                    .is_some_and(|prices| Some(prices) == prices_part(&hash))
        });
        let result = match same_prices {
            Some(row) => self
                .rename_product(row, &tier, &account, &key_base)
                .await
                .map(|()| TierObjects {
                    product_id: row.product_id.clone(),
                    price_id: row.price_id.clone(),
                    overage_prices: overage_prices(row),
                }),
            None => {
                self.make_tier_objects(tenant, &tier, &account, &key_base, existing.as_ref(), tax)
                    .await
            }
        };
        let outcome = if result.is_ok() { "synced" } else { "failed" };
        metrics::counter!(metric_names::STRIPE_TIER_SYNCS, "outcome" => outcome).increment(1);
        let made = result?;
        let row = StripeTierRow {
            tier_key: tier.key.to_string(),
            account_id: account.clone(),
            product_id: made.product_id,
            price_id: made.price_id,
            overage_prices: serde_json::to_string(&made.overage_prices)
                .map_err(|e| ApiError::internal(&e))?,
            definition_hash: hash,
            syncs: syncs + 1,
            synced_at: self.clock.now(),
        };
        self.store.save_stripe_tier(&tenant.id, &row).await?;
        if let Some(old) = existing.filter(|old| old.account_id == account) {
            self.archive_replaced_prices(&account, &old, &row).await;
        }
        Ok(Some(row))
    }

    /// Whether the background pass should try the tier's sync now: yes, unless its last
    /// background tries failed and the backoff since has not run out.
    pub fn sync_due(&self, creator_id: &str, tier_key: &str) -> bool {
        let key = (creator_id.to_string(), tier_key.to_string());
        self.sync_backoff
            .get(&key)
            .is_none_or(|backoff| backoff.1 <= self.clock.now())
    }

    /// Records a background sync's outcome: a failure pushes the next try back (30 s,
    /// doubling, at most an hour); a success forgets the failures.
    pub fn note_background_sync(&self, creator_id: &str, tier_key: &str, synced: bool) {
        let key = (creator_id.to_string(), tier_key.to_string());
        if synced {
            self.sync_backoff.remove(&key);
            return;
        }
        let now = self.clock.now();
        let mut entry = self.sync_backoff.entry(key).or_insert((0, now));
        let failures = entry.0.saturating_add(1);
        let wait = (SYNC_BACKOFF_FIRST_SECS << (failures - 1).min(7)).min(SYNC_BACKOFF_MAX_SECS);
        *entry = (failures, now + wait);
    }

    /// The prices a subscription to a priced tier carries, synced first: the recurring
    /// one with quantity 1 (none for a free tier that bills overage), then each metered
    /// overage price, without a quantity (Stripe refuses one on metered prices).
    pub async fn tier_prices(
        &self,
        tenant: &Tenant,
        tier: &Tier,
    ) -> Result<Vec<(String, Option<u64>)>, ApiError> {
        let synced = self.sync_tier(tenant, &tier.key).await?.ok_or_else(|| {
            ApiError::internal(&std::io::Error::other("a priced tier did not sync"))
        })?;
        let recurring = base_price(&synced).map(|price| (price.to_string(), Some(1)));
        let metered = overage_prices(&synced)
            .into_values()
            .map(|price| (price, None));
        Ok(recurring.into_iter().chain(metered).collect())
    }

    /// The tier's sync state for an answer: synced ids, or why there are none.
    pub async fn sync_view(&self, tenant: &Tenant, tier: &Tier) -> TierSyncView {
        match self.sync_tier(tenant, &tier.key).await {
            Ok(Some(row)) => TierSyncView::synced(&row),
            Ok(None) if !tier.is_priced() => TierSyncView::status("not_priced"),
            Ok(None) => TierSyncView::status("not_connected"),
            Err(err) => {
                tracing::warn!(creator = %tenant.slug, tier = %tier.key, error = %err,
                    "syncing a tier to Stripe failed");
                TierSyncView {
                    error: Some(err.message),
                    ..TierSyncView::status("failed")
                }
            }
        }
    }

    /// A change that keeps every price: only the Product's name moves.
    async fn rename_product(
        &self,
        row: &StripeTierRow,
        tier: &Tier,
        account: &str,
        key_base: &str,
    ) -> Result<(), ApiError> {
        let rename = UpdateProduct::new(row.product_id.as_str()).name(&tier.definition.name);
        self.make(&rename, account, &format!("{key_base}:product"))
            .await
            .map(drop)
    }

    async fn make_tier_objects(
        &self,
        tenant: &Tenant,
        tier: &Tier,
        account: &str,
        key_base: &str,
        existing: Option<&StripeTierRow>,
        tax: Option<TaxBehavior>,
    ) -> Result<TierObjects, ApiError> {
        let definition = &tier.definition;
        let tags = metadata(&[
            ("staryer_creator", &tenant.slug),
            ("staryer_tier", &tier.key),
        ]);
        // Prices carry the terms they were made from, so `recovery` can find them again.
        let hash = definition_hash(account, tier, tax);
        let terms = prices_part(&hash).expect("a definition hash has a prices part");
        let mut price_tags = tags.clone();
        price_tags.insert(TERMS_KEY.into(), terms.into());
        let product_id = match existing.filter(|row| row.account_id == account) {
            Some(row) => {
                let rename = UpdateProduct::new(row.product_id.as_str()).name(&definition.name);
                self.make(&rename, account, &format!("{key_base}:product"))
                    .await?;
                row.product_id.clone()
            }
            None => match self
                .recover_product(account, &tenant.slug, tier, &format!("{key_base}:rename"))
                .await?
            {
                Some(found) => found,
                None => {
                    let create = CreateProduct::new(&definition.name).metadata(tags.clone());
                    self.make(&create, account, &format!("{key_base}:product"))
                        .await?
                }
            },
        };
        let currency: stripe_types::Currency =
            definition.price.currency.parse().expect("infallible");
        // A free tier that bills overage sells only its metered prices: a $0 line would
        // show on every invoice and checkout for nothing.
        let price_id = if definition.price.amount > 0 {
            let base = CreatePrice::new(currency.clone())
                .product(&product_id)
                .unit_amount(definition.price.amount)
                .recurring(CreatePriceRecurring::new(interval(
                    definition.price.interval,
                )))
                .metadata(price_tags);
            let base = match tax {
                Some(tax) => base.tax_behavior(price_tax_behavior(tax)),
                None => base,
            };
            match self.find_price(account, &product_id, terms, None).await? {
                Some(found) => found,
                None => {
                    self.make(&base, account, &format!("{key_base}:price"))
                        .await?
                }
            }
        } else {
            String::new()
        };

        let config = tenant.config();
        let mut overage = BTreeMap::new();
        for (meter_key, cap) in &definition.caps {
            let Some(unit_price) = cap.billed_overage() else {
                continue;
            };
            let Some(meter_id) = config.meter_id(meter_key) else {
                continue;
            };
            let meter = self
                .ensure_meter(&tenant.id, account, config.meter(meter_id))
                .await?;
            let mut recurring = CreatePriceRecurring::new(interval(definition.price.interval));
            recurring.usage_type = Some(CreatePriceRecurringUsageType::Metered);
            recurring.meter = Some(meter.stripe_meter_id.clone());
            let free_units = cap.limit.micros() / SCALE;
            let mut metered = CreatePrice::new(currency.clone())
                .product(&product_id)
                .recurring(recurring)
                .nickname(format!("{}: {meter_key} overage", definition.name))
                .metadata(metadata(&[
                    ("staryer_tier", &tier.key),
                    (METER_KEY, meter_key),
                    (TERMS_KEY, terms),
                ]));
            if let Some(tax) = tax {
                metered = metered.tax_behavior(price_tax_behavior(tax));
            }
            metered = if free_units > 0 {
                let mut included = CreatePriceTiers::new(CreatePriceTiersUpTo::I64(free_units));
                included.unit_amount = Some(0);
                let mut over = CreatePriceTiers::new(CreatePriceTiersUpTo::Inf);
                over.unit_amount_decimal = Some(unit_price.to_string());
                metered
                    .billing_scheme(PriceBillingScheme::Tiered)
                    .tiers_mode(PriceTiersMode::Graduated)
                    .tiers(vec![included, over])
            } else {
                metered.unit_amount_decimal(unit_price.to_string())
            };
            let billed = Some((meter_key.as_str(), meter.stripe_meter_id.as_str()));
            let price_id = match self.find_price(account, &product_id, terms, billed).await? {
                Some(found) => found,
                None => {
                    self.make(
                        &metered,
                        account,
                        &format!("{key_base}:overage:{meter_key}"),
                    )
                    .await?
                }
            };
            overage.insert(meter_key.clone(), price_id);
        }
        Ok(TierObjects {
            product_id,
            price_id,
            overage_prices: overage,
        })
    }

    /// Sends one catalog call on the creator's account and answers the object's id. The
    /// idempotency key is `key` plus how often Stripe refused it: a lost answer is retried
    /// under the same key (Stripe answers with what it made), a refusal under a new one.
    pub(super) async fn make<R: StripeRequest>(
        &self,
        request: &R,
        account: &str,
        key: &str,
    ) -> Result<String, ApiError> {
        let refusals = self.refused_keys.get(key).map_or(0, |n| *n);
        let sent = self
            .client
            .send::<R, Created>(request, Some(account), Some(&format!("{key}:{refusals}")))
            .await;
        match sent {
            Ok(created) => {
                self.refused_keys.remove(key);
                Ok(created.id)
            }
            Err(err) => {
                // Stripe keeps no result for a rate-limited request or one that collided
                // with the same key still running: those are retried under the same key.
                let kept_by_stripe = matches!(err, StripeError::Api { status, .. } if status != 409 && status != 429);
                if kept_by_stripe {
                    *self.refused_keys.entry(key.to_string()).or_default() += 1;
                }
                Err(err.into())
            }
        }
    }

    /// The Billing Meter for a Staryer meter on this account: events named
    /// `staryer_<meter key>`, customer mapped by id, values summed (the reporter sends
    /// increments, whatever the meter's own aggregation). The name is a stable key, not a
    /// random id: a meter made earlier on the account is found by it (`recovery`).
    async fn ensure_meter(
        &self,
        creator_id: &str,
        account: &str,
        meter: &Meter,
    ) -> Result<StripeMeterRow, ApiError> {
        if let Some(row) = self.store.stripe_meter(creator_id, &meter.key).await? {
            if row.account_id == account {
                return Ok(row);
            }
        }
        let event_name = format!("staryer_{}", meter.key);
        let create = CreateBillingMeter::new(
            CreateBillingMeterDefaultAggregation::new(
                CreateBillingMeterDefaultAggregationFormula::Sum,
            ),
            meter.name.as_str(),
            event_name.as_str(),
        )
        .customer_mapping(CreateBillingMeterCustomerMapping::new(
            CUSTOMER_PAYLOAD_KEY,
            CreateBillingMeterCustomerMappingType::ById,
        ))
        .value_settings(CreateBillingMeterValueSettings::new(VALUE_PAYLOAD_KEY));
        let stripe_meter_id = match self.find_meter(account, &event_name).await? {
            Some(found) => found,
            None => {
                self.make(
                    &create,
                    account,
                    &format!(
                        "staryer:{creator_id}:meter:{}{}:{account}",
                        meter.key,
                        incarnation(meter.serial)
                    ),
                )
                .await?
            }
        };
        let row = StripeMeterRow {
            meter_key: meter.key.to_string(),
            account_id: account.to_string(),
            stripe_meter_id,
            event_name,
            created_at: self.clock.now(),
        };
        self.store.save_stripe_meter(creator_id, &row).await?;
        Ok(row)
    }

    /// Archives the prices a sync replaced, so new checkouts cannot pick them. Best effort:
    /// an archived-or-not old price sells nothing, since checkout uses the stored ids.
    async fn archive_replaced_prices(
        &self,
        account: &str,
        old: &StripeTierRow,
        new: &StripeTierRow,
    ) {
        let kept: Vec<String> = overage_prices(new)
            .into_values()
            .chain([new.price_id.clone()])
            .collect();
        let replaced = overage_prices(old)
            .into_values()
            .chain([old.price_id.clone()])
            .filter(|id| !id.is_empty() && !kept.contains(id));
        for price in replaced {
            let archive = UpdatePrice::new(price.as_str()).active(false);
            let key = format!("staryer:archive:{price}");
            if let Err(err) = self
                .client
                .send::<_, Created>(&archive, Some(account), Some(&key))
                .await
            {
                tracing::warn!(price = %price, error = %err, "archiving a replaced price failed");
            }
        }
    }

    /// Where every tier stands, from the store alone (no call to Stripe).
    pub async fn catalog_view(
        &self,
        tenant: &Tenant,
        account: Option<&str>,
    ) -> Result<BTreeMap<String, TierSyncView>, ApiError> {
        let synced: HashMap<String, StripeTierRow> = self
            .store
            .load_stripe_tiers(&tenant.id)
            .await?
            .into_iter()
            .map(|row| (row.tier_key.clone(), row))
            .collect();
        let tax = self.settings(&tenant.id).await?.tax_behavior;
        let config = tenant.config();
        let views = config.live_tiers().map(|tier| {
            let view = match (account, synced.get(&*tier.key)) {
                _ if !tier.is_priced() => TierSyncView::status("not_priced"),
                (None, _) => TierSyncView::status("not_connected"),
                (Some(account), Some(row))
                    if row.definition_hash == definition_hash(account, tier, tax) =>
                {
                    TierSyncView::synced(row)
                }
                (Some(_), _) => TierSyncView::status("not_synced"),
            };
            (tier.key.to_string(), view)
        });
        Ok(views.collect())
    }

    /// Syncs every tier of a creator (after it connects an account).
    pub async fn sync_all_tiers(&self, tenant: &Tenant) -> BTreeMap<String, TierSyncView> {
        let config = tenant.config();
        let mut views = BTreeMap::new();
        for tier in config.live_tiers() {
            views.insert(tier.key.to_string(), self.sync_view(tenant, tier).await);
        }
        views
    }
}
