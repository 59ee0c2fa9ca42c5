//! `/v1/keys` (secret key): the creator's keys; `/v1/admin/creators/{slug}/keys` (admin
//! token): a new secret key for a creator that lost its own. Thin handlers over `service`.

use actix_web::{delete, get, post, web, HttpResponse};

use crate::audit::model::Who;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::{AdminAuth, CreatorAuth};
use crate::http::body::{ApiJson, Body};
use crate::keys::model::{CreatedKey, CreatorPath, KeyList, KeyPath, KeyView, NewKey, RollRequest};
use crate::keys::service;
use crate::state::AppState;

/// The creator's keys, revoked ones included (never their secrets).
#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    responses((status = 200, body = KeyList)), security(("secret_key" = [])))]
#[get("/v1/keys")]
pub async fn list_keys(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::list(&state, &creator).await?))
}

/// Make a named secret key. The answer holds the key, shown this once.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = NewKey,
    responses((status = 201, body = CreatedKey),
        (status = 409, description = "`too_many_keys`: 20 live secret keys already", body = ErrorBody),
        (status = 422, description = "`invalid_value`: a name over 200 characters", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/keys")]
pub async fn create_key(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<HttpResponse, ApiError> {
    let created = service::create(&state, &creator, &who, body).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Revoke a key: refused from the next request on.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", params(KeyPath),
    responses((status = 200, body = KeyView),
        (status = 404, description = "`key_not_found`: no live key with this id", body = ErrorBody),
        (status = 409, description = "`last_secret_key`: make another secret key first", body = ErrorBody)),
    security(("secret_key" = [])))]
#[delete("/v1/keys/{id}")]
pub async fn revoke_key(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<KeyPath>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::revoke(&state, &creator, &who, &path.id).await?))
}

/// Make a new publishable key; the current one keeps answering for `overlap_seconds`.
#[utoipa::path(post, path = "/v1/keys/publishable/roll", tag = "keys",
    request_body(content = Option<RollRequest>, description = "Optional"),
    responses((status = 201, body = CreatedKey),
        (status = 422, description = "`invalid_value`: an overlap past 30 days", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/keys/publishable/roll")]
pub async fn roll_publishable_key(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    Body(bytes): Body,
) -> Result<HttpResponse, ApiError> {
    let text = bytes.trim_ascii();
    let body: RollRequest = if text.is_empty() || text == b"null" {
        RollRequest::default()
    } else {
        crate::http::body::parse_json(text)?
    };
    let created = service::roll_publishable(&state, &creator, &who, body).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Make a secret key for a creator (one that lost its keys). Shown this once.
#[utoipa::path(post, path = "/v1/admin/creators/{slug}/keys", tag = "admin",
    request_body = NewKey, params(CreatorPath),
    responses((status = 201, body = CreatedKey),
        (status = 404, description = "`creator_not_found`", body = ErrorBody),
        (status = 409, description = "`too_many_keys`", body = ErrorBody)),
    security(("admin_token" = [])))]
#[post("/v1/admin/creators/{slug}/keys")]
pub async fn mint_key(
    state: web::Data<AppState>,
    _: AdminAuth,
    who: Who,
    path: web::Path<CreatorPath>,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<HttpResponse, ApiError> {
    state.ensure_ready()?;
    let creator = state
        .registry
        .creator_by_slug(&path.slug)
        .ok_or_else(|| ApiError::not_found("creator_not_found", "no creator with this slug"))?;
    let created = service::create(&state, &creator, &who, body).await?;
    Ok(HttpResponse::Created().json(created))
}
