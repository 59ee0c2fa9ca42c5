//! The dashboard's handlers: each reads its member, parses its form, calls the service the
//! JSON API calls, and renders a page or redirects with a notice (post, redirect, get).

use std::sync::Arc;

use actix_web::{get, post, web, HttpRequest};
use serde::Deserialize;

use crate::customers::listing::{self, CustomerQuery};
use crate::customers::model::CustomerUpdate;
use crate::dashboard::forms::{self, Fields};
use crate::dashboard::member::Member;
use crate::dashboard::{overview, views};
use crate::error::ApiError;
use crate::http::body::parse_json;
use crate::state::AppState;
use crate::usage::series::{merge, Granularity};
use crate::users::model::Role;
use crate::web::layout::notice;
use crate::web::session::{SignedIn, Surface};
use crate::web::{html, html_to, see_other, PageResult};

/// Every dashboard route.
pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.service(sign_in_page)
        .service(sign_in)
        .service(sign_out)
        .service(forgot)
        .service(email_reset_link)
        .service(link_page)
        .service(use_link)
        .service(home)
        .service(meters_page)
        .service(create_meter)
        .service(delete_meter)
        .service(tiers_page)
        .service(create_tier)
        .service(tier_page)
        .service(update_tier)
        .service(delete_tier)
        .service(customers_page)
        .service(customer_page)
        .service(change_tier)
        .service(export_customer)
        .service(erase_customer)
        .service(embeds_page)
        .service(embed_page)
        .service(preview_page)
        .service(publish)
        .service(suggest)
        .service(experiments_page)
        .service(experiment_page)
        .service(start_experiment)
        .service(stop_experiment)
        .service(billing_page)
        .service(retry_report)
        .service(notices_page)
        .service(keys_page)
        .service(create_key)
        .service(revoke_key)
        .service(team_page)
        .service(invite)
        .service(set_role)
        .service(password_link)
        .service(remove_user)
        .service(audit_page)
        .service(settings_page)
        .service(save_portal_settings);
}

/// `?done=<notice code>` after a change.
#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

impl Done {
    fn notice(&self) -> Option<&'static str> {
        notice(&views::NOTICES, self.done.as_deref())
    }
}

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
pub struct Csrf {
    csrf: String,
}

/// API views as JSON, for the pages' tables.
fn json_all<T: serde::Serialize>(views: &[T]) -> Vec<serde_json::Value> {
    views
        .iter()
        .map(|view| serde_json::to_value(view).unwrap_or_default())
        .collect()
}

/// Stored rows as their API views, as JSON.
fn views_of<Row, View: From<Row> + serde::Serialize>(rows: Vec<Row>) -> Vec<serde_json::Value> {
    let views: Vec<View> = rows.into_iter().map(View::from).collect();
    json_all(&views)
}

/// The CSRF field of a form read as pairs.
fn csrf_of(fields: &Fields) -> &str {
    forms::field(fields, "csrf")
}

// --- signing in -----------------------------------------------------------------------

#[derive(Deserialize)]
pub struct SignIn {
    email: String,
    password: String,
}

#[get("/dashboard/sign-in")]
pub async fn sign_in_page() -> PageResult {
    Ok(html(views::sign_in(None, "")))
}

