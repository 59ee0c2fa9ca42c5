//! The origins a creator's widgets may be called from. A browser names the page's origin
//! (`scheme://host[:port]`) in the `Origin` header of every cross-origin request; the
//! public embed API refuses one not listed (403) and answers CORS only for listed ones.
//! An empty list lets any origin in (the publishable key is public anyway; the list stops
//! another site from running the creator's experiments or checkouts on its pages).

use crate::error::ApiError;

/// Most origins one creator lists.
const MAX_ORIGINS: usize = 50;
const ORIGIN_PATTERN: &str = "^https?://[a-z0-9.-]+(:[0-9]{1,5})?$";

pub fn origins_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::schema::text(
            "http://a".len(),
            300,
            ORIGIN_PATTERN,
            "An origin: `http(s)://host[:port]`",
        ))
        .max_items(Some(MAX_ORIGINS))
        .unique_items(true)
        .description(Some(
            "`scheme://host[:port]`, as browsers send them in `Origin` (no path, no trailing \
             slash); at most 50; empty: any origin",
        ))
        .build()
}

/// Checks each origin (lower case, as browsers send them).
pub fn parse_all(origins: Vec<String>) -> Result<Vec<String>, ApiError> {
    if origins.len() > MAX_ORIGINS {
        return Err(invalid(format!("at most {MAX_ORIGINS} origins")));
    }
    let pattern = regex::Regex::new(ORIGIN_PATTERN).expect("ORIGIN_PATTERN is a regex");
    let mut parsed: Vec<String> = Vec::with_capacity(origins.len());
    for origin in origins {
        if origin.len() > 300 || !pattern.is_match(&origin) {
            return Err(invalid(format!(
                "`{}` is not an origin (http(s)://host[:port], nothing after)",
                origin.escape_default()
            )));
        }
        if parsed.contains(&origin) {
            return Err(invalid(format!("`{origin}` is listed twice")));
        }
        parsed.push(origin);
    }
    Ok(parsed)
}

fn invalid(message: String) -> ApiError {
    ApiError::invalid("invalid_origin", message)
}

pub fn origin_not_allowed() -> ApiError {
    ApiError::forbidden(
        "origin_not_allowed",
        "this site is not among the creator's allowed_origins",
    )
}
