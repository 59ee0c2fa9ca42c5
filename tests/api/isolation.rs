//! Tenant isolation: creator A's key cannot see or touch creator B's meters, tiers,
//! customers or usage; B's objects look exactly like objects that do not exist (404).

use serde_json::json;

use crate::helpers::{assert_error, ok_json, spawn_app, Backend};
use crate::on_both_databases;

on_both_databases!(one_creators_key_cannot_see_or_touch_another_creators_objects);

async fn one_creators_key_cannot_see_or_touch_another_creators_objects(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.create_creator("alpha").await;
    let b = app.creator_with_cap("beta", 10, "block").await;
    app.create_meter(&b, "private", "sum", "month").await;
    app.assign(&b, "bob", "basic").await;
    app.event(
        &b,
        json!({"customer_id": "bob", "meter": "calls", "value": 5}),
    )
    .await;

    assert_error(
        app.get("/v1/meters/calls", &a.secret_key).await,
        404,
        "meter_not_found",
    )
    .await;
    assert_error(
        app.get("/v1/tiers/basic", &a.secret_key).await,
        404,
        "tier_not_found",
    )
    .await;
    assert_error(
        app.send(
            reqwest::Method::PATCH,
            "/v1/tiers/basic",
            &a.secret_key,
            Some(&json!({"name": "pwned"})),
        )
        .await,
        404,
        "tier_not_found",
    )
    .await;
    assert_error(
        app.get("/v1/customers/bob/usage", &a.secret_key).await,
        404,
        "customer_not_found",
    )
    .await;
    assert_error(
        app.get("/v1/customers/bob/entitlements/reports", &a.secret_key)
            .await,
        404,
        "customer_not_found",
    )
    .await;
    assert_error(
        app.post(
            "/v1/events",
            &a.secret_key,
            &json!({"customer_id": "bob", "meter": "calls"}),
        )
        .await,
        404,
        "meter_not_found",
    )
    .await;
    assert_error(
        app.post(
            "/v1/check",
            &a.secret_key,
            &json!({"customer_id": "bob", "meter": "calls"}),
        )
        .await,
        404,
        "meter_not_found",
    )
    .await;
    assert_error(
        app.send(
            reqwest::Method::PUT,
            "/v1/customers/bob",
            &a.secret_key,
            Some(&json!({"tier": "basic"})),
        )
        .await,
        404,
        "tier_not_found",
    )
    .await;
    // A's lists are empty; B's objects are unchanged.
    assert_eq!(
        ok_json(app.get("/v1/meters", &a.secret_key).await, 200).await,
        json!([])
    );
    assert_eq!(
        ok_json(app.get("/v1/tiers", &a.secret_key).await, 200).await,
        json!([])
    );
    assert_eq!(
        ok_json(app.get("/v1/tiers/basic", &b.secret_key).await, 200).await["name"],
        "basic"
    );
    assert_eq!(app.used(&b, "bob", "calls").await, 5);
    // The same ids on A's side are A's own.
    app.create_meter(&a, "calls", "sum", "month").await;
    app.event(
        &a,
        json!({"customer_id": "bob", "meter": "calls", "value": 1}),
    )
    .await;
    assert_eq!(app.used(&a, "bob", "calls").await, 1);
    assert_eq!(app.used(&b, "bob", "calls").await, 5);
}
