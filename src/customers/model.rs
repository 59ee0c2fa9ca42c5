//! Customers: the creator's own end users, named by the creator's id string, each on a
//! tier (or on the default tier when never assigned).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, Schema};

use crate::error::ApiError;
use crate::schema::{self, or_null};
use crate::usage::quantity::Quantity;

/// `PUT /v1/customers/{customer_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCustomer {
    /// Tier key.
    #[schema(schema_with = crate::meters::model::slug_schema)]
    pub tier: String,
    #[schema(schema_with = optional_email_schema)]
    pub email: Option<String>,
    /// The customer's id in the creator's Stripe account (`cus_…`). With billing on,
    /// leaving it out keeps the one the customer has (Staryer makes one at its first
    /// checkout, or when a customer with an email is put on a paid tier).
    #[schema(schema_with = optional_stripe_customer_id_schema)]
    pub stripe_customer_id: Option<String>,
}

/// Longest email address, in characters.
const MAX_EMAIL_CHARS: usize = 254;
/// Longest Stripe object id, in characters (all ASCII).
const MAX_STRIPE_ID_CHARS: usize = 255;

/// Checks an email address loosely (Stripe checks it for real): something, `@`, and a
/// domain with a dot, without control characters.
pub fn parse_email(email: &str) -> Result<(), ApiError> {
    let plausible = email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(char::is_control)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if plausible {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "invalid_email",
            "email is not an address",
        ))
    }
}

/// What `parse_email` accepts.
pub fn email_schema() -> Object {
    let text = r"[^\x00-\x1F\x7F-\x9F]";
    schema::text(
        3,
        MAX_EMAIL_CHARS,
        &format!(r"^[^@\x00-\x1F\x7F-\x9F]+@{text}*\.{text}*$"),
        "An email address, at most 254 characters",
    )
}

/// What `parse_email` accepts, or null.
pub fn optional_email_schema() -> Schema {
    or_null(email_schema())
}

/// Whether `id` is a Stripe object id with this prefix (`cus_`, `acct_`).
pub fn is_stripe_id(id: &str, prefix: &str) -> bool {
    id.starts_with(prefix)
        && id.len() <= MAX_STRIPE_ID_CHARS
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What `is_stripe_id` accepts for this prefix.
pub fn stripe_id_schema(prefix: &str, description: &str) -> Object {
    schema::text(
        prefix.len(),
        MAX_STRIPE_ID_CHARS,
        &format!("^{prefix}[A-Za-z0-9_]*$"),
        description,
    )
}

fn optional_stripe_customer_id_schema() -> Schema {
    or_null(stripe_id_schema(
        "cus_",
        "The customer's id in the creator's Stripe account (`cus_…`)",
    ))
}

/// A checked `PutCustomer` for one customer id.
#[derive(Debug, Clone)]
pub struct CustomerUpdate {
    pub id: Arc<str>,
    /// `None` puts the customer back on the default tier (a cancelled subscription).
    pub tier: Option<Arc<str>>,
    pub email: Option<String>,
    pub stripe_customer_id: Option<String>,
}

impl CustomerUpdate {
    pub fn parse(id: Arc<str>, body: PutCustomer) -> Result<Self, ApiError> {
        if let Some(email) = &body.email {
            parse_email(email)?;
        }
        if let Some(stripe_id) = &body.stripe_customer_id {
            if !is_stripe_id(stripe_id, "cus_") {
                return Err(ApiError::invalid(
                    "invalid_stripe_customer_id",
                    "stripe_customer_id must be a Stripe customer id (cus_…)",
                ));
            }
        }
        Ok(CustomerUpdate {
            id,
            tier: Some(Arc::from(body.tier.as_str())),
            email: body.email,
            stripe_customer_id: body.stripe_customer_id,
        })
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Customer {
    pub customer_id: String,
    pub tier: Option<String>,
    /// When the current tier was assigned: the billing-cycle anchor.
    pub assigned_at: Option<String>,
    pub email: Option<String>,
    pub stripe_customer_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeterUsage {
    pub meter: String,
    pub used: Quantity,
    pub limit: Option<Quantity>,
    pub remaining: Option<Quantity>,
    /// RFC 3339.
    pub period_start: String,
    /// RFC 3339; null for a meter that never resets.
    pub period_end: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub customer_id: String,
    /// The tier in force (the default tier when none is assigned), or null.
    pub tier: Option<String>,
    pub meters: Vec<MeterUsage>,
    /// With billing on, a customer not in good standing: `past_due` (a payment failed;
    /// the tier holds during the grace period) or `grace_ended` (on the default tier until
    /// a payment goes through). Absent in good standing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_status: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Entitlement {
    pub feature: String,
    pub entitled: bool,
}
