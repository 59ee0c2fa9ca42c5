//! The creator's billing endpoints, thin: each checks its input and calls the billing
//! service (`accounts`, `checkout`, `subscriptions`, `settings`), or reads what billing did
//! (webhook events, usage reports).

use std::borrow::Cow;

use actix_web::{get, post, put, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::Object;

use crate::audit::model::Who;
use crate::billing::accounts::{AccountView, NewOnboarding, OnboardingView, PutAccount};
use crate::billing::checkout::{CheckoutView, NewCheckout};
use crate::billing::settings::BillingSettings;
use crate::billing::subscriptions::SubscriptionView;
use crate::billing::{billing_off, Billing};
use crate::customers::model::{is_stripe_id, parse_email};
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::CreatorAuth;
use crate::http::body::{parse_json, ApiJson, Body};
use crate::schema::{integer, parse_url, url_schema};
use crate::state::AppState;
use crate::store::billing::{BillingEventRow, ReportRow};
use crate::usage::model::{id_schema, parse_id};
use crate::usage::period::rfc3339;

fn billing(state: &AppState) -> Result<&Billing, ApiError> {
    state.billing.as_ref().ok_or_else(billing_off)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    #[param(schema_with = limit_schema)]
    pub limit: Option<i64>,
}

/// The most rows one list answers, and how many when `limit` is not given.
const MAX_LIST: i64 = 500;
const DEFAULT_LIST: i64 = 100;

fn limit_schema() -> Object {
    let mut schema = integer(1, MAX_LIST, "At most this many, newest first: 1–500");
    schema.default = Some(DEFAULT_LIST.into());
    schema
}

impl ListQuery {
    fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIST),
            Some(limit @ 1..=MAX_LIST) => Ok(limit),
            Some(_) => Err(ApiError::invalid(
                "invalid_limit",
                format!("limit must be between 1 and {MAX_LIST}"),
            )),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BillingEventView {
    pub event_id: String,
    /// Stripe's event type (`invoice.paid`, `customer.subscription.updated`, …), or
    /// `staryer.usage_drift`: Stripe counted other usage than was reported (reconciliation).
    #[serde(rename = "type")]
    pub kind: String,
    pub customer_id: Option<String>,
    pub stripe_customer_id: Option<String>,
    /// The Stripe object the event is about (`in_…`, `sub_…`, `cs_…`; the meter, `mtr_…`,
    /// for a drift).
    pub object_id: Option<String>,
    /// Minor units: due for `invoice.created` and `.payment_failed`, paid for `.paid`. For
    /// `staryer.usage_drift`, whole units of the meter: reported minus counted by Stripe.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub status: Option<String>,
    pub received_at: String,
}

impl From<BillingEventRow> for BillingEventView {
    fn from(row: BillingEventRow) -> Self {
        BillingEventView {
            event_id: row.event_id,
            kind: row.r#type,
            customer_id: row.customer_id,
            stripe_customer_id: row.stripe_customer_id,
            object_id: row.object_id,
            amount: row.amount,
            currency: row.currency,
            status: row.status,
            received_at: rfc3339(row.received_at),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReportView {
    /// The meter event's identifier: the same on every attempt.
    pub identifier: String,
    pub customer_id: String,
    pub meter: String,
    pub stripe_customer_id: String,
    /// Whole units.
    pub value: i64,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub created_at: String,
    pub sent_at: Option<String>,
    pub last_error: Option<String>,
}

impl From<ReportRow> for ReportView {
    fn from(row: ReportRow) -> Self {
        ReportView {
            identifier: row.identifier,
            customer_id: row.customer_id,
            meter: row.meter_key,
            stripe_customer_id: row.stripe_customer_id,
            value: row.value,
            state: row.state,
            attempts: row.attempts,
            created_at: rfc3339(row.created_at),
            sent_at: row.sent_at.map(rfc3339),
            last_error: row.last_error,
        }
    }
}

/// A failed report put back in the queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequeuedReport {
    pub identifier: String,
    /// `pending`: it is sent again, under the same identifier.
    pub state: &'static str,
}

/// A list answer: each row as its view.
fn listed<Row, View: From<Row> + Serialize>(rows: Vec<Row>) -> HttpResponse {
    let views: Vec<View> = rows.into_iter().map(View::from).collect();
    HttpResponse::Ok().json(views)
}

/// The creator's connected Stripe account, and where each tier stands with Stripe (read
/// from the store: a tier `not_synced` is synced by the reporter's next pass, or its next change or checkout).
#[utoipa::path(get, path = "/v1/billing/account", tag = "billing",
    responses((status = 200, body = AccountView),
        (status = 409, description = "`billing_off`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/billing/account")]
pub async fn get_account(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
) -> Result<HttpResponse, ApiError> {
    let view = billing(&state)?.account_view(&creator).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Record an existing connected account (checked with Stripe first); every priced tier is
/// synced to it.
#[utoipa::path(put, path = "/v1/billing/account", tag = "billing", request_body = PutAccount,
    responses((status = 200, body = AccountView),
        (status = 409, description = "`billing_off`, `account_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_account_id`, `stripe_account_not_found`",
            body = ErrorBody),
        (status = 502, description = "`stripe_error`, `stripe_unreachable`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[put("/v1/billing/account")]
pub async fn put_account(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    ApiJson(body): ApiJson<PutAccount>,
) -> Result<HttpResponse, ApiError> {
    let billing = billing(&state)?;
    if !is_stripe_id(&body.account_id, "acct_") {
        return Err(ApiError::invalid(
            "invalid_account_id",
            "account_id must be a Stripe account id (acct_…)",
        ));
    }
    let view = billing
        .connect_existing(&creator, &who, &body.account_id)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Onboard with Stripe: makes a Standard connected account (once) and answers the
/// account link to send the creator to.
#[utoipa::path(post, path = "/v1/billing/onboarding", tag = "billing",
    request_body = NewOnboarding,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Optional, 1–200 visible ASCII characters: the same key answers the \
            same link. Without it, each request gets a new link (links are single-use).")),
    responses((status = 200, body = OnboardingView),
        (status = 409, description = "`billing_off`", body = ErrorBody),
        (status = 422, description = "`invalid_url`, `invalid_email`, \
            `invalid_idempotency_key`", body = ErrorBody),
        (status = 502, description = "`stripe_error`, `stripe_unreachable`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/billing/onboarding")]
pub async fn start_onboarding(
    request: HttpRequest,
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    ApiJson(body): ApiJson<NewOnboarding>,
) -> Result<HttpResponse, ApiError> {
    let billing = billing(&state)?;
    parse_url("refresh_url", &body.refresh_url)?;
    parse_url("return_url", &body.return_url)?;
    if let Some(email) = &body.email {
        parse_email(email)?;
    }
    let view = billing
        .onboard(&creator, &who, &body, caller_key(&request)?)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The caller's `Idempotency-Key` header, if it sent one (1–200 visible characters).
fn caller_key(request: &HttpRequest) -> Result<Option<&str>, ApiError> {
    match request.headers().get("idempotency-key").map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(key)) if !key.is_empty() && key.len() <= 200 => Ok(Some(key)),
        Some(_) => Err(ApiError::invalid(
            "invalid_idempotency_key",
            "the Idempotency-Key header must be 1 to 200 visible ASCII characters",
        )),
    }
}

/// Sell a tier: a subscription Checkout Session on the creator's account (see
/// `billing::checkout`). A customer that already has a subscription is moved to the tier
/// instead (`kind: subscription_update`): never a second subscription. Secret key only:
/// whoever may start a checkout for a customer id may change that customer's tier, so
/// browsers go through the creator's server (the embeds will carry a signed customer
/// token).
#[utoipa::path(post, path = "/v1/checkout/sessions", tag = "billing", request_body = NewCheckout,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Optional, 1–200 visible ASCII characters: the same key answers the \
            same session. Without it, the same request within ten minutes does.")),
    responses((status = 200, body = CheckoutView),
        (status = 404, description = "`tier_not_found`", body = ErrorBody),
        (status = 409, description = "`billing_off`, `stripe_account_missing`, \
            `subscription_not_active` (the customer's subscription must be paid first)",
            body = ErrorBody),
        (status = 422, description = "`invalid_id`, `invalid_url`, `tier_not_priced`, \
            `invalid_idempotency_key`", body = ErrorBody),
        (status = 502, description = "`stripe_error`, `stripe_unreachable`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/checkout/sessions")]
pub async fn create_checkout_session(
    request: HttpRequest,
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    ApiJson(body): ApiJson<NewCheckout>,
) -> Result<HttpResponse, ApiError> {
    let billing = billing(&state)?;
    parse_id("customer_id", Cow::Borrowed(body.customer_id.as_str()))?;
    parse_url("success_url", &body.success_url)?;
    parse_url("cancel_url", &body.cancel_url)?;
    let view = billing
        .checkout(&creator, &who, &body, caller_key(&request)?)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// What Stripe told the creator through webhooks (invoices, checkouts, subscription
/// changes), newest first.
#[utoipa::path(get, path = "/v1/billing/events", tag = "billing", params(ListQuery),
    responses((status = 200, body = [BillingEventView]),
        (status = 409, description = "`billing_off`", body = ErrorBody),
        (status = 422, description = "`invalid_limit`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/billing/events")]
pub async fn list_events(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let billing = billing(&state)?;
    let rows = billing
        .store
        .list_billing_events(&creator.tenant.id, None, query.limit()?)
        .await?;
    Ok(listed::<_, BillingEventView>(rows))
}

/// Puts a failed report back in the queue, once its cause is fixed at Stripe (say, the
/// customer it names exists again). It is sent with its original identifier.
#[utoipa::path(post, path = "/v1/billing/reports/{identifier}/retry", tag = "billing",
    params(("identifier" = String, Path, description = "The report's identifier")),
    responses((status = 200, body = RequeuedReport),
        (status = 404, description = "`report_not_found`: no failed report by that identifier",
            body = ErrorBody),
        (status = 409, description = "`billing_off`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/billing/reports/{identifier}/retry")]
pub async fn retry_report(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    identifier: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let billing = billing(&state)?;
    let requeued = billing
        .store
        .requeue_report(&creator.tenant.id, &identifier, billing.clock.now())
        .await?;
    if !requeued {
        return Err(ApiError::not_found(
            "report_not_found",
            format!("no failed report `{identifier}`"),
        ));
    }
    Ok(HttpResponse::Ok().json(RequeuedReport {
        identifier: identifier.into_inner(),
        state: "pending",
    }))
}

/// The usage reports sent (or being sent) to Stripe, newest first.
#[utoipa::path(get, path = "/v1/billing/reports", tag = "billing", params(ListQuery),
    responses((status = 200, body = [ReportView]),
        (status = 409, description = "`billing_off`", body = ErrorBody),
        (status = 422, description = "`invalid_limit`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/billing/reports")]
pub async fn list_reports(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let billing = billing(&state)?;
    let rows = billing
        .store
        .list_reports(&creator.tenant.id, query.limit()?)
        .await?;
    Ok(listed::<_, ReportView>(rows))
}

/// The creator's billing choices (the defaults until it sets them).
#[utoipa::path(get, path = "/v1/billing/settings", tag = "billing",
    responses((status = 200, body = BillingSettings),
        (status = 409, description = "`billing_off`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/billing/settings")]
pub async fn get_settings(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
) -> Result<HttpResponse, ApiError> {
    let settings = billing(&state)?.settings(&creator.tenant.id).await?;
    Ok(HttpResponse::Ok().json(settings))
}

/// Replace the creator's billing choices; a field left out takes its default. A new
/// `tax_behavior` makes new Prices for every priced tier.
#[utoipa::path(put, path = "/v1/billing/settings", tag = "billing",
    request_body = BillingSettings,
    responses((status = 200, body = BillingSettings),
        (status = 409, description = "`billing_off`", body = ErrorBody),
        (status = 422, description = "`invalid_grace_period`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[put("/v1/billing/settings")]
pub async fn put_settings(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    ApiJson(body): ApiJson<BillingSettings>,
) -> Result<HttpResponse, ApiError> {
    billing(&state)?
        .save_settings(&creator.tenant.id, &who, &body)
        .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// `/v1/customers/{customer_id}/…` of the billing endpoints.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SubscriberPath {
    /// The creator's id for the customer.
    #[param(schema_with = id_schema)]
    customer_id: String,
}

impl SubscriberPath {
    fn customer_id(&self) -> Result<&str, ApiError> {
        parse_id("customer_id", Cow::Borrowed(&self.customer_id))?;
        Ok(&self.customer_id)
    }
}

/// `POST /v1/customers/{id}/subscription/cancel` (the body may be left out).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// `true` (the default): the subscription ends when the period paid for does, and the
    /// customer keeps its tier until then. `false`: it ends now, prorated per the
    /// settings, and the customer is on the default tier at once.
    #[serde(default = "at_period_end_default")]
    #[schema(default = true)]
    pub at_period_end: bool,
}

fn at_period_end_default() -> bool {
    true
}

/// Cancel the customer's subscription, at period end or now.
#[utoipa::path(post, path = "/v1/customers/{customer_id}/subscription/cancel", tag = "billing",
    params(SubscriberPath, ("Idempotency-Key" = Option<String>, Header,
        description = "Optional, 1–200 visible ASCII characters")),
    request_body = Option<CancelRequest>,
    responses((status = 200, body = SubscriptionView),
        (status = 404, description = "`subscription_not_found`", body = ErrorBody),
        (status = 409, description = "`billing_off`, `stripe_account_missing`", body = ErrorBody),
        (status = 422, description = "`invalid_id`, `invalid_idempotency_key`", body = ErrorBody),
        (status = 502, description = "`stripe_error`, `stripe_unreachable`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/customers/{customer_id}/subscription/cancel")]
pub async fn cancel_subscription(
    request: HttpRequest,
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<SubscriberPath>,
    Body(bytes): Body,
) -> Result<HttpResponse, ApiError> {
    // The body is optional (absent, or `null` as the document allows): without one, the
    // subscription ends at period end.
    let text = bytes.trim_ascii();
    let body: CancelRequest = if text.is_empty() || text == b"null" {
        CancelRequest {
            at_period_end: at_period_end_default(),
        }
    } else {
        parse_json(&bytes)?
    };
    let view = billing(&state)?
        .cancel_subscription(
            &creator,
            &who,
            path.customer_id()?,
            body.at_period_end,
            caller_key(&request)?,
        )
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Resume a subscription set to end at period end.
#[utoipa::path(post, path = "/v1/customers/{customer_id}/subscription/resume", tag = "billing",
    params(SubscriberPath, ("Idempotency-Key" = Option<String>, Header,
        description = "Optional, 1–200 visible ASCII characters")),
    responses((status = 200, body = SubscriptionView),
        (status = 404, description = "`subscription_not_found`: none, or it has ended",
            body = ErrorBody),
        (status = 409, description = "`billing_off`, `stripe_account_missing`", body = ErrorBody),
        (status = 422, description = "`invalid_id`, `invalid_idempotency_key`", body = ErrorBody),
        (status = 502, description = "`stripe_error`, `stripe_unreachable`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/customers/{customer_id}/subscription/resume")]
pub async fn resume_subscription(
    request: HttpRequest,
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<SubscriberPath>,
) -> Result<HttpResponse, ApiError> {
    let view = billing(&state)?
        .resume_subscription(&creator, path.customer_id()?, caller_key(&request)?)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /v1/customers/{id}/billing_portal`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPortalSession {
    /// Where Stripe's portal sends the customer back.
    #[schema(schema_with = url_schema)]
    pub return_url: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PortalView {
    /// Stripe's customer portal for this customer (single use, short-lived).
    pub url: String,
}

/// A session of Stripe's customer portal (payment methods, invoices) for the customer.
#[utoipa::path(post, path = "/v1/customers/{customer_id}/billing_portal", tag = "billing",
    params(SubscriberPath, ("Idempotency-Key" = Option<String>, Header,
        description = "Optional, 1–200 visible ASCII characters: the same key answers the \
            same link. Without it, each request gets a new one")),
    request_body = NewPortalSession,
    responses((status = 200, body = PortalView),
        (status = 404, description = "`customer_not_found`", body = ErrorBody),
        (status = 409, description = "`billing_off`, `stripe_account_missing`", body = ErrorBody),
        (status = 422, description = "`invalid_id`, `invalid_url`, `invalid_idempotency_key`",
            body = ErrorBody),
        (status = 502, description = "`stripe_error`, `stripe_unreachable`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/customers/{customer_id}/billing_portal")]
pub async fn create_billing_portal(
    request: HttpRequest,
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    path: web::Path<SubscriberPath>,
    ApiJson(body): ApiJson<NewPortalSession>,
) -> Result<HttpResponse, ApiError> {
    parse_url("return_url", &body.return_url)?;
    let url = billing(&state)?
        .billing_portal(
            &creator,
            path.customer_id()?,
            &body.return_url,
            caller_key(&request)?,
        )
        .await?;
    Ok(HttpResponse::Ok().json(PortalView { url }))
}
