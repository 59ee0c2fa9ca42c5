//! What the three browser faces share (`dashboard`, `portal`, `admin_ui`): browser
//! sessions in cookies with their CSRF tokens (`session`), the page frame and its small
//! helpers (`layout`), tables of the API's views (`table`), charts drawn as SVG on the
//! server (`chart`), and the stylesheet and script they load, built into the binary
//! (`assets`). Pages are HTML rendered with maud, whose templates are Rust checked at
//! compile time and escape whatever they print.

pub mod assets;
pub mod chart;
pub mod layout;
pub mod session;
pub mod table;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use maud::Markup;

use crate::error::ApiError;
use crate::store::StoreError;

/// A page's failure: sent somewhere else (to sign in), or shown as a page.
#[derive(Debug)]
pub enum PageError {
    /// `303 See Other` to this path.
    Redirect(String),
    /// An error page with the API's status and message.
    Failed(ApiError),
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::Redirect(to) => write!(f, "see {to}"),
            PageError::Failed(err) => write!(f, "{}: {}", err.code, err.message),
        }
    }
}

impl From<ApiError> for PageError {
    fn from(err: ApiError) -> Self {
        PageError::Failed(err)
    }
}

impl From<StoreError> for PageError {
    fn from(err: StoreError) -> Self {
        PageError::Failed(err.into())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::Redirect(_) => StatusCode::SEE_OTHER,
            PageError::Failed(err) => err.status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::Redirect(to) => see_other(to),
            PageError::Failed(err) => {
                let mut response = HttpResponse::build(err.status);
                if let Some(secs) = err.retry_after_secs {
                    response.insert_header((header::RETRY_AFTER, secs.to_string()));
                }
                html_to(response, layout::error_page(err))
            }
        }
    }
}

pub type PageResult = Result<HttpResponse, PageError>;

/// `200` with a page.
pub fn html(page: Markup) -> HttpResponse {
    html_to(HttpResponse::Ok(), page)
}

/// A page, with the headers every page carries: not cached (it shows one signed-in
/// person's data), not framed, not sniffed, and no referrer leaving the site.
pub fn html_to(mut response: actix_web::HttpResponseBuilder, page: Markup) -> HttpResponse {
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .body(page.into_string())
}

/// Every page's policy: scripts, styles, frames and forms from the daemon only, no inline
/// script or style. `form-action` comes last, so that a page may widen it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; frame-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// `200` with a page whose forms may lead on to an https site: browsers hold a form's
/// redirects to `form-action` too, and the portal's forms redirect to Stripe (Checkout,
/// its billing portal).
pub fn html_with_https_forms(page: Markup) -> HttpResponse {
    let mut response = html(page);
    let widened = format!("{CONTENT_SECURITY_POLICY} https:");
    if let Ok(value) = header::HeaderValue::from_str(&widened) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// `303 See Other`: where a form's answer goes (post, redirect, get).
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Refuses a form posted from another site: browsers send `Origin` with every POST, and
/// ours must name this host. The CSRF token guards signed-in forms; this guards the forms
/// before sign-in too (login CSRF).
pub fn same_origin(req: &actix_web::HttpRequest) -> Result<(), PageError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let host = req.connection_info().host().to_string();
    let matches = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.split_once("://"))
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(&host));
    if matches {
        Ok(())
    } else {
        Err(ApiError::forbidden("cross_site_form", "this form was posted from another site").into())
    }
}
