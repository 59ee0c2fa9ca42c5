//! The HTTP transport to Stripe. async-stripe 1.0 builds every v1 request (path and form
//! fields, from its typed request structs) and this client sends them through reqwest:
//! one HTTP stack (rustls) for v1 and for the v2 meter event stream, which async-stripe
//! lacks, and a transport that sees `Stripe-Should-Retry`, which the reporter needs to
//! choose between retrying and giving up. Nothing is retried here: callers own retries.
//!
//! Answers are read into the few fields the daemon keeps (ids, urls), not whole objects,
//! so a field Stripe adds or an enum value it renames cannot break billing.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::Serialize;
use stripe_client_core::{
    CustomizedStripeRequest, RequestStrategy, StripeClientErr, StripeMethod, StripeRequest,
};

use crate::config::StripeConfig;

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe answered with an error status.
    #[error("Stripe answered {status} ({}): {message}", code.as_deref().unwrap_or("no code"))]
    Api {
        status: u16,
        code: Option<String>,
        message: String,
        /// `Stripe-Should-Retry`, when Stripe sent it.
        should_retry: Option<bool>,
        /// `Retry-After` in seconds, when Stripe sent it (with a 429 or a 503).
        retry_after_secs: Option<i64>,
    },
    /// No answer (connection refused, reset, timed out).
    #[error("Stripe could not be reached: {0}")]
    Transport(String),
    /// A success answer without the fields the daemon needs.
    #[error("Stripe's answer could not be read: {0}")]
    Decode(String),
}

impl StripeError {
    /// Whether the same request may succeed later: Stripe's `Stripe-Should-Retry` when it
    /// says, else its documented transient statuses; a request that got no answer always.
    pub fn is_retryable(&self) -> bool {
        match self {
            StripeError::Api {
                status,
                should_retry,
                ..
            } => should_retry.unwrap_or(matches!(status, 409 | 424 | 429 | 500..=599)),
            StripeError::Transport(_) => true,
            StripeError::Decode(_) => false,
        }
    }
}

impl StripeError {
    /// How long Stripe asked to wait before the next attempt, if it said.
    pub fn retry_after_secs(&self) -> Option<i64> {
        match self {
            StripeError::Api {
                retry_after_secs, ..
            } => *retry_after_secs,
            _ => None,
        }
    }
}

impl StripeClientErr for StripeError {
    fn deserialize_err(msg: impl std::fmt::Display) -> Self {
        StripeError::Decode(msg.to_string())
    }
}

/// An object Stripe made: its id.
#[derive(Debug, miniserde::Deserialize)]
pub struct Created {
    pub id: String,
}

/// A meter event Stripe took. The object has no `id`: it is named by its `identifier`.
#[derive(Debug, miniserde::Deserialize)]
pub struct MeterEventTaken {
    pub identifier: Option<String>,
}

/// An object with a URL to send a person to (account link, checkout session).
#[derive(Debug, miniserde::Deserialize)]
pub struct Redirect {
    pub id: Option<String>,
    pub url: String,
}

/// A v2 meter event session: a short-lived token for the meter event stream.
#[derive(Debug, serde::Deserialize)]
pub struct MeterEventSession {
    pub authentication_token: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// One event on the v2 meter event stream.
#[derive(Debug, Serialize)]
pub struct StreamEvent<'a> {
    pub event_name: &'a str,
    pub identifier: &'a str,
    pub payload: StreamPayload<'a>,
    /// RFC 3339.
    pub timestamp: String,
}

#[derive(Debug, Serialize)]
pub struct StreamPayload<'a> {
    pub stripe_customer_id: &'a str,
    /// Whole units, as a string (Stripe's payload values are strings).
    pub value: String,
}

#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    secret: HeaderValue,
    api_base: String,
    meter_events_base: String,
}

