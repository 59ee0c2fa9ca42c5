//! The signed-in dashboard user: found from its browser session on every request (a user
//! removed, or a creator gone, signs the browser out), with its role. Changes go through
//! `Member::may_change` or `may_manage_team`, which check the form's CSRF token and the
//! role on the server, whatever the page showed.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};

use crate::audit::model::{Actor, Who};
use crate::error::ApiError;
use crate::http::auth::browser_who;
use crate::state::AppState;
use crate::store::people::UserRow;
use crate::tenants::registry::Creator;
use crate::users::model::Role;
use crate::web::layout::{Frame, SignedIn};
use crate::web::session::{BrowserSession, Surface};
use crate::web::PageError;

pub const SIGN_IN: &str = "/dashboard/sign-in";

/// The navigation: `(path, label)`.
pub const NAV: [(&str, &str); 12] = [
    ("/dashboard", "Overview"),
    ("/dashboard/meters", "Meters"),
    ("/dashboard/tiers", "Tiers"),
    ("/dashboard/customers", "Customers"),
    ("/dashboard/embeds", "Embeds"),
    ("/dashboard/experiments", "Experiments"),
    ("/dashboard/billing", "Billing"),
    ("/dashboard/notices", "Notices & webhooks"),
    ("/dashboard/keys", "API keys"),
    ("/dashboard/team", "Team"),
    ("/dashboard/audit", "Audit log"),
    ("/dashboard/settings", "Settings"),
];

pub struct Member {
    pub user: UserRow,
    pub role: Role,
    pub creator: Creator,
    pub session: BrowserSession,
    pub who: Who,
}

impl Member {
    /// Refuses a change without this session's CSRF token, or by a viewer.
    pub fn may_change(&self, csrf: &str) -> Result<(), PageError> {
        self.session.check_csrf(csrf)?;
        if !self.role.can_change() {
            return Err(ApiError::forbidden(
                "read_only",
                "your role is viewer: you can look, not change; ask an owner",
            )
            .into());
        }
        Ok(())
    }

    /// Refuses a change to the team or the keys by anyone but an owner.
    pub fn may_manage_team(&self, csrf: &str) -> Result<(), PageError> {
        self.may_change(csrf)?;
        if !self.role.manages_team() {
            return Err(ApiError::forbidden(
                "owner_only",
                "only an owner manages the team and the API keys",
            )
            .into());
        }
        Ok(())
    }

    pub fn creator_id(&self) -> &str {
        &self.creator.tenant.id
    }

    /// The frame of one of the dashboard's pages.
    pub fn frame<'a>(
        &'a self,
        title: &'a str,
        current: &'a str,
        notice: Option<&'a str>,
    ) -> Frame<'a> {
        Frame {
            title,
            product: "Staryer dashboard",
            nav: &NAV,
            current,
            signed_in: Some(SignedIn {
                who: &self.user.email,
                sign_out: "/dashboard/sign-out",
                csrf: &self.session.csrf,
            }),
            brand_css: None,
            notice,
        }
    }
}

impl FromRequest for Member {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Member, PageError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .expect("AppState is registered by startup")
                .clone();
            let signed_out = || PageError::Redirect(SIGN_IN.into());
            let session = state
                .browsers
                .find(&req, Surface::Dashboard)
                .await?
                .ok_or_else(signed_out)?;
            let creator_id = session.creator_id.clone().ok_or_else(signed_out)?;
            let user = state
                .users
                .user(&creator_id, &session.subject)
                .await?
                .ok_or_else(signed_out)?;
            let creator = state.registry.creator(&creator_id).ok_or_else(signed_out)?;
            let role = Role::parse(&user.role).unwrap_or(Role::Viewer);
            let who = browser_who(&state, &req, Actor::User(user.id.clone()));
            Ok(Member {
                user,
                role,
                creator,
                session,
                who,
            })
        })
    }
}
