//! The portal's handlers: entering by a one-time link, the account page, and the changes
//! a customer makes (plan, payment methods, cancel), each through the billing services
//! the JSON API uses.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::billing::checkout::NewCheckout;
use crate::customers::model::CustomerUpdate;
use crate::error::ApiError;
use crate::portal::customer::{domain_creator, PortalCustomer, SIGNED_OUT};
use crate::portal::views::{self, Home};
use crate::sessions::model::Scope;
use crate::state::AppState;
use crate::usage::series::{merge, Granularity};
use crate::web::layout::{is_hex_colour, notice};
use crate::web::session::{SignedIn, Surface};
use crate::web::{html, html_with_https_forms, see_other, PageResult};

/// Months of history the account page charts.
const HISTORY_MONTHS: u32 = 6;

pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.service(enter_page)
        .service(enter)
        .service(signed_out)
        .service(account)
        .service(brand_css)
        .service(change_plan)
        .service(payment_methods)
        .service(cancel)
        .service(sign_out);
}

#[derive(Deserialize)]
pub struct EnterQuery {
    token: String,
}

/// The link's page: a button that posts the token. A GET spends nothing, so a mail
/// scanner or a link preview that fetches the link leaves it good for its customer.
#[get("/portal/enter")]
pub async fn enter_page(query: web::Query<EnterQuery>) -> PageResult {
    Ok(html(views::enter(&query.token)))
}

/// Exchanges a portal session's token for a cookie, once. Posted from the link's own page
/// (a form from another site is refused, so nobody can sign a browser in to a portal of
/// theirs).
#[post("/portal/enter")]
pub async fn enter(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<EnterQuery>,
) -> PageResult {
    crate::web::same_origin(&req)?;
    let refused = || see_other(SIGNED_OUT);
    let Some(creator_id) = crate::sessions::tokens::unverified_audience(&form.token) else {
        return Ok(refused());
    };
    if domain_creator(&state, &req).is_some_and(|domain| *domain.tenant.id != *creator_id) {
        return Ok(refused());
    }
    let Ok(session) = state
        .sessions
        .check(&form.token, &creator_id, Scope::Portal)
    else {
        return Ok(refused());
    };
    let first_use = state
        .store
        .use_customer_session(&creator_id, &session.id, state.usage.now())
        .await?;
    if !first_use {
        return Ok(refused());
    }
    let who = SignedIn {
        creator_id: Some(&creator_id),
        subject: &session.customer_id,
        parent: Some(&session.id),
        lifetime_cap: Some(session.expires_at),
    };
    state
        .browsers
        .sign_in_to(&req, Surface::Portal, who, "/portal")
        .await
}

