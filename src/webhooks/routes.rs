//! `/v1/webhook_endpoints` (secret key): endpoints, their deliveries, redelivery. Thin
//! handlers over `service`.

use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde::Deserialize;

use crate::audit::model::Who;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::CreatorAuth;
use crate::http::body::ApiJson;
use crate::outbox::model::{MessagePage, MessageQuery, MessageView};
use crate::state::AppState;
use crate::webhooks::model::{CreatedEndpoint, EndpointPatch, EndpointView, NewEndpoint};
use crate::webhooks::service;

/// `/v1/webhook_endpoints/{id}…`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EndpointPath {
    /// The endpoint id (`we_…`).
    id: String,
}

/// `/v1/webhook_endpoints/{id}/deliveries/{delivery_id}…`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeliveryPath {
    /// The endpoint id (`we_…`).
    id: String,
    /// The delivery's message id (`msg_…`, its `webhook-id`).
    delivery_id: String,
}

/// Add an endpoint; its signing secret is in the answer, this once.
#[utoipa::path(post, path = "/v1/webhook_endpoints", tag = "webhooks", request_body = NewEndpoint,
    responses((status = 201, body = CreatedEndpoint),
        (status = 409, description = "`too_many_endpoints`", body = ErrorBody),
        (status = 422, description = "`invalid_url` (also: a loopback or private address), \
            `invalid_events`, `invalid_description`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/webhook_endpoints")]
pub async fn create_endpoint(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    ApiJson(body): ApiJson<NewEndpoint>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(service::create(&state, &creator, &who, body).await?))
}

/// The creator's endpoints.
#[utoipa::path(get, path = "/v1/webhook_endpoints", tag = "webhooks",
    responses((status = 200, body = [EndpointView])), security(("secret_key" = [])))]
#[get("/v1/webhook_endpoints")]
pub async fn list_endpoints(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::list(&state, &creator).await?))
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/webhook_endpoints/{id}", tag = "webhooks", params(EndpointPath),
    responses((status = 200, body = EndpointView),
        (status = 404, description = "`endpoint_not_found`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/webhook_endpoints/{id}")]
pub async fn get_endpoint(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<EndpointPath>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::get(&state, &creator, &path.id).await?))
}

/// Change an endpoint's URL, events or description, or enable it again.
#[utoipa::path(patch, path = "/v1/webhook_endpoints/{id}", tag = "webhooks",
    params(EndpointPath), request_body = EndpointPatch,
    responses((status = 200, body = EndpointView),
        (status = 404, description = "`endpoint_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_url`, `invalid_events`, `invalid_description`",
            body = ErrorBody)),
    security(("secret_key" = [])))]
#[patch("/v1/webhook_endpoints/{id}")]
pub async fn update_endpoint(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<EndpointPath>,
    ApiJson(body): ApiJson<EndpointPatch>,
) -> Result<HttpResponse, ApiError> {
    let view = service::update(&state, &creator, &who, &path.id, body).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Delete an endpoint; what it was still owed is parked.
#[utoipa::path(delete, path = "/v1/webhook_endpoints/{id}", tag = "webhooks",
    params(EndpointPath),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "`endpoint_not_found`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[delete("/v1/webhook_endpoints/{id}")]
pub async fn delete_endpoint(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<EndpointPath>,
) -> Result<HttpResponse, ApiError> {
    service::delete(&state, &creator, &who, &path.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The endpoint's deliveries, newest first, with their status codes.
#[utoipa::path(get, path = "/v1/webhook_endpoints/{id}/deliveries", tag = "webhooks",
    params(EndpointPath, MessageQuery),
    responses((status = 200, body = MessagePage),
        (status = 400, description = "`invalid_query`, `invalid_cursor`", body = ErrorBody),
        (status = 404, description = "`endpoint_not_found`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/webhook_endpoints/{id}/deliveries")]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<EndpointPath>,
    query: web::Query<MessageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = service::deliveries(&state, &creator, &path.id, &query).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Deliver again, now (with the same `webhook-id`).
#[utoipa::path(post, path = "/v1/webhook_endpoints/{id}/deliveries/{delivery_id}/retry",
    tag = "webhooks", params(DeliveryPath),
    responses((status = 200, body = MessageView),
        (status = 404, description = "`endpoint_not_found`, `message_not_found`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/webhook_endpoints/{id}/deliveries/{delivery_id}/retry")]
pub async fn redeliver(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<DeliveryPath>,
) -> Result<HttpResponse, ApiError> {
    let message = service::redeliver(&state, &creator, &who, &path.id, &path.delivery_id).await?;
    Ok(HttpResponse::Ok().json(message))
}
