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

/// The event types webhook endpoints subscribe to (SPEC: outgoing webhooks).
pub const WEBHOOK_EVENT_TYPES: &[&str] = &[
    "usage.warning",
    "usage.limit_reached",
    "usage.overage_started",
    "customer.tier_changed",
    "subscription.updated",
    "invoice.payment_failed",
    "experiment.srm_detected",
];

/// Events told only to the creator by email: a customer's grace period ended unpaid, a
/// webhook endpoint was disabled.
pub const GRACE_ENDED: &str = "billing.grace_ended";
pub const ENDPOINT_DISABLED: &str = "webhook_endpoint.disabled";

/// Events only analytics receives.
pub const EMBED_EXPOSED: &str = "embed.exposed";
pub const EMBED_CLICKED: &str = "embed.clicked";
pub const EMBED_CHECKOUT_STARTED: &str = "embed.checkout_started";
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
    /// `email`, `webhook` or `posthog`.
    pub integration: Option<String>,
    /// `pending`, `delivered` or `parked`.
    pub status: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 100; 20 when absent.
    pub limit: Option<i64>,
}