#[post("/dashboard/sign-in")]
pub async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<SignIn>,
) -> PageResult {
    crate::web::same_origin(&req)?;
    let addr = state.browsers.client_addr(&req);
    let user = match state.users.sign_in(&form.email, &form.password, addr).await {
        Ok(user) => user,
        Err(err) if err.status.is_client_error() => {
            let mut response = actix_web::HttpResponse::build(err.status);
            if let Some(secs) = err.retry_after_secs {
                response.insert_header(("Retry-After", secs.to_string()));
            }
            return Ok(html_to(
                response,
                views::sign_in(Some(&err.message), &form.email),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    let who = SignedIn {
        creator_id: Some(&user.creator_id),
        subject: &user.id,
        ..SignedIn::default()
    };
    state
        .browsers
        .sign_in_to(&req, Surface::Dashboard, who, "/dashboard")
        .await
}

#[post("/dashboard/sign-out")]
pub async fn sign_out(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
    form: web::Form<Csrf>,
) -> PageResult {
    member.session.check_csrf(&form.csrf)?;
    let removal = state
        .browsers
        .end(&req, Surface::Dashboard, &member.session)
        .await?;
    let mut response = see_other(crate::dashboard::member::SIGN_IN);
    response
        .add_cookie(&removal)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(response)
}

#[get("/dashboard/forgot")]
pub async fn forgot(state: web::Data<AppState>) -> PageResult {
    Ok(html(views::forgot(state.integrations.email_enabled, false)))
}

#[derive(Deserialize)]
pub struct ForgotForm {
    email: String,
}

/// Emails a reset link when the email is a user's (and email is on); answers the same
/// either way. Counted against the address's sign-in attempts.
#[post("/dashboard/forgot")]
pub async fn email_reset_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ForgotForm>,
) -> PageResult {
    crate::web::same_origin(&req)?;
    state
        .users
        .admit_address(state.browsers.client_addr(&req))?;
    if state.integrations.email_enabled {
        state
            .users
            .email_reset_link(&form.email, &state.public_base(&req))
            .await?;
    }
    Ok(html(views::forgot(state.integrations.email_enabled, true)))
}

#[get("/dashboard/link/{token}")]
pub async fn link_page(token: web::Path<String>) -> PageResult {
    Ok(html(views::set_password(
        &format!("/dashboard/link/{}", views::encode(&token)),
        None,
    )))
}

#[derive(Deserialize)]
pub struct NewPassword {
    password: String,
}

#[post("/dashboard/link/{token}")]
pub async fn use_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    form: web::Form<NewPassword>,
) -> PageResult {
    crate::web::same_origin(&req)?;
    let addr = state.browsers.client_addr(&req);
    let user = match state
        .users
        .use_link(&token, form.password.clone(), addr)
        .await
    {
        Ok(user) => user,
        Err(err) if err.status.is_client_error() => {
            let page = views::set_password(
                &format!("/dashboard/link/{}", views::encode(&token)),
                Some(&err.message),
            );
            return Ok(html_to(actix_web::HttpResponse::build(err.status), page));
        }
        Err(err) => return Err(err.into()),
    };
    let who = SignedIn {
        creator_id: Some(&user.creator_id),
        subject: &user.id,
        ..SignedIn::default()
    };
    state
        .browsers
        .sign_in_to(
            &req,
            Surface::Dashboard,
            who,
            "/dashboard?done=password_set",
        )
        .await
}

// --- overview, meters, tiers ----------------------------------------------------------

#[get("/dashboard")]
pub async fn home(
    state: web::Data<AppState>,
    member: Member,
    done: web::Query<Done>,
) -> PageResult {
    let figures = overview::gather(&state, &member.creator).await?;
    Ok(html(views::overview(&member, &figures, done.notice())))
}

#[get("/dashboard/meters")]
pub async fn meters_page(member: Member, done: web::Query<Done>) -> PageResult {
    let config = member.creator.tenant.config();
    Ok(html(views::meters(&member, &config, done.notice())))
}

#[post("/dashboard/meters")]
pub async fn create_meter(
    state: web::Data<AppState>,
    member: Member,
    form: web::Form<Fields>,
) -> PageResult {
    member.may_change(csrf_of(&form))?;
    let body = forms::meter_body(&form);
    let request: crate::meters::model::NewMeter = parse_json(&body)?;
    crate::meters::service::create(&state, &member.creator, &member.who, request).await?;
    Ok(see_other("/dashboard/meters?done=meter_created"))
}

#[post("/dashboard/meters/{key}/delete")]
pub async fn delete_meter(
    state: web::Data<AppState>,
    member: Member,
    key: web::Path<String>,
    form: web::Form<Csrf>,
) -> PageResult {
    member.may_change(&form.csrf)?;
    crate::meters::service::delete(&state, &member.creator, &member.who, &key).await?;
    Ok(see_other("/dashboard/meters?done=meter_deleted"))
}

#[get("/dashboard/tiers")]
pub async fn tiers_page(member: Member, done: web::Query<Done>) -> PageResult {
    let config = member.creator.tenant.config();
    Ok(html(views::tiers(&member, &config, done.notice())))
}

#[post("/dashboard/tiers")]
pub async fn create_tier(
    state: web::Data<AppState>,
    member: Member,
    form: web::Form<Fields>,
) -> PageResult {
    member.may_change(csrf_of(&form))?;
    let body = forms::tier_body(&form, &member.creator.tenant.config(), true)?;
    let request: crate::tiers::model::NewTier = parse_json(&body)?;
    let created =
        crate::tiers::service::create(&state, &member.creator, &member.who, request).await?;
    let tier = created.tier;
    Ok(see_other(&format!(
        "/dashboard/tiers/{}?done=tier_created",
        tier.key
    )))
}

#[get("/dashboard/tiers/{key}")]
pub async fn tier_page(
    state: web::Data<AppState>,
    member: Member,
    key: web::Path<String>,
    done: web::Query<Done>,
) -> PageResult {
    let config = member.creator.tenant.config();
    let id = config
        .tier_id(&key)
        .ok_or_else(|| crate::tenants::actor::tier_not_found(&key))?;
    let tier = config.tier(id);
    let stripe = match &state.billing {
        Some(billing) => Some(
            serde_json::to_value(billing.sync_view(&member.creator.tenant, tier).await)
                .unwrap_or_default(),
        ),
        None => None,
    };
    Ok(html(views::tier(
        &member,
        &config,
        tier,
        stripe.as_ref(),
        done.notice(),
    )))
}

#[post("/dashboard/tiers/{key}")]
pub async fn update_tier(
    state: web::Data<AppState>,
    member: Member,
    key: web::Path<String>,
    form: web::Form<Fields>,
) -> PageResult {
    member.may_change(csrf_of(&form))?;
    let body = forms::tier_body(&form, &member.creator.tenant.config(), false)?;
    let patch: crate::tiers::model::TierPatch = parse_json(&body)?;
    let changed =
        crate::tiers::service::update(&state, &member.creator, &member.who, &key, patch).await?;
    let tier = changed.tier;
    Ok(see_other(&format!(
        "/dashboard/tiers/{}?done=tier_saved",
        tier.key
    )))
}

#[post("/dashboard/tiers/{key}/delete")]
pub async fn delete_tier(
    state: web::Data<AppState>,
    member: Member,
    key: web::Path<String>,
    form: web::Form<Csrf>,
) -> PageResult {
    member.may_change(&form.csrf)?;
    crate::tiers::service::delete(&state, &member.creator, &member.who, &key).await?;
    Ok(see_other("/dashboard/tiers?done=tier_deleted"))
}

// --- customers ------------------------------------------------------------------------

#[get("/dashboard/customers")]
pub async fn customers_page(
    state: web::Data<AppState>,
    member: Member,
    query: web::Query<CustomerQuery>,
) -> PageResult {
    let mut query = query.into_inner();
    // The page's form sends every field; empty ones mean "any".
    query.tier = query.tier.filter(|tier| !tier.is_empty());
    query.cursor = query.cursor.filter(|cursor| !cursor.is_empty());
    let listed = listing::list(&state.store, member.creator_id(), &query).await?;
    let config = member.creator.tenant.config();
    Ok(html(views::customers(
        &member,
        &config,
        &listed,
        (
            query.q.as_deref().unwrap_or_default(),
            query.tier.as_deref().unwrap_or_default(),
        ),
    )))
}

#[get("/dashboard/customers/{customer_id}")]
pub async fn customer_page(
    state: web::Data<AppState>,
    member: Member,
    path: web::Path<String>,
    done: web::Query<Done>,
) -> PageResult {
    let id = crate::customers::routes::customer_id(&path)?;
    let tenant = &member.creator.tenant;
    let mut usage = state.usage.usage(tenant, id)?;
    usage.billing_status = state
        .billing
        .as_ref()
        .and_then(|billing| billing.standing(&tenant.id, id));
    let config = tenant.config();
    let now = state.usage.now();
    let to = now.div_euclid(86_400) * 86_400 + 86_400;
    let from = to - 30 * 86_400;
    let mut history = Vec::new();
    for (_, meter) in config.live_meters() {
        let is_max = meter.aggregation == crate::usage::decide::Aggregation::Max;
        let hours = state
            .store
            .customer_hours(&tenant.id, id, &meter.key, is_max, (from, to))
            .await?;
        history.push((
            meter.name.clone(),
            merge(Granularity::Day, is_max, from, to, &hours),
            meter.unit.clone(),
        ));
    }
    Ok(html(views::customer(
        &member,
        &config,
        &usage,
        &history,
        done.notice(),
    )))
}

#[derive(Deserialize)]
pub struct TierChange {
    csrf: String,
    tier: String,
}

#[post("/dashboard/customers/{customer_id}/tier")]
pub async fn change_tier(
    state: web::Data<AppState>,
    member: Member,
    path: web::Path<String>,
    form: web::Form<TierChange>,
) -> PageResult {
    member.may_change(&form.csrf)?;
    let id = crate::customers::routes::customer_id(&path)?;
    let tenant = &member.creator.tenant;
    // The customer keeps its email and Stripe customer: only the tier changes.
    let emails = state
        .store
        .customer_emails(&tenant.id, &[id.to_string()])
        .await?;
    let body = serde_json::json!({ "tier": form.tier, "email": emails.get(id) });
    let request = serde_json::from_value(body)
        .map_err(|e| ApiError::invalid("invalid_value", e.to_string()))?;
    let update = CustomerUpdate::parse(Arc::from(id), request)?;
    let record = member
        .who
        .customer_change(&tenant.id, state.usage.now(), "put", &update.id);
    crate::customers::service::put(&state, &member.creator, update, record).await?;
    Ok(see_other(&format!(
        "{}?done=tier_changed",
        views::customer_path(id)
    )))
}

#[get("/dashboard/customers/{customer_id}/export")]
pub async fn export_customer(
    state: web::Data<AppState>,
    member: Member,
    path: web::Path<String>,
) -> PageResult {
    let id = crate::customers::routes::customer_id(&path)?;
    let export = crate::privacy::service::export(&state, &member.creator, id).await?;
    Ok(actix_web::HttpResponse::Ok()
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"customer-export.json\"",
        ))
        .insert_header(("Cache-Control", "no-store"))
        .json(export))
}

