//! Every row of the decision table, through `POST /v1/events` and `POST /v1/check`.

use serde_json::json;

use crate::helpers::{spawn_app, Backend};
use crate::on_both_databases;

on_both_databases!(
    events_go_allow_then_warn_then_block_and_blocked_events_are_not_counted,
    overage_caps_count_past_the_limit_and_flag_it,
    meters_without_a_cap_always_allow,
    customers_without_a_tier_are_on_the_default_tier_or_uncapped_without_one,
    max_meters_keep_the_peak_and_decide_on_it,
    count_meters_count_each_event_once_whatever_its_value,
    fractional_values_sum_exactly,
    checks_decide_without_counting,
    a_custom_warn_fraction_moves_the_warn_threshold,
    entitlements_follow_the_tier,
    tier_changes_apply_to_the_next_event,
);

async fn events_go_allow_then_warn_then_block_and_blocked_events_are_not_counted(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let event = json!({"customer_id": "c1", "meter": "calls", "value": 4});
    // u + v <= 0.8·L → allow
    let r = app.event(&creator, event.clone()).await;
    assert_eq!(
        (r["decision"].as_str(), r["used"].as_i64()),
        (Some("allow"), Some(4))
    );
    assert_eq!(
        (r["limit"].as_i64(), r["remaining"].as_i64()),
        (Some(10), Some(6))
    );
    let r = app.event(&creator, event.clone()).await;
    assert_eq!(
        (r["decision"].as_str(), r["used"].as_i64()),
        (Some("allow"), Some(8))
    );
    // 0.8·L < u + v <= L → warn
    assert_eq!(app.decided(&creator, "calls", 2).await, ("warn".into(), 10));
    // u + v > L, block → block, not counted
    let r = app
        .event(
            &creator,
            json!({"customer_id": "c1", "meter": "calls", "value": 1}),
        )
        .await;
    assert_eq!(
        (r["decision"].as_str(), r["used"].as_i64()),
        (Some("block"), Some(10))
    );
    assert_eq!(r["remaining"], 0);
    assert!(r.get("overage").is_none());
    assert_eq!(app.used(&creator, "c1", "calls").await, 10);
}

async fn overage_caps_count_past_the_limit_and_flag_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "overage").await;
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "calls", "value": 10}),
    )
    .await;
    let r = app
        .event(
            &creator,
            json!({"customer_id": "c1", "meter": "calls", "value": 3}),
        )
        .await;
    assert_eq!(r["decision"], "warn");
    assert_eq!(r["overage"], true);
    assert_eq!(r["used"], 13);
    assert_eq!(r["remaining"], 0);
    assert_eq!(app.used(&creator, "c1", "calls").await, 13);
}

async fn meters_without_a_cap_always_allow(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    app.create_meter(&creator, "storage", "sum", "month").await;
    let r = app
        .event(
            &creator,
            json!({"customer_id": "c1", "meter": "storage", "value": 1000000}),
        )
        .await;
    assert_eq!(r["decision"], "allow");
    assert_eq!(r["limit"], serde_json::Value::Null);
    assert_eq!(r["remaining"], serde_json::Value::Null);
    assert_eq!(r["used"], 1000000);
}

async fn customers_without_a_tier_are_on_the_default_tier_or_uncapped_without_one(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let uncapped = app.create_creator("nodefault").await;
    app.create_meter(&uncapped, "calls", "sum", "month").await;
    app.create_tier(&uncapped, "pro", json!({"calls": {"limit": 1}}), false)
        .await;
    let r = app
        .event(
            &uncapped,
            json!({"customer_id": "c1", "meter": "calls", "value": 50}),
        )
        .await;
    assert_eq!(
        (r["decision"].as_str(), r["limit"].is_null()),
        (Some("allow"), true)
    );
    assert_eq!(
        app.usage(&uncapped, "c1").await["tier"],
        serde_json::Value::Null
    );
    // Assigned to pro: capped at 1.
    app.assign(&uncapped, "c2", "pro").await;
    let r = app
        .event(
            &uncapped,
            json!({"customer_id": "c2", "meter": "calls", "value": 2}),
        )
        .await;
    assert_eq!(r["decision"], "block");

    let capped = app.creator_with_cap("withdefault", 3, "block").await;
    let r = app
        .event(
            &capped,
            json!({"customer_id": "new", "meter": "calls", "value": 4}),
        )
        .await;
    assert_eq!(r["decision"], "block");
    assert_eq!(app.usage(&capped, "new").await["tier"], "basic");
}

