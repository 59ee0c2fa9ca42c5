//! `/v1/notices` (secret key): which notices go by email, where, and in what words. Thin
//! handlers over `service`.

use actix_web::{get, put, web, HttpResponse};

use crate::audit::model::Who;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::CreatorAuth;
use crate::http::body::ApiJson;
use crate::notices::model::{Notices, NoticesUpdate};
use crate::notices::service;
use crate::state::AppState;

/// The notice settings in force: the notice address and every kind's template.
#[utoipa::path(get, path = "/v1/notices", tag = "notices",
    responses((status = 200, body = Notices)), security(("secret_key" = [])))]
#[get("/v1/notices")]
pub async fn get_notices(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::get(&state, &creator).await?))
}

/// Replace the notice settings: the notice address, and per kind whether it is sent and
/// its subject, text and HTML (with `{{placeholders}}`).
#[utoipa::path(put, path = "/v1/notices", tag = "notices", request_body = NoticesUpdate,
    responses((status = 200, body = Notices),
        (status = 422, description = "`unknown_kind`, `unknown_placeholder`, \
            `invalid_template`, `invalid_email`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[put("/v1/notices")]
pub async fn put_notices(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    ApiJson(body): ApiJson<NoticesUpdate>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::put(&state, &creator, &who, body).await?))
}
