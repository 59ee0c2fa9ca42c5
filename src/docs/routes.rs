//! `GET /docs` and `GET /docs/{file}`: thin handlers over the embedded files.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::docs::{self, File};
use crate::error::{ApiError, ErrorBody};

/// Pages are revalidated on every load; the assets' links carry their version.
const PAGE_CACHE: &str = "no-cache";
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

/// The interactive API reference (Swagger UI), rendered from `/openapi.json`; works
/// offline.
#[utoipa::path(get, path = "/docs", tag = "operations",
    params(("If-None-Match" = Option<String>, Header, description = "An ETag seen before")),
    responses(
        (status = 200, content_type = "text/html", body = String, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent", headers(("ETag" = String))),
    ))]
#[get("/docs")]
pub async fn page(request: HttpRequest) -> HttpResponse {
    answer(&request, docs::page(), PAGE_CACHE)
}

/// A file the reference page loads: `swagger-ui-bundle.js` or `swagger-ui.css`.
#[utoipa::path(get, path = "/docs/{file}", tag = "operations",
    params(
        ("file" = String, Path, description = "`swagger-ui-bundle.js` or `swagger-ui.css`"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag seen before"),
    ),
    responses(
        (status = 200, content((String = "text/javascript"), (String = "text/css")),
            headers(("ETag" = String))),
        (status = 304, description = "Not modified since the ETag sent", headers(("ETag" = String))),
        (status = 404, description = "`asset_not_found`", body = ErrorBody),
    ))]
#[get("/docs/{file}")]
pub async fn asset(
    request: HttpRequest,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let asset = docs::asset(&file).ok_or_else(|| {
        ApiError::not_found("asset_not_found", format!("no file `{file}` under /docs"))
    })?;
    Ok(answer(&request, asset, ASSET_CACHE))
}

/// The file, or 304 when the request already holds this version of it.
pub fn answer(request: &HttpRequest, file: &'static File, cache: &'static str) -> HttpResponse {
    let etag = (header::ETAG, file.etag.as_str());
    let cache = (header::CACHE_CONTROL, cache);
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tags| matches_etag(tags, &file.etag));
    if fresh {
        return HttpResponse::NotModified()
            .insert_header(etag)
            .insert_header(cache)
            .finish();
    }
    HttpResponse::Ok()
        .content_type(file.content_type)
        .insert_header(etag)
        .insert_header(cache)
        .body(file.bytes.as_ref())
}

/// `If-None-Match`: `*`, or a list of tags, weak (`W/"…"`) or strong (RFC 9110 §13.1.2
/// compares them weakly).
fn matches_etag(tags: &HeaderValue, etag: &str) -> bool {
    let Ok(tags) = tags.to_str() else {
        return false;
    };
    tags.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}
