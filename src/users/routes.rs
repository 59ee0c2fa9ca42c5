//! `POST /v1/admin/creators/{slug}/users` (admin token): a creator's dashboard user, its
//! first owner above all (`staryer demo` makes one so). The team's own changes happen in
//! the dashboard.

use actix_web::{post, web, HttpRequest, HttpResponse};

use crate::audit::model::Who;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::AdminAuth;
use crate::http::body::ApiJson;
use crate::keys::model::CreatorPath;
use crate::state::AppState;
use crate::users::model::{CreatedUser, NewUser};

/// Make a dashboard user of a creator. Without a password the answer carries an invite
/// link (good once, for 7 days) where the user sets one; with email on it is also sent
/// to the user.
#[utoipa::path(post, path = "/v1/admin/creators/{slug}/users", tag = "admin",
    request_body = NewUser, params(CreatorPath),
    responses((status = 201, body = CreatedUser),
        (status = 404, description = "`creator_not_found`", body = ErrorBody),
        (status = 409, description = "`email_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_email`, `weak_password`", body = ErrorBody)),
    security(("admin_token" = [])))]
#[post("/v1/admin/creators/{slug}/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    _: AdminAuth,
    who: Who,
    path: web::Path<CreatorPath>,
    req: HttpRequest,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<HttpResponse, ApiError> {
    state.ensure_ready()?;
    let creator = state
        .registry
        .creator_by_slug(&path.slug)
        .ok_or_else(|| ApiError::not_found("creator_not_found", "no creator with this slug"))?;
    let (user, invite_url) = state
        .users
        .add(
            &creator.tenant.id,
            &who,
            (&body.email, body.role),
            body.password,
            &state.public_base(&req),
        )
        .await?;
    Ok(HttpResponse::Created().json(CreatedUser { user, invite_url }))
}
