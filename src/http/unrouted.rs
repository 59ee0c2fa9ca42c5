//! A request that no route took. Its path may still be one the API serves with other
//! methods (`DELETE /v1/meters`): that answers 405 `method_not_allowed` with `Allow` naming
//! the path's methods; any other path answers 404 `route_not_found`. The paths and their
//! methods are read from the OpenAPI document, the one list of what the daemon serves, so
//! this table cannot drift from it (and a test checks that every documented operation is
//! routed).

use std::sync::OnceLock;

use actix_web::dev::ResourceDef;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::error::ApiError;

/// A documented path: its template and the methods it serves.
struct KnownPath {
    template: ResourceDef,
    allow: String,
}

fn known_paths() -> &'static [KnownPath] {
    static PATHS: OnceLock<Vec<KnownPath>> = OnceLock::new();
    PATHS.get_or_init(|| {
        crate::openapi::document()
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let allow: Vec<&str> = crate::openapi::operations(item)
                    .map(|(method, _)| method)
                    .collect();
                KnownPath {
                    // OpenAPI's `{name}` segments are actix's too.
                    template: ResourceDef::new(path.as_str()),
                    allow: allow.join(", "),
                }
            })
            .collect()
    })
}

pub async fn answer(request: HttpRequest) -> HttpResponse {
    let path = request.path();
    let Some(known) = known_paths().iter().find(|k| k.template.is_match(path)) else {
        return ApiError::not_found("route_not_found", "no such endpoint").error_response();
    };
    let refusal = ApiError::method_not_allowed(format!(
        "{} is not served on this path; it serves {}",
        request.method(),
        known.allow
    ));
    let mut response = refusal.error_response();
    response.headers_mut().insert(
        header::ALLOW,
        header::HeaderValue::from_str(&known.allow).expect("method names are header-safe"),
    );
    response
}
