//! What the outbox carries: the event types the creator's world is told, the integrations
//! that tell it, and how an event is made from its cause.

use rand::distr::{Alphanumeric, SampleString};
use serde_json::Value;

use crate::store::outbox::Announcement;

/// An outbox id: a prefix and 24 random letters and digits (`evt_…`, `msg_…`, `we_…`).
pub fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        Alphanumeric.sample_string(&mut rand::rng(), 24)
    )
}

/// An event for the outbox, keyed by its cause: a second event with the same cause is
/// dropped when written, however it came about (a retry, a replay, a restart).
pub fn announcement(
    creator_id: &str,
    cause: String,
    event_type: &str,
    data: Value,
    occurred_at: i64,
) -> Announcement {
    Announcement {
        id: new_id("evt"),
        creator_id: creator_id.to_string(),
        cause,
        event_type: event_type.to_string(),
        data: data.to_string(),
        occurred_at,
    }
}

/// The event types, as webhooks, notices and analytics name them.
pub const USAGE_WARNING: &str = "usage.warning";
pub const USAGE_LIMIT_REACHED: &str = "usage.limit_reached";
pub const USAGE_OVERAGE_STARTED: &str = "usage.overage_started";
pub const TIER_CHANGED: &str = "customer.tier_changed";
pub const SUBSCRIPTION_UPDATED: &str = "subscription.updated";
pub const PAYMENT_FAILED: &str = "invoice.payment_failed";
pub const SRM_DETECTED: &str = "experiment.srm_detected";

/// The event types webhook endpoints subscribe to (SPEC: outgoing webhooks).
pub const WEBHOOK_EVENT_TYPES: &[&str] = &[
    USAGE_WARNING,
    USAGE_LIMIT_REACHED,
    USAGE_OVERAGE_STARTED,
    TIER_CHANGED,
    SUBSCRIPTION_UPDATED,
    PAYMENT_FAILED,
    SRM_DETECTED,
];

/// Events told only to the creator by email: a customer's grace period ended unpaid, a
/// webhook endpoint was disabled.
pub const GRACE_ENDED: &str = "billing.grace_ended";
pub const ENDPOINT_DISABLED: &str = "webhook_endpoint.disabled";

/// Events only analytics receives.
pub const EMBED_EXPOSED: &str = "embed.exposed";
pub const EMBED_CLICKED: &str = "embed.clicked";
pub const EMBED_CHECKOUT_STARTED: &str = "embed.checkout_started";
/// A dashboard invite or password link for one person (`{email, url, purpose}`): sent
/// by email only, in fixed words, never to webhooks or analytics.
pub const DASHBOARD_LINK: &str = "dashboard.link";
pub const EXPERIMENT_CONVERTED: &str = "experiment.converted";
pub const USAGE_SUMMARY: &str = "usage.hourly_summary";

/// The services the outbox delivers to, by the name their messages carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Integration {
    /// Notices by email, through Resend.
    Email,
    /// The creator's webhook endpoints.
    Webhook,
    /// PostHog's batch capture API.
    Posthog,
}

impl Integration {
    pub const ALL: [Integration; 3] = [
        Integration::Email,
        Integration::Webhook,
        Integration::Posthog,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Integration::Email => "email",
            Integration::Webhook => "webhook",
            Integration::Posthog => "posthog",
        }
    }

    pub fn parse(text: &str) -> Option<Integration> {
        Integration::ALL.into_iter().find(|i| i.as_str() == text)
    }
}

/// One message as the API shows it: where it goes, what it carries and how its tries went.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: String,
    /// The event it tells (`evt_…`).
    pub event_id: String,
    pub integration: String,
    /// An email address, a webhook endpoint id, or `platform` / `creator` (PostHog).
    pub target: String,
    /// `pending`, `delivered` or `parked`.
    pub status: String,
    pub attempts: i64,
    /// When a pending message is tried next.
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub last_attempt_at: Option<String>,
    /// The HTTP status of the last try; none when it got no answer.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
    /// What is sent (the webhook payload, the email, the analytics event).
    #[schema(value_type = Object)]
    pub payload: Value,
}

impl MessageView {
    pub fn of(row: crate::store::outbox::MessageRow) -> MessageView {
        use crate::usage::period::rfc3339;
        MessageView {
            next_attempt_at: (row.status == "pending").then(|| rfc3339(row.next_attempt_at)),
            created_at: rfc3339(row.created_at),
            last_attempt_at: row.last_attempt_at.map(rfc3339),
            delivered_at: row.delivered_at.map(rfc3339),
            payload: serde_json::from_str(&row.body).unwrap_or(Value::Null),
            id: row.id,
            event_id: row.event_id,
            integration: row.integration,
            target: row.target,
            status: row.status,
            attempts: row.attempts,
            last_status: row.last_status,
            last_error: row.last_error,
        }
    }
}

/// A page of messages, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MessagePage {
    pub messages: Vec<MessageView>,
    /// Pass as `cursor` for the next page; none on the last.
    pub next_cursor: Option<String>,
}

/// `?integration=&status=&cursor=&limit=` of a message listing.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    #[param(schema_with = integration_schema)]
    pub integration: Option<String>,
    #[param(schema_with = status_schema)]
    pub status: Option<String>,
    #[param(schema_with = cursor_schema)]
    pub cursor: Option<String>,
    #[param(schema_with = crate::schema::page_limit_schema)]
    pub limit: Option<i64>,
}

/// Message statuses.
pub const STATUSES: [&str; 3] = ["pending", "delivered", "parked"];

/// A page's cursor: `<created_at>.<message id>`.
pub const CURSOR_PATTERN: &str = "^[0-9]{1,18}[.][A-Za-z0-9_]{1,64}$";

fn one_of(values: &[&'static str], description: &str) -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .build()
}

fn integration_schema() -> utoipa::openapi::schema::Object {
    let names: Vec<&'static str> = Integration::ALL.iter().map(|i| i.as_str()).collect();
    one_of(&names, "Only the messages of this integration")
}

fn status_schema() -> utoipa::openapi::schema::Object {
    one_of(&STATUSES, "Only the messages in this state")
}

fn cursor_schema() -> utoipa::openapi::schema::Object {
    crate::schema::text(3, 83, CURSOR_PATTERN, "The previous page's `next_cursor`")
}
