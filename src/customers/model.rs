//! Customers: the creator's own end users, named by the creator's id string, each on a
//! tier (or on the default tier when never assigned).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::usage::quantity::Quantity;

/// `PUT /v1/customers/{customer_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCustomer {
    /// Tier key.
    pub tier: String,
    pub email: Option<String>,
    /// The customer's id in the creator's Stripe account (`cus_…`).
    pub stripe_customer_id: Option<String>,
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
            let plausible = email.len() <= 254
                && !email.chars().any(char::is_control)
                && email
                    .split_once('@')
                    .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
            if !plausible {
                return Err(ApiError::invalid(
                    "invalid_email",
                    "email is not an address",
                ));
            }
        }
        if let Some(stripe_id) = &body.stripe_customer_id {
            if !stripe_id.starts_with("cus_")
                || stripe_id.len() > 255
                || !stripe_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
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
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Entitlement {
    pub feature: String,
    pub entitled: bool,
}
