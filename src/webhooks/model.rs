//! Webhook endpoints as the API takes and shows them.

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, Schema, Type};

use crate::error::ApiError;
use crate::outbox::model::WEBHOOK_EVENT_TYPES;
use crate::schema::{or_null, text, url_schema, NO_CONTROL};
use crate::store::outbox::EndpointRow;
use crate::usage::period::rfc3339;

/// Endpoints one creator may have.
pub const MAX_ENDPOINTS: usize = 20;

/// `POST /v1/webhook_endpoints`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// Where deliveries are POSTed: http(s), not on a loopback or private network unless
    /// the operator allows it.
    #[schema(schema_with = url_schema)]
    pub url: String,
    /// The event types sent to it.
    #[schema(schema_with = events_schema)]
    pub events: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = description_schema)]
    pub description: String,
}

fn events_schema() -> Array {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(WEBHOOK_EVENT_TYPES.iter().copied())),
        )
        .min_items(Some(1))
        .description(Some("Event types, at least one"))
        .build()
}

fn description_schema() -> Object {
    text(
        0,
        200,
        NO_CONTROL,
        "A note for the creator, one line, up to 200 characters",
    )
}

fn optional_url_schema() -> Schema {
    or_null(url_schema())
}

fn optional_events_schema() -> Schema {
    or_null(events_schema())
}

fn optional_description_schema() -> Schema {
    or_null(description_schema())
}

/// `PATCH /v1/webhook_endpoints/{id}`: what is given changes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    #[schema(schema_with = optional_url_schema)]
    pub url: Option<String>,
    #[schema(schema_with = optional_events_schema)]
    pub events: Option<Vec<String>>,
    #[schema(schema_with = optional_description_schema)]
    pub description: Option<String>,
    /// `true` enables a disabled endpoint again (and forgets its failures).
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    /// `we_…`.
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// Why it was disabled, when it was.
    pub disabled_reason: Option<String>,
    /// Deliveries have failed since then, with no success in between.
    pub failing_since: Option<String>,
    pub created_at: String,
}

/// The endpoint just made, with its signing secret: shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: verify each delivery's `webhook-signature` with it. Kept sealed; never
    /// shown again.
    pub secret: String,
}

impl EndpointView {
    pub fn of(row: &EndpointRow) -> EndpointView {
        EndpointView {
            id: row.id.clone(),
            url: row.url.clone(),
            events: serde_json::from_str(&row.events).unwrap_or_default(),
            description: row.description.clone(),
            enabled: row.enabled != 0,
            disabled_reason: row.disabled_reason.clone(),
            failing_since: row.failing_since.map(rfc3339),
            created_at: rfc3339(row.created_at),
        }
    }
}

/// A non-empty list of known event types, each once.
pub fn parse_events(events: &[String]) -> Result<Vec<String>, ApiError> {
    if events.is_empty() {
        return Err(ApiError::invalid(
            "invalid_events",
            "events lists at least one event type",
        ));
    }
    let mut parsed: Vec<String> = Vec::with_capacity(events.len());
    for event in events {
        if !WEBHOOK_EVENT_TYPES.contains(&event.as_str()) {
            return Err(ApiError::invalid(
                "invalid_events",
                format!(
                    "`{}` is no event type; the types are {}",
                    crate::schema::printable(event),
                    WEBHOOK_EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !parsed.contains(event) {
            parsed.push(event.clone());
        }
    }
    Ok(parsed)
}

pub fn parse_description(description: &str) -> Result<String, ApiError> {
    if description.chars().count() > 200 || description.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_description",
            "description is at most 200 characters, one line",
        ));
    }
    Ok(description.to_string())
}
