//! Experiments: A/B tests over versions of one embed. The variants and their weights are
//! fixed when the experiment is made (a change means stopping it and starting another),
//! so a visitor's variant never moves while it runs. Weights are fractions that sum to 1;
//! the first variant is the control.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::embeds::model::Embed;
use crate::error::ApiError;
use crate::meters::model::{parse_slug, slug_schema};
use crate::usage::model::{optional_id_schema, parse_id};

/// Most variants in one experiment.
pub const MAX_VARIANTS: usize = 8;
/// How far the weights' sum may be from 1 (they are decimal fractions in floating point).
const WEIGHT_SUM_TOLERANCE: f64 = 1e-6;
/// Visitors every variant needs before the results are `ready`.
pub const READY_VISITORS: u64 = 100;
/// Below this, the visitors' split is too unlikely under the weights: a sample ratio
/// mismatch (a broken assignment, a bot, a cache serving one variant).
pub const SRM_ALERT_BELOW: f64 = 0.001;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ExperimentStatus)]
pub enum Status {
    Draft,
    Running,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "draft" => Some(Status::Draft),
            "running" => Some(Status::Running),
            "stopped" => Some(Status::Stopped),
            _ => None,
        }
    }
}

/// What counts as a conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// A Stripe Checkout from the widget completed (`checkout.session.completed`).
    CheckoutCompleted,
    /// A conversion the creator reports (`POST /v1/experiments/{key}/conversions`).
    Custom(Arc<str>),
}

pub const CHECKOUT_COMPLETED: &str = "checkout_completed";

impl Goal {
    pub fn parse(text: Option<&str>) -> Result<Goal, ApiError> {
        match text {
            None | Some(CHECKOUT_COMPLETED) => Ok(Goal::CheckoutCompleted),
            Some(name) => Ok(Goal::Custom(parse_slug("goal", name)?)),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Goal::CheckoutCompleted => CHECKOUT_COMPLETED,
            Goal::Custom(name) => name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[schema(schema_with = slug_schema)]
    pub key: String,
    /// A version of the experiment's embed.
    #[serde(deserialize_with = "crate::schema::whole_number")]
    #[schema(minimum = 1)]
    pub version: i64,
    /// This variant's share of visitors, a fraction; the weights sum to 1.
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub weight: f64,
}

/// `POST /v1/experiments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "headline-test", "embed": "pricing",
    "variants": [{"key": "control", "version": 1, "weight": 0.5},
                 {"key": "bold", "version": 2, "weight": 0.5}]}))]
pub struct NewExperiment {
    #[schema(schema_with = slug_schema)]
    pub key: String,
    /// The embed whose versions the variants show.
    #[schema(schema_with = slug_schema)]
    pub embed: String,
    /// 2 to 8; the first is the control.
    #[schema(min_items = 2, max_items = 8)]
    pub variants: Vec<Variant>,
    /// `checkout_completed` (the default), or the name of a custom conversion.
    #[schema(schema_with = optional_goal_schema)]
    pub goal: Option<String>,
}

fn optional_goal_schema() -> utoipa::openapi::schema::Schema {
    crate::schema::or_null(slug_schema())
}

/// A checked `NewExperiment`.
#[derive(Debug, Clone)]
pub struct ExperimentPlan {
    pub key: Arc<str>,
    pub embed: Arc<str>,
    pub variants: Vec<Variant>,
    pub goal: Goal,
}

impl NewExperiment {
    /// Checks the experiment against its embed's versions.
    pub fn parse(self, embed: &Embed) -> Result<ExperimentPlan, ApiError> {
        let key = parse_slug("key", &self.key)?;
        let count = self.variants.len();
        if !(2..=MAX_VARIANTS).contains(&count) {
            return Err(ApiError::invalid(
                "invalid_variants",
                format!("an experiment has 2–{MAX_VARIANTS} variants, got {count}"),
            ));
        }
        let mut keys = BTreeSet::new();
        for variant in &self.variants {
            parse_slug("variants[].key", &variant.key)?;
            if !keys.insert(variant.key.as_str()) {
                return Err(ApiError::invalid(
                    "invalid_variants",
                    format!("variant `{}` is named twice", variant.key),
                ));
            }
            if embed.version(variant.version).is_none() {
                return Err(ApiError::invalid(
                    "unknown_version",
                    format!(
                        "variant `{}`: embed `{}` has no version {}",
                        variant.key, embed.key, variant.version
                    ),
                ));
            }
            if !(variant.weight > 0.0 && variant.weight <= 1.0) {
                return Err(invalid_weights("each weight must be above 0 and at most 1"));
            }
        }
        let sum: f64 = self.variants.iter().map(|v| v.weight).sum();
        if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
            return Err(invalid_weights(&format!("the weights sum to {sum}, not 1")));
        }
        Ok(ExperimentPlan {
            key,
            embed: embed.key.clone(),
            variants: self.variants,
            goal: Goal::parse(self.goal.as_deref())?,
        })
    }
}

