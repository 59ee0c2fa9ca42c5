//! Every bad input gets the SPEC's error shape, a stable code and a fitting status, and a
//! bad batch counts nothing.

use serde_json::json;

use crate::helpers::{assert_error, ok_json, spawn_app, spawn_app_with, Backend, START};
use crate::on_both_databases;

on_both_databases!(
    malformed_or_oversized_bodies_are_refused,
    invalid_event_fields_are_refused_with_a_code_each,
    a_batch_with_one_bad_event_is_refused_whole_and_names_its_index,
    batches_must_hold_one_to_a_thousand_events,
    invalid_meters_tiers_and_creators_are_refused,
    garbage_never_gets_anything_but_a_json_error,
);

async fn malformed_or_oversized_bodies_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.server.max_body_bytes = 4_096).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let key = &creator.secret_key;
    assert_error(
        app.post_raw("/v1/events", key, "{not json").await,
        400,
        "malformed_json",
    )
    .await;
    assert_error(
        app.post_raw("/v1/events", key, "").await,
        400,
        "malformed_json",
    )
    .await;
    assert_error(
        app.post_raw(
            "/v1/events",
            key,
            r#"{"customer_id": "c1", "meter": "calls", "value": NaN}"#,
        )
        .await,
        400,
        "malformed_json",
    )
    .await;
    let huge = format!(
        r#"{{"customer_id": "{}", "meter": "calls"}}"#,
        "x".repeat(5_000)
    );
    assert_error(
        app.post_raw("/v1/events", key, huge).await,
        413,
        "payload_too_large",
    )
    .await;
    assert_error(
        app.post_raw("/v1/meters", key, "[1, 2").await,
        400,
        "malformed_json",
    )
    .await;
    assert_error(
        app.post_raw("/v1/events", key, "[]").await,
        422,
        "invalid_body",
    )
    .await;
    assert_error(
        app.post_raw("/v1/events", key, r#"[null, "c1", "calls"]"#)
            .await,
        422,
        "invalid_body",
    )
    .await;
}

async fn invalid_event_fields_are_refused_with_a_code_each(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let cases = [
        (
            json!({"customer_id": "c1", "meter": "calls", "vaule": 3}),
            422,
            "unknown_field",
        ),
        (
            json!({"customer_id": "c1", "meter": "nope"}),
            404,
            "meter_not_found",
        ),
        (json!({"meter": "calls"}), 422, "missing_field"),
        (json!({"customer_id": "c1"}), 422, "missing_field"),
        (
            json!({"customer_id": "c1", "meter": "calls", "value": -1}),
            422,
            "negative_value",
        ),
        (
            json!({"customer_id": "c1", "meter": "calls", "value": 0.0000001}),
            422,
            "too_precise",
        ),
        (
            json!({"customer_id": "c1", "meter": "calls", "value": "NaN"}),
            422,
            "invalid_value",
        ),
        (
            json!({"customer_id": "c1", "meter": "calls", "value": "5"}),
            422,
            "invalid_value",
        ),
        (
            json!({"customer_id": "c1", "meter": "calls", "value": 1e13}),
            422,
            "value_too_large",
        ),
        (
            json!({"customer_id": "", "meter": "calls"}),
            422,
            "invalid_id",
        ),
        (
            json!({"customer_id": "x".repeat(129), "meter": "calls"}),
            422,
            "invalid_id",
        ),
        (
            json!({"customer_id": 42, "meter": "calls"}),
            422,
            "invalid_value",
        ),
        (
            json!({"customer_id": "nul\u{0}byte", "meter": "calls"}),
            422,
            "invalid_id",
        ),
        (
            json!({"customer_id": "c1", "meter": "calls", "idempotency_key": "a\nb"}),
            422,
            "invalid_id",
        ),
        (
            json!({"customer_id": "c1", "meter": "calls", "idempotency_key": ""}),
            422,
            "invalid_id",
        ),
        (
            json!({"customer_id": "c1", "meter": "calls", "timestamp": "yesterday"}),
            422,
            "invalid_timestamp",
        ),
        (
            json!({"customer_id": "c1", "meter": "calls", "timestamp": 1.5}),
            422,
            "invalid_timestamp",
        ),
        (
            json!({"customer_id": "c1", "meter": "calls", "timestamp": START - 36 * 86_400}),
            422,
            "timestamp_out_of_range",
        ),
        (
            json!({"customer_id": "c1", "meter": "calls", "timestamp": START + 600}),
            422,
            "timestamp_out_of_range",
        ),
        (
            json!({"customer_id": "c1", "meter": "calls", "events": []}),
            422,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        let response = app.post("/v1/events", &creator.secret_key, &body).await;
        let actual = response.status().as_u16();
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            (actual, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "for {body}: {answer}"
        );
    }
    // The edges that are valid.
    let ok = app
        .event(
            &creator,
            json!({"customer_id": "x".repeat(128), "meter": "calls", "value": 0,
        "timestamp": START - 35 * 86_400}),
        )
        .await;
    assert_eq!(ok["decision"], "allow");
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "calls", "timestamp": "2026-03-15T12:05:00+00:00"}),
    )
    .await;
    // Nothing above counted for c1 except the last.
    assert_eq!(app.used(&creator, "c1", "calls").await, 1);
    // Checks refuse the same things.
    assert_error(
        app.post(
            "/v1/check",
            &creator.secret_key,
            &json!({"customer_id": "c1", "meter": "calls", "value": -2}),
        )
        .await,
        422,
        "negative_value",
    )
    .await;
    assert_error(
        app.post(
            "/v1/check",
            &creator.secret_key,
            &json!({"customer_id": "c1", "meter": "calls", "timestamp": 1}),
        )
        .await,
        422,
        "unknown_field",
    )
    .await;
}

