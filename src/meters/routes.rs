//! `/v1/meters`: thin handlers over `service` (writes) and the config snapshot (reads).
//! A delete is answered once the store and memory have it; with billing on, the meter's
//! Stripe meter is then deactivated (`billing::tidy`), and a Stripe failure there is
//! retried by the reporter rather than failing the delete.

use actix_web::{delete, get, post, web, HttpResponse};

use crate::audit::model::Who;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::CreatorAuth;
use crate::http::body::ApiJson;
use crate::meters::model::{MeterView, NewMeter};
use crate::meters::service;
use crate::state::AppState;
use crate::tenants::actor::meter_not_found;

/// Create a meter.
#[utoipa::path(post, path = "/v1/meters", tag = "meters", request_body = NewMeter,
    responses((status = 201, body = MeterView),
        (status = 409, description = "`already_exists`", body = ErrorBody),
        (status = 422, description = "`invalid_slug`: not a slug; `invalid_value`: a name or unit too long",
            body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/meters")]
pub async fn create_meter(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    ApiJson(body): ApiJson<NewMeter>,
) -> Result<HttpResponse, ApiError> {
    let created = service::create(&state, &creator, &who, body).await?;
    Ok(HttpResponse::Created().json(MeterView::from(&*created)))
}

/// List the creator's meters.
#[utoipa::path(get, path = "/v1/meters", tag = "meters",
    responses((status = 200, body = [MeterView])), security(("secret_key" = [])))]
#[get("/v1/meters")]
pub async fn list_meters(CreatorAuth(creator): CreatorAuth) -> HttpResponse {
    let config = creator.tenant.config();
    let meters: Vec<MeterView> = config
        .live_meters()
        .map(|(_, m)| MeterView::from(&**m))
        .collect();
    HttpResponse::Ok().json(meters)
}

/// One meter.
#[utoipa::path(get, path = "/v1/meters/{key}", tag = "meters",
    params(("key" = String, Path, description = "Meter key")),
    responses((status = 200, body = MeterView),
        (status = 404, description = "`meter_not_found`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/meters/{key}")]
pub async fn get_meter(
    CreatorAuth(creator): CreatorAuth,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let config = creator.tenant.config();
    let id = config.meter_id(&key).ok_or_else(|| meter_not_found(&key))?;
    Ok(HttpResponse::Ok().json(MeterView::from(&**config.meter(id))))
}

/// Delete a meter, with the usage it counted (a meter made later with the same key starts
/// empty). Refused while a tier caps it. With billing on, its Stripe meter is deactivated.
#[utoipa::path(delete, path = "/v1/meters/{key}", tag = "meters",
    params(("key" = String, Path, description = "Meter key")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "`meter_not_found`", body = ErrorBody),
        (status = 409, description = "`in_use`: a tier caps the meter (the message names them)",
            body = ErrorBody)),
    security(("secret_key" = [])))]
#[delete("/v1/meters/{key}")]
pub async fn delete_meter(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    service::delete(&state, &creator, &who, &key).await?;
    Ok(HttpResponse::NoContent().finish())
}
