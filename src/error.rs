//! One error type at the edge. Every failure a client can cause or see becomes an
//! `ApiError` with a stable snake_case `code` and the fitting status, rendered once as
//! `{"error": {"code", "message"}}` (plus `index` for the offending event of a batch).
//! Internal causes are logged with their chain and answered as an opaque 500.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// Seconds a client should wait before retrying a 503 (store down or queue full).
pub const RETRY_AFTER_UNAVAILABLE_SECS: u64 = 1;

/// Characters of an error message kept: messages may quote what a client sent (a field
/// name, an id), and a megabyte of it must not come back, or reach the log, whole.
const MAX_MESSAGE_CHARS: usize = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Position of the offending event in a batch.
    pub index: Option<usize>,
    /// Sent as `Retry-After` (429 and 503).
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code; match on this, not on the message.
    code: &'static str,
    /// For a person.
    message: String,
    /// Position of the offending event in a batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
}

impl ErrorDetail {
    /// The error part of an answer that carries more beside it.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ErrorDetail {
            code,
            message: message.into(),
            index: None,
        }
    }
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: bounded(message.into()),
            index: None,
            retry_after_secs: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    /// The path exists with other methods; the caller adds `Allow`.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            message,
        )
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    pub fn request_timeout(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, code, message)
    }
    pub fn unsupported_media_type(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, code, message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests for this key; retry after the Retry-After delay",
        );
        err.retry_after_secs = Some(retry_after_secs);
        err
    }
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message);
        err.retry_after_secs = Some(RETRY_AFTER_UNAVAILABLE_SECS);
        err
    }
    /// An upstream service (Stripe) failed or refused; the message carries its reason.
    pub fn bad_gateway(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, code, message)
    }
    /// An upstream service took too long to answer.
    pub fn gateway_timeout(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, code, message)
    }
    pub fn store_unavailable() -> Self {
        Self::unavailable(
            "store_unavailable",
            "the database is unreachable; nothing was counted, retry later",
        )
    }
    /// Logs the cause with its chain; the client sees only an opaque 500.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(next) = source {
            chain.push_str(": ");
            chain.push_str(&next.to_string());
            source = next.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        )
    }

    /// Names the event of a batch this error is about.
    pub fn at_index(mut self, index: usize) -> Self {
        self.message = format!("events[{index}]: {}", self.message);
        self.index = Some(index);
        self
    }
}

/// `message` with control characters escaped and cut to `MAX_MESSAGE_CHARS`.
fn bounded(message: String) -> String {
    let escaped = crate::telemetry::escape_controls(&message);
    match escaped.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped.into_owned(),
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
                index: self.index,
            },
        })
    }
}

/// Store refusals repeat on every request while they last: their cause is logged at most
/// every ten seconds.
static STORE_REFUSALS: crate::telemetry::LogLimiter = crate::telemetry::LogLimiter::every(10);

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        match err {
            crate::store::StoreError::Unavailable(cause) => {
                if let Some(held_back) = STORE_REFUSALS.allow() {
                    tracing::warn!(%cause, held_back, "a store operation failed; answered 503");
                }
                ApiError::store_unavailable()
            }
            crate::store::StoreError::Conflict(what) => {
                ApiError::conflict("already_exists", format!("{what} already exists"))
            }
        }
    }
}

/// `stripe_error`: Stripe answered with a refusal (its reason in the message);
/// `stripe_unreachable`: no usable answer came back.
impl From<crate::billing::client::StripeError> for ApiError {
    fn from(err: crate::billing::client::StripeError) -> Self {
        use crate::billing::client::StripeError;
        let code = match err {
            StripeError::Api { .. } => "stripe_error",
            StripeError::Transport(_) | StripeError::Decode(_) => "stripe_unreachable",
        };
        ApiError::bad_gateway(code, err.to_string())
    }
}