#[post("/dashboard/customers/{customer_id}/erase")]
pub async fn erase_customer(
    state: web::Data<AppState>,
    member: Member,
    path: web::Path<String>,
    form: web::Form<Csrf>,
) -> PageResult {
    member.may_change(&form.csrf)?;
    let id = crate::customers::routes::customer_id(&path)?;
    crate::privacy::service::erase(&state, &member.creator, member.who.clone(), id, false).await?;
    Ok(see_other("/dashboard/customers?done=customer_erased"))
}

// --- embeds and experiments -----------------------------------------------------------

#[get("/dashboard/embeds")]
pub async fn embeds_page(state: web::Data<AppState>, member: Member) -> PageResult {
    let listed = crate::embeds::service::list(&state, &member.creator);
    Ok(html(views::embeds(&member, &json_all(&listed))))
}

#[get("/dashboard/embeds/{key}")]
pub async fn embed_page(
    state: web::Data<AppState>,
    member: Member,
    key: web::Path<String>,
    req: HttpRequest,
    done: web::Query<Done>,
) -> PageResult {
    let view = crate::embeds::service::get(&state, &member.creator, &key).await?;
    let snippet = crate::embeds::service::snippet(
        &state,
        &member.creator,
        &key,
        &state.public_base(&req),
        None,
    )?;
    Ok(html(views::embed(
        &member,
        &serde_json::to_value(view).unwrap_or_default(),
        &snippet.html,
        state.integrations.suggester.is_some(),
        done.notice(),
    )))
}

