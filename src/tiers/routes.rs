//! `/v1/tiers`: thin handlers over `service` (writes) and the config snapshot (reads).
//! With billing on, a created or changed tier is synced to Stripe before the
//! answer, which shows the outcome (`stripe`); a failed sync keeps the tier and is retried
//! by the reporter's next pass (or the next change or checkout). A deleted tier's Stripe
//! Product and Prices are archived after the delete (`billing::tidy`), retried likewise.

use actix_web::{delete, get, patch, post, web, HttpResponse};

use crate::audit::model::Who;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::CreatorAuth;
use crate::http::body::ApiJson;
use crate::state::AppState;
use crate::tenants::actor::tier_not_found;
use crate::tiers::model::{NewTier, TierPatch, TierView};
use crate::tiers::service::{self, ChangedTier};

/// Create a tier. Caps name existing meters; `default: true` makes it the tier of every
/// customer without an assignment.
#[utoipa::path(post, path = "/v1/tiers", tag = "tiers", request_body = NewTier,
    responses((status = 201, body = ChangedTier),
        (status = 404, description = "`meter_not_found`: a cap names no meter", body = ErrorBody),
        (status = 409, description = "`already_exists`", body = ErrorBody),
        (status = 422, description = "`invalid_slug`, `invalid_price`, `invalid_cap`, `invalid_value`",
            body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/tiers")]
pub async fn create_tier(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    ApiJson(body): ApiJson<NewTier>,
) -> Result<HttpResponse, ApiError> {
    let created = service::create(&state, &creator, &who, body).await?;
    Ok(HttpResponse::Created().json(created))
}

/// A tier as answered after a change: the tier, and its Stripe sync outcome when billing
/// is on. Kept here, at the edge, so the tier model knows nothing of billing.
/// List the creator's tiers.
#[utoipa::path(get, path = "/v1/tiers", tag = "tiers",
    responses((status = 200, body = [TierView])), security(("secret_key" = [])))]
#[get("/v1/tiers")]
pub async fn list_tiers(CreatorAuth(creator): CreatorAuth) -> HttpResponse {
    let config = creator.tenant.config();
    let tiers: Vec<TierView> = config.live_tiers().map(|t| TierView::from(&**t)).collect();
    HttpResponse::Ok().json(tiers)
}

/// One tier.
#[utoipa::path(get, path = "/v1/tiers/{key}", tag = "tiers",
    params(("key" = String, Path, description = "Tier key")),
    responses((status = 200, body = TierView),
        (status = 404, description = "`tier_not_found`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/tiers/{key}")]
pub async fn get_tier(
    CreatorAuth(creator): CreatorAuth,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let config = creator.tenant.config();
    let id = config.tier_id(&key).ok_or_else(|| tier_not_found(&key))?;
    Ok(HttpResponse::Ok().json(TierView::from(&**config.tier(id))))
}

/// Change a tier: the fields given replace the tier's. New caps apply to the next event.
#[utoipa::path(patch, path = "/v1/tiers/{key}", tag = "tiers", request_body = TierPatch,
    params(("key" = String, Path, description = "Tier key")),
    responses((status = 200, body = ChangedTier),
        (status = 404, description = "`tier_not_found`; `meter_not_found`: a cap names no meter",
            body = ErrorBody),
        (status = 422, description = "`invalid_slug`, `invalid_price`, `invalid_cap`, `invalid_value`",
            body = ErrorBody)),
    security(("secret_key" = [])))]
#[patch("/v1/tiers/{key}")]
pub async fn update_tier(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    key: web::Path<String>,
    ApiJson(body): ApiJson<TierPatch>,
) -> Result<HttpResponse, ApiError> {
    let changed = service::update(&state, &creator, &who, &key, body).await?;
    Ok(HttpResponse::Ok().json(changed))
}

/// Delete a tier. Refused while customers are on it; for the default tier, also while any
/// customer has no tier (those are on the default). With billing on, its Stripe Product and
/// Prices are archived.
#[utoipa::path(delete, path = "/v1/tiers/{key}", tag = "tiers",
    params(("key" = String, Path, description = "Tier key")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "`tier_not_found`", body = ErrorBody),
        (status = 409, description = "`in_use`: customers are on the tier", body = ErrorBody)),
    security(("secret_key" = [])))]
#[delete("/v1/tiers/{key}")]
pub async fn delete_tier(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    service::delete(&state, &creator, &who, &key).await?;
    Ok(HttpResponse::NoContent().finish())
}
