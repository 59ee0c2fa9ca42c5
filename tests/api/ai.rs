//! AI suggestions against a fake OpenAI (chat completions with `json_schema` output): the
//! schema and the creator's tiers go in the request, the answer is saved as an unpublished
//! version, an invalid answer is refused, tokens are recorded, and each creator's hourly
//! allowance holds.

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::embeds::{create_embed, pricing_config};
use crate::helpers::{assert_error, ok_json, spawn_app_with, Backend};
use crate::on_both_databases;

on_both_databases!(suggestions_are_checked_saved_unpublished_and_rate_limited);

/// A chat completion whose message content is `content` (JSON text), as OpenAI answers.
fn completion(content: &Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1_741_569_952,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content.to_string(), "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 812, "completion_tokens": 96, "total_tokens": 908}
    }))
}

async fn suggestions_are_checked_saved_unpublished_and_rate_limited(backend: Backend) {
    let openai = MockServer::start().await;
    let mut suggested = pricing_config("Pick the plan that grows with you");
    suggested["theme"]["primary_color"] = json!("#0f766e");
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(completion(&suggested))
        .up_to_n_times(1)
        .mount(&openai)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(completion(&json!({"tiers": ["enterprise"]})))
        .mount(&openai)
        .await;
    let app = spawn_app_with(backend, |config| {
        config.openai.api_key = "sk-test".into();
        config.openai.base_url = format!("{}/v1", openai.uri());
        config.openai.suggestions_per_hour = 2;
    })
    .await;
    let creator = app.create_creator("acme").await;
    for tier in ["free", "pro", "team"] {
        app.create_tier(&creator, tier, json!({}), tier == "free")
            .await;
    }
    create_embed(
        &app,
        &creator,
        "pricing",
        "pricing_table",
        pricing_config("v1"),
    )
    .await;
    assert_error(
        app.post(
            "/v1/embeds/pricing/suggestions",
            &creator.secret_key,
            json!({"prompt": ""}),
        )
        .await,
        422,
        "invalid_prompt",
    )
    .await;
    let suggestion = ok_json(
        app.post(
            "/v1/embeds/pricing/suggestions",
            &creator.secret_key,
            json!({"prompt": "Make it calmer, teal, and say it grows with the customer"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(suggestion["version"], 2);
    assert_eq!(suggestion["published"], false);
    assert_eq!(suggestion["config"]["theme"]["primary_color"], "#0f766e");
    assert_eq!(
        suggestion["usage"],
        json!({"prompt_tokens": 812, "completion_tokens": 96})
    );
    let embed = ok_json(
        app.get("/v1/embeds/pricing", &creator.secret_key).await,
        200,
    )
    .await;
    assert_eq!(
        embed["published_version"], 1,
        "nothing goes live by itself: {embed}"
    );

    let asked: Value =
        serde_json::from_slice(&openai.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(asked["model"], "gpt-4o-mini");
    let format = &asked["response_format"];
    assert_eq!(format["type"], "json_schema");
    let schema = &format["json_schema"]["schema"];
    assert!(schema["properties"]["tiers"].is_object(), "{schema}");
    assert!(
        !schema.to_string().contains("$ref"),
        "the schema stands alone"
    );
    let prompt = asked["messages"][1]["content"].as_str().unwrap();
    assert!(prompt.contains("\"team\"") && prompt.contains("grows with the customer"));

    // A config naming a tier that does not exist is refused, and saves nothing.
    assert_error(
        app.post(
            "/v1/embeds/pricing/suggestions",
            &creator.secret_key,
            json!({"prompt": "more"}),
        )
        .await,
        502,
        "invalid_suggestion",
    )
    .await;
    let embed = ok_json(
        app.get("/v1/embeds/pricing", &creator.secret_key).await,
        200,
    )
    .await;
    assert_eq!(embed["versions"].as_array().unwrap().len(), 2);
    let usage = ok_json(app.get("/v1/ai/usage", &creator.secret_key).await, 200).await;
    assert_eq!(
        usage,
        json!({"enabled": true, "suggestions": 2, "prompt_tokens": 1624, "completion_tokens": 192})
    );
    // Two an hour: the third waits.
    assert_error(
        app.post(
            "/v1/embeds/pricing/suggestions",
            &creator.secret_key,
            json!({"prompt": "again"}),
        )
        .await,
        429,
        "rate_limited",
    )
    .await;
    let other = app.create_creator("other").await;
    assert_error(
        app.post(
            "/v1/embeds/pricing/suggestions",
            &other.secret_key,
            json!({"prompt": "x"}),
        )
        .await,
        404,
        "embed_not_found",
    )
    .await;
}
