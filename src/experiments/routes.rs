//! `/v1/experiments`: A/B tests over an embed's versions (secret key). Thin handlers over
//! `service`.

use actix_web::{get, post, web, HttpResponse};

use crate::audit::model::Who;
use crate::error::{ApiError, ErrorBody};
use crate::experiments::model::{
    ConversionReceipt, ExperimentPath, ExperimentView, NewConversion, NewExperiment, Results,
};
use crate::experiments::service;
use crate::http::auth::CreatorAuth;
use crate::http::body::ApiJson;
use crate::state::AppState;

/// Make an experiment (a draft): its variants and weights are fixed from now on.
#[utoipa::path(post, path = "/v1/experiments", tag = "experiments", request_body = NewExperiment,
    responses((status = 201, body = ExperimentView),
        (status = 404, description = "`embed_not_found`", body = ErrorBody),
        (status = 409, description = "`already_exists`", body = ErrorBody),
        (status = 422, description = "`invalid_slug`, `invalid_variants`, `invalid_weights` \
            (not each in (0, 1], or not summing to 1), `unknown_version`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/experiments")]
pub async fn create_experiment(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    ApiJson(body): ApiJson<NewExperiment>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(service::create(&state, &creator, &who, body).await?))
}

/// The creator's experiments.
#[utoipa::path(get, path = "/v1/experiments", tag = "experiments",
    responses((status = 200, body = [ExperimentView])), security(("secret_key" = [])))]
#[get("/v1/experiments")]
pub async fn list_experiments(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
) -> HttpResponse {
    HttpResponse::Ok().json(service::list(&state, &creator))
}

/// One experiment.
#[utoipa::path(get, path = "/v1/experiments/{key}", tag = "experiments", params(ExperimentPath),
    responses((status = 200, body = ExperimentView),
        (status = 404, description = "`experiment_not_found`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/experiments/{key}")]
pub async fn get_experiment(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<ExperimentPath>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::get(&state, &creator, &path.key)?))
}

/// Start a draft: widgets of its embed show visitors their variants from now on.
#[utoipa::path(post, path = "/v1/experiments/{key}/start", tag = "experiments",
    params(ExperimentPath),
    responses((status = 200, body = ExperimentView),
        (status = 404, description = "`experiment_not_found`", body = ErrorBody),
        (status = 409, description = "`already_started`; `experiment_running`: another \
            experiment runs on the embed", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/experiments/{key}/start")]
pub async fn start(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<ExperimentPath>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::start(&state, &creator, &who, &path.key).await?))
}

/// Stop a running experiment: widgets show the published version again; the results stay.
#[utoipa::path(post, path = "/v1/experiments/{key}/stop", tag = "experiments",
    params(ExperimentPath),
    responses((status = 200, body = ExperimentView),
        (status = 404, description = "`experiment_not_found`", body = ErrorBody),
        (status = 409, description = "`not_running`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/experiments/{key}/stop")]
pub async fn stop(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<ExperimentPath>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::stop(&state, &creator, &who, &path.key).await?))
}

/// Report a conversion for an experiment with a custom goal: the visitor (or customer)
/// must have seen a variant. A visitor counts once toward the conversion rate; every
/// conversion's revenue counts.
#[utoipa::path(post, path = "/v1/experiments/{key}/conversions", tag = "experiments",
    params(ExperimentPath), request_body = NewConversion,
    responses((status = 201, body = ConversionReceipt),
        (status = 404, description = "`experiment_not_found`, `visitor_not_found`",
            body = ErrorBody),
        (status = 409, description = "`wrong_goal`: the experiment counts checkouts itself",
            body = ErrorBody),
        (status = 422, description = "`invalid_conversion`, `invalid_revenue`, `invalid_id`",
            body = ErrorBody),
        (status = 503, description = "`store_unavailable`, `overloaded`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/experiments/{key}/conversions")]
pub async fn convert(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<ExperimentPath>,
    ApiJson(body): ApiJson<NewConversion>,
) -> Result<HttpResponse, ApiError> {
    let receipt = service::convert(&state, &creator, &path.key, body).await?;
    Ok(HttpResponse::Created().json(receipt))
}

/// The results: per variant its visitors, conversions, revenue, the chance to beat the
/// control and the p-value, with the sample-ratio check and whether there are enough
/// visitors to read them.
#[utoipa::path(get, path = "/v1/experiments/{key}/results", tag = "experiments",
    params(ExperimentPath),
    responses((status = 200, body = Results),
        (status = 404, description = "`experiment_not_found`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/experiments/{key}/results")]
pub async fn results(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<ExperimentPath>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service::results(&state, &creator, &path.key)?))
}
