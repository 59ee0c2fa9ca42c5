//! `POST /v1/embeds/{key}/suggestions` (secret key). A thin handler over `suggestions`.

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;

use crate::ai::model::{AiUsage, Suggestion, SuggestionRequest};
use crate::ai::suggestions;
use crate::audit::model::Who;
use crate::error::{ApiError, ErrorBody};
use crate::http::auth::CreatorAuth;
use crate::http::body::ApiJson;
use crate::meters::model::slug_schema;
use crate::state::AppState;

/// `/v1/embeds/{key}/suggestions`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SuggestionPath {
    /// The embed's key.
    #[param(schema_with = slug_schema)]
    key: String,
}

/// Ask the model for a new version of the embed (copy and theme fitted to the branding and
/// tiers); it is saved unpublished.
#[utoipa::path(post, path = "/v1/embeds/{key}/suggestions", tag = "embeds",
    params(SuggestionPath), request_body = SuggestionRequest,
    responses((status = 201, body = Suggestion),
        (status = 404, description = "`embed_not_found`", body = ErrorBody),
        (status = 409, description = "`too_many_versions`; `ai_disabled`: the platform set no \
            OpenAI key", body = ErrorBody),
        (status = 422, description = "`invalid_prompt`, `ai_refused`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the creator's hourly allowance is spent",
            body = ErrorBody),
        (status = 502, description = "`invalid_suggestion` (the model's config did not pass \
            the checks), `ai_failed`", body = ErrorBody),
        (status = 503, description = "`ai_busy`: the model service is rate limited or down",
            body = ErrorBody),
        (status = 504, description = "`ai_timeout`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[post("/v1/embeds/{key}/suggestions")]
pub async fn suggest(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    who: Who,
    path: web::Path<SuggestionPath>,
    ApiJson(body): ApiJson<SuggestionRequest>,
) -> Result<HttpResponse, ApiError> {
    let suggestion = suggestions::suggest(&state, &creator, &who, &path.key, body).await?;
    Ok(HttpResponse::Created().json(suggestion))
}

/// The creator's AI suggestions so far and the tokens they cost.
#[utoipa::path(get, path = "/v1/ai/usage", tag = "embeds",
    responses((status = 200, body = AiUsage)), security(("secret_key" = [])))]
#[get("/v1/ai/usage")]
pub async fn usage(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
) -> Result<HttpResponse, ApiError> {
    let (suggestions, prompt_tokens, completion_tokens) =
        state.store.ai_usage(&creator.tenant.id).await?;
    Ok(HttpResponse::Ok().json(AiUsage {
        enabled: state.integrations.suggester.is_some(),
        suggestions,
        prompt_tokens,
        completion_tokens,
    }))
}
