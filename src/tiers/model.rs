//! Tiers: plans with a price, caps per meter and feature entitlements. The definition is
//! kept as JSON in the store; in memory each tier also carries its caps indexed by meter
//! position, so the hot path never looks a cap up by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{
    AdditionalProperties, Array, ArrayBuilder, Object, ObjectBuilder, Schema,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::meters::model::{
    name_schema, optional_name_schema, parse_name, parse_slug, slug_schema,
};
use crate::schema::or_null;
use crate::tenants::config::TenantConfig;
use crate::usage::decide::{Aggregation, Cap, OnExceed};
use crate::usage::period::rfc3339;
use crate::usage::quantity::{Quantity, SCALE};

/// A tier's index in its creator's tier list.
pub type TierId = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Month,
    Year,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Integer minor units (cents).
    #[serde(deserialize_with = "crate::schema::whole_number")]
    #[schema(minimum = 0)]
    pub amount: i64,
    /// ISO 4217: three letters (`usd`), answered in lower case.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
    pub interval: Interval,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapSpec {
    pub limit: Quantity,
    #[serde(default = "default_warn_at")]
    pub warn_at: Quantity,
    #[serde(default)]
    pub on_exceed: OnExceed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overage_price: Option<Quantity>,
}

/// A cap's fields, and the rules `TierDefinition::parse` holds them to: an
/// `overage_price` needs `on_exceed: overage` and a whole `limit` (JSON Schema `if`/`then`).
impl utoipa::PartialSchema for CapSpec {
    fn schema() -> RefOr<Schema> {
        let mut cap = ObjectBuilder::new()
            .property("limit", limit_schema())
            .required("limit")
            .property("warn_at", warn_at_schema())
            .property("on_exceed", Ref::from_schema_name(OnExceed::name()))
            .property("overage_price", overage_price_schema())
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
            .build();
        let billed = json!({
            "required": ["overage_price"],
            "properties": {"overage_price": {"type": "number"}},
        });
        let billed_needs = json!({
            "required": ["on_exceed"],
            "properties": {"on_exceed": {"const": "overage"}, "limit": {"multipleOf": 1}},
        });
        cap.extensions = Some(Extensions::from_iter([
            ("if", billed),
            ("then", billed_needs),
        ]));
        cap.into()
    }
}

impl utoipa::ToSchema for CapSpec {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push((OnExceed::name().into_owned(), OnExceed::schema()));
    }
}

fn limit_schema() -> Object {
    Quantity::input_schema(
        "The cap: 0 to 10^12, at most 6 fractional digits (whole when overage is billed)",
    )
}

/// What `TierDefinition::parse` accepts: a fraction.
fn warn_at_schema() -> Object {
    let mut schema = Quantity::input_schema(
        "Fraction of the limit past which events answer `warn`, 0 to 1; default 0.8",
    );
    schema.maximum = Some(1.into());
    schema
}

fn overage_price_schema() -> Schema {
    or_null(Quantity::input_schema(
        "With `on_exceed: overage`: what each unit past the limit costs, in the tier's \
         currency's minor units (decimals allowed, `0.25` is a quarter cent). Billed through \
         Stripe as a metered graduated price: the first `limit` units at 0, then this",
    ))
}

impl CapSpec {
    /// The per-unit price Stripe bills past the limit, when this cap bills overage.
    pub fn billed_overage(&self) -> Option<Quantity> {
        match self.on_exceed {
            OnExceed::Overage => self.overage_price,
            OnExceed::Block => None,
        }
    }
}

fn default_warn_at() -> Quantity {
    Quantity::from_micros(800_000)
}

/// What a tier is, as stored and as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierDefinition {
    pub name: String,
    pub price: Price,
    pub caps: BTreeMap<String, CapSpec>,
    pub features: Vec<String>,
    /// Free days before a new subscription's first charge (0: none).
    #[serde(default)]
    pub trial_days: u32,
}

/// The longest trial Stripe takes (`trial_period_days`).
pub const MAX_TRIAL_DAYS: u32 = 730;

fn trial_days_schema() -> Object {
    let mut schema = crate::schema::integer(
        0,
        i64::from(MAX_TRIAL_DAYS),
        "Free days before a new subscription's first charge, 0–730 (0: no trial). Given at \
         Checkout to a customer that never had a subscription",
    );
    schema.default = Some(0.into());
    schema
}

/// In a patch: absent or null keeps the tier's trial, so there is no default.
fn optional_trial_days_schema() -> Schema {
    let mut schema = trial_days_schema();
    schema.default = None;
    or_null(schema)
}

#[derive(Debug, Clone)]
pub struct Tier {
    pub key: Arc<str>,
    pub definition: TierDefinition,
    pub is_default: bool,
    /// Caps indexed by meter position (`None`: no cap on that meter).
    pub caps_by_meter: Vec<Option<Cap>>,
    pub created_at: i64,
    pub updated_at: i64,
    /// This incarnation of the key (random; 0 for tiers made before deletes existed): part
    /// of its Stripe objects' idempotency keys, so a tier deleted and made again gets new
    /// ones.
    pub serial: i64,
}

impl Tier {
    /// Whether Stripe has anything to charge for this tier: a price, or overage.
    pub fn is_priced(&self) -> bool {
        self.definition.price.amount > 0
            || self
                .definition
                .caps
                .values()
                .any(|cap| cap.billed_overage().is_some())
    }

    pub fn cap(&self, meter: u32) -> Option<&Cap> {
        self.caps_by_meter
            .get(meter as usize)
            .and_then(Option::as_ref)
    }

    pub fn has_feature(&self, feature: &str) -> bool {
        self.definition.features.iter().any(|f| f == feature)
    }

