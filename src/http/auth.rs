//! Who is calling. `AdminAuth` accepts only the platform owner's token; `CreatorAuth`
//! accepts only a creator's secret key; `BrowserAuth` accepts only a publishable key (in
//! the header or as `?key=`), from an origin the creator allows. Both apply the key's
//! rate limit. Keys are found by their SHA-256 and compared again in constant time;
//! the admin token likewise.

use std::future::{ready, Ready};

use actix_web::{web, FromRequest, HttpRequest};
use governor::clock::{Clock, DefaultClock};
use governor::DefaultDirectRateLimiter;

use crate::audit::model::{Actor, Who};
use crate::error::ApiError;
use crate::keys::material::KeyHash;
use crate::keys::material::{self as keys, KeyKind};
use crate::state::AppState;
use crate::telemetry::metric_names;
use crate::tenants::registry::{Creator, KeyEntry};

/// The platform owner.
pub struct AdminAuth;

/// A creator, authenticated by one of its secret keys.
pub struct CreatorAuth(pub Creator);

/// A creator's widget in a browser, authenticated by the creator's publishable key, from
/// an allowed origin.
pub struct BrowserAuth(pub Creator);

fn state(req: &HttpRequest) -> &web::Data<AppState> {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered by startup")
}

/// The key of `Authorization: Bearer <key>` (the scheme in any case, as RFC 9110 has it).
/// Two `Authorization` headers are refused: which one a proxy or the daemon would honour
/// must not be a question.
fn bearer(req: &HttpRequest) -> Result<&str, ApiError> {
    let mut headers = req
        .headers()
        .get_all(actix_web::http::header::AUTHORIZATION);
    let header = headers.next().ok_or_else(|| {
        ApiError::unauthorized(
            "missing_key",
            "send the key as `Authorization: Bearer <key>`",
        )
    })?;
    if headers.next().is_some() {
        return Err(ApiError::unauthorized(
            "invalid_key",
            "send one Authorization header, not several",
        ));
    }
    header
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .filter(|key| !key.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "invalid_key",
                "the Authorization header must be `Bearer <key>`",
            )
        })
}

fn invalid_key() -> ApiError {
    ApiError::unauthorized("invalid_key", "the key is not valid")
}

fn wrong_kind(expected: &str) -> ApiError {
    ApiError::forbidden("wrong_key_kind", format!("this endpoint needs {expected}"))
}

fn authenticate_admin(req: &HttpRequest) -> Result<AdminAuth, ApiError> {
    let state = state(req);
    let token = bearer(req)?;
    let hash = keys::hash(token);
    if keys::same(&hash, &state.admin_token_hash) {
        return Ok(AdminAuth);
    }
    if state.registry.key(&hash).is_some() {
        return Err(wrong_kind("the admin token"));
    }
    Err(invalid_key())
}

/// The live key with this hash: revoked keys are gone from the registry, and a rolled
/// publishable key answers until its overlap ends. Its use is noted.
fn live_key(state: &AppState, hash: &KeyHash) -> Option<KeyEntry> {
    let now = state.usage.now();
    let entry = state
        .registry
        .key(hash)
        .filter(|e| keys::same(&e.hash, hash))
        .filter(|e| e.answers_at(now))?;
    entry.used.note(now);
    Some(entry)
}

fn authenticate_creator(req: &HttpRequest) -> Result<CreatorAuth, ApiError> {
    let state = state(req);
    let key = bearer(req)?;
    state.ensure_ready()?;
    let hash = keys::hash(key);
    let Some(entry) = live_key(state, &hash) else {
        if keys::same(&hash, &state.admin_token_hash) {
            return Err(wrong_kind("a creator's secret key"));
        }
        return Err(invalid_key());
    };
    if entry.kind != KeyKind::Secret {
        return Err(wrong_kind(
            "a secret key (sk_…); publishable keys are for embeds",
        ));
    }
    check_rate(entry.limiter.as_deref())?;
    Ok(CreatorAuth(entry.creator))
}

/// The key's rate limit (the creator's quota, per key): 429 with `Retry-After` past it.
fn check_rate(limiter: Option<&DefaultDirectRateLimiter>) -> Result<(), ApiError> {
    if let Some(limiter) = limiter {
        if let Err(not_until) = limiter.check() {
            metrics::counter!(metric_names::RATE_LIMITED).increment(1);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(ApiError::rate_limited(
                wait.as_secs_f64().ceil().max(1.0) as u64
            ));
        }
    }
    Ok(())
}

