//! `/v1/embeds`: the creator's embeds and versions (secret key). Thin handlers over
//! `service`.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::audit::model::Who;
use crate::embeds::model::{CreatedVersion, EmbedView, NewEmbed, NewVersion, Publish, Snippet};
use crate::embeds::service;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::CreatorAuth;
use crate::http::body::ApiJson;
use crate::meters::model::slug_schema;
use crate::state::AppState;

/// `/v1/embeds/{key}…`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EmbedPath {
    /// The embed's key.
    #[param(schema_with = slug_schema)]
    key: String,
}

/// Make an embed: its first version is published at once.
#[utoipa::path(post, path = "/v1/embeds", tag = "embeds", request_body = NewEmbed,
    responses((status = 201, body = EmbedView),
        (status = 409, description = "`already_exists`", body = ErrorBody),
        (status = 422, description = "`invalid_slug`, `invalid_config` (the path of the \
            offending field), `unknown_tier`, `unknown_meter`, `invalid_url`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/embeds")]
pub async fn create_embed(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    ApiJson(body): ApiJson<NewEmbed>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(service::create(&state, &creator, &who, body).await?))
}

/// The creator's embeds (without their versions).
#[utoipa::path(get, path = "/v1/embeds", tag = "embeds",
    responses((status = 200, body = [EmbedView])), security(("secret_key" = [])))]
#[get("/v1/embeds")]
pub async fn list_embeds(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
) -> HttpResponse {
    HttpResponse::Ok().json(service::list(&state, &creator))
}

/// One embed with every version and each version's clicks and checkouts started.
#[utoipa::path(get, path = "/v1/embeds/{key}", tag = "embeds", params(EmbedPath),
    responses((status = 200, body = EmbedView),
        (status = 404, description = "`embed_not_found`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/embeds/{key}")]
pub async fn get_embed(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<EmbedPath>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::get(&state, &creator, &path.key).await?))
}

/// Add a version (unpublished): versions never change once made.
#[utoipa::path(post, path = "/v1/embeds/{key}/versions", tag = "embeds", params(EmbedPath),
    request_body = NewVersion,
    responses((status = 201, body = CreatedVersion),
        (status = 404, description = "`embed_not_found`", body = ErrorBody),
        (status = 409, description = "`too_many_versions`", body = ErrorBody),
        (status = 422, description = "`invalid_config`, `unknown_tier`, `unknown_meter`, \
            `invalid_url`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/embeds/{key}/versions")]
pub async fn create_version(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<EmbedPath>,
    ApiJson(body): ApiJson<NewVersion>,
) -> Result<HttpResponse, ApiError> {
    let created = service::add_version(&state, &creator, &who, &path.key, body).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Publish a version: widgets outside an experiment show it from now on.
#[utoipa::path(post, path = "/v1/embeds/{key}/publish", tag = "embeds", params(EmbedPath),
    request_body = Publish,
    responses((status = 200, body = EmbedView),
        (status = 404, description = "`embed_not_found`, `version_not_found`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/embeds/{key}/publish")]
pub async fn publish(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<EmbedPath>,
    ApiJson(body): ApiJson<Publish>,
) -> Result<HttpResponse, ApiError> {
    let view = service::publish(&state, &creator, &who, &path.key, body).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The two tags to paste into a page. The publishable key is stored hashed, so the
/// snippet holds a placeholder unless the query gives the key.
#[utoipa::path(get, path = "/v1/embeds/{key}/snippet", tag = "embeds",
    params(EmbedPath, SnippetQuery),
    responses((status = 200, body = Snippet),
        (status = 404, description = "`embed_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_publishable_key`: not this creator's publishable key",
            body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/embeds/{key}/snippet")]
pub async fn snippet(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<EmbedPath>,
    query: web::Query<SnippetQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let base = state.public_base(&req);
    let html = service::snippet(
        &state,
        &creator,
        &path.key,
        &base,
        query.publishable_key.as_deref(),
    )?;
    Ok(HttpResponse::Ok().json(html))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct SnippetQuery {
    /// The creator's publishable key, to write into the snippet.
    #[param(pattern = "^pk_[A-Za-z0-9]*$", max_length = 64)]
    publishable_key: Option<String>,
}
