//! Keys: missing, wrong, or of the wrong kind; the admin token; per-key rate limits.

use serde_json::json;

use crate::helpers::{assert_error, ok_json, spawn_app, Backend, ADMIN_TOKEN};
use crate::on_both_databases;

on_both_databases!(
    requests_without_a_valid_key_are_refused,
    publishable_keys_and_the_admin_token_do_not_open_the_creator_api,
    creators_are_listed_for_the_admin_only_and_keys_are_never_shown_again,
    a_rate_limited_key_gets_429_with_retry_after,
    keys_keep_working_after_a_restart,
);

async fn requests_without_a_valid_key_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_creator("acme").await;
    let no_key = app.client.get(app.url("/v1/meters")).send().await.unwrap();
    assert_error(no_key, 401, "missing_key").await;
    let basic = app
        .client
        .get(app.url("/v1/meters"))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    assert_error(basic, 401, "invalid_key").await;
    assert_error(app.get("/v1/meters", "sk_wrong").await, 401, "invalid_key").await;
    assert_error(
        app.get("/v1/admin/creators", "nope").await,
        401,
        "invalid_key",
    )
    .await;
}

async fn publishable_keys_and_the_admin_token_do_not_open_the_creator_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.create_creator("acme").await;
    assert!(creator.secret_key.starts_with("sk_"));
    assert!(creator.publishable_key.starts_with("pk_"));
    assert_error(
        app.get("/v1/meters", &creator.publishable_key).await,
        403,
        "wrong_key_kind",
    )
    .await;
    assert_error(
        app.post(
            "/v1/events",
            &creator.publishable_key,
            &json!({"customer_id": "c", "meter": "m"}),
        )
        .await,
        403,
        "wrong_key_kind",
    )
    .await;
    assert_error(
        app.get("/v1/meters", ADMIN_TOKEN).await,
        403,
        "wrong_key_kind",
    )
    .await;
    assert_error(
        app.get("/v1/admin/stats", &creator.secret_key).await,
        403,
        "wrong_key_kind",
    )
    .await;
}

async fn creators_are_listed_for_the_admin_only_and_keys_are_never_shown_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = ok_json(
        app.post(
            "/v1/admin/creators",
            ADMIN_TOKEN,
            &json!({"slug": "acme", "name": "Acme Inc", "custom_domain": "billing.acme.test", "branding": {"color": "#f00"}}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["name"], "Acme Inc");
    assert_eq!(created["branding"]["color"], "#f00");
    let listed = ok_json(app.get("/v1/admin/creators", ADMIN_TOKEN).await, 200).await;
    assert_eq!(listed[0]["slug"], "acme");
    assert_eq!(listed[0]["custom_domain"], "billing.acme.test");
    let text = listed.to_string();
    assert!(
        !text.contains("sk_") && !text.contains("secret_key"),
        "{text}"
    );
    let stats = ok_json(app.get("/v1/admin/stats", ADMIN_TOKEN).await, 200).await;
    assert_eq!(
        (stats["creators"].as_i64(), stats["store_up"].as_bool()),
        (Some(1), Some(true))
    );
}

async fn a_rate_limited_key_gets_429_with_retry_after(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = ok_json(
        app.post(
            "/v1/admin/creators",
            ADMIN_TOKEN,
            &json!({"slug": "acme", "rate_limit": {"per_second": 1, "burst": 2}}),
        )
        .await,
        201,
    )
    .await;
    let key = created["secret_key"].as_str().unwrap();
    assert_eq!(app.get("/v1/meters", key).await.status(), 200);
    assert_eq!(app.get("/v1/meters", key).await.status(), 200);
    let limited = app.get("/v1/meters", key).await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_error(limited, 429, "rate_limited").await;
    let metrics = app.metrics().await;
    assert!(metrics.contains("staryer_rate_limited_total"), "{metrics}");
    // Lifting the limit takes effect at once.
    let patched = ok_json(
        app.send(
            reqwest::Method::PATCH,
            "/v1/admin/creators/acme",
            ADMIN_TOKEN,
            Some(&json!({"rate_limit": null})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["rate_limit"], serde_json::Value::Null);
    for _ in 0..5 {
        assert_eq!(app.get("/v1/meters", key).await.status(), 200);
    }
}

async fn keys_keep_working_after_a_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let app = app.restart().await;
    assert_eq!(
        ok_json(app.get("/v1/meters", &creator.secret_key).await, 200).await[0]["key"],
        "calls"
    );
    assert_error(
        app.get("/v1/meters", &creator.publishable_key).await,
        403,
        "wrong_key_kind",
    )
    .await;
}