#[get("/dashboard/embeds/{key}/preview/{version}")]
pub async fn preview_page(
    state: web::Data<AppState>,
    member: Member,
    path: web::Path<(String, i64)>,
) -> PageResult {
    let (key, version) = path.into_inner();
    let embed = state
        .embeds
        .of(&member.creator.tenant.id)
        .embed(&key)
        .ok_or_else(|| crate::embeds::service::embed_not_found(&key))?;
    let page = views::preview(&embed, version, &member.creator.tenant.config());
    // Framed by the dashboard's own embed page only.
    let mut response = html(page);
    response.headers_mut().insert(
        actix_web::http::header::X_FRAME_OPTIONS,
        actix_web::http::header::HeaderValue::from_static("SAMEORIGIN"),
    );
    response.headers_mut().insert(
        actix_web::http::header::CONTENT_SECURITY_POLICY,
        actix_web::http::header::HeaderValue::from_static(
            "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'self'",
        ),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct PublishForm {
    csrf: String,
    version: i64,
}

#[post("/dashboard/embeds/{key}/publish")]
pub async fn publish(
    state: web::Data<AppState>,
    member: Member,
    key: web::Path<String>,
    form: web::Form<PublishForm>,
) -> PageResult {
    member.may_change(&form.csrf)?;
    let body = crate::embeds::model::Publish {
        version: form.version,
    };
    crate::embeds::service::publish(&state, &member.creator, &member.who, &key, body).await?;
    Ok(see_other(&format!(
        "/dashboard/embeds/{}?done=published",
        views::encode(&key)
    )))
}

#[derive(Deserialize)]
pub struct SuggestForm {
    csrf: String,
    brief: String,
}

#[post("/dashboard/embeds/{key}/suggest")]
pub async fn suggest(
    state: web::Data<AppState>,
    member: Member,
    key: web::Path<String>,
    form: web::Form<SuggestForm>,
) -> PageResult {
    member.may_change(&form.csrf)?;
    let request = crate::ai::model::SuggestionRequest {
        prompt: form.brief.clone(),
    };
    crate::ai::suggestions::suggest(&state, &member.creator, &member.who, &key, request).await?;
    Ok(see_other(&format!(
        "/dashboard/embeds/{}",
        views::encode(&key)
    )))
}

#[get("/dashboard/experiments")]
pub async fn experiments_page(state: web::Data<AppState>, member: Member) -> PageResult {
    let listed = crate::experiments::service::list(&state, &member.creator);
    Ok(html(views::experiments(&member, &json_all(&listed))))
}

#[get("/dashboard/experiments/{key}")]
pub async fn experiment_page(
    state: web::Data<AppState>,
    member: Member,
    key: web::Path<String>,
    done: web::Query<Done>,
) -> PageResult {
    let view = crate::experiments::service::get(&state, &member.creator, &key)?;
    let results = crate::experiments::service::results(&state, &member.creator, &key)?;
    Ok(html(views::experiment(
        &member,
        &serde_json::to_value(view).unwrap_or_default(),
        &serde_json::to_value(results).unwrap_or_default(),
        done.notice(),
    )))
}

#[post("/dashboard/experiments/{key}/start")]
pub async fn start_experiment(
    state: web::Data<AppState>,
    member: Member,
    key: web::Path<String>,
    form: web::Form<Csrf>,
) -> PageResult {
    member.may_change(&form.csrf)?;
    crate::experiments::service::start(&state, &member.creator, &member.who, &key).await?;
    Ok(see_other(&format!(
        "/dashboard/experiments/{}?done=experiment_started",
        views::encode(&key)
    )))
}

#[post("/dashboard/experiments/{key}/stop")]
pub async fn stop_experiment(
    state: web::Data<AppState>,
    member: Member,
    key: web::Path<String>,
    form: web::Form<Csrf>,
) -> PageResult {
    member.may_change(&form.csrf)?;
    crate::experiments::service::stop(&state, &member.creator, &member.who, &key).await?;
    Ok(see_other(&format!(
        "/dashboard/experiments/{}?done=experiment_stopped",
        views::encode(&key)
    )))
}

// --- billing, notices, keys -----------------------------------------------------------

/// Rows one billing list shows.
const BILLING_ROWS: i64 = 50;

#[get("/dashboard/billing")]
pub async fn billing_page(
    state: web::Data<AppState>,
    member: Member,
    done: web::Query<Done>,
) -> PageResult {
    let creator_id = member.creator_id();
    let (account, reports, events) = match &state.billing {
        None => (None, Vec::new(), Vec::new()),
        Some(billing) => (
            Some(
                serde_json::to_value(billing.account_view(&member.creator).await?)
                    .unwrap_or_default(),
            ),
            views_of::<_, crate::billing::routes::ReportView>(
                billing.store.list_reports(creator_id, BILLING_ROWS).await?,
            ),
            views_of::<_, crate::billing::routes::BillingEventView>(
                billing
                    .store
                    .list_billing_events(creator_id, None, BILLING_ROWS)
                    .await?,
            ),
        ),
    };
    Ok(html(views::billing(
        &member,
        account.as_ref(),
        &reports,
        &events,
        done.notice(),
    )))
}

#[post("/dashboard/billing/reports/{identifier}/retry")]
pub async fn retry_report(
    state: web::Data<AppState>,
    member: Member,
    identifier: web::Path<String>,
    form: web::Form<Csrf>,
) -> PageResult {
    member.may_change(&form.csrf)?;
    let billing = state
        .billing
        .as_ref()
        .ok_or_else(crate::billing::billing_off)?;
    let requeued = billing
        .store
        .requeue_report(member.creator_id(), &identifier, billing.clock.now())
        .await?;
    if !requeued {
        return Err(ApiError::not_found("report_not_found", "no such failed report").into());
    }
    Ok(see_other("/dashboard/billing?done=report_retried"))
}

#[get("/dashboard/notices")]
pub async fn notices_page(state: web::Data<AppState>, member: Member) -> PageResult {
    let settings = crate::notices::service::get(&state, &member.creator).await?;
    let endpoints = crate::webhooks::service::list(&state, &member.creator).await?;
    let query = crate::outbox::model::MessageQuery {
        integration: None,
        status: None,
        cursor: None,
        limit: Some(20),
    };
    let messages =
        crate::outbox::service::list(&state, Some(member.creator_id()), None, &query).await?;
    Ok(html(views::notices(
        &member,
        &serde_json::to_value(settings).unwrap_or_default(),
        &json_all(&endpoints),
        &json_all(&messages.messages),
    )))
}

#[get("/dashboard/keys")]
pub async fn keys_page(
    state: web::Data<AppState>,
    member: Member,
    done: web::Query<Done>,
) -> PageResult {
    let list = crate::keys::service::list(&state, &member.creator).await?;
    Ok(html(views::keys(
        &member,
        &json_all(&list.keys),
        None,
        done.notice(),
    )))
}

#[derive(Deserialize)]
pub struct KeyForm {
    csrf: String,
    name: String,
}

#[post("/dashboard/keys")]
pub async fn create_key(
    state: web::Data<AppState>,
    member: Member,
    form: web::Form<KeyForm>,
) -> PageResult {
    member.may_manage_team(&form.csrf)?;
    let request = crate::keys::model::NewKey {
        name: form.name.clone(),
    };
    let created =
        crate::keys::service::create(&state, &member.creator, &member.who, request).await?;
    let list = crate::keys::service::list(&state, &member.creator).await?;
    // The key is shown on this answer only, never in a URL.
    Ok(html(views::keys(
        &member,
        &json_all(&list.keys),
        Some(&created.key),
        None,
    )))
}

#[post("/dashboard/keys/{id}/revoke")]
pub async fn revoke_key(
    state: web::Data<AppState>,
    member: Member,
    id: web::Path<String>,
    form: web::Form<Csrf>,
) -> PageResult {
    member.may_manage_team(&form.csrf)?;
    crate::keys::service::revoke(&state, &member.creator, &member.who, &id).await?;
    Ok(see_other("/dashboard/keys?done=key_revoked"))
}

// --- team, audit, settings ------------------------------------------------------------

#[get("/dashboard/team")]
pub async fn team_page(
    state: web::Data<AppState>,
    member: Member,
    done: web::Query<Done>,
) -> PageResult {
    let users = state.users.team(member.creator_id()).await?;
    Ok(html(views::team(&member, &users, None, done.notice())))
}

#[derive(Deserialize)]
pub struct InviteForm {
    csrf: String,
    email: String,
    role: String,
}

fn parse_role(text: &str) -> Result<Role, ApiError> {
    Role::parse(text)
        .ok_or_else(|| ApiError::invalid("invalid_role", "role is viewer, admin or owner"))
}

/// The team page with a link to share (an invite, a password reset).
async fn team_with_link(state: &AppState, member: &Member, link: &str) -> PageResult {
    let users = state.users.team(member.creator_id()).await?;
    Ok(html(views::team(
        member,
        &users,
        Some((link, state.integrations.email_enabled)),
        None,
    )))
}

#[post("/dashboard/team")]
pub async fn invite(
    state: web::Data<AppState>,
    member: Member,
    req: HttpRequest,
    form: web::Form<InviteForm>,
) -> PageResult {
    member.may_manage_team(&form.csrf)?;
    let role = parse_role(&form.role)?;
    let base = state.public_base(&req);
    let (_, link) = state
        .users
        .add(
            member.creator_id(),
            &member.who,
            (&form.email, role),
            None,
            &base,
        )
        .await?;
    let link = link.ok_or_else(|| ApiError::invalid("invalid_value", "no invite was made"))?;
    team_with_link(&state, &member, &link).await
}

#[derive(Deserialize)]
pub struct RoleForm {
    csrf: String,
    role: String,
}

#[post("/dashboard/team/{id}/role")]
pub async fn set_role(
    state: web::Data<AppState>,
    member: Member,
    id: web::Path<String>,
    form: web::Form<RoleForm>,
) -> PageResult {
    member.may_manage_team(&form.csrf)?;
    let role = parse_role(&form.role)?;
    state
        .users
        .set_role(member.creator_id(), &member.who, &id, role)
        .await?;
    Ok(see_other("/dashboard/team?done=role_changed"))
}

#[post("/dashboard/team/{id}/reset")]
pub async fn password_link(
    state: web::Data<AppState>,
    member: Member,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<Csrf>,
) -> PageResult {
    member.may_manage_team(&form.csrf)?;
    let base = state.public_base(&req);
    let link = state
        .users
        .reset_link(member.creator_id(), &id, &base)
        .await?;
    team_with_link(&state, &member, &link).await
}

#[post("/dashboard/team/{id}/remove")]
pub async fn remove_user(
    state: web::Data<AppState>,
    member: Member,
    id: web::Path<String>,
    form: web::Form<Csrf>,
) -> PageResult {
    member.may_manage_team(&form.csrf)?;
    state
        .users
        .remove(member.creator_id(), &member.who, &id)
        .await?;
    Ok(see_other("/dashboard/team?done=user_removed"))
}

#[derive(Deserialize)]
pub struct AuditPageQuery {
    cursor: Option<String>,
}

#[get("/dashboard/audit")]
pub async fn audit_page(
    state: web::Data<AppState>,
    member: Member,
    query: web::Query<AuditPageQuery>,
) -> PageResult {
    let request = crate::audit::model::AuditQuery {
        object_type: None,
        object_id: None,
        actor: None,
        from: None,
        to: None,
        cursor: query.cursor.clone().filter(|cursor| !cursor.is_empty()),
        limit: Some(50),
    };
    let listed =
        crate::audit::service::list(&state.store, Some(member.creator_id()), request).await?;
    Ok(html(views::audit(
        &member,
        &json_all(&listed.records),
        listed.next_cursor.as_deref(),
    )))
}

#[get("/dashboard/settings")]
pub async fn settings_page(
    state: web::Data<AppState>,
    member: Member,
    done: web::Query<Done>,
) -> PageResult {
    let profile = crate::creators::service::profile(&state, &member.creator).await?;
    let config = member.creator.tenant.config();
    Ok(html(views::settings(
        &member,
        &config,
        &profile,
        done.notice(),
    )))
}

#[post("/dashboard/settings/portal")]
pub async fn save_portal_settings(
    state: web::Data<AppState>,
    member: Member,
    form: web::Form<Fields>,
) -> PageResult {
    member.may_change(csrf_of(&form))?;
    let hidden: Vec<String> = form
        .iter()
        .filter(|(name, _)| name == "hidden")
        .map(|(_, key)| key.clone())
        .collect();
    let patch = crate::creators::model::ProfilePatch {
        allowed_origins: None,
        portal_hidden_meters: Some(hidden),
    };
    crate::creators::service::update_profile(&state, &member.creator, &member.who, patch).await?;
    Ok(see_other("/dashboard/settings?done=settings_saved"))
}
