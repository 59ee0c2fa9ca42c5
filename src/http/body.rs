//! Request bodies: read with a size limit (413 past it) and parsed as JSON with every
//! failure mapped to the SPEC's error shape: 400 `malformed_json` for what is not JSON,
//! 422 with the field's path (`events[3].vaule: unknown field`) for JSON of the wrong shape.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use futures::StreamExt;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

/// The raw request body, read within `server.max_body_bytes`.
pub struct Body(pub web::Bytes);

impl FromRequest for Body {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(1 << 20, |state| state.max_body_bytes);
        let declared = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            let too_large =
                || ApiError::too_large(format!("the body is larger than {limit} bytes"));
            if declared.is_some_and(|length| length > limit) {
                return Err(too_large());
            }
            let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|err| {
                    ApiError::bad_request(
                        "unreadable_body",
                        format!("the body could not be read: {err}"),
                    )
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Body(body.freeze()))
        })
    }
}

/// A JSON body parsed into an owned `T`.
pub struct ApiJson<T>(pub T);

impl<T: for<'de> Deserialize<'de> + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = Body::from_request(req, payload);
        Box::pin(async move {
            let Body(bytes) = body.await?;
            parse_json(&bytes).map(ApiJson)
        })
    }
}

/// Parses `bytes` as `T`, borrowing from them where `T` does. Every body of the API is a
/// JSON object (serde would otherwise read a struct from an array, field by position).
pub fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            return Err(malformed(&syntax));
        }
        return Err(ApiError::invalid(
            "invalid_body",
            "the body must be a JSON object",
        ));
    }
    serde_json::from_slice(bytes).map_err(|err| json_error::<T>(bytes, &err))
}

fn malformed(syntax: &serde_json::Error) -> ApiError {
    ApiError::bad_request(
        "malformed_json",
        format!("the body is not valid JSON: {syntax}"),
    )
}

/// Explains a failed parse; only the failing (rare) path pays for finding the field.
fn json_error<'a, T: Deserialize<'a>>(bytes: &'a [u8], err: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    if err.classify() != Category::Data {
        return malformed(err);
    }
    // A wrong shape can be reported before a syntax error further on: JSON comes first.
    if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return malformed(&syntax);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let Err(located) = serde_path_to_error::deserialize::<_, T>(&mut deserializer) else {
        return ApiError::invalid("invalid_body", err.to_string());
    };
    let cause = located.inner().to_string();
    let code = if cause.starts_with("unknown field") {
        "unknown_field"
    } else if cause.starts_with("missing field") {
        "missing_field"
    } else {
        "invalid_value"
    };
    let path = located.path().to_string();
    let mut error = ApiError::invalid(code, format!("{path}: {cause}"));
    // `events[3]…`: the offending event of a batch.
    let mut segments = located.path().iter();
    if matches!(segments.next(), Some(serde_path_to_error::Segment::Map { key }) if key == "events")
    {
        if let Some(serde_path_to_error::Segment::Seq { index }) = segments.next() {
            error.index = Some(*index);
        }
    }
    error
}
