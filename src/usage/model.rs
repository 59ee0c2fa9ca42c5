//! Usage events at the edge: the raw JSON shapes (borrowed from the request body, unknown
//! fields refused) and their parsing into `UsageEvent`, which carries only checked values.
//! Past this module no raw strings or floats travel.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::ApiError;
use crate::meters::model::MeterId;
use crate::tenants::config::TenantConfig;
use crate::usage::decide::Decision;
use crate::usage::quantity::{Quantity, QuantityError};

/// Most events one request may carry.
pub const MAX_BATCH: usize = 1_000;
/// Longest customer id and idempotency key, in characters.
pub const MAX_ID_CHARS: usize = 128;
/// Oldest accepted timestamp: 35 days back (Stripe's meter window).
pub const MAX_PAST_SECS: i64 = 35 * 86_400;
/// Latest accepted timestamp: 5 minutes ahead.
pub const MAX_FUTURE_SECS: i64 = 300;

/// One event as posted.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEvent<'a> {
    /// The creator's own id for its customer, 1–128 characters.
    #[serde(borrow)]
    #[schema(value_type = String)]
    pub customer_id: Cow<'a, str>,
    /// Meter key.
    #[serde(borrow)]
    #[schema(value_type = String)]
    pub meter: Cow<'a, str>,
    /// Non-negative decimal, at most 6 fractional digits; default 1.
    #[serde(default, borrow)]
    #[schema(value_type = Option<f64>)]
    pub value: Option<&'a RawValue>,
    /// Retries with the same key are answered, not counted again (1–128 characters).
    #[serde(default, borrow)]
    #[schema(value_type = Option<String>)]
    pub idempotency_key: Option<Cow<'a, str>>,
    /// RFC 3339 text or Unix seconds; default now. From 35 days back to 5 minutes ahead.
    #[serde(default, borrow)]
    #[schema(value_type = Option<String>)]
    pub timestamp: Option<&'a RawValue>,
}

/// `POST /v1/events` body: one event, or `{"events": [...]}`. Parsed as one shape so that
/// unknown fields are refused in either form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEventsBody<'a> {
    #[serde(default, borrow)]
    pub events: Option<Vec<RawEvent<'a>>>,
    #[serde(default, borrow)]
    pub customer_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub meter: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub value: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub idempotency_key: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub timestamp: Option<&'a RawValue>,
}

/// A batch for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct EventBatch<'a> {
    #[schema(max_items = 1000)]
    events: Vec<RawEvent<'a>>,
}

/// `POST /v1/check` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCheck<'a> {
    #[serde(borrow)]
    #[schema(value_type = String)]
    pub customer_id: Cow<'a, str>,
    #[serde(borrow)]
    #[schema(value_type = String)]
    pub meter: Cow<'a, str>,
    #[serde(default, borrow)]
    #[schema(value_type = Option<f64>)]
    pub value: Option<&'a RawValue>,
}

/// The events of one request, single or batch.
pub enum EventsRequest<'a> {
    Single(RawEvent<'a>),
    Batch(Vec<RawEvent<'a>>),
}

impl<'a> RawEventsBody<'a> {
    pub fn into_request(self) -> Result<EventsRequest<'a>, ApiError> {
        let single_fields = self.customer_id.is_some()
            || self.meter.is_some()
            || self.value.is_some()
            || self.idempotency_key.is_some()
            || self.timestamp.is_some();
        match (self.events, single_fields) {
            (Some(_), true) => Err(ApiError::invalid(
                "invalid_body",
                "send either one event or {\"events\": [...]}, not both",
            )),
            (Some(events), false) => {
                if events.is_empty() {
                    Err(ApiError::invalid("empty_batch", "events must not be empty"))
                } else if events.len() > MAX_BATCH {
                    Err(ApiError::invalid(
                        "batch_too_large",
                        format!(
                            "at most {MAX_BATCH} events per request, got {}",
                            events.len()
                        ),
                    ))
                } else {
                    Ok(EventsRequest::Batch(events))
                }
            }
            (None, _) => {
                let missing = |field: &str| {
                    ApiError::invalid("missing_field", format!("missing field `{field}`"))
                };
                Ok(EventsRequest::Single(RawEvent {
                    customer_id: self.customer_id.ok_or_else(|| missing("customer_id"))?,
                    meter: self.meter.ok_or_else(|| missing("meter"))?,
                    value: self.value,
                    idempotency_key: self.idempotency_key,
                    timestamp: self.timestamp,
                }))
            }
        }
    }
}

