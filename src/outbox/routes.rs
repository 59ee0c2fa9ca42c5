//! `/v1/outbox` (secret key): the creator's messages to every integration, and retrying
//! one by hand; `/v1/admin/outbox` (admin token): everyone's. Thin handlers over `service`.

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;

use crate::audit::model::Who;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::{AdminAuth, CreatorAuth};
use crate::outbox::model::{MessagePage, MessageQuery, MessageView};
use crate::outbox::service;
use crate::state::AppState;

/// `/v1/outbox/{id}…`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MessagePath {
    /// The message id (`msg_…`).
    id: String,
}

/// The creator's outbox messages (notices, webhook deliveries, analytics), newest first.
#[utoipa::path(get, path = "/v1/outbox", tag = "outbox", params(MessageQuery),
    responses((status = 200, body = MessagePage),
        (status = 400, description = "`invalid_query`, `invalid_cursor`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/outbox")]
pub async fn list_messages(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    query: web::Query<MessageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = service::list(&state, Some(&creator.tenant.id), None, &query).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Send a message again from now: a parked one, or a delivered one asked for again.
#[utoipa::path(post, path = "/v1/outbox/{id}/retry", tag = "outbox", params(MessagePath),
    responses((status = 200, body = MessageView),
        (status = 404, description = "`message_not_found`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/outbox/{id}/retry")]
pub async fn retry_message(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<MessagePath>,
) -> Result<HttpResponse, ApiError> {
    let message = service::retry(&state, &who, Some(&creator.tenant.id), &path.id).await?;
    Ok(HttpResponse::Ok().json(message))
}

/// Every creator's outbox messages, newest first (`?status=parked`: what gave up).
#[utoipa::path(get, path = "/v1/admin/outbox", tag = "admin", params(MessageQuery),
    responses((status = 200, body = MessagePage),
        (status = 400, description = "`invalid_query`, `invalid_cursor`", body = ErrorBody)),
    security(("admin_token" = [])))]
#[get("/v1/admin/outbox")]
pub async fn admin_list_messages(
    state: web::Data<AppState>,
    _: AdminAuth,
    query: web::Query<MessageQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::list(&state, None, None, &query).await?))
}

/// Send any creator's message again from now.
#[utoipa::path(post, path = "/v1/admin/outbox/{id}/retry", tag = "admin", params(MessagePath),
    responses((status = 200, body = MessageView),
        (status = 404, description = "`message_not_found`", body = ErrorBody)),
    security(("admin_token" = [])))]
#[post("/v1/admin/outbox/{id}/retry")]
pub async fn admin_retry_message(
    state: web::Data<AppState>,
    _: AdminAuth,
    who: Who,
    path: web::Path<MessagePath>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::retry(&state, &who, None, &path.id).await?))
}
