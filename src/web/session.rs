//! Browser sessions: a random secret in an HttpOnly, `SameSite=Lax` cookie, stored server
//! side by its SHA-256 (so it can be listed and revoked, and a copy of the database holds
//! no usable cookie). A session ends when idle past `dashboard.idle_minutes`, at
//! `dashboard.absolute_hours` after sign-in, or at sign-out; signing in always makes a new
//! one (the cookie a browser had before is worth nothing after).
//!
//! Every form carries the session's CSRF token, derived from the cookie's secret (a page
//! can print it, a page of another site cannot read it), and every change checks it.

use std::net::IpAddr;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::SharedClock;
use crate::config::{DashboardConfig, SecureCookies};
use crate::error::ApiError;
use crate::store::people::BrowserSessionRow;
use crate::store::{Store, StoreError};

/// A session is marked used at most this often (seconds): a write per page would compete
/// with ingest for the database for nothing.
const TOUCH_EVERY_SECS: i64 = 60;

/// The three faces, each with its own cookie, scoped to its own path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Dashboard,
    Portal,
    Admin,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Dashboard => "dashboard",
            Surface::Portal => "portal",
            Surface::Admin => "admin",
        }
    }

    fn cookie_name(self) -> &'static str {
        match self {
            Surface::Dashboard => "staryer_dashboard",
            Surface::Portal => "staryer_portal",
            Surface::Admin => "staryer_admin",
        }
    }

    /// The path the cookie is sent to, and the face's home.
    pub fn home(self) -> &'static str {
        match self {
            Surface::Dashboard => "/dashboard",
            Surface::Portal => "/portal",
            Surface::Admin => "/admin",
        }
    }
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    pub id_hash: String,
    pub creator_id: Option<String>,
    /// The dashboard user's id, the customer's id, or `admin`.
    pub subject: String,
    /// A portal session's customer session (`cs_…`), whose revocation ends it.
    pub parent: Option<String>,
    /// What every form of this session must send back.
    pub csrf: String,
}

impl BrowserSession {
    /// Refuses a change whose form did not carry this session's CSRF token.
    pub fn check_csrf(&self, sent: &str) -> Result<(), ApiError> {
        if bool::from(self.csrf.as_bytes().ct_eq(sent.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "invalid_csrf_token",
                "the form is stale or came from another site; reload the page and try again",
            ))
        }
    }
}

/// Who a new session is for.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignedIn<'a> {
    /// None for the platform owner.
    pub creator_id: Option<&'a str>,
    /// The dashboard user's id, the customer's id, or `admin`.
    pub subject: &'a str,
    /// A portal session's customer session.
    pub parent: Option<&'a str>,
    /// Ends no later than this (a portal session: when its token would have).
    pub lifetime_cap: Option<i64>,
}

pub struct BrowserSessions {
    store: Store,
    clock: SharedClock,
    idle_secs: i64,
    absolute_secs: i64,
    secure: SecureCookies,
    trusted_proxies: Vec<IpAddr>,
    /// `server.public_url` is https: every browser reaches the daemon over TLS.
    public_https: bool,
}

