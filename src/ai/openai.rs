//! OpenAI's chat completions API with structured output (`response_format` of type
//! `json_schema`): the answer is JSON the schema describes, or a refusal.
//!
//! Sent with reqwest rather than `async-openai`: one request shape is all Staryer asks,
//! and the crate would add a second HTTP stack and its own retry policy (a suggestion is
//! asked by a person waiting for it, who is better told at once than retried for long)
//! to a build that CI times.

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::OpenAiConfig;

pub struct OpenAi {
    http: reqwest::Client,
    endpoint: String,
    api_key: String,
    model: String,
}

/// What one structured completion came to.
#[derive(Debug)]
pub struct Completion {
    /// The answer, parsed.
    pub answer: Value,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("the model service did not answer in time")]
    TimedOut,
    #[error("the model service is unreachable: {0}")]
    Unreachable(String),
    /// Rate limited or overloaded; `Retry-After` seconds when it said.
    #[error("the model service is busy")]
    Busy(Option<u64>),
    #[error("the model service answered {0}")]
    Failed(u16),
    #[error("the model declined: {0}")]
    Refused(String),
    #[error("the model's answer is not the JSON asked for")]
    Malformed,
}

impl OpenAi {
    /// `None` (and a line in the log) without an API key.
    pub fn from_config(config: &OpenAiConfig) -> Option<OpenAi> {
        if config.api_key.is_empty() {
            tracing::info!("AI suggestions are off: openai.api_key is not set");
            return None;
        }
        Some(OpenAi {
            http: reqwest::Client::builder()
                .timeout(Duration::from_millis(config.timeout_ms))
                .build()
                .expect("an HTTP client builds"),
            endpoint: format!("{}/chat/completions", config.base_url.trim_end_matches('/')),
            api_key: config.api_key.clone(),
            model: config.model.clone(),
        })
    }

    /// Asks for JSON matching `schema` (named `name`), given the instructions and the
    /// request.
    pub async fn complete(
        &self,
        instructions: &str,
        request: &str,
        name: &str,
        schema: &Value,
    ) -> Result<Completion, AskError> {
        let body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": instructions},
                {"role": "user", "content": request},
            ],
            "response_format": {
                "type": "json_schema",
                // Not `strict`: strict mode wants every property required, and a config's
                // optional fields are optional; the answer is checked like any config.
                "json_schema": {"name": name, "schema": schema, "strict": false},
            },
        });
        let response = self
            .http
            .post(&self.endpoint)
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .map_err(|err| {
                if err.is_timeout() {
                    AskError::TimedOut
                } else {
                    AskError::Unreachable(crate::outbound::describe(&err))
                }
            })?;
        let status = response.status();
        if status.as_u16() == 429 || status.is_server_error() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            return Err(AskError::Busy(retry_after));
        }
        if !status.is_success() {
            return Err(AskError::Failed(status.as_u16()));
        }
        let reply: Value = response.json().await.map_err(|err| {
            if err.is_timeout() {
                AskError::TimedOut
            } else {
                AskError::Malformed
            }
        })?;
        let message = &reply["choices"][0]["message"];
        if let Some(refusal) = message["refusal"].as_str() {
            return Err(AskError::Refused(refusal.chars().take(500).collect()));
        }
        let answer = message["content"]
            .as_str()
            .and_then(|content| serde_json::from_str(content).ok())
            .ok_or(AskError::Malformed)?;
        Ok(Completion {
            answer,
            prompt_tokens: reply["usage"]["prompt_tokens"].as_i64().unwrap_or(0),
            completion_tokens: reply["usage"]["completion_tokens"].as_i64().unwrap_or(0),
        })
    }
}
