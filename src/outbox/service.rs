//! Reading the outbox and retrying by hand: a creator sees its own messages, the platform
//! owner everyone's (the parked ones, say).

use crate::audit::model::Who;
use crate::error::ApiError;
use crate::outbox::model::{
    Integration, MessagePage, MessageQuery, MessageView, CURSOR_PATTERN, STATUSES,
};
use crate::state::AppState;
use crate::store::outbox::{MessageFilter, MessageRow};
use crate::usage::period::rfc3339;

/// A page of messages; `creator_id` `None` lists every creator's. `only` narrows to one
/// target of one integration (a webhook endpoint's deliveries).
pub async fn list(
    state: &AppState,
    creator_id: Option<&str>,
    only: Option<(Integration, &str)>,
    query: &MessageQuery,
) -> Result<MessagePage, ApiError> {
    let integration = match query.integration.as_deref() {
        None => None,
        Some(text) => Some(
            Integration::parse(text)
                .map(Integration::as_str)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_query",
                        "integration is email, webhook or posthog",
                    )
                })?,
        ),
    };
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(STATUSES.into_iter().find(|s| *s == text).ok_or_else(|| {
            ApiError::bad_request("invalid_query", "status is pending, delivered or parked")
        })?),
    };
    let limit = crate::schema::page_limit(query.limit)?;
    let before = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => Some(parse_cursor(cursor)?),
    };
    let filter = MessageFilter {
        integration: only.map(|(i, _)| i.as_str()).or(integration),
        target: only.map(|(_, target)| target),
        status,
        before: before.as_ref().map(|(at, id)| (*at, id.as_str())),
        limit: limit + 1,
    };
    let mut rows = state.store.list_messages(creator_id, &filter).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last()
            .map(|row| format!("{}.{}", row.created_at, row.id))
    } else {
        None
    };
    Ok(MessagePage {
        messages: rows.into_iter().map(MessageView::of).collect(),
        next_cursor,
    })
}

/// `<created_at>.<id>`, as `list` makes it (and `CURSOR_PATTERN` says).
fn parse_cursor(cursor: &str) -> Result<(i64, String), ApiError> {
    static CURSOR: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(CURSOR_PATTERN).expect("a regex"));
    CURSOR
        .is_match(cursor)
        .then(|| cursor.split_once('.'))
        .flatten()
        .and_then(|(at, id)| Some((at.parse().ok()?, id.to_string())))
        .ok_or_else(|| ApiError::bad_request("invalid_cursor", "cursor is not one this API gave"))
}

/// A message as its records show it: where it stands, not what it carries nor where it
/// goes (an email's address may be a customer's).
fn record_state(row: &MessageRow) -> serde_json::Value {
    serde_json::json!({
        "id": row.id,
        "event_id": row.event_id,
        "integration": row.integration,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": (row.status == "pending").then(|| rfc3339(row.next_attempt_at)),
    })
}

/// Sends a message again from now, whatever became of it; `creator_id` `None` for any
/// creator's. Answers it as it is now. The retry is recorded in the message's creator's
/// log, whoever asked.
pub async fn retry(
    state: &AppState,
    who: &Who,
    creator_id: Option<&str>,
    id: &str,
) -> Result<MessageView, ApiError> {
    let now = state.usage.now();
    state
        .store
        .retry_message(creator_id, id, now, |before, after| {
            who.change(&before.creator_id, now, "outbox_message", "retry", id)
                .before(&record_state(before))
                .after(&record_state(after))
        })
        .await?
        .map(MessageView::of)
        .ok_or_else(|| ApiError::not_found("message_not_found", "no such outbox message"))
}