/// The publishable key of a browser request: `?key=` (which lets CORS preflights carry
/// it) or the `Authorization` header; both, when they differ, are refused (which one
/// would count must not be a question).
fn publishable_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let from_query = web::Query::<KeyQuery>::from_query(req.query_string())
        .ok()
        .and_then(|query| query.into_inner().key);
    let from_header = bearer(req).ok().map(String::from);
    match (from_query, from_header) {
        (Some(query), Some(header)) if query != header => Err(ApiError::unauthorized(
            "invalid_key",
            "send the publishable key once: `?key=` and the Authorization header differ",
        )),
        (query, header) => Ok(query.or(header)),
    }
}

#[derive(serde::Deserialize)]
struct KeyQuery {
    key: Option<String>,
}

/// The creator of a browser request: by its publishable key, or, without one, by the
/// custom domain the request was sent to (`Host`). A key sent to a creator's custom domain
/// must be that creator's.
fn authenticate_browser(req: &HttpRequest) -> Result<BrowserAuth, ApiError> {
    let state = state(req);
    let by_domain = request_host(req).and_then(|host| state.registry.by_domain(host));
    let (creator, limiter) = match (publishable_key(req)?, by_domain) {
        (None, None) => {
            return Err(ApiError::unauthorized(
                "missing_key",
                "send the publishable key as `?key=pk_…` or `Authorization: Bearer pk_…`",
            ))
        }
        (None, Some(domain)) => {
            state.ensure_ready()?;
            (domain.creator, domain.limiter)
        }
        (Some(key), domain) => {
            state.ensure_ready()?;
            let entry = live_key(state, &keys::hash(&key)).ok_or_else(invalid_key)?;
            if entry.kind != KeyKind::Publishable {
                return Err(wrong_kind(
                    "the publishable key (pk_…); a secret key must never reach a browser",
                ));
            }
            if domain.is_some_and(|d| d.creator.tenant.id != entry.creator.tenant.id) {
                return Err(invalid_key());
            }
            (entry.creator, entry.limiter)
        }
    };
    if let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) {
        // An Origin that is not text names no allowed origin.
        let catalog = state.embeds.of(&creator.tenant.id);
        let allowed = origin
            .to_str()
            .is_ok_and(|origin| catalog.origin_allowed(origin));
        if !allowed {
            return Err(crate::embeds::origins::origin_not_allowed());
        }
    }
    check_rate(limiter.as_deref())?;
    Ok(BrowserAuth(creator))
}

/// The creator a browser request names, unchecked: its publishable key's, else its custom
/// domain's (CORS asks before the request is authenticated).
pub fn named_creator(state: &AppState, req: &HttpRequest) -> Option<Creator> {
    match publishable_key(req).ok().flatten() {
        Some(key) => state
            .registry
            .key(&keys::hash(&key))
            .map(|entry| entry.creator),
        None => request_host(req)
            .and_then(|host| state.registry.by_domain(host))
            .map(|domain| domain.creator),
    }
}

/// The host a request was sent to, without its port or a final dot: `Host`, or the URI's
/// authority (HTTP/2).
pub fn request_host(req: &HttpRequest) -> Option<&str> {
    let host = match req.headers().get(actix_web::http::header::HOST) {
        Some(value) => value.to_str().ok()?,
        None => req.uri().host()?,
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    // `example.com.` is `example.com`.
    Some(name.strip_suffix('.').unwrap_or(name))
}

impl FromRequest for BrowserAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(authenticate_browser(req))
    }
}

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(authenticate_admin(req))
    }
}

impl FromRequest for CreatorAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(authenticate_creator(req))
    }
}

/// Who makes a change through a browser face (the dashboard, the portal, the admin view):
/// `actor`, at the browser's address as the sessions read it (through trusted proxies).
pub fn browser_who(state: &AppState, req: &HttpRequest, actor: Actor) -> Who {
    Who {
        actor,
        client_addr: state.browsers.client_addr(req).map(|ip| ip.to_string()),
        request_id: Some(crate::http::observe::request_id(req)),
    }
}

/// Who makes a change: taken after the request's authentication (an extractor before
/// this one refused a bad key), by finding its key again, so that requests which change
/// nothing (ingest) pay nothing for it.
impl FromRequest for Who {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = state(req);
        let actor = match bearer(req).map(keys::hash) {
            Ok(hash) if keys::same(&hash, &state.admin_token_hash) => Actor::Admin,
            Ok(hash) => match state.registry.key(&hash) {
                Some(entry) if entry.kind == KeyKind::Secret => Actor::Key(entry.id.to_string()),
                _ => Actor::Browser,
            },
            Err(_) => Actor::Browser,
        };
        ready(Ok(Who {
            actor,
            client_addr: req.peer_addr().map(|peer| peer.ip().to_string()),
            request_id: Some(crate::http::observe::request_id(req)),
        }))
    }
}