fn invalid_weights(why: &str) -> ApiError {
    ApiError::invalid("invalid_weights", why)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentView {
    pub key: String,
    pub embed: String,
    pub variants: Vec<Variant>,
    pub goal: String,
    pub status: Status,
    pub created_at: String,
    pub started_at: Option<String>,
    pub stopped_at: Option<String>,
}

/// `POST /v1/experiments/{key}/conversions`: who converted (exactly one of `visitor_id`
/// and `customer_id`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversion {
    /// The anonymous visitor id the widget used.
    #[schema(schema_with = optional_id_schema)]
    pub visitor_id: Option<String>,
    /// The customer, when the widget showed it with a customer token.
    #[schema(schema_with = optional_id_schema)]
    pub customer_id: Option<String>,
    /// Revenue from this conversion, in the minor units of the creator's currency.
    #[serde(default, deserialize_with = "crate::schema::optional_whole_number")]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub revenue: Option<i64>,
    /// Your id for this conversion: the same id counts once (a retry is safe). Default:
    /// each request is a new conversion.
    #[schema(schema_with = optional_id_schema)]
    pub conversion_id: Option<String>,
}

/// Largest revenue of one conversion (minor units): far above any sale, far below overflow.
pub const MAX_REVENUE: i64 = 1_000_000_000_000;

/// Who a visitor is to an experiment: `v:<visitor id>` or `c:<customer id>`, so that an
/// anonymous id and a customer id that happen to be equal stay two visitors.
pub fn visitor_identity(visitor_id: &str) -> Arc<str> {
    Arc::from(format!("v:{visitor_id}"))
}

pub fn customer_identity(customer_id: &str) -> Arc<str> {
    Arc::from(format!("c:{customer_id}"))
}

/// An identity as analytics names it: (`customer_id`, the id) for `c:<id>`, else
/// (`visitor`, the browser's visitor id).
pub fn identity_field(identity: &str) -> (&'static str, &str) {
    match identity.split_once(':') {
        Some(("c", id)) => ("customer_id", id),
        Some((_, id)) => ("visitor", id),
        None => ("visitor", identity),
    }
}

impl NewConversion {
    /// The converting visitor's identity, the revenue and the conversion id, checked.
    pub fn parse(self) -> Result<(Arc<str>, i64, Option<String>), ApiError> {
        let identity = match (&self.visitor_id, &self.customer_id) {
            (Some(visitor), None) => visitor_identity(&parse_id("visitor_id", visitor.into())?),
            (None, Some(customer)) => customer_identity(&parse_id("customer_id", customer.into())?),
            _ => {
                return Err(ApiError::invalid(
                    "invalid_conversion",
                    "give exactly one of visitor_id and customer_id",
                ))
            }
        };
        let revenue = self.revenue.unwrap_or(0);
        if !(0..=MAX_REVENUE).contains(&revenue) {
            return Err(ApiError::invalid(
                "invalid_revenue",
                format!("revenue must be 0–{MAX_REVENUE} minor units"),
            ));
        }
        if let Some(id) = &self.conversion_id {
            parse_id("conversion_id", id.into())?;
        }
        Ok((identity, revenue, self.conversion_id))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversionReceipt {
    /// Whether this conversion was counted now (false: its `conversion_id` was counted
    /// before).
    pub counted: bool,
    pub variant: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantResult {
    pub key: String,
    /// Visitors exposed to the variant, each once.
    pub visitors: u64,
    /// Visitors who converted at least once.
    pub conversions: u64,
    /// conversions / visitors (0 without visitors).
    pub conversion_rate: f64,
    /// Sum of the conversions' revenue, in minor units.
    pub revenue: i64,
    /// revenue / visitors, in minor units (0 without visitors).
    pub revenue_per_visitor: f64,
    /// P(this variant's rate > the control's) under Beta(1 + conversions, 1 + visitors −
    /// conversions) posteriors; null for the control.
    pub chance_to_beat_control: Option<f64>,
    /// Two-sided pooled two-proportion z-test against the control; null for the control
    /// and while either has no visitors.
    pub p_value: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Results {
    pub status: Status,
    pub variants: Vec<VariantResult>,
    /// Chi-square goodness of fit of the visitors to the weights.
    pub srm_p_value: f64,
    /// `srm_p_value` below 0.001: the split is off; distrust the results.
    pub srm_alert: bool,
    /// Every variant has at least 100 visitors.
    pub ready: bool,
}

/// `/v1/experiments/{key}` path.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ExperimentPath {
    #[param(schema_with = slug_schema)]
    pub key: String,
}