/// An event whose every field is checked and whose meter is resolved.
#[derive(Debug, Clone)]
pub struct UsageEvent<'a> {
    pub customer_id: Cow<'a, str>,
    pub meter: MeterId,
    pub value: Quantity,
    pub idempotency_key: Option<Cow<'a, str>>,
    /// Unix seconds.
    pub at: i64,
}

impl<'a> UsageEvent<'a> {
    pub fn parse(raw: RawEvent<'a>, config: &TenantConfig, now: i64) -> Result<Self, ApiError> {
        let customer_id = parse_id("customer_id", raw.customer_id)?;
        let meter = resolve_meter(config, &raw.meter)?;
        let value = parse_value(raw.value)?;
        let idempotency_key = raw
            .idempotency_key
            .map(|key| parse_id("idempotency_key", key))
            .transpose()?;
        let at = match raw.timestamp {
            None => now,
            Some(text) => parse_timestamp(text.get(), now)?,
        };
        Ok(UsageEvent {
            customer_id,
            meter,
            value,
            idempotency_key,
            at,
        })
    }
}

/// A check: an event that is decided but never counted.
pub struct CheckQuery<'a> {
    pub customer_id: Cow<'a, str>,
    pub meter: MeterId,
    pub value: Quantity,
}

impl<'a> CheckQuery<'a> {
    pub fn parse(raw: RawCheck<'a>, config: &TenantConfig) -> Result<Self, ApiError> {
        Ok(CheckQuery {
            customer_id: parse_id("customer_id", raw.customer_id)?,
            meter: resolve_meter(config, &raw.meter)?,
            value: parse_value(raw.value)?,
        })
    }
}

/// Checks a 1–128 character id (customer ids, idempotency keys). Control characters are
/// refused: PostgreSQL cannot store NUL, and one such id must not fail a group commit.
pub fn parse_id<'a>(field: &str, id: Cow<'a, str>) -> Result<Cow<'a, str>, ApiError> {
    let chars = id.chars().count();
    if chars == 0 || chars > MAX_ID_CHARS {
        return Err(ApiError::invalid(
            "invalid_id",
            format!("{field} must be 1–{MAX_ID_CHARS} characters, got {chars}"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_id",
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(id)
}

fn resolve_meter(config: &TenantConfig, key: &str) -> Result<MeterId, ApiError> {
    config
        .meter_id(key)
        .ok_or_else(|| ApiError::not_found("meter_not_found", format!("no meter `{key}`")))
}

fn parse_value(raw: Option<&RawValue>) -> Result<Quantity, ApiError> {
    match raw {
        None => Ok(Quantity::ONE),
        Some(text) => Quantity::parse_json_number(text.get()).map_err(|err| {
            let code = match err {
                QuantityError::NotANumber => "invalid_value",
                QuantityError::Negative => "negative_value",
                QuantityError::TooPrecise => "too_precise",
                QuantityError::TooLarge => "value_too_large",
            };
            ApiError::invalid(code, format!("value {err}"))
        }),
    }
}

/// RFC 3339 text or integer Unix seconds, within the accepted window.
fn parse_timestamp(text: &str, now: i64) -> Result<i64, ApiError> {
    let invalid = || {
        ApiError::invalid(
            "invalid_timestamp",
            "timestamp must be RFC 3339 text (2026-01-31T12:00:00Z) or integer Unix seconds",
        )
    };
    let at = if text.starts_with('"') {
        let text: Cow<str> = serde_json::from_str(text).map_err(|_| invalid())?;
        chrono::DateTime::parse_from_rfc3339(&text)
            .map_err(|_| invalid())?
            .timestamp()
    } else {
        text.parse::<i64>().map_err(|_| invalid())?
    };
    if at < now - MAX_PAST_SECS || at > now + MAX_FUTURE_SECS {
        return Err(ApiError::invalid(
            "timestamp_out_of_range",
            "timestamp must be within 35 days back and 5 minutes ahead",
        ));
    }
    Ok(at)
}

/// The answer for one event or check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventResult {
    #[schema(value_type = String)]
    pub customer_id: Arc<str>,
    #[schema(value_type = String)]
    pub meter: Arc<str>,
    pub decision: Decision,
    /// Usage in the event's period, including the event when it was counted.
    pub used: Quantity,
    /// The cap, or null when the meter is not capped for the customer's tier.
    pub limit: Option<Quantity>,
    pub remaining: Option<Quantity>,
    /// Counted past the limit on an `overage` cap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overage: bool,
    /// A retry of an idempotency key already seen: this repeats the first answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// `{"results": [...]}` for a batch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchResults {
    pub results: Vec<EventResult>,
}
