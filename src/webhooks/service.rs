//! A creator's webhook endpoints: made with a secret shown once (sealed at rest), changed,
//! deleted, and their deliveries listed and redelivered (through the outbox). Each change
//! is recorded with the endpoint's view, which holds no secret.

use crate::audit::model::Who;
use crate::error::ApiError;
use crate::outbox::model::{new_id, Integration, MessagePage, MessageQuery, MessageView};
use crate::outbox::service as outbox;
use crate::state::AppState;
use crate::store::outbox::{EndpointChange, EndpointRow};
use crate::tenants::registry::Creator;
use crate::webhooks::model::{
    parse_description, parse_events, CreatedEndpoint, EndpointPatch, EndpointView, NewEndpoint,
    MAX_ENDPOINTS,
};
use crate::webhooks::{signing, targets};

fn endpoint_not_found() -> ApiError {
    ApiError::not_found("endpoint_not_found", "no such webhook endpoint")
}

/// What a sealed endpoint secret is bound to: its creator and endpoint.
pub fn secret_owner(creator_id: &str, endpoint_id: &str) -> String {
    format!("webhook_endpoint:{creator_id}:{endpoint_id}")
}

pub async fn create(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    body: NewEndpoint,
) -> Result<CreatedEndpoint, ApiError> {
    let creator_id = &creator.tenant.id;
    let url = targets::check(&body.url, state.integrations.allow_private_targets).await?;
    let events = parse_events(&body.events)?;
    let description = parse_description(&body.description)?;
    if state.store.endpoints(creator_id).await?.len() >= MAX_ENDPOINTS {
        return Err(ApiError::conflict(
            "too_many_endpoints",
            format!("a creator has at most {MAX_ENDPOINTS} webhook endpoints"),
        ));
    }
    let id = new_id("we");
    let secret = signing::new_secret();
    let now = state.usage.now();
    let row = EndpointRow {
        secret_sealed: state.sealer.seal(&secret_owner(creator_id, &id), &secret),
        id,
        creator_id: creator_id.to_string(),
        url: url.to_string(),
        events: serde_json::to_string(&events).expect("strings serialize"),
        description,
        enabled: 1,
        disabled_reason: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    let view = EndpointView::of(&row);
    let record = who
        .change(creator_id, now, "webhook_endpoint", "create", &row.id)
        .after(&view);
    state.store.insert_endpoint(&row, &record).await?;
    Ok(CreatedEndpoint {
        endpoint: view,
        secret,
    })
}

pub async fn list(state: &AppState, creator: &Creator) -> Result<Vec<EndpointView>, ApiError> {
    let rows = state.store.endpoints(&creator.tenant.id).await?;
    Ok(rows.iter().map(EndpointView::of).collect())
}

async fn find(state: &AppState, creator: &Creator, id: &str) -> Result<EndpointRow, ApiError> {
    state
        .store
        .endpoint(&creator.tenant.id, id)
        .await?
        .ok_or_else(endpoint_not_found)
}

pub async fn get(state: &AppState, creator: &Creator, id: &str) -> Result<EndpointView, ApiError> {
    Ok(EndpointView::of(&find(state, creator, id).await?))
}

pub async fn update(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    id: &str,
    patch: EndpointPatch,
) -> Result<EndpointView, ApiError> {
    let allow_private = state.integrations.allow_private_targets;
    let url = match &patch.url {
        Some(url) => Some(targets::check(url, allow_private).await?.to_string()),
        None => None,
    };
    let events = match &patch.events {
        Some(events) => {
            Some(serde_json::to_string(&parse_events(events)?).expect("strings serialize"))
        }
        None => None,
    };
    let change = EndpointChange {
        url,
        events,
        description: patch
            .description
            .as_deref()
            .map(parse_description)
            .transpose()?,
        enabled: patch.enabled,
    };
    let creator_id = &creator.tenant.id;
    let now = state.usage.now();
    let row = state
        .store
        .change_endpoint(creator_id, id, &change, now, |before, after| {
            who.change(creator_id, now, "webhook_endpoint", "update", id)
                .before(&EndpointView::of(before))
                .after(&EndpointView::of(after))
        })
        .await?
        .ok_or_else(endpoint_not_found)?;
    Ok(EndpointView::of(&row))
}

pub async fn delete(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    id: &str,
) -> Result<(), ApiError> {
    let creator_id = &creator.tenant.id;
    let now = state.usage.now();
    let deleted = state
        .store
        .delete_endpoint(creator_id, id, |row| {
            who.change(creator_id, now, "webhook_endpoint", "delete", id)
                .before(&EndpointView::of(row))
        })
        .await?;
    if deleted {
        Ok(())
    } else {
        Err(endpoint_not_found())
    }
}

/// The endpoint's deliveries, newest first.
pub async fn deliveries(
    state: &AppState,
    creator: &Creator,
    id: &str,
    query: &MessageQuery,
) -> Result<MessagePage, ApiError> {
    find(state, creator, id).await?;
    let only = Some((Integration::Webhook, id));
    outbox::list(state, Some(&creator.tenant.id), only, query).await
}

/// Delivers one of the endpoint's messages again, now.
pub async fn redeliver(
    state: &AppState,
    creator: &Creator,
    who: &Who,
    id: &str,
    delivery_id: &str,
) -> Result<MessageView, ApiError> {
    let creator_id = &creator.tenant.id;
    find(state, creator, id).await?;
    let message = state.store.message(creator_id, delivery_id).await?;
    if !message.is_some_and(|m| m.integration == Integration::Webhook.as_str() && m.target == id) {
        return Err(ApiError::not_found(
            "message_not_found",
            "no such delivery of this endpoint",
        ));
    }
    outbox::retry(state, who, Some(creator_id), delivery_id).await
}