impl BrowserSessions {
    pub fn new(
        store: Store,
        clock: SharedClock,
        config: &DashboardConfig,
        public_url: &str,
    ) -> BrowserSessions {
        BrowserSessions {
            store,
            clock,
            idle_secs: (config.idle_minutes * 60) as i64,
            absolute_secs: (config.absolute_hours * 3_600) as i64,
            secure: config.secure_cookies,
            trusted_proxies: config.trusted_proxies().unwrap_or_default(),
            public_https: public_url.starts_with("https://"),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Signs a browser in: a new session, and the cookie that carries it.
    pub async fn start(
        &self,
        req: &HttpRequest,
        surface: Surface,
        who: SignedIn<'_>,
    ) -> Result<(Cookie<'static>, BrowserSession), StoreError> {
        let SignedIn {
            creator_id,
            subject,
            parent,
            lifetime_cap,
        } = who;
        // The session the browser had before, if any, ends: a new sign-in never continues
        // an old cookie.
        if let Some(old) = req.cookie(surface.cookie_name()) {
            self.store
                .revoke_browser_session(&hash(old.value()), self.now())
                .await?;
        }
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let now = self.now();
        let expires_at = lifetime_cap.map_or(now + self.absolute_secs, |cap| {
            cap.min(now + self.absolute_secs)
        });
        let row = BrowserSessionRow {
            id_hash: hash(&value),
            surface: surface.as_str().into(),
            creator_id: creator_id.map(String::from),
            subject: subject.into(),
            parent: parent.map(String::from),
            created_at: now,
            last_seen_at: now,
            expires_at,
            revoked_at: None,
        };
        self.store.insert_browser_session(&row).await?;
        let session = BrowserSession {
            id_hash: row.id_hash,
            creator_id: row.creator_id,
            subject: row.subject,
            parent: row.parent,
            csrf: csrf_of(&value),
        };
        Ok((self.cookie(req, surface, value), session))
    }

    /// Signs a browser in and sends it to `to` (`303`), the new cookie set.
    pub async fn sign_in_to(
        &self,
        req: &HttpRequest,
        surface: Surface,
        who: SignedIn<'_>,
        to: &str,
    ) -> Result<actix_web::HttpResponse, crate::web::PageError> {
        let (cookie, _) = self.start(req, surface, who).await?;
        let mut response = crate::web::see_other(to);
        response
            .add_cookie(&cookie)
            .map_err(|e| crate::error::ApiError::internal(&e))?;
        Ok(response)
    }

    /// The browser's live session of `surface`, if it has one.
    pub async fn find(
        &self,
        req: &HttpRequest,
        surface: Surface,
    ) -> Result<Option<BrowserSession>, StoreError> {
        let Some(cookie) = req.cookie(surface.cookie_name()) else {
            return Ok(None);
        };
        let id_hash = hash(cookie.value());
        let Some(row) = self.store.browser_session(&id_hash).await? else {
            return Ok(None);
        };
        let now = self.now();
        let live = row.surface == surface.as_str()
            && row.revoked_at.is_none()
            && now < row.expires_at
            && now < row.last_seen_at + self.idle_secs;
        if !live {
            return Ok(None);
        }
        if now - row.last_seen_at >= TOUCH_EVERY_SECS {
            self.store.touch_browser_session(&id_hash, now).await?;
        }
        Ok(Some(BrowserSession {
            id_hash,
            creator_id: row.creator_id,
            subject: row.subject,
            parent: row.parent,
            csrf: csrf_of(cookie.value()),
        }))
    }

    /// Signs out: the session is revoked, and the answer's cookie removes it.
    pub async fn end(
        &self,
        req: &HttpRequest,
        surface: Surface,
        session: &BrowserSession,
    ) -> Result<Cookie<'static>, StoreError> {
        self.store
            .revoke_browser_session(&session.id_hash, self.now())
            .await?;
        let mut removal = self.cookie(req, surface, String::new());
        removal.make_removal();
        Ok(removal)
    }

    fn cookie(&self, req: &HttpRequest, surface: Surface, value: String) -> Cookie<'static> {
        Cookie::build(surface.cookie_name(), value)
            .path(surface.home())
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.is_tls(req))
            .finish()
    }

    /// Whether the browser reached us over TLS, as far as we can trust what we are told.
    fn is_tls(&self, req: &HttpRequest) -> bool {
        match self.secure {
            SecureCookies::Always => true,
            SecureCookies::Never => false,
            SecureCookies::Auto => {
                self.public_https
                    || (self.is_trusted_proxy(req)
                        && req
                            .headers()
                            .get("x-forwarded-proto")
                            .and_then(|value| value.to_str().ok())
                            .is_some_and(|proto| proto.eq_ignore_ascii_case("https")))
            }
        }
    }

    fn is_trusted_proxy(&self, req: &HttpRequest) -> bool {
        req.peer_addr()
            .is_some_and(|peer| self.trusted_proxies.contains(&peer.ip()))
    }

    /// The browser's address: the peer's, or behind a trusted proxy the last address of
    /// `X-Forwarded-For` (the one the proxy itself saw).
    pub fn client_addr(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        req.headers()
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok())
            .and_then(|list| list.rsplit(',').next())
            .and_then(|last| last.trim().parse().ok())
            .or(Some(peer))
    }
}

fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn csrf_of(cookie_value: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"staryer csrf\0");
    hasher.update(cookie_value.as_bytes());
    hex::encode(&hasher.finalize()[..20])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_is_not_the_stored_hash() {
        let value = "secret-cookie-value";
        assert_ne!(csrf_of(value), hash(value));
        assert_eq!(csrf_of(value).len(), 40);
    }
}
