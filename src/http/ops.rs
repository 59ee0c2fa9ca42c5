//! Operations endpoints, without a key: liveness, readiness, Prometheus metrics and the
//! OpenAPI document.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Status {
    pub status: &'static str,
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Status)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// Ready: the store takes writes, the writer hold is held and the counters are loaded.
/// Not being ready is an answer, not a failure: the body says why (the store's own error
/// when it refuses writes), and it is not logged per request.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Status), (status = 503, body = ErrorBody)))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let not_ready = match state.usage.health.refusal() {
        Some(cause) => ApiError::unavailable("store_unavailable", cause),
        None => match state.ensure_ready() {
            Err(err) => err,
            Ok(()) => return HttpResponse::Ok().json(Status { status: "ready" }),
        },
    };
    actix_web::ResponseError::error_response(&not_ready)
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain", body = String)))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    ::metrics::gauge!(crate::telemetry::metric_names::LIVE_COUNTERS)
        .set(state.registry.live_counters() as f64);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, content_type = "application/json", body = Object)))]
#[get("/openapi.json")]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::openapi::json())
}