async fn a_batch_with_one_bad_event_is_refused_whole_and_names_its_index(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let mut events: Vec<_> = (0..5)
        .map(|i| json!({"customer_id": "c1", "meter": "calls", "idempotency_key": format!("k{i}")}))
        .collect();
    events.push(json!({"customer_id": "c1", "meter": "calls", "value": -1}));
    let body = assert_error(
        app.post(
            "/v1/events",
            &creator.secret_key,
            &json!({"events": events}),
        )
        .await,
        422,
        "negative_value",
    )
    .await;
    assert_eq!(body["error"]["index"], 5);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("events[5]"));
    events[5] = json!({"customer_id": "c1", "meter": "calls", "vaule": 1});
    let body = assert_error(
        app.post(
            "/v1/events",
            &creator.secret_key,
            &json!({"events": events}),
        )
        .await,
        422,
        "unknown_field",
    )
    .await;
    assert_eq!(body["error"]["index"], 5);
    events[5] = json!({"customer_id": "c1", "meter": "ghost"});
    let body = assert_error(
        app.post(
            "/v1/events",
            &creator.secret_key,
            &json!({"events": events}),
        )
        .await,
        404,
        "meter_not_found",
    )
    .await;
    assert_eq!(body["error"]["index"], 5);
    // Nothing was counted and no key was kept: the customer was never seen.
    assert_error(
        app.get("/v1/customers/c1/usage", &creator.secret_key).await,
        404,
        "customer_not_found",
    )
    .await;
    events.pop();
    let body = ok_json(
        app.post(
            "/v1/events",
            &creator.secret_key,
            &json!({"events": events}),
        )
        .await,
        200,
    )
    .await;
    assert!(body["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r.get("duplicate").is_none()));
    assert_eq!(app.used(&creator, "c1", "calls").await, 5);
}

async fn batches_must_hold_one_to_a_thousand_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "calls", "sum", "month").await;
    let event = json!({"customer_id": "c1", "meter": "calls"});
    let thousand = vec![event.clone(); 1000];
    let body = ok_json(
        app.post(
            "/v1/events",
            &creator.secret_key,
            &json!({"events": thousand}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(body["results"].as_array().unwrap().len(), 1000);
    let too_many = vec![event; 1001];
    assert_error(
        app.post(
            "/v1/events",
            &creator.secret_key,
            &json!({"events": too_many}),
        )
        .await,
        422,
        "batch_too_large",
    )
    .await;
    assert_error(
        app.post("/v1/events", &creator.secret_key, &json!({"events": []}))
            .await,
        422,
        "empty_batch",
    )
    .await;
    assert_eq!(app.used(&creator, "c1", "calls").await, 1000);
}

async fn invalid_meters_tiers_and_creators_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let key = &creator.secret_key;
    let meter = |body: serde_json::Value| app.post("/v1/meters", key, body);
    assert_error(
        meter(json!({"key": "calls", "aggregation": "sum", "reset": "month"})).await,
        409,
        "already_exists",
    )
    .await;
    assert_error(
        meter(json!({"key": "Bad Key", "aggregation": "sum", "reset": "month"})).await,
        422,
        "invalid_slug",
    )
    .await;
    assert_error(
        meter(json!({"key": "m", "aggregation": "avg", "reset": "month"})).await,
        422,
        "invalid_value",
    )
    .await;
    assert_error(
        meter(json!({"key": "m", "aggregation": "sum", "reset": "hourly"})).await,
        422,
        "invalid_value",
    )
    .await;
    assert_error(
        meter(json!({"key": "m", "aggregation": "sum"})).await,
        422,
        "missing_field",
    )
    .await;
    let tier = |caps, price| {
        app.post(
            "/v1/tiers",
            key,
            json!({"key": "t2", "name": "T", "price": price, "caps": caps}),
        )
    };
    let price = json!({"amount": 100, "currency": "usd", "interval": "month"});
    assert_error(
        tier(json!({"ghost": {"limit": 1}}), price.clone()).await,
        404,
        "meter_not_found",
    )
    .await;
    assert_error(
        tier(json!({"calls": {"limit": -1}}), price.clone()).await,
        422,
        "invalid_value",
    )
    .await;
    assert_error(
        tier(
            json!({"calls": {"limit": 1, "warn_at": 1.5}}),
            price.clone(),
        )
        .await,
        422,
        "invalid_cap",
    )
    .await;
    assert_error(
        tier(
            json!({"calls": {"limit": 1, "on_exceed": "explode"}}),
            price.clone(),
        )
        .await,
        422,
        "invalid_value",
    )
    .await;
    assert_error(
        tier(
            json!({}),
            json!({"amount": -5, "currency": "usd", "interval": "month"}),
        )
        .await,
        422,
        "invalid_price",
    )
    .await;
    assert_error(
        tier(
            json!({}),
            json!({"amount": 5, "currency": "dollars", "interval": "month"}),
        )
        .await,
        422,
        "invalid_price",
    )
    .await;
    assert_error(
        tier(
            json!({}),
            json!({"amount": 5, "currency": "usd", "interval": "week"}),
        )
        .await,
        422,
        "invalid_value",
    )
    .await;
    assert_error(
        app.post(
            "/v1/tiers",
            key,
            &json!({"key": "basic", "name": "again", "price": price}),
        )
        .await,
        409,
        "already_exists",
    )
    .await;
    let app = &app;
    let put = |path: String, body: serde_json::Value| async move {
        app.send(reqwest::Method::PUT, &path, key, Some(&body))
            .await
    };
    assert_error(
        put("/v1/customers/c1".into(), json!({"tier": "ghost"})).await,
        404,
        "tier_not_found",
    )
    .await;
    assert_error(
        put(
            "/v1/customers/c1".into(),
            json!({"tier": "basic", "email": "nope"}),
        )
        .await,
        422,
        "invalid_email",
    )
    .await;
    assert_error(
        put(
            "/v1/customers/c1".into(),
            json!({"tier": "basic", "email": "a\u{0}@b.co"}),
        )
        .await,
        422,
        "invalid_email",
    )
    .await;
    let nul_name =
        json!({"key": "m2", "name": "bad\u{0}name", "aggregation": "sum", "reset": "day"});
    assert_error(
        app.post("/v1/meters", key, nul_name).await,
        422,
        "invalid_value",
    )
    .await;
    assert_error(
        put("/v1/customers/c1".into(), json!({"plan": "basic"})).await,
        422,
        "unknown_field",
    )
    .await;
    let long_id = format!("/v1/customers/{}", "y".repeat(129));
    assert_error(
        put(long_id, json!({"tier": "basic"})).await,
        422,
        "invalid_id",
    )
    .await;
    let admin =
        |body: serde_json::Value| app.post("/v1/admin/creators", crate::helpers::ADMIN_TOKEN, body);
    assert_error(admin(json!({"slug": "acme"})).await, 409, "already_exists").await;
    assert_error(admin(json!({"slug": ""})).await, 422, "invalid_slug").await;
    assert_error(
        admin(json!({"slug": "ok", "branding": [1]})).await,
        422,
        "invalid_branding",
    )
    .await;
    assert_error(
        app.get("/v1/nothing-here", key).await,
        404,
        "route_not_found",
    )
    .await;
}

async fn garbage_never_gets_anything_but_a_json_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let bodies = [
        "null",
        "true",
        "1",
        "\"str\"",
        "{}",
        "{\"events\": null}",
        "{\"events\": {}}",
        "{\"events\": [null]}",
        "{\"events\": [1]}",
        "{\"events\": [{}]}",
        "{\"customer_id\": null, \"meter\": \"calls\"}",
        "{\"customer_id\": \"\\ud800\", \"meter\": \"calls\"}",
        "{\"customer_id\": \"c\", \"meter\": \"calls\", \"value\": 1e999999999999999999999}",
        "{\"customer_id\": \"c\", \"meter\": \"calls\", \"value\": 0.1e-99999}",
        "{\"customer_id\": \"c\", \"meter\": \"calls\", \"value\": 123456789012345678901234567890}",
        "{\"customer_id\": \"c\", \"meter\": \"calls\", \"timestamp\": 99999999999999999999}",
        "{\"customer_id\": \"c\", \"meter\": \"calls\", \"timestamp\": \"\\u0000\"}",
        "\u{feff}{}",
        "{\"a\":1,\"a\":2}",
    ];
    for path in ["/v1/events", "/v1/check", "/v1/meters", "/v1/tiers"] {
        for body in bodies {
            let response = app.post_raw(path, &creator.secret_key, body).await;
            let status = response.status().as_u16();
            let answer: serde_json::Value = response.json().await.expect("a JSON answer");
            assert!(
                (400..500).contains(&status),
                "{path} {body}: {status} {answer}"
            );
            assert!(
                answer["error"]["code"].is_string(),
                "{path} {body}: {answer}"
            );
        }
    }
    assert_error(
        app.get("/v1/customers/c/usage", &creator.secret_key).await,
        404,
        "customer_not_found",
    )
    .await;
}
