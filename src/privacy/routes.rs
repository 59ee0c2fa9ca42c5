//! `GET /v1/customers/{id}/export` and `DELETE /v1/customers/{id}` (secret key): thin
//! handlers over `service`.

use actix_web::{delete, get, web, HttpResponse};

use crate::audit::model::Who;
use crate::customers::routes::{customer_id, CustomerPath};
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::CreatorAuth;
use crate::privacy::model::{CustomerExport, EraseQuery, ErasureReceipt};
use crate::privacy::service;
use crate::state::AppState;

/// Everything Staryer holds about the customer, as one JSON document: its record, usage
/// (current periods and every stored hour), sessions, experiment exposures and
/// conversions, Stripe events and usage reported to Stripe, the events told about it,
/// and the audit log's records about it.
#[utoipa::path(get, path = "/v1/customers/{customer_id}/export", tag = "customers",
    params(CustomerPath),
    responses((status = 200, body = CustomerExport),
        (status = 404, description = "`customer_not_found`: nothing is held about it", body = ErrorBody),
        (status = 422, description = "`invalid_id`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/customers/{customer_id}/export")]
pub async fn export_customer(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<CustomerPath>,
) -> Result<HttpResponse, ApiError> {
    let id = customer_id(&path.customer_id)?;
    Ok(HttpResponse::Ok().json(service::export(&state, &creator, id).await?))
}

/// Erase the customer: its record and email, usage, idempotency answers, sessions and
/// the events told about it leave every table and memory, and no restart brings them
/// back. What billing and the experiments' counts need stays under the customer's
/// reference (`cus_…`). With billing on, its Stripe Customer is deleted too unless
/// `keep_stripe_customer=true`. The erase is in the audit log, under the reference.
#[utoipa::path(delete, path = "/v1/customers/{customer_id}", tag = "customers",
    params(CustomerPath, EraseQuery),
    responses((status = 200, body = ErasureReceipt),
        (status = 404, description = "`customer_not_found`: nothing is held about it", body = ErrorBody),
        (status = 422, description = "`invalid_id`", body = ErrorBody),
        (status = 502, description = "`stripe_error`, `stripe_unreachable`: the Stripe Customer \
            could not be deleted; nothing was erased", body = ErrorBody)),
    security(("secret_key" = [])))]
#[delete("/v1/customers/{customer_id}")]
pub async fn erase_customer(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<CustomerPath>,
    query: web::Query<EraseQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = customer_id(&path.customer_id)?;
    let receipt = service::erase(&state, &creator, who, id, query.keep_stripe_customer).await?;
    Ok(HttpResponse::Ok().json(receipt))
}
