//! `/v1/embed/…` and `/embed.js`: what widgets call from the creator's pages, with the
//! publishable key, from the origins the creator allows (CORS in `cors`). A customer
//! session token (`X-Staryer-Customer-Token`, scope `embed`) makes a widget act as that
//! customer. Thin handlers over `widget`.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::billing::checkout::CheckoutView;
use crate::embeds::cors::CUSTOMER_TOKEN_HEADER;
use crate::embeds::widget::{self, Recorded, WidgetCheckout, WidgetEvent, WidgetView};
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::BrowserAuth;
use crate::http::body::ApiJson;
use crate::meters::model::slug_schema;
use crate::sessions::model::Scope;
use crate::sessions::service::CustomerSession;
use crate::state::AppState;
use crate::tenants::registry::Creator;
use crate::usage::model::{optional_id_schema, parse_id};

/// The customer the request's token speaks for; 401 for a token that is not valid here.
fn customer(
    state: &AppState,
    req: &HttpRequest,
    creator: &Creator,
) -> Result<Option<CustomerSession>, ApiError> {
    let Some(token) = req.headers().get(CUSTOMER_TOKEN_HEADER) else {
        return Ok(None);
    };
    let token = token
        .to_str()
        .map_err(|_| crate::sessions::service::invalid_token())?;
    state
        .sessions
        .check(token, &creator.tenant.id, Scope::Embed)
        .map(Some)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WidgetPath {
    /// The embed's key.
    #[param(schema_with = slug_schema)]
    embed_key: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct WidgetQuery {
    /// The browser's anonymous visitor id (the script keeps one in `localStorage`): an
    /// experiment shows each visitor one variant for good.
    #[param(schema_with = optional_id_schema)]
    visitor_id: Option<String>,
}

/// An embed as a widget shows it: the version (an experiment's variant for this visitor,
/// whose first view is counted), its tiers and, with a customer token, the customer's
/// usage.
#[utoipa::path(get, path = "/v1/embed/{embed_key}", tag = "embed (browser)",
    params(WidgetPath, WidgetQuery,
        ("key" = Option<String>, Query, description = "The publishable key (or send it as \
            `Authorization: Bearer pk_…`); in the query, a CORS preflight carries it too"),
        ("X-Staryer-Customer-Token" = Option<String>, Header,
            description = "A customer session token (scope `embed`): the widget acts as that customer")),
    responses((status = 200, body = WidgetView),
        (status = 401, description = "`customer_token_required`: a usage meter or upgrade \
            prompt without a token (the answer also carries the published version's `config`, \
            for the widget's signed-out text); `invalid_customer_token`", body = ErrorBody),
        (status = 403, description = "`origin_not_allowed`", body = ErrorBody),
        (status = 404, description = "`embed_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_id`", body = ErrorBody)),
    security(("publishable_key" = [])))]
#[get("/{embed_key}")]
pub async fn view(
    state: web::Data<AppState>,
    BrowserAuth(creator): BrowserAuth,
    path: web::Path<WidgetPath>,
    query: web::Query<WidgetQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if let Some(visitor) = &query.visitor_id {
        parse_id("visitor_id", visitor.into())?;
    }
    let session = customer(&state, &req, &creator)?;
    let answer = widget::view(
        &state,
        &creator,
        &path.embed_key,
        query.visitor_id.as_deref(),
        session,
    )
    .await?;
    let mut response = if answer.sign_in_required {
        HttpResponse::Unauthorized()
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .content_type("application/json")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(answer.body))
}

/// Count a click on a widget's button or a checkout it starts, for the version (and
/// variant) the visitor sees.
#[utoipa::path(post, path = "/v1/embed/events", tag = "embed (browser)",
    request_body = WidgetEvent, params(
        ("key" = Option<String>, Query, description = "The publishable key (or send it as \
            `Authorization: Bearer pk_…`); in the query, a CORS preflight carries it too"),
        ("X-Staryer-Customer-Token" = Option<String>, Header,
            description = "A customer session token (scope `embed`): the widget acts as that customer")),
    responses((status = 202, body = Recorded),
        (status = 401, description = "`invalid_customer_token`", body = ErrorBody),
        (status = 403, description = "`origin_not_allowed`", body = ErrorBody),
        (status = 404, description = "`embed_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_id`", body = ErrorBody),
        (status = 503, description = "`store_unavailable`, `overloaded`", body = ErrorBody)),
    security(("publishable_key" = [])))]
#[post("/events")]
pub async fn event(
    state: web::Data<AppState>,
    BrowserAuth(creator): BrowserAuth,
    req: HttpRequest,
    ApiJson(body): ApiJson<WidgetEvent>,
) -> Result<HttpResponse, ApiError> {
    let session = customer(&state, &req, &creator)?;
    let recorded = widget::record(&state, &creator, body, session).await?;
    Ok(HttpResponse::Accepted().json(recorded))
}

/// Buy a tier the widget offers: a Stripe Checkout Session whose metadata names the
/// embed, version, experiment, variant and visitor. With a customer token it buys for
/// that customer (one already subscribed is moved by a subscription update, `kind:
/// subscription_update`); without one, Stripe makes the buyer a customer, which Staryer
/// then knows by its Stripe id (`cus_…`).
#[utoipa::path(post, path = "/v1/embed/checkout", tag = "embed (browser)",
    request_body = WidgetCheckout, params(
        ("key" = Option<String>, Query, description = "The publishable key (or send it as \
            `Authorization: Bearer pk_…`); in the query, a CORS preflight carries it too"),
        ("X-Staryer-Customer-Token" = Option<String>, Header,
            description = "A customer session token (scope `embed`): the widget acts as that customer")),
    responses((status = 200, body = CheckoutView),
        (status = 401, description = "`invalid_customer_token`", body = ErrorBody),
        (status = 403, description = "`origin_not_allowed`", body = ErrorBody),
        (status = 404, description = "`embed_not_found`, `account_not_connected`",
            body = ErrorBody),
        (status = 409, description = "`billing_off`, `subscription_not_active`", body = ErrorBody),
        (status = 422, description = "`tier_not_offered`, `tier_not_priced`, `invalid_id`",
            body = ErrorBody),
        (status = 502, description = "`stripe_error`, `stripe_unreachable`", body = ErrorBody)),
    security(("publishable_key" = [])))]
#[post("/checkout")]
pub async fn checkout(
    state: web::Data<AppState>,
    BrowserAuth(creator): BrowserAuth,
    req: HttpRequest,
    ApiJson(body): ApiJson<WidgetCheckout>,
) -> Result<HttpResponse, ApiError> {
    let session = customer(&state, &req, &creator)?;
    Ok(HttpResponse::Ok().json(widget::checkout(&state, &creator, body, session).await?))
}

/// The public embed API's routes, under `/v1/embed`, with CORS and preflights.
pub fn scope() -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    use crate::embeds::cors;
    web::scope("/v1/embed")
        .wrap(actix_web::middleware::from_fn(cors::allow_listed_origins))
        .service(event)
        .service(checkout)
        .service(view)
        .route(
            "/{tail:.*}",
            web::method(actix_web::http::Method::OPTIONS).to(cors::preflight),
        )
}
