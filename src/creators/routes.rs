//! `/v1/admin/…`: the platform owner's API (admin token); `/v1/creator`: a creator's own
//! profile (secret key).

use actix_web::{get, patch, post, web, HttpResponse};

use crate::audit::model::Who;
use crate::creators::model::{
    CreatedCreator, CreatorPatch, CreatorProfile, CreatorView, NewCreator, PlatformStats,
    ProfilePatch,
};
use crate::creators::service;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::{AdminAuth, CreatorAuth};
use crate::http::body::ApiJson;
use crate::state::AppState;

/// Create a creator. The answer holds its secret and publishable keys, shown this once.
#[utoipa::path(post, path = "/v1/admin/creators", tag = "admin", request_body = NewCreator,
    responses((status = 201, body = CreatedCreator),
        (status = 409, description = "`already_exists`: the slug is taken; `domain_taken`: \
            another creator has the custom domain", body = ErrorBody),
        (status = 422, description = "`invalid_slug`, `invalid_domain`, `invalid_branding`, \
            `invalid_rate_limit`, `invalid_value`", body = ErrorBody)),
    security(("admin_token" = [])))]
#[post("/v1/admin/creators")]
pub async fn create_creator(
    state: web::Data<AppState>,
    _: AdminAuth,
    who: Who,
    ApiJson(body): ApiJson<NewCreator>,
) -> Result<HttpResponse, ApiError> {
    state.ensure_ready()?;
    let created = service::create(&state, &who, body).await?;
    Ok(HttpResponse::Created().json(created))
}

/// List every creator (without keys).
#[utoipa::path(get, path = "/v1/admin/creators", tag = "admin",
    responses((status = 200, body = [CreatorView])), security(("admin_token" = [])))]
#[get("/v1/admin/creators")]
pub async fn list_creators(
    state: web::Data<AppState>,
    _: AdminAuth,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::list(&state).await?))
}

/// Change a creator's per-key rate limit.
#[utoipa::path(patch, path = "/v1/admin/creators/{slug}", tag = "admin", request_body = CreatorPatch,
    params(("slug" = String, Path, description = "Creator slug")),
    responses((status = 200, body = CreatorView),
        (status = 404, description = "`creator_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_rate_limit`", body = ErrorBody)),
    security(("admin_token" = [])))]
#[patch("/v1/admin/creators/{slug}")]
pub async fn update_creator(
    state: web::Data<AppState>,
    _: AdminAuth,
    who: Who,
    slug: web::Path<String>,
    ApiJson(body): ApiJson<CreatorPatch>,
) -> Result<HttpResponse, ApiError> {
    state.ensure_ready()?;
    Ok(HttpResponse::Ok().json(service::update(&state, &who, &slug, body).await?))
}

/// Platform-wide figures.
#[utoipa::path(get, path = "/v1/admin/stats", tag = "admin",
    responses((status = 200, body = PlatformStats)),
    security(("admin_token" = [])))]
#[get("/v1/admin/stats")]
pub async fn stats(state: web::Data<AppState>, _: AdminAuth) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::stats(&state).await?))
}

/// The calling creator's profile.
#[utoipa::path(get, path = "/v1/creator", tag = "creator",
    responses((status = 200, body = CreatorProfile)), security(("secret_key" = [])))]
#[get("/v1/creator")]
pub async fn get_profile(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::profile(&state, &creator).await?))
}

/// Change the calling creator's profile: the origins its widgets may be called from.
#[utoipa::path(patch, path = "/v1/creator", tag = "creator", request_body = ProfilePatch,
    responses((status = 200, body = CreatorProfile),
        (status = 422, description = "`invalid_origin`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[patch("/v1/creator")]
pub async fn update_profile(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    ApiJson(body): ApiJson<ProfilePatch>,
) -> Result<HttpResponse, ApiError> {
    let profile = service::update_profile(&state, &creator, &who, body).await?;
    Ok(HttpResponse::Ok().json(profile))
}