impl StripeClient {
    pub fn new(config: &StripeConfig) -> anyhow::Result<StripeClient> {
        let mut secret = HeaderValue::try_from(format!("Bearer {}", config.secret_key))
            .map_err(|_| anyhow::anyhow!("stripe.secret_key is not a valid header value"))?;
        secret.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(
            "stripe-version",
            HeaderValue::from_static(stripe_shared::version::VERSION.as_str()),
        );
        let http = reqwest::Client::builder()
            .user_agent(concat!("Staryer/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .build()?;
        Ok(StripeClient {
            http,
            secret,
            api_base: config.api_base.trim_end_matches('/').to_string(),
            meter_events_base: config.meter_events_base.trim_end_matches('/').to_string(),
        })
    }

    /// Sends one v1 request on behalf of a connected account (`None`: the platform itself),
    /// once, with the given idempotency key, and reads the answer as `T`.
    pub async fn send<R, T>(
        &self,
        request: &R,
        account: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError>
    where
        R: StripeRequest,
        T: miniserde::Deserialize,
    {
        let mut customized = request.build().customize::<T>();
        if let Some(account) = account {
            customized = customized.account_id(stripe_shared::AccountId::from(account));
        }
        if let Some(key) = idempotency_key {
            let key = stripe_client_core::IdempotencyKey::new(key)
                .map_err(|e| StripeError::Decode(e.to_string()))?;
            customized = customized.request_strategy(RequestStrategy::Idempotent(key));
        }
        customized.send(self).await
    }

    /// Opens a v2 meter event session for a connected account (`Stripe-Context`, v2's
    /// equivalent of `Stripe-Account`).
    pub async fn create_meter_event_session(
        &self,
        account: &str,
    ) -> Result<MeterEventSession, StripeError> {
        let response = self
            .http
            .post(format!("{}/v2/billing/meter_event_session", self.api_base))
            .header(AUTHORIZATION, self.secret.clone())
            .header("stripe-context", account)
            .json(&serde_json::json!({}))
            .send()
            .await
            .map_err(transport)?;
        let body = success_body(response).await?;
        serde_json::from_slice(&body).map_err(|e| StripeError::Decode(e.to_string()))
    }

    /// The full body of a thin (v2) event, which its notification does not carry
    /// (`GET /v2/core/events/{id}`), as the connected account sees it.
    pub async fn retrieve_v2_event(
        &self,
        account: &str,
        event_id: &str,
    ) -> Result<serde_json::Value, StripeError> {
        let response = self
            .http
            .get(format!("{}/v2/core/events/{event_id}", self.api_base))
            .header(AUTHORIZATION, self.secret.clone())
            .header("stripe-context", account)
            .send()
            .await
            .map_err(transport)?;
        let body = success_body(response).await?;
        serde_json::from_slice(&body).map_err(|e| StripeError::Decode(e.to_string()))
    }

    /// Sends up to 100 events on the v2 meter event stream with a session token.
    pub async fn send_meter_event_stream(
        &self,
        token: &str,
        events: &[StreamEvent<'_>],
    ) -> Result<(), StripeError> {
        let response = self
            .http
            .post(format!(
                "{}/v2/billing/meter_event_stream",
                self.meter_events_base
            ))
            .bearer_auth(token)
            .json(&serde_json::json!({ "events": events }))
            .send()
            .await
            .map_err(transport)?;
        success_body(response).await.map(drop)
    }
}

/// What went wrong on the way, in words: reqwest's own text ("error sending request")
/// hides the cause in its source chain.
fn transport(err: reqwest::Error) -> StripeError {
    if err.is_timeout() {
        return StripeError::Transport(
            "no answer within stripe.request_timeout_ms (timed out)".into(),
        );
    }
    let mut cause = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(next) = source {
        cause.push_str(": ");
        cause.push_str(&next.to_string());
        source = next.source();
    }
    StripeError::Transport(cause)
}

/// The body of a 2xx answer, or the answer's error.
async fn success_body(response: reqwest::Response) -> Result<Bytes, StripeError> {
    let status = response.status().as_u16();
    let should_retry = response
        .headers()
        .get("stripe-should-retry")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    // Seconds only: Stripe does not send the HTTP-date form.
    let retry_after_secs = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|secs| *secs >= 0);
    let body = response.bytes().await.map_err(transport)?;
    if (200..300).contains(&status) {
        return Ok(body);
    }
    #[derive(serde::Deserialize)]
    struct ErrorEnvelope {
        error: ErrorObject,
    }
    #[derive(serde::Deserialize)]
    struct ErrorObject {
        code: Option<String>,
        message: Option<String>,
    }
    let (code, message) = match serde_json::from_slice::<ErrorEnvelope>(&body) {
        Ok(envelope) => (
            envelope.error.code,
            envelope.error.message.unwrap_or_default(),
        ),
        Err(_) => (
            None,
            String::from_utf8_lossy(&body).chars().take(200).collect(),
        ),
    };
    Err(StripeError::Api {
        status,
        code,
        message,
        should_retry,
        retry_after_secs,
    })
}

impl stripe_client_core::StripeClient for StripeClient {
    type Err = StripeError;

    async fn execute(&self, request: CustomizedStripeRequest) -> Result<Bytes, StripeError> {
        let (request, config) = request.into_pieces();
        let mut url = format!("{}/v1{}", self.api_base, request.path);
        if let Some(query) = &request.query {
            url.push('?');
            url.push_str(query);
        }
        let method = match request.method {
            StripeMethod::Get => reqwest::Method::GET,
            StripeMethod::Post => reqwest::Method::POST,
            StripeMethod::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self
            .http
            .request(method, url)
            .header(AUTHORIZATION, self.secret.clone());
        if let Some(account) = &config.account_id {
            builder = builder.header("stripe-account", account.as_str());
        }
        if let Some(key) = config.request_strategy.as_ref().and_then(|s| s.get_key()) {
            builder = builder.header("idempotency-key", key.as_str());
        }
        if let Some(body) = request.body {
            builder = builder
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body);
        }
        let response = builder.send().await.map_err(transport)?;
        success_body(response).await
    }
}
