//! `/v1/integrations/posthog` (secret key): the creator's own PostHog project. Thin
//! handlers over `service`.

use actix_web::{delete, get, put, web, HttpResponse};

use crate::analytics::service::{self, PosthogStatus, PosthogUpdate};
use crate::audit::model::Who;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::CreatorAuth;
use crate::http::body::ApiJson;
use crate::state::AppState;

/// Where the creator's analytics go now.
#[utoipa::path(get, path = "/v1/integrations/posthog", tag = "integrations",
    responses((status = 200, body = PosthogStatus)), security(("secret_key" = [])))]
#[get("/v1/integrations/posthog")]
pub async fn get_posthog(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
) -> HttpResponse {
    HttpResponse::Ok().json(service::status(&state, &creator))
}

/// Send the creator's analytics to its own PostHog project.
#[utoipa::path(put, path = "/v1/integrations/posthog", tag = "integrations",
    request_body = PosthogUpdate,
    responses((status = 200, body = PosthogStatus),
        (status = 422, description = "`invalid_api_key`, `invalid_url`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[put("/v1/integrations/posthog")]
pub async fn put_posthog(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    ApiJson(body): ApiJson<PosthogUpdate>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::put(&state, &creator, &who, body).await?))
}

/// Stop using the creator's own project (the platform's takes over, if there is one).
#[utoipa::path(delete, path = "/v1/integrations/posthog", tag = "integrations",
    responses((status = 200, body = PosthogStatus)), security(("secret_key" = [])))]
#[delete("/v1/integrations/posthog")]
pub async fn delete_posthog(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::delete(&state, &creator, &who).await?))
}
