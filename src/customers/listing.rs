//! `GET /v1/customers`: the creator's customers newest first, a page at a time. The cursor
//! is the last row's creation time and id (`<unix seconds>.<id>`), so a page costs an
//! index range however deep it is (no offsets), and rows made meanwhile never shift a
//! page.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::schema::ID_TEXT;
use crate::store::reads::{CustomerCursor, CustomerFilter};
use crate::store::Store;
use crate::usage::period::rfc3339;

/// Longest search text, in characters.
const MAX_SEARCH_CHARS: usize = 100;

/// `?tier=&q=&cursor=&limit=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    /// Only customers on this tier.
    #[param(schema_with = crate::meters::model::slug_schema)]
    pub tier: Option<String>,
    /// Only customers whose id or email contains this text (ASCII letters in any case).
    #[param(schema_with = search_schema)]
    pub q: Option<String>,
    /// The previous page's `next_cursor`.
    #[param(schema_with = cursor_schema)]
    pub cursor: Option<String>,
    /// At most this many (1–100, default 20).
    #[param(schema_with = crate::schema::page_limit_schema)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerSummary {
    pub customer_id: String,
    /// Its tier; none while on the creator's default tier without an assignment.
    pub tier: Option<String>,
    pub email: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// A page of customers, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerPage {
    pub customers: Vec<CustomerSummary>,
    /// Pass as `cursor` for the next page; none on the last.
    pub next_cursor: Option<String>,
}

/// One page of `creator_id`'s customers.
pub async fn list(
    store: &Store,
    creator_id: &str,
    query: &CustomerQuery,
) -> Result<CustomerPage, ApiError> {
    let limit = crate::schema::page_limit(query.limit)? as usize;
    if let Some(tier) = &query.tier {
        crate::meters::model::parse_slug("tier", tier)?;
    }
    let text = query.q.as_deref().map(parse_search).transpose()?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let filter = CustomerFilter {
        tier: query.tier.as_deref(),
        text: text.as_deref().filter(|text| !text.is_empty()),
        after,
    };
    let mut rows = store.customers_page(creator_id, &filter, limit + 1).await?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|row| {
            encode_cursor(&CustomerCursor {
                created_at: row.created_at,
                id: row.id.clone(),
            })
        })
    } else {
        None
    };
    Ok(CustomerPage {
        customers: rows
            .into_iter()
            .map(|row| CustomerSummary {
                customer_id: row.id,
                tier: row.tier_key,
                email: row.email,
                created_at: rfc3339(row.created_at),
            })
            .collect(),
        next_cursor,
    })
}

/// The search text, its ASCII letters lowercased (both databases compare it with columns
/// folded alike; other letters match as they are).
fn parse_search(text: &str) -> Result<String, ApiError> {
    if text.chars().count() > MAX_SEARCH_CHARS || text.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("q is at most {MAX_SEARCH_CHARS} characters, without control characters"),
        ));
    }
    Ok(text.trim().to_ascii_lowercase())
}

fn encode_cursor(cursor: &CustomerCursor) -> String {
    format!("{}.{}", cursor.created_at, cursor.id)
}

fn decode_cursor(text: &str) -> Result<CustomerCursor, ApiError> {
    let invalid = || ApiError::bad_request("invalid_cursor", "cursor is not one this API gave");
    let (created_at, id) = text.split_once('.').ok_or_else(invalid)?;
    if id.is_empty() {
        return Err(invalid());
    }
    Ok(CustomerCursor {
        created_at: created_at.parse().map_err(|_| invalid())?,
        id: id.to_string(),
    })
}

fn search_schema() -> utoipa::openapi::schema::Object {
    crate::schema::text(
        0,
        MAX_SEARCH_CHARS,
        r"^[^\x00-\x1F\x7F-\x9F]*$",
        "Only customers whose id or email contains this text (ASCII letters in any case)",
    )
}

fn cursor_schema() -> utoipa::openapi::schema::Object {
    crate::schema::text(
        3,
        147,
        // Digits, a dot, then an id's characters (`schema::ID_TEXT`'s class).
        &format!(r"^[0-9]{{1,18}}\.{}+$", &ID_TEXT[1..ID_TEXT.len() - 2]),
        "The previous page's `next_cursor`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written() {
        let cursor = CustomerCursor {
            created_at: 1_700_000_000,
            id: "user.42@example".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&cursor)).unwrap(), cursor);
        assert!(decode_cursor("not a cursor!").is_err());
        assert!(decode_cursor("12x.id").is_err());
        assert!(decode_cursor("12.").is_err());
    }
}