    /// Resolves the definition's caps against the creator's meters.
    pub fn build(
        key: Arc<str>,
        definition: TierDefinition,
        is_default: bool,
        config: &TenantConfig,
        created_at: i64,
        updated_at: i64,
        serial: i64,
    ) -> Result<Tier, ApiError> {
        let mut caps_by_meter = vec![None; config.meter_slots()];
        for (meter_key, spec) in &definition.caps {
            let meter = config.meter_id(meter_key).ok_or_else(|| {
                ApiError::not_found("meter_not_found", format!("no meter `{meter_key}`"))
            })?;
            if spec.overage_price.is_some() && config.meter(meter).aggregation == Aggregation::Max {
                return Err(ApiError::invalid(
                    "invalid_cap",
                    format!(
                        "caps.{meter_key}.overage_price: overage is billed on sum and count \
                         meters; `{meter_key}` is a max meter"
                    ),
                ));
            }
            caps_by_meter[meter as usize] = Some(Cap {
                limit: spec.limit,
                warn_at_millionths: spec.warn_at.micros(),
                on_exceed: spec.on_exceed,
            });
        }
        Ok(Tier {
            key,
            definition,
            is_default,
            caps_by_meter,
            created_at,
            updated_at,
            serial,
        })
    }
}

/// `POST /v1/tiers`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTier {
    #[schema(schema_with = slug_schema)]
    pub key: String,
    #[schema(schema_with = name_schema)]
    pub name: String,
    pub price: Price,
    /// Meter key -> its cap on this tier.
    #[serde(default)]
    pub caps: BTreeMap<String, CapSpec>,
    #[serde(default)]
    #[schema(schema_with = features_schema)]
    pub features: Vec<String>,
    /// Make this the creator's default tier (the one customers without a tier are on).
    #[serde(default)]
    pub default: bool,
    #[serde(default, deserialize_with = "crate::schema::whole_number")]
    #[schema(schema_with = trial_days_schema)]
    pub trial_days: u32,
}

/// `PATCH /v1/tiers/{key}`: the fields given replace the tier's.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierPatch {
    #[schema(schema_with = optional_name_schema)]
    pub name: Option<String>,
    pub price: Option<Price>,
    pub caps: Option<BTreeMap<String, CapSpec>>,
    #[schema(schema_with = optional_features_schema)]
    pub features: Option<Vec<String>>,
    pub default: Option<bool>,
    #[serde(default, deserialize_with = "crate::schema::optional_whole_number")]
    #[schema(schema_with = optional_trial_days_schema)]
    pub trial_days: Option<u32>,
}

/// What `TierDefinition::parse` accepts as features: slugs (repeats are dropped).
fn features_schema() -> Array {
    ArrayBuilder::new()
        .items(slug_schema())
        .description(Some("Feature names, each a slug"))
        .build()
}

fn optional_features_schema() -> Schema {
    or_null(features_schema())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TierView {
    pub key: String,
    pub name: String,
    pub price: Price,
    pub caps: BTreeMap<String, CapSpec>,
    pub features: Vec<String>,
    pub default: bool,
    pub trial_days: u32,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Tier> for TierView {
    fn from(tier: &Tier) -> Self {
        TierView {
            key: tier.key.to_string(),
            name: tier.definition.name.clone(),
            price: tier.definition.price.clone(),
            caps: tier.definition.caps.clone(),
            features: tier.definition.features.clone(),
            default: tier.is_default,
            trial_days: tier.definition.trial_days,
            created_at: rfc3339(tier.created_at),
            updated_at: rfc3339(tier.updated_at),
        }
    }
}

impl TierDefinition {
    /// Validates every field; caps' meters are resolved later by `Tier::build`.
    pub fn parse(
        name: &str,
        price: Price,
        caps: BTreeMap<String, CapSpec>,
        features: Vec<String>,
        trial_days: u32,
    ) -> Result<TierDefinition, ApiError> {
        let name = parse_name("name", name)?;
        if price.amount < 0 {
            return Err(ApiError::invalid(
                "invalid_price",
                "price.amount must not be negative",
            ));
        }
        let currency = price.currency.to_ascii_lowercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(ApiError::invalid(
                "invalid_price",
                "price.currency must be a three-letter ISO 4217 code",
            ));
        }
        for (meter, cap) in &caps {
            if cap.warn_at.micros() > SCALE {
                return Err(ApiError::invalid(
                    "invalid_cap",
                    format!("caps.{meter}.warn_at must be a fraction between 0 and 1"),
                ));
            }
            if cap.overage_price.is_some() {
                if cap.on_exceed != OnExceed::Overage {
                    return Err(ApiError::invalid(
                        "invalid_cap",
                        format!("caps.{meter}.overage_price needs `on_exceed: overage`"),
                    ));
                }
                if cap.limit.micros() % SCALE != 0 {
                    return Err(ApiError::invalid(
                        "invalid_cap",
                        format!(
                            "caps.{meter}.limit must be a whole number when overage is billed \
                             (Stripe bills whole units)"
                        ),
                    ));
                }
            }
        }
        if trial_days > MAX_TRIAL_DAYS {
            return Err(ApiError::invalid(
                "invalid_trial_days",
                format!("trial_days must be between 0 and {MAX_TRIAL_DAYS}"),
            ));
        }
        let mut clean_features = Vec::with_capacity(features.len());
        for feature in features {
            parse_slug("each feature", &feature)?;
            if !clean_features.contains(&feature) {
                clean_features.push(feature);
            }
        }
        Ok(TierDefinition {
            name,
            price: Price { currency, ..price },
            caps,
            features: clean_features,
            trial_days,
        })
    }
}
