//! The customer behind a portal cookie: its session, its creator (which must be the
//! custom domain's, when the request came to one), and who it is for the audit log.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};

use crate::audit::model::{Actor, Who};
use crate::http::auth::browser_who;
use crate::state::AppState;
use crate::tenants::registry::Creator;
use crate::web::session::{BrowserSession, Surface};
use crate::web::PageError;

/// Where a browser without a portal session is sent.
pub const SIGNED_OUT: &str = "/portal/signed-out";

pub struct PortalCustomer {
    pub customer_id: String,
    pub creator: Creator,
    pub session: BrowserSession,
    pub who: Who,
}

/// The creator whose custom domain the request came to, if it came to one.
pub fn domain_creator(state: &AppState, req: &HttpRequest) -> Option<Creator> {
    crate::http::auth::request_host(req)
        .and_then(|host| state.registry.by_domain(host))
        .map(|domain| domain.creator)
}

impl FromRequest for PortalCustomer {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<PortalCustomer, PageError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .expect("AppState is registered by startup")
                .clone();
            let signed_out = || PageError::Redirect(SIGNED_OUT.into());
            let session = state
                .browsers
                .find(&req, Surface::Portal)
                .await?
                .ok_or_else(signed_out)?;
            let creator_id = session.creator_id.clone().ok_or_else(signed_out)?;
            // Revoking the link's session (or erasing its customer) ends the browser's too.
            if session
                .parent
                .as_deref()
                .is_none_or(|parent| state.sessions.is_revoked(parent))
            {
                return Err(signed_out());
            }
            if let Some(domain) = domain_creator(&state, &req) {
                if *domain.tenant.id != *creator_id {
                    return Err(signed_out());
                }
            }
            let creator = state.registry.creator(&creator_id).ok_or_else(signed_out)?;
            Ok(PortalCustomer {
                customer_id: session.subject.clone(),
                creator,
                who: browser_who(&state, &req, Actor::Browser),
                session,
            })
        })
    }
}
