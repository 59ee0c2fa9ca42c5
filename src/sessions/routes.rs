//! Customer sessions: made and revoked by the creator (secret key); the signing key is
//! rotated by the platform owner (admin token).

use std::borrow::Cow;

use actix_web::{delete, post, web, HttpResponse};
use serde::Deserialize;

use crate::audit::model::Who;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::{AdminAuth, CreatorAuth};
use crate::http::body::ApiJson;
use crate::sessions::model::{CreatedSession, NewSession, RotatedKey, SessionView};
use crate::state::AppState;
use crate::usage::model::{id_schema, parse_id};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionCustomerPath {
    /// The creator's id for the customer.
    #[param(schema_with = id_schema)]
    customer_id: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionPath {
    /// The session's id (`cs_…`).
    #[param(schema_with = id_schema)]
    id: String,
}

/// Make a session for one customer: a signed token a browser can use to act as that
/// customer (scope `embed`: widgets; `portal`: the customer portal), until it expires or
/// is revoked.
#[utoipa::path(post, path = "/v1/customers/{customer_id}/sessions", tag = "sessions",
    params(SessionCustomerPath), request_body = NewSession,
    responses((status = 201, body = CreatedSession),
        (status = 422, description = "`invalid_id`, `invalid_ttl`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/customers/{customer_id}/sessions")]
pub async fn create_session(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<SessionCustomerPath>,
    ApiJson(body): ApiJson<NewSession>,
) -> Result<HttpResponse, ApiError> {
    let customer_id = parse_id("customer_id", Cow::Borrowed(&path.customer_id))?;
    let created = state
        .sessions
        .create(&creator.tenant.id, &customer_id, &who, body)
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Revoke a session: its token is refused from now on.
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions", params(SessionPath),
    responses((status = 200, body = SessionView),
        (status = 404, description = "`session_not_found`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[delete("/v1/sessions/{id}")]
pub async fn revoke_session(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<SessionPath>,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .sessions
        .revoke(&creator.tenant.id, &who, &path.id)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Rotate the key that signs customer sessions. Sessions signed before stay valid until
/// they expire; a key is dropped at a later rotation once every session it signed has.
#[utoipa::path(post, path = "/v1/admin/session-keys/rotate", tag = "admin",
    responses((status = 200, body = RotatedKey)), security(("admin_token" = [])))]
#[post("/v1/admin/session-keys/rotate")]
pub async fn rotate_key(
    state: web::Data<AppState>,
    _: AdminAuth,
    who: Who,
) -> Result<HttpResponse, ApiError> {
    state.ensure_ready()?;
    Ok(HttpResponse::Ok().json(RotatedKey {
        kid: state.sessions.rotate_key(&who).await?,
    }))
}
