//! What the AI surface takes and answers, and the `Suggester` the daemon holds: the model
//! client and each creator's hourly allowance.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ai::openai::OpenAi;
use crate::config::OpenAiConfig;

/// What a creator asks of the model.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuggestionRequest {
    #[schema(schema_with = prompt_schema)]
    pub prompt: String,
}

fn prompt_schema() -> utoipa::openapi::schema::Object {
    crate::schema::text(
        1,
        2_000,
        r"\S",
        "What to change, in the creator's words: up to 2,000 characters, not only spaces",
    )
}

/// The version made from the model's answer (unpublished).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    pub embed: String,
    pub version: i64,
    /// Whether it is live: never, until published.
    pub published: bool,
    #[schema(value_type = Object)]
    pub config: Value,
    pub usage: TokenUsage,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenUsage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// The model and each creator's allowance.
pub struct Suggester {
    pub openai: OpenAi,
    pub allowance: DefaultKeyedRateLimiter<String>,
}

impl Suggester {
    /// `None` while AI suggestions are off (no key).
    pub fn from_config(config: &OpenAiConfig) -> Option<Suggester> {
        let per_hour = NonZeroU32::new(config.suggestions_per_hour).unwrap_or(NonZeroU32::MIN);
        Some(Suggester {
            openai: OpenAi::from_config(config)?,
            allowance: RateLimiter::keyed(Quota::per_hour(per_hour)),
        })
    }
}

/// A creator's AI suggestions and the tokens they cost, all days summed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AiUsage {
    /// Whether AI suggestions are on for the platform.
    pub enabled: bool,
    pub suggestions: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}
