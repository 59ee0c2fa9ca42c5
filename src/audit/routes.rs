//! `GET /v1/audit_logs` (secret key): the creator's records; `GET /v1/admin/audit_logs`
//! (admin token): the platform's own (creators made, keys minted). Thin handlers over
//! `service`.

use actix_web::{get, web, HttpResponse};

use crate::audit::model::{AuditPage, AuditQuery};
use crate::audit::service;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::{AdminAuth, CreatorAuth};
use crate::state::AppState;

/// The creator's audit log, newest first.
#[utoipa::path(get, path = "/v1/audit_logs", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage),
        (status = 400, description = "`invalid_query`, `invalid_cursor`", body = ErrorBody),
        (status = 422, description = "`invalid_id`: an `object_id` that is no id", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/audit_logs")]
pub async fn list_audit_logs(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = service::list(&state.store, Some(&creator.tenant.id), query.into_inner()).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The platform's own audit log (creators made and changed, keys minted by the admin),
/// newest first.
#[utoipa::path(get, path = "/v1/admin/audit_logs", tag = "admin", params(AuditQuery),
    responses((status = 200, body = AuditPage),
        (status = 400, description = "`invalid_query`, `invalid_cursor`", body = ErrorBody),
        (status = 422, description = "`invalid_id`: an `object_id` that is no id", body = ErrorBody)),
    security(("admin_token" = [])))]
#[get("/v1/admin/audit_logs")]
pub async fn list_platform_audit_logs(
    state: web::Data<AppState>,
    _: AdminAuth,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::list(&state.store, None, query.into_inner()).await?))
}
