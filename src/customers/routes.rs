//! `/v1/customers`: the list (from the store, a page at a time); `/v1/customers/{id}`:
//! assignment (through the tenant actor), usage and entitlements (from memory, also while
//! the store is down).

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::{get, put, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::audit::model::Who;
use crate::billing::subscriptions::AssignedCustomer;
use crate::customers::listing::{self, CustomerPage, CustomerQuery};
use crate::customers::model::{CustomerUpdate, Entitlement, PutCustomer, Usage};
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::CreatorAuth;
use crate::http::body::ApiJson;
use crate::meters::model::parse_slug;
use crate::state::AppState;
use crate::usage::model::{id_schema, parse_id};

/// `/v1/customers/{customer_id}…`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CustomerPath {
    /// The creator's id for the customer.
    #[param(schema_with = id_schema)]
    pub customer_id: String,
}

/// `/v1/customers/{customer_id}/entitlements/{feature}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EntitlementPath {
    /// The creator's id for the customer.
    #[param(schema_with = id_schema)]
    customer_id: String,
    /// Feature name (a slug, as in a tier's `features`).
    #[param(schema_with = crate::meters::model::slug_schema)]
    feature: String,
}

/// The path's customer id, checked as every customer route checks it.
pub fn customer_id(raw: &str) -> Result<&str, ApiError> {
    parse_id("customer_id", Cow::Borrowed(raw)).map(|_| raw)
}

/// The creator's customers, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(CustomerQuery),
    responses((status = 200, body = CustomerPage),
        (status = 400, description = "`invalid_query`, `invalid_cursor`", body = ErrorBody),
        (status = 422, description = "`invalid_slug`: a `tier` that is no key", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/customers")]
pub async fn list_customers(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    query: web::Query<CustomerQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = listing::list(&state.store, &creator.tenant.id, &query).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Create or update a customer and its tier assignment. Assigning a different tier starts
/// a new billing cycle. With billing on, a customer with a subscription moves through it
/// (`plan_change`: updated now, or scheduled for period end per the creator's settings),
/// and a customer with an email put on a paid tier gets its Stripe Customer.
#[utoipa::path(put, path = "/v1/customers/{customer_id}", tag = "customers",
    request_body = PutCustomer, params(CustomerPath),
    responses((status = 200, body = AssignedCustomer),
        (status = 404, description = "`tier_not_found`", body = ErrorBody),
        (status = 409, description = "`subscription_not_active`: with billing on, the \
            customer's subscription is unpaid, paused or not yet paid", body = ErrorBody),
        (status = 422, description = "`invalid_id`, `invalid_email`, `invalid_stripe_customer_id`",
            body = ErrorBody),
        (status = 502, description = "`stripe_error`, `stripe_unreachable`: the subscription \
            could not be changed; nothing changed", body = ErrorBody)),
    security(("secret_key" = [])))]
#[put("/v1/customers/{customer_id}")]
pub async fn put_customer(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<CustomerPath>,
    ApiJson(body): ApiJson<PutCustomer>,
) -> Result<HttpResponse, ApiError> {
    let id = Arc::from(customer_id(&path.customer_id)?);
    let update = CustomerUpdate::parse(id, body)?;
    let record = who.customer_change(&creator.tenant.id, state.usage.now(), "put", &update.id);
    let assigned = crate::customers::service::put(&state, &creator, update, record).await?;
    Ok(HttpResponse::Ok().json(assigned))
}

/// The customer's usage of every meter in the current periods.
#[utoipa::path(get, path = "/v1/customers/{customer_id}/usage", tag = "customers",
    params(CustomerPath),
    responses((status = 200, body = Usage),
        (status = 404, description = "`customer_not_found`: never seen", body = ErrorBody),
        (status = 422, description = "`invalid_id`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/customers/{customer_id}/usage")]
pub async fn get_usage(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<CustomerPath>,
) -> Result<HttpResponse, ApiError> {
    let id = customer_id(&path.customer_id)?;
    let mut usage = state.usage.usage(&creator.tenant, id)?;
    usage.billing_status = state
        .billing
        .as_ref()
        .and_then(|billing| billing.standing(&creator.tenant.id, id));
    Ok(HttpResponse::Ok().json(usage))
}

/// Whether the customer's tier grants a feature.
#[utoipa::path(get, path = "/v1/customers/{customer_id}/entitlements/{feature}", tag = "customers",
    params(EntitlementPath),
    responses((status = 200, body = Entitlement),
        (status = 404, description = "`customer_not_found`: never seen", body = ErrorBody),
        (status = 422, description = "`invalid_id`, `invalid_slug`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/customers/{customer_id}/entitlements/{feature}")]
pub async fn get_entitlement(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<EntitlementPath>,
) -> Result<HttpResponse, ApiError> {
    let customer = customer_id(&path.customer_id)?;
    let feature = parse_slug("feature", &path.feature)?;
    let entitlement = state
        .usage
        .entitlement(&creator.tenant, customer, &feature)?;
    Ok(HttpResponse::Ok().json(entitlement))
}
