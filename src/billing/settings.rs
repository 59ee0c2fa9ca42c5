//! A creator's billing choices (`GET|PUT /v1/billing/settings`): how a plan change is
//! charged, when a downgrade applies, whether Checkout takes promotion codes and computes
//! tax, and how long a customer keeps its paid tier after a failed payment. Kept as JSON
//! on the creator's row; a field never set takes its default, so a setting added later
//! needs no migration.

use serde::{Deserialize, Serialize};

use crate::audit::model::Who;
use crate::billing::Billing;
use crate::error::ApiError;

/// How Stripe charges the difference when a subscription changes tier mid-period
/// (Stripe's `proration_behavior`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Proration {
    /// Credit the unused time of the old tier and charge the new one's on the next invoice.
    #[default]
    CreateProrations,
    /// The same, invoiced at once.
    AlwaysInvoice,
    /// No proration: the new price applies from the next period.
    None,
}

impl Proration {
    pub fn as_str(self) -> &'static str {
        match self {
            Proration::CreateProrations => "create_prorations",
            Proration::AlwaysInvoice => "always_invoice",
            Proration::None => "none",
        }
    }
}

/// When a move to a cheaper tier (or to a free one) takes effect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DowngradeTiming {
    /// At the end of the period already paid for: the customer keeps what it bought.
    #[default]
    PeriodEnd,
    /// At once, prorated per `proration_behavior`.
    Now,
}

/// Whether a Price's amount includes tax (Stripe's `tax_behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaxBehavior {
    /// Tax is added on top of the price.
    Exclusive,
    /// The price includes tax.
    Inclusive,
}

impl TaxBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            TaxBehavior::Exclusive => "exclusive",
            TaxBehavior::Inclusive => "inclusive",
        }
    }
}

/// The longest grace period after a failed payment, in days.
pub const MAX_GRACE_DAYS: u32 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BillingSettings {
    /// How a tier change of a subscribed customer is charged.
    pub proration_behavior: Proration,
    /// When a downgrade (to a cheaper tier, or to a free one) applies; upgrades apply at
    /// once.
    pub downgrades: DowngradeTiming,
    /// Checkout offers a promotion code field (codes are made in the creator's Stripe
    /// dashboard).
    pub allow_promotion_codes: bool,
    /// Checkout and subscriptions compute tax with Stripe Tax (the account must have it
    /// set up); Checkout asks for the address it needs.
    pub automatic_tax: bool,
    /// The `tax_behavior` of the Prices Staryer makes: `exclusive`, `inclusive`, or null
    /// (Stripe's `unspecified`). Prices cannot change it: a change makes new Prices for
    /// every priced tier; subscriptions keep theirs until they change tier.
    pub tax_behavior: Option<TaxBehavior>,
    /// Days a customer whose payment failed keeps its paid tier (shown as `past_due` in
    /// its usage) before it falls to the default tier: 0–60.
    #[serde(deserialize_with = "crate::schema::whole_number")]
    #[schema(minimum = 0, maximum = 60)]
    pub grace_period_days: u32,
}

impl Default for BillingSettings {
    fn default() -> Self {
        BillingSettings {
            proration_behavior: Proration::default(),
            downgrades: DowngradeTiming::default(),
            allow_promotion_codes: false,
            automatic_tax: false,
            tax_behavior: None,
            grace_period_days: 7,
        }
    }
}

impl BillingSettings {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.grace_period_days > MAX_GRACE_DAYS {
            return Err(ApiError::invalid(
                "invalid_grace_period",
                format!("grace_period_days must be between 0 and {MAX_GRACE_DAYS}"),
            ));
        }
        Ok(())
    }

    /// Settings as `save_settings` wrote them, read leniently: a setting a later version
    /// no longer has is dropped, one it added takes its default. (Requests stay strict.)
    fn from_stored(json: &str) -> Result<BillingSettings, serde_json::Error> {
        let mut stored: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)?;
        let known = serde_json::to_value(BillingSettings::default())?;
        stored.retain(|name, _| known.get(name).is_some());
        serde_json::from_value(serde_json::Value::Object(stored))
    }

    pub fn grace_period_secs(&self) -> i64 {
        i64::from(self.grace_period_days) * 86_400
    }
}

impl Billing {
    /// The creator's settings (the defaults until it sets them).
    pub async fn settings(&self, creator_id: &str) -> Result<BillingSettings, ApiError> {
        match self.store.billing_settings(creator_id).await? {
            Some(json) => BillingSettings::from_stored(&json).map_err(|e| ApiError::internal(&e)),
            None => Ok(BillingSettings::default()),
        }
    }

    /// Replaces the creator's settings, recorded with the settings before and after.
    pub async fn save_settings(
        &self,
        creator_id: &str,
        who: &Who,
        settings: &BillingSettings,
    ) -> Result<(), ApiError> {
        settings.validate()?;
        let json = serde_json::to_string(settings).map_err(|e| ApiError::internal(&e))?;
        let before = self.settings(creator_id).await?;
        let record = who
            .change(
                creator_id,
                self.clock.now(),
                "billing_settings",
                "update",
                creator_id,
            )
            .before(&before)
            .after(settings);
        self.store
            .set_billing_settings(creator_id, &json, &record)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_settings_outlive_the_fields_they_were_written_with() {
        let stored = r#"{"grace_period_days": 3, "retired_setting": true}"#;
        let settings = BillingSettings::from_stored(stored).unwrap();
        assert_eq!(settings.grace_period_days, 3);
        assert_eq!(settings.downgrades, DowngradeTiming::PeriodEnd, "a default");
    }
}