async fn max_meters_keep_the_peak_and_decide_on_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "seats", "max", "month").await;
    app.create_tier(&creator, "team", json!({"seats": {"limit": 10}}), true)
        .await;
    assert_eq!(app.decided(&creator, "seats", 5).await, ("allow".into(), 5));
    // max(u, v) = 5: a smaller value leaves the peak.
    assert_eq!(app.decided(&creator, "seats", 3).await, ("allow".into(), 5));
    assert_eq!(app.decided(&creator, "seats", 9).await, ("warn".into(), 9));
    assert_eq!(
        app.decided(&creator, "seats", 11).await,
        ("block".into(), 9)
    );
    let app = app.restart().await;
    assert_eq!(app.used(&creator, "c1", "seats").await, 9);
}

async fn count_meters_count_each_event_once_whatever_its_value(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "requests", "count", "month")
        .await;
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "requests", "value": 40}),
    )
    .await;
    let r = app
        .event(&creator, json!({"customer_id": "c1", "meter": "requests"}))
        .await;
    assert_eq!(r["used"], 2);
}

async fn fractional_values_sum_exactly(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "gb", "sum", "month").await;
    let events: Vec<_> = (0..1000)
        .map(|_| json!({"customer_id": "c1", "meter": "gb", "value": 0.1}))
        .collect();
    for _ in 0..3 {
        let r = app
            .post(
                "/v1/events",
                &creator.secret_key,
                &json!({"events": events}),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(app.used(&creator, "c1", "gb").await, 300);
    let r = app
        .event(
            &creator,
            json!({"customer_id": "c1", "meter": "gb", "value": 0.000001}),
        )
        .await;
    assert_eq!(r["used"], 300.000001);
    let app = app.restart().await;
    assert_eq!(app.used(&creator, "c1", "gb").await, 300.000001);
}

async fn checks_decide_without_counting(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "calls", "value": 9}),
    )
    .await;
    let check = |value: u64| {
        app.post(
            "/v1/check",
            &creator.secret_key,
            json!({"customer_id": "c1", "meter": "calls", "value": value}),
        )
    };
    let r = crate::helpers::ok_json(check(1).await, 200).await;
    assert_eq!(
        (r["decision"].as_str(), r["used"].as_i64()),
        (Some("warn"), Some(10))
    );
    let r = crate::helpers::ok_json(check(2).await, 200).await;
    assert_eq!(r["decision"], "block");
    assert_eq!(app.used(&creator, "c1", "calls").await, 9);
    // A customer never seen: checked against the default tier, still not counted.
    let r = crate::helpers::ok_json(
        app.post(
            "/v1/check",
            &creator.secret_key,
            &json!({"customer_id": "ghost", "meter": "calls"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (r["decision"].as_str(), r["used"].as_i64()),
        (Some("allow"), Some(1))
    );
    crate::helpers::assert_error(
        app.get("/v1/customers/ghost/usage", &creator.secret_key)
            .await,
        404,
        "customer_not_found",
    )
    .await;
}

async fn a_custom_warn_fraction_moves_the_warn_threshold(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "calls", "sum", "month").await;
    app.create_tier(
        &creator,
        "t",
        json!({"calls": {"limit": 100, "warn_at": 0.5}}),
        true,
    )
    .await;
    let r = app
        .event(
            &creator,
            json!({"customer_id": "c1", "meter": "calls", "value": 50}),
        )
        .await;
    assert_eq!(r["decision"], "allow");
    let r = app
        .event(
            &creator,
            json!({"customer_id": "c1", "meter": "calls", "value": 0.000001}),
        )
        .await;
    assert_eq!(r["decision"], "warn");
}

async fn entitlements_follow_the_tier(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    app.assign(&creator, "c1", "basic").await;
    let yes = crate::helpers::ok_json(
        app.get("/v1/customers/c1/entitlements/reports", &creator.secret_key)
            .await,
        200,
    )
    .await;
    assert_eq!(yes, json!({"feature": "reports", "entitled": true}));
    let no = crate::helpers::ok_json(
        app.get("/v1/customers/c1/entitlements/sso", &creator.secret_key)
            .await,
        200,
    )
    .await;
    assert_eq!(no["entitled"], false);
}

async fn tier_changes_apply_to_the_next_event(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "calls", "value": 10}),
    )
    .await;
    let patched = crate::helpers::ok_json(
        app.send(
            reqwest::Method::PATCH,
            "/v1/tiers/basic",
            &creator.secret_key,
            Some(&json!({"caps": {"calls": {"limit": 20}}})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["caps"]["calls"]["limit"], 20);
    assert_eq!(patched["default"], true);
    assert_eq!(
        app.decided(&creator, "calls", 5).await,
        ("allow".into(), 15)
    );
    let app = app.restart().await;
    let tier =
        crate::helpers::ok_json(app.get("/v1/tiers/basic", &creator.secret_key).await, 200).await;
    assert_eq!(tier["caps"]["calls"]["limit"], 20);
}
