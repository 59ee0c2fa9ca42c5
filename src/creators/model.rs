//! The admin API's shapes.

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::Schema;

use crate::error::ApiError;
use crate::meters::model::{optional_name_schema, parse_name, slug_schema};
use crate::schema::{or_null, text};
use crate::store::CreatorRow;
use crate::tenants::registry::RateLimit;
use crate::usage::period::rfc3339;

/// `POST /v1/admin/creators`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCreator {
    /// Unique.
    #[schema(schema_with = slug_schema)]
    pub slug: String,
    /// Default: the slug.
    #[schema(schema_with = optional_name_schema)]
    pub name: Option<String>,
    #[schema(schema_with = optional_domain_schema)]
    pub custom_domain: Option<String>,
    /// Free-form JSON object for the embeds (colours, logo…).
    #[schema(value_type = Option<Object>)]
    pub branding: Option<serde_json::Value>,
    /// Per-key rate limit; none means unlimited.
    pub rate_limit: Option<RateLimit>,
}

/// Longest custom domain, in characters (all ASCII).
const MAX_DOMAIN_CHARS: usize = 253;

/// What `NewCreator::parse` accepts as a custom domain.
fn optional_domain_schema() -> Schema {
    or_null(text(
        1,
        MAX_DOMAIN_CHARS,
        r"^[A-Za-z0-9.-]*\.[A-Za-z0-9.-]*$",
        "A host name: `A-Z a-z 0-9 . -` with at least one dot, at most 253 characters",
    ))
}

/// `PATCH /v1/admin/creators/{slug}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatorPatch {
    /// The new per-key rate limit; `null` removes it.
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatorView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub custom_domain: Option<String>,
    #[schema(value_type = Object)]
    pub branding: serde_json::Value,
    pub stripe_account_id: Option<String>,
    pub rate_limit: Option<RateLimit>,
    pub created_at: String,
}

/// A new creator with its keys, which are shown this once only.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedCreator {
    #[serde(flatten)]
    pub creator: CreatorView,
    pub secret_key: String,
    pub publishable_key: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlatformStats {
    pub creators: i64,
    /// Customers declared with `PUT /v1/customers/{id}`.
    pub customers: i64,
    pub meters: i64,
    pub tiers: i64,
    /// Counters held in memory (customer × meter × open period).
    pub live_counters: usize,
    /// Whether the store takes writes now.
    pub store_up: bool,
}

impl CreatorView {
    pub fn from_row(row: &CreatorRow, rate_limit: Option<RateLimit>) -> Self {
        CreatorView {
            id: row.id.clone(),
            slug: row.slug.clone(),
            name: row.name.clone(),
            custom_domain: row.custom_domain.clone(),
            branding: serde_json::from_str(&row.branding).unwrap_or_default(),
            stripe_account_id: row.stripe_account_id.clone(),
            rate_limit,
            created_at: rfc3339(row.created_at),
        }
    }
}

impl NewCreator {
    /// Checks every field; the row gets `id` and `created_at`.
    pub fn parse(self, id: String, now: i64) -> Result<(CreatorRow, Option<RateLimit>), ApiError> {
        let slug = crate::meters::model::parse_slug("slug", &self.slug)?;
        let name = parse_name("name", self.name.as_deref().unwrap_or(&self.slug))?;
        if let Some(domain) = &self.custom_domain {
            let plausible = domain.len() <= MAX_DOMAIN_CHARS
                && domain.contains('.')
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !plausible {
                return Err(ApiError::invalid(
                    "invalid_domain",
                    "custom_domain is not a host name",
                ));
            }
        }
        let rate_limit = self.rate_limit.map(RateLimit::parse).transpose()?;
        let branding = match self.branding {
            None => serde_json::Value::Object(Default::default()),
            Some(value @ serde_json::Value::Object(_)) => value,
            Some(_) => {
                return Err(ApiError::invalid(
                    "invalid_branding",
                    "branding must be a JSON object",
                ))
            }
        };
        Ok((
            CreatorRow {
                id,
                slug: slug.to_string(),
                name,
                // Host names are case-insensitive: one spelling is kept.
                custom_domain: self.custom_domain.map(|d| d.to_ascii_lowercase()),
                branding: branding.to_string(),
                stripe_account_id: None,
                rate_limit_per_second: rate_limit.map(|r| i64::from(r.per_second)),
                rate_limit_burst: rate_limit.and_then(|r| r.burst).map(i64::from),
                created_at: now,
                allowed_origins: "[]".into(),
                portal_hidden_meters: "[]".into(),
            },
            rate_limit,
        ))
    }
}

/// `GET|PATCH /v1/creator`: the creator as it sees itself.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatorProfile {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub custom_domain: Option<String>,
    #[schema(value_type = Object)]
    pub branding: serde_json::Value,
    /// The origins widgets may be called from (`scheme://host[:port]`); empty: any.
    pub allowed_origins: Vec<String>,
    /// Meters the customer portal does not show, by key.
    pub portal_hidden_meters: Vec<String>,
}

fn optional_origins_schema() -> Schema {
    or_null(crate::embeds::origins::origins_schema())
}

/// `PATCH /v1/creator`: what a creator changes about itself.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// The origins widgets may be called from; `null` or absent: unchanged.
    #[schema(schema_with = optional_origins_schema)]
    pub allowed_origins: Option<Vec<String>>,
    /// Meters the customer portal does not show, by key (at most 100); `null` or absent:
    /// unchanged.
    #[schema(schema_with = optional_meter_keys_schema)]
    pub portal_hidden_meters: Option<Vec<String>>,
}

fn optional_meter_keys_schema() -> Schema {
    let mut keys = utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::meters::model::slug_schema())
        .max_items(Some(100))
        .build();
    keys.description = Some("Meter keys".into());
    or_null(keys)
}
