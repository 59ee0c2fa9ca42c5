//! `/v1/customers/{id}`: assignment (through the tenant actor), usage and entitlements
//! (from memory, also while the store is down).

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::{get, put, web, HttpResponse};

use crate::customers::model::{Customer, CustomerUpdate, Entitlement, PutCustomer, Usage};
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::CreatorAuth;
use crate::http::body::ApiJson;
use crate::state::AppState;
use crate::usage::model::parse_id;

fn customer_id(raw: &str) -> Result<&str, ApiError> {
    parse_id("customer_id", Cow::Borrowed(raw)).map(|_| raw)
}

/// Create or update a customer and its tier assignment. Assigning a different tier starts
/// a new billing cycle.
#[utoipa::path(put, path = "/v1/customers/{customer_id}", tag = "customers",
    request_body = PutCustomer,
    params(("customer_id" = String, Path, description = "The creator's id for the customer")),
    responses((status = 200, body = Customer), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("secret_key" = [])))]
#[put("/v1/customers/{customer_id}")]
pub async fn put_customer(
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<String>,
    ApiJson(body): ApiJson<PutCustomer>,
) -> Result<HttpResponse, ApiError> {
    let id = Arc::from(customer_id(&path)?);
    let update = CustomerUpdate::parse(id, body)?;
    let customer = creator.actor.upsert_customer(update).await?;
    Ok(HttpResponse::Ok().json(customer))
}

/// The customer's usage of every meter in the current periods.
#[utoipa::path(get, path = "/v1/customers/{customer_id}/usage", tag = "customers",
    params(("customer_id" = String, Path, description = "The creator's id for the customer")),
    responses((status = 200, body = Usage), (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/customers/{customer_id}/usage")]
pub async fn get_usage(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let usage = state.usage.usage(&creator.tenant, customer_id(&path)?)?;
    Ok(HttpResponse::Ok().json(usage))
}

/// Whether the customer's tier grants a feature.
#[utoipa::path(get, path = "/v1/customers/{customer_id}/entitlements/{feature}", tag = "customers",
    params(("customer_id" = String, Path, description = "The creator's id for the customer"),
        ("feature" = String, Path, description = "Feature name")),
    responses((status = 200, body = Entitlement), (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/customers/{customer_id}/entitlements/{feature}")]
pub async fn get_entitlement(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (customer, feature) = path.into_inner();
    let entitlement =
        state
            .usage
            .entitlement(&creator.tenant, customer_id(&customer)?, &feature)?;
    Ok(HttpResponse::Ok().json(entitlement))
}
