//! Building blocks for the OpenAPI schemas of constrained fields. Each parser of a field
//! (slugs, ids, names, URLs, Stripe ids, quantities) declares the schema of what it accepts
//! next to itself, from the same constants it checks against, so that `/openapi.json` says
//! what the server enforces: a client generated from the document sends what the server
//! takes, and what the document forbids the server refuses.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Deserializer};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};

use crate::error::ApiError;

/// Text without control characters (`char::is_control`: Unicode category Cc).
pub const NO_CONTROL: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";

/// An id: no control characters, and none of the invisible ones that make two different
/// ids look the same (zero-width spaces and joiners, direction marks and overrides such
/// as U+202E, the byte order mark). They are refused, not removed: an id is compared
/// byte for byte, and quietly changing it would merge two customers.
pub const ID_TEXT: &str = r"^[^\x00-\x1F\x7F-\x9F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u206F\uFEFF\uFFF9-\uFFFB]*$";

/// The characters `ID_TEXT` refuses besides control characters.
pub fn is_invisible(ch: char) -> bool {
    matches!(ch,
        '\u{AD}' | '\u{61C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Text without control characters: what is echoed of someone else's text where a line
/// break could be smuggled (an email subject, a log line, an error message).
pub fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// A string of `min..=max` characters matching `pattern`.
pub fn text(min: usize, max: usize, pattern: &str, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .description(Some(description))
        .build()
}

/// An integer in `min..=max`.
pub fn integer(min: i64, max: i64, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min))
        .maximum(Some(max))
        .description(Some(description))
        .build()
}

/// The same schema, also accepting `null` (an optional field that may be sent as null).
pub fn or_null(schema: impl Into<Schema>) -> Schema {
    let mut schema = schema.into();
    let with_null = |kind: &mut SchemaType| {
        if let SchemaType::Type(only) = kind {
            *kind = SchemaType::Array(vec![only.clone(), Type::Null]);
        }
    };
    match &mut schema {
        Schema::Object(object) => with_null(&mut object.schema_type),
        Schema::Array(array) => with_null(&mut array.schema_type),
        _ => {}
    }
    schema
}

/// Reads an `integer` field as JSON Schema defines one: a number without a fraction, so
/// `5.0` is 5 (serde alone refuses it), and `5.5` or one out of the type's range is refused.
pub fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    use serde::de::Error;
    let number = serde_json::Number::deserialize(deserializer)?;
    let out_of_range = || D::Error::custom(format!("{number} is out of range"));
    if let Some(n) = number.as_u64() {
        return T::try_from(n).map_err(|_| out_of_range());
    }
    if let Some(n) = number.as_i64() {
        return T::try_from(n).map_err(|_| out_of_range());
    }
    match number.as_f64() {
        Some(n) if n.fract() == 0.0 && (i64::MIN as f64..i64::MAX as f64).contains(&n) => {
            T::try_from(n as i64).map_err(|_| out_of_range())
        }
        _ => Err(D::Error::custom(format!(
            "expected a whole number, got {number}"
        ))),
    }
}

/// `whole_number` for an optional field (`null` or absent: `None`).
pub fn optional_whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    #[derive(Deserialize)]
    struct Whole<T: TryFrom<i64> + TryFrom<u64>>(#[serde(deserialize_with = "whole_number")] T);
    Ok(Option::<Whole<T>>::deserialize(deserializer)?.map(|Whole(n)| n))
}

/// Longest redirect URL, in characters (all ASCII).
const MAX_URL_CHARS: usize = 2048;

/// A redirect URL: `http(s)://`, a host name, an optional port, then path, query and
/// fragment in RFC 3986's characters (anything else percent-encoded). Every text it takes is
/// a URI, so the schema can say both `format: uri` and this pattern, and this pattern is the
/// server's check itself.
const URL_PATTERN: &str = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})*)*(\?([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?(#([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$";

pub fn parse_url(field: &str, url: &str) -> Result<(), ApiError> {
    static URL: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(URL_PATTERN).expect("URL_PATTERN is a regex"));
    if url.len() <= MAX_URL_CHARS && URL.is_match(url) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "invalid_url",
            format!(
                "{field} must be an http(s) URL of at most {MAX_URL_CHARS} characters, other \
                 characters percent-encoded"
            ),
        ))
    }
}

/// What `parse_url` accepts.
pub fn url_schema() -> Object {
    let mut schema = text(
        "http://a".len(),
        MAX_URL_CHARS,
        URL_PATTERN,
        "An http(s) URL with a host, at most 2,048 characters (RFC 3986 characters; others \
         percent-encoded)",
    );
    schema.format = Some(SchemaFormat::Custom("uri".into()));
    schema
}

/// A page's `limit`: 1 to 100, default 20 (400 `invalid_query` outside).
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(20);
    if (1..=100).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request("invalid_query", "limit is 1 to 100"))
    }
}

/// What `page_limit` accepts.
pub fn page_limit_schema() -> Object {
    let mut schema = integer(1, 100, "At most this many, newest first");
    schema.default = Some(20.into());
    schema
}
