//! CORS for the public embed API (`/v1/embed/…`). Widgets call it from the creator's
//! pages, another origin. An actual request gets `Access-Control-Allow-Origin` for its
//! `Origin` when the creator allows that origin (see `origins`), or when no creator can be
//! told from the request (an unknown key: the browser may then read the 401). A preflight
//! (`OPTIONS`) says the same; it can name the creator only through `?key=`, which the
//! widget always sends, or the creator's custom domain, so a preflight without either is
//! answered for any origin and the request itself is checked.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::embeds::origins::origin_not_allowed;
use crate::http::auth::named_creator;
use crate::state::AppState;

/// How long a browser may keep a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";
pub const CUSTOMER_TOKEN_HEADER: &str = "x-staryer-customer-token";

/// The `Origin` to allow for this request, if any.
fn allowed_origin(req: &HttpRequest) -> Option<HeaderValue> {
    let origin = req.headers().get(header::ORIGIN)?;
    let state = req.app_data::<web::Data<AppState>>()?;
    match named_creator(state, req) {
        Some(creator) => {
            let text = origin.to_str().ok()?;
            state
                .embeds
                .of(&creator.tenant.id)
                .origin_allowed(text)
                .then(|| origin.clone())
        }
        None => Some(origin.clone()),
    }
}

/// Adds the CORS headers to every answer of the public embed API.
pub async fn allow_listed_origins(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let allowed = allowed_origin(req.request());
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Retry-After"),
        );
    }
    Ok(res)
}

/// Answers a CORS preflight: 204 with what a widget may send, or 403 for an origin the
/// creator does not allow.
pub async fn preflight(req: HttpRequest) -> HttpResponse {
    if allowed_origin(&req).is_none() && req.headers().contains_key(header::ORIGIN) {
        return actix_web::ResponseError::error_response(&origin_not_allowed());
    }
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Authorization, Content-Type, X-Staryer-Customer-Token",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE))
        .finish()
}
