//! Usage events at the edge: the raw JSON shapes (borrowed from the request body, unknown
//! fields refused) and their parsing into `UsageEvent`, which carries only checked values.
//! Past this module no raw strings or floats travel.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::openapi::schema::{
    KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};

use crate::error::ApiError;
use crate::meters::model::MeterId;
use crate::schema::{is_invisible, or_null, text, ID_TEXT};
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
    /// The creator's own id for its customer.
    #[serde(borrow)]
    #[schema(schema_with = id_schema)]
    pub customer_id: Cow<'a, str>,
    /// Meter key.
    #[serde(borrow)]
    #[schema(schema_with = crate::meters::model::slug_schema)]
    pub meter: Cow<'a, str>,
    #[serde(default, borrow)]
    #[schema(schema_with = value_schema)]
    pub value: Option<&'a RawValue>,
    /// Retries with the same key are answered, not counted again.
    #[serde(default, borrow)]
    #[schema(schema_with = optional_id_schema)]
    pub idempotency_key: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    #[schema(schema_with = timestamp_schema)]
    pub timestamp: Option<&'a RawValue>,
}

/// `POST /v1/events` body: one event, or `{"events": [...]}`. Parsed as one shape so that
/// unknown fields are refused in either form; its schema is the two shapes (`oneOf`).
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

impl utoipa::PartialSchema for RawEventsBody<'_> {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, OneOfBuilder};
        use utoipa::ToSchema;
        let event = || Ref::from_schema_name(RawEvent::name());
        let batch = ObjectBuilder::new()
            .title(Some("EventBatch"))
            .property(
                "events",
                ArrayBuilder::new()
                    .items(event())
                    .min_items(Some(1))
                    .max_items(Some(MAX_BATCH)),
            )
            .required("events")
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
            .description(Some("A batch: 1 to 1,000 events, decided in order"));
        OneOfBuilder::new()
            .item(event())
            .item(batch)
            .description(Some("One event, or `{\"events\": [...]}`"))
            .into()
    }
}

impl utoipa::ToSchema for RawEventsBody<'_> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EventsBody")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push((RawEvent::name().into_owned(), RawEvent::schema()));
        RawEvent::schemas(schemas);
    }
}

/// `POST /v1/check` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCheck<'a> {
    #[serde(borrow)]
    #[schema(schema_with = id_schema)]
    pub customer_id: Cow<'a, str>,
    #[serde(borrow)]
    #[schema(schema_with = crate::meters::model::slug_schema)]
    pub meter: Cow<'a, str>,
    #[serde(default, borrow)]
    #[schema(schema_with = value_schema)]
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
/// refused (PostgreSQL cannot store NUL, and one such id must not fail a group commit), and
/// so are the invisible ones of `schema::ID_TEXT`. Ids are usually ASCII: they are checked
/// byte by byte then.
pub fn parse_id<'a>(field: &str, id: Cow<'a, str>) -> Result<Cow<'a, str>, ApiError> {
    let (chars, refused) = if id.is_ascii() {
        (id.len(), id.bytes().any(|b| b.is_ascii_control()))
    } else {
        let refused = id.chars().any(|c| c.is_control() || is_invisible(c));
        (id.chars().count(), refused)
    };
    if chars == 0 || chars > MAX_ID_CHARS {
        return Err(ApiError::invalid(
            "invalid_id",
            format!("{field} must be 1–{MAX_ID_CHARS} characters, got {chars}"),
        ));
    }
    if refused {
        return Err(ApiError::invalid(
            "invalid_id",
            format!(
                "{field} must not contain control characters or invisible ones \
                 (zero-width, direction marks, byte order mark)"
            ),
        ));
    }
    Ok(id)
}

/// What `parse_id` accepts.
pub fn id_schema() -> Object {
    text(
        1,
        MAX_ID_CHARS,
        ID_TEXT,
        "1–128 characters, no control or invisible characters (zero-width, direction marks, BOM)",
    )
}

pub fn optional_id_schema() -> Schema {
    or_null(id_schema())
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

/// What `parse_value` accepts.
fn value_schema() -> Schema {
    or_null(Quantity::input_schema(
        "Default 1. Non-negative decimal, at most 6 fractional digits, at most 10^12 \
         (ignored by `count` meters, but still checked)",
    ))
}

/// What `parse_timestamp` accepts: the window moves with the clock, so only the text says it.
fn timestamp_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::Array(vec![
            Type::String,
            Type::Integer,
            Type::Null,
        ]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some(
            "RFC 3339 text or integer Unix seconds; default now. From 35 days back to 5 \
             minutes ahead of the daemon's clock",
        ))
        .build()
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

/// The answer for one event or check. `customer_id` stays the first field: an erase finds
/// the stored answers about a customer by how they start (`answer_prefix`).
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

/// How every stored answer about `customer_id` starts (answers are kept as their JSON).
pub fn answer_prefix(customer_id: &str) -> String {
    let id = serde_json::to_string(customer_id).expect("a string always serializes");
    format!("{{\"customer_id\":{id},")
}

/// `{"results": [...]}` for a batch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchResults {
    /// One result per event, in order.
    pub results: Vec<EventResult>,
}

/// The answer of `POST /v1/events`: one result for one event, `{"results": [...]}` for a
/// batch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EventsAnswer {
    One(EventResult),
    Batch(BatchResults),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_answer_starts_with_its_customers_prefix() {
        for customer in ["alice", "a\"quote", "ünï"] {
            let result = EventResult {
                customer_id: Arc::from(customer),
                meter: Arc::from("calls"),
                decision: Decision::Allow,
                used: Quantity::ZERO,
                limit: None,
                remaining: None,
                overage: false,
                duplicate: false,
            };
            let stored = serde_json::to_string(&result).unwrap();
            assert!(stored.starts_with(&answer_prefix(customer)), "{stored}");
            assert!(!stored.starts_with(&answer_prefix("alic")));
        }
    }
}
