//! Meters: what is counted. A meter's key is a slug unique within its creator; meters are
//! never renumbered, so a meter's position is a stable index for counters and caps.
//! Deleting a meter leaves a tombstone at its position until the next start (see
//! `tenants::config`); its `serial` tells its usage apart from that of a later meter with
//! the same key.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, Schema};

use crate::error::ApiError;
use crate::schema::{or_null, text, NO_CONTROL};
use crate::usage::decide::Aggregation;
use crate::usage::period::{rfc3339, Reset};

/// A meter's index in its creator's meter list.
pub type MeterId = u32;

#[derive(Debug, Clone)]
pub struct Meter {
    pub key: Arc<str>,
    pub name: String,
    pub unit: String,
    pub aggregation: Aggregation,
    pub reset: Reset,
    pub created_at: i64,
    /// This incarnation of the key (random; 0 for meters made before deletes existed).
    pub serial: i64,
}

/// A new incarnation's serial: random and never 0.
pub fn new_serial() -> i64 {
    use rand::Rng;
    rand::rng().random_range(1..i64::MAX)
}

/// `POST /v1/meters`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMeter {
    #[schema(schema_with = slug_schema)]
    pub key: String,
    /// Default: the key.
    #[schema(schema_with = optional_name_schema)]
    pub name: Option<String>,
    /// Default: `units`.
    #[schema(schema_with = optional_name_schema)]
    pub unit: Option<String>,
    pub aggregation: Aggregation,
    pub reset: Reset,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeterView {
    pub key: String,
    pub name: String,
    pub unit: String,
    pub aggregation: Aggregation,
    pub reset: Reset,
    pub created_at: String,
}

impl From<&Meter> for MeterView {
    fn from(meter: &Meter) -> Self {
        MeterView {
            key: meter.key.to_string(),
            name: meter.name.clone(),
            unit: meter.unit.clone(),
            aggregation: meter.aggregation,
            reset: meter.reset,
            created_at: rfc3339(meter.created_at),
        }
    }
}

/// Longest slug, in characters (all ASCII).
pub const MAX_SLUG_CHARS: usize = 64;
/// Longest name or unit, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Checks a slug used as a meter or tier key.
pub fn parse_slug(what: &str, text: &str) -> Result<Arc<str>, ApiError> {
    let valid = (1..=MAX_SLUG_CHARS).contains(&text.len())
        && text.as_bytes()[0].is_ascii_alphanumeric()
        && text.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        });
    if valid {
        Ok(Arc::from(text))
    } else {
        Err(ApiError::invalid(
            "invalid_slug",
            format!(
                "{what} must be 1–64 of a-z, 0-9, '_', '-', '.', starting with a letter or digit"
            ),
        ))
    }
}

/// What `parse_slug` accepts.
pub fn slug_schema() -> Object {
    text(
        1,
        MAX_SLUG_CHARS,
        "^[a-z0-9][a-z0-9_.-]*$",
        "Slug: 1–64 of `a-z 0-9 _ - .`, starting with a letter or digit",
    )
}

/// Checks a free-text name (at most 200 characters, no control characters).
pub fn parse_name(what: &str, text: &str) -> Result<String, ApiError> {
    if text.chars().count() > MAX_NAME_CHARS || text.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_value",
            format!("{what} must be at most 200 characters, without control characters"),
        ));
    }
    Ok(text.to_string())
}

/// What `parse_name` accepts.
pub fn name_schema() -> Object {
    text(
        0,
        MAX_NAME_CHARS,
        NO_CONTROL,
        "At most 200 characters, no control characters",
    )
}

pub fn optional_name_schema() -> Schema {
    or_null(name_schema())
}

impl NewMeter {
    pub fn parse(self, now: i64) -> Result<Meter, ApiError> {
        let key = parse_slug("key", &self.key)?;
        Ok(Meter {
            name: parse_name("name", self.name.as_deref().unwrap_or(&self.key))?,
            unit: parse_name("unit", self.unit.as_deref().unwrap_or("units"))?,
            key,
            aggregation: self.aggregation,
            reset: self.reset,
            created_at: now,
            serial: new_serial(),
        })
    }
}