#[get("/portal/signed-out")]
pub async fn signed_out() -> PageResult {
    Ok(crate::web::html_to(
        HttpResponse::Unauthorized(),
        views::signed_out(),
    ))
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

#[get("/portal")]
pub async fn account(
    state: web::Data<AppState>,
    customer: PortalCustomer,
    done: web::Query<Done>,
) -> PageResult {
    let tenant = &customer.creator.tenant;
    let profile = crate::creators::service::profile(&state, &customer.creator).await?;
    let usage = state.usage.usage_or_new(tenant, &customer.customer_id);
    let config = tenant.config();
    let now = state.usage.now();
    let (from, to) = history_range(now);
    let mut history = Vec::new();
    for (_, meter) in config.live_meters() {
        if profile
            .portal_hidden_meters
            .iter()
            .any(|key| **key == *meter.key)
        {
            continue;
        }
        let is_max = meter.aggregation == crate::usage::decide::Aggregation::Max;
        let hours = state
            .store
            .customer_hours(
                &tenant.id,
                &customer.customer_id,
                &meter.key,
                is_max,
                (from, to),
            )
            .await?;
        history.push((
            meter.key.to_string(),
            meter.name.clone(),
            meter.unit.clone(),
            merge(Granularity::Month, is_max, from, to, &hours),
        ));
    }
    let (invoices, subscribed) = match &state.billing {
        None => (Vec::new(), false),
        Some(billing) => {
            let events = billing
                .store
                .list_billing_events(&tenant.id, Some(&customer.customer_id), 24)
                .await?;
            let invoices = events
                .into_iter()
                .filter(|event| event.r#type.starts_with("invoice."))
                .map(crate::billing::routes::BillingEventView::from)
                .map(|view| serde_json::to_value(view).unwrap_or_default())
                .collect();
            let known = billing
                .store
                .subscription(&tenant.id, &customer.customer_id)
                .await?;
            (invoices, known.stripe_subscription_id.is_some())
        }
    };
    let home = Home {
        creator_name: &profile.name,
        usage: &usage,
        history,
        invoices,
        billing_on: state.billing.is_some(),
        subscribed,
    };
    Ok(html_with_https_forms(views::home(
        &customer,
        &config,
        &home,
        notice(&views::NOTICES, done.done.as_deref()),
    )))
}

/// From the first day of the month `HISTORY_MONTHS - 1` months ago, to the next hour.
fn history_range(now: i64) -> (i64, i64) {
    use chrono::{Datelike, Months, TimeZone, Utc};
    let today = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
    let first = Utc
        .with_ymd_and_hms(today.year(), today.month(), 1, 0, 0, 0)
        .single()
        .and_then(|first| first.checked_sub_months(Months::new(HISTORY_MONTHS - 1)))
        .map_or(now - 180 * 86_400, |first| first.timestamp());
    (first, now.div_euclid(3_600) * 3_600 + 3_600)
}

/// The creator's accent colour (`branding.accent_color`, `#rrggbb`) over the portal's.
#[get("/portal/brand.css")]
pub async fn brand_css(state: web::Data<AppState>, customer: PortalCustomer) -> PageResult {
    let profile = crate::creators::service::profile(&state, &customer.creator).await?;
    let accent = profile.branding["accent_color"]
        .as_str()
        .filter(|colour| is_hex_colour(colour));
    let css = accent.map_or_else(String::new, |colour| {
        format!(":root {{ --accent: {colour}; }}\n")
    });
    Ok(HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(css))
}

#[derive(Deserialize)]
pub struct PlanForm {
    csrf: String,
    tier: String,
}

/// Moves the customer to another tier: with billing on, a paid tier goes through Stripe
/// (Checkout, or the subscription it has); a free tier, or billing off, is assigned here.
#[post("/portal/plan")]
pub async fn change_plan(
    state: web::Data<AppState>,
    req: HttpRequest,
    customer: PortalCustomer,
    form: web::Form<PlanForm>,
) -> PageResult {
    customer.session.check_csrf(&form.csrf)?;
    let config = customer.creator.tenant.config();
    let tier = config
        .tier_id(&form.tier)
        .map(|id| config.tier(id).clone())
        .ok_or_else(|| crate::tenants::actor::tier_not_found(&form.tier))?;
    let paid = tier.definition.price.amount > 0;
    if let (Some(billing), true) = (&state.billing, paid) {
        let base = format!("{}/portal", state.public_base(&req));
        let order = NewCheckout {
            customer_id: customer.customer_id.clone(),
            tier: form.tier.clone(),
            success_url: format!("{base}?done=checkout_done"),
            cancel_url: base,
        };
        let sold = billing
            .checkout(&customer.creator, &customer.who, &order, None)
            .await?;
        return Ok(match sold.kind {
            "checkout" => see_other(&sold.url),
            _ => see_other("/portal?done=plan_changed"),
        });
    }
    let request = serde_json::from_value(serde_json::json!({ "tier": form.tier }))
        .map_err(|e| ApiError::invalid("invalid_value", e.to_string()))?;
    let update =
        CustomerUpdate::parse(std::sync::Arc::from(customer.customer_id.as_str()), request)?;
    let record = customer.who.customer_change(
        &customer.creator.tenant.id,
        state.usage.now(),
        "put",
        &customer.customer_id,
    );
    crate::customers::service::put(&state, &customer.creator, update, record).await?;
    Ok(see_other("/portal?done=plan_changed"))
}

#[derive(Deserialize)]
pub struct Csrf {
    csrf: String,
}

/// Sends the customer to Stripe's own portal (payment methods, receipts).
#[post("/portal/payment-methods")]
pub async fn payment_methods(
    state: web::Data<AppState>,
    req: HttpRequest,
    customer: PortalCustomer,
    form: web::Form<Csrf>,
) -> PageResult {
    customer.session.check_csrf(&form.csrf)?;
    let billing = state
        .billing
        .as_ref()
        .ok_or_else(crate::billing::billing_off)?;
    let back = format!("{}/portal", state.public_base(&req));
    let url = billing
        .billing_portal(&customer.creator, &customer.customer_id, &back, None)
        .await?;
    Ok(see_other(&url))
}

#[post("/portal/cancel")]
pub async fn cancel(
    state: web::Data<AppState>,
    customer: PortalCustomer,
    form: web::Form<Csrf>,
) -> PageResult {
    customer.session.check_csrf(&form.csrf)?;
    let billing = state
        .billing
        .as_ref()
        .ok_or_else(crate::billing::billing_off)?;
    billing
        .cancel_subscription(
            &customer.creator,
            &customer.who,
            &customer.customer_id,
            true,
            None,
        )
        .await?;
    Ok(see_other("/portal?done=cancelled"))
}

#[post("/portal/sign-out")]
pub async fn sign_out(
    state: web::Data<AppState>,
    req: HttpRequest,
    customer: PortalCustomer,
    form: web::Form<Csrf>,
) -> PageResult {
    customer.session.check_csrf(&form.csrf)?;
    let removal = state
        .browsers
        .end(&req, Surface::Portal, &customer.session)
        .await?;
    let mut response = see_other(SIGNED_OUT);
    response
        .add_cookie(&removal)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(response)
}
