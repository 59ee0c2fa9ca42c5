//! The platform owner's handlers.

use std::sync::atomic::Ordering;

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::admin_ui::views::{self, CreatorLine, Made, Platform};
use crate::audit::model::Actor;
use crate::error::ApiError;
use crate::http::auth::browser_who;
use crate::keys::material as keys;
use crate::state::AppState;
use crate::users::model::Role;
use crate::web::session::{BrowserSession, SignedIn, Surface};
use crate::web::{html, html_to, see_other, PageError, PageResult};

const SIGN_IN: &str = "/admin/sign-in";
/// Revenue is summed over this many days.
const REVENUE_DAYS: i64 = 30;

pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.service(sign_in_page)
        .service(sign_in)
        .service(sign_out)
        .service(home)
        .service(make_creator);
}

/// The platform owner's session, or a redirect to sign in.
async fn owner(state: &AppState, req: &HttpRequest) -> Result<BrowserSession, PageError> {
    state
        .browsers
        .find(req, Surface::Admin)
        .await?
        .ok_or_else(|| PageError::Redirect(SIGN_IN.into()))
}

#[get("/admin/sign-in")]
pub async fn sign_in_page() -> PageResult {
    Ok(html(views::sign_in(None)))
}

#[derive(Deserialize)]
pub struct TokenForm {
    token: String,
}

#[post("/admin/sign-in")]
pub async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> PageResult {
    crate::web::same_origin(&req)?;
    let refused = |err: ApiError| {
        let mut response = HttpResponse::build(err.status);
        if let Some(secs) = err.retry_after_secs {
            response.insert_header(("Retry-After", secs.to_string()));
        }
        Ok(html_to(response, views::sign_in(Some(&err.message))))
    };
    // The token is long and random: only the per-address limit applies, so that nobody
    // can lock the platform owner out by failing on purpose.
    if let Err(err) = state.users.admit_address(state.browsers.client_addr(&req)) {
        return refused(err);
    }
    if !keys::same(&keys::hash(&form.token), &state.admin_token_hash) {
        return refused(ApiError::unauthorized(
            "invalid_credentials",
            "that is not the admin token",
        ));
    }
    let who = SignedIn {
        subject: "admin",
        ..SignedIn::default()
    };
    state
        .browsers
        .sign_in_to(&req, Surface::Admin, who, "/admin")
        .await
}

#[derive(Deserialize)]
pub struct Csrf {
    csrf: String,
}

#[post("/admin/sign-out")]
pub async fn sign_out(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<Csrf>,
) -> PageResult {
    let session = owner(&state, &req).await?;
    session.check_csrf(&form.csrf)?;
    let removal = state.browsers.end(&req, Surface::Admin, &session).await?;
    let mut response = see_other(SIGN_IN);
    response
        .add_cookie(&removal)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(response)
}

#[get("/admin")]
pub async fn home(state: web::Data<AppState>, req: HttpRequest) -> PageResult {
    let session = owner(&state, &req).await?;
    render(&state, &session, None).await
}

async fn render(state: &AppState, session: &BrowserSession, made: Option<&Made>) -> PageResult {
    let now = state.usage.now();
    let figures = state.store.creator_figures().await?;
    let revenue = state
        .store
        .revenue_by_creator(now - REVENUE_DAYS * 86_400)
        .await?;
    let rows = state.store.load_creators().await?;
    let mut decisions = [0u64; 3];
    let mut lines = Vec::new();
    for row in rows {
        let tallies = state
            .registry
            .creator(&row.id)
            .map(|creator| [0, 1, 2].map(|i| creator.tenant.decisions[i].load(Ordering::Relaxed)))
            .unwrap_or_default();
        for (total, n) in decisions.iter_mut().zip(tallies) {
            *total += n;
        }
        let counts = figures.iter().find(|f| f.creator_id == row.id);
        let money: Vec<String> = revenue
            .iter()
            .filter(|(creator, ..)| *creator == row.id)
            .map(|(_, currency, amount)| crate::web::layout::money(*amount, currency))
            .collect();
        lines.push(CreatorLine {
            customers: counts.map_or(0, |c| c.customers),
            failed_reports: counts.map_or(0, |c| c.failed_reports),
            parked_messages: counts.map_or(0, |c| c.parked_messages),
            events: tallies.iter().sum(),
            blocked: tallies[2],
            revenue: if money.is_empty() {
                "—".into()
            } else {
                money.join(", ")
            },
            stripe_account: row.stripe_account_id,
            slug: row.slug,
            name: row.name,
        });
    }
    let uptime_secs = (now - state.started_at).max(1);
    let platform = Platform {
        events_per_second: decisions.iter().sum::<u64>() as f64 / uptime_secs as f64,
        decisions,
        uptime_secs,
        live_counters: state.registry.live_counters(),
        store_up: state.usage.health.is_up(),
        backlog: state.store.outbox_backlog().await?,
    };
    Ok(html(views::home(&session.csrf, &platform, &lines, made)))
}

#[derive(Deserialize)]
pub struct NewCreatorForm {
    csrf: String,
    slug: String,
    name: String,
    owner_email: String,
}

/// Makes a creator and its first owner (invited: the page shows the link once).
#[post("/admin/creators")]
pub async fn make_creator(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<NewCreatorForm>,
) -> PageResult {
    let session = owner(&state, &req).await?;
    session.check_csrf(&form.csrf)?;
    state.ensure_ready()?;
    let who = browser_who(&state, &req, Actor::Admin);
    // The owner's email is checked first, so a taken one leaves no creator without owner.
    let email = crate::users::model::parse_email(&form.owner_email)?;
    if state.store.user_by_email(&email).await?.is_some() {
        return Err(ApiError::conflict(
            "email_taken",
            "a dashboard user with this email exists (an email belongs to one team)",
        )
        .into());
    }
    let request = crate::creators::model::NewCreator {
        slug: form.slug.clone(),
        name: Some(form.name.clone()).filter(|name| !name.trim().is_empty()),
        custom_domain: None,
        branding: None,
        rate_limit: None,
    };
    let created = crate::creators::service::create(&state, &who, request).await?;
    let (_, invite_url) = state
        .users
        .add(
            &created.creator.id,
            &who,
            (&email, Role::Owner),
            None,
            &state.public_base(&req),
        )
        .await?;
    let made = Made {
        slug: created.creator.slug.clone(),
        secret_key: created.secret_key,
        publishable_key: created.publishable_key,
        invite_url: invite_url.unwrap_or_default(),
    };
    render(&state, &session, Some(&made)).await
}
