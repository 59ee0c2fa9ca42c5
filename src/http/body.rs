//! Request bodies: read with a size limit (413 past it), a deadline (408 past it) and a
//! bound on the bytes all connections may hold at once (503 past it), then parsed as JSON
//! with every failure mapped to the SPEC's error shape: 400 `malformed_json` for what is
//! not JSON, 422 with the field's path (`events[3].vaule: unknown field`) for JSON of the
//! wrong shape.
//!
//! Why the deadline and the bound: a client that declares a large body and sends it a
//! byte at a time would otherwise hold memory for as long as it likes, and a few hundred
//! such connections exhaust the daemon. Memory grows with the bytes that arrived, never
//! with the length a client declares. Extractors that refuse cheaply (a missing key, a
//! route that is off) come before `Body` in a handler's arguments, so a refused request's
//! body is never read.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use futures::StreamExt;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

/// Bytes reserved up front for a body of declared length: a declaration is not a promise.
const FIRST_RESERVATION: usize = 16 * 1024;

/// How bodies are read: `server.max_body_bytes`, `server.body_timeout_ms` and the bytes
/// all bodies being read may hold together (`server.max_body_bytes_in_flight`).
pub struct BodyLimits {
    pub max_bytes: usize,
    pub deadline: Duration,
    in_flight_limit: usize,
    in_flight: AtomicUsize,
}

impl BodyLimits {
    pub fn new(max_bytes: usize, deadline: Duration, in_flight_limit: usize) -> Self {
        BodyLimits {
            max_bytes,
            deadline,
            in_flight_limit,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Bytes held now by bodies being read.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// The bytes one body holds against the shared bound, given back when it is dropped.
struct Reservation {
    limits: Arc<BodyLimits>,
    bytes: usize,
}

impl Reservation {
    fn grow(&mut self, bytes: usize) -> Result<(), ApiError> {
        let before = self.limits.in_flight.fetch_add(bytes, Ordering::Relaxed);
        self.bytes += bytes;
        if before + bytes > self.limits.in_flight_limit {
            return Err(ApiError::unavailable(
                "busy",
                "too many request bodies are being read at once; retry shortly",
            ));
        }
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.limits
            .in_flight
            .fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// The raw request body, read within the limits above.
pub struct Body(pub web::Bytes);

impl FromRequest for Body {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limits = req
            .app_data::<web::Data<AppState>>()
            .expect("AppState is registered by startup")
            .body_limits
            .clone();
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let encoding = unsupported_encoding(req);
        let mut payload = payload.take();
        Box::pin(async move {
            if let Some(refusal) = encoding {
                return Err(refusal);
            }
            let limit = limits.max_bytes;
            let too_large =
                || ApiError::too_large(format!("the body is larger than {limit} bytes"));
            if declared.is_some_and(|length| length > limit) {
                return Err(too_large());
            }
            let deadline = limits.deadline;
            let mut held = Reservation { limits, bytes: 0 };
            let read = async {
                let mut body =
                    web::BytesMut::with_capacity(declared.unwrap_or(0).min(FIRST_RESERVATION));
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
                    held.grow(chunk.len())?;
                    body.extend_from_slice(&chunk);
                }
                Ok(body.freeze())
            };
            match tokio::time::timeout(deadline, read).await {
                Ok(body) => body.map(Body),
                Err(_) => Err(ApiError::request_timeout(
                    "body_timeout",
                    format!("the body did not arrive within {} ms", deadline.as_millis()),
                )),
            }
        })
    }
}

/// 415 for a body in an encoding the daemon does not read (it reads bodies as sent, and
/// would otherwise take gzip for malformed JSON, or brotli for plain text).
fn unsupported_encoding(req: &HttpRequest) -> Option<ApiError> {
    let encodings = req.headers().get_all(header::CONTENT_ENCODING);
    let identity = |value: &header::HeaderValue| {
        value.to_str().is_ok_and(|text| {
            text.split(',')
                .all(|part| part.trim().eq_ignore_ascii_case("identity"))
        })
    };
    if encodings.into_iter().all(identity) {
        return None;
    }
    Some(ApiError::unsupported_media_type(
        "unsupported_encoding",
        "request bodies must be sent without Content-Encoding",
    ))
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
            let parsed = parse_json(&bytes)?;
            refuse_duplicate_keys(&bytes)?;
            Ok(ApiJson(parsed))
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

/// 422 `duplicate_key` when an object of the body names a key twice. JSON leaves it open
/// and serde takes the last for maps, so `{"caps": {"a": {"limit": 1}, "a": {"limit":
/// 1000}}}` would quietly mean a cap of 1000; structs already refuse a repeated field.
/// Checked after a successful parse (bodies of the configuration API, not of ingest,
/// whose events are structs).
fn refuse_duplicate_keys(bytes: &[u8]) -> Result<(), ApiError> {
    serde_json::from_slice::<UniqueKeys>(bytes)
        .map(|_| ())
        .map_err(|err| ApiError::invalid("duplicate_key", err.to_string()))
}

/// Walks a JSON document and fails on an object with a repeated key.
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<UniqueKeys>()?;
            if seen.contains(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "`{key}` appears twice in one object"
                )));
            }
            seen.insert(key);
        }
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(UniqueKeys)
    }
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
