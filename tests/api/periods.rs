//! Reset periods across their boundaries, moved with the manual clock.

use serde_json::json;

use crate::helpers::{spawn_app, Backend, START};
use crate::on_both_databases;

on_both_databases!(
    month_meters_reset_at_the_calendar_month,
    day_meters_reset_at_midnight_utc,
    billing_cycle_meters_reset_monthly_from_the_assignment,
    never_meters_never_reset,
    backdated_events_count_in_the_period_of_their_timestamp,
);

const DAY: i64 = 86_400;
/// 2026-04-01T00:00:00Z, the first month boundary after START.
const APRIL: i64 = 1_775_001_600;

async fn month_meters_reset_at_the_calendar_month(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "calls", "value": 10}),
    )
    .await;
    app.clock.set(APRIL - 1);
    let r = app
        .event(&creator, json!({"customer_id": "c1", "meter": "calls"}))
        .await;
    assert_eq!(r["decision"], "block");
    app.clock.set(APRIL);
    let r = app
        .event(&creator, json!({"customer_id": "c1", "meter": "calls"}))
        .await;
    assert_eq!(
        (r["decision"].as_str(), r["used"].as_i64()),
        (Some("allow"), Some(1))
    );
    let usage = app.usage(&creator, "c1").await;
    assert_eq!(usage["meters"][0]["period_start"], "2026-04-01T00:00:00Z");
    assert_eq!(usage["meters"][0]["period_end"], "2026-05-01T00:00:00Z");
}

async fn day_meters_reset_at_midnight_utc(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "calls", "sum", "day").await;
    app.create_tier(&creator, "t", json!({"calls": {"limit": 2}}), true)
        .await;
    let midnight = (START / DAY + 1) * DAY;
    app.clock.set(midnight - 1);
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "calls", "value": 2}),
    )
    .await;
    let r = app
        .event(&creator, json!({"customer_id": "c1", "meter": "calls"}))
        .await;
    assert_eq!(r["decision"], "block");
    app.clock.set(midnight);
    let r = app
        .event(&creator, json!({"customer_id": "c1", "meter": "calls"}))
        .await;
    assert_eq!(
        (r["decision"].as_str(), r["used"].as_i64()),
        (Some("allow"), Some(1))
    );
}

async fn billing_cycle_meters_reset_monthly_from_the_assignment(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "calls", "sum", "billing_cycle")
        .await;
    app.create_tier(&creator, "t", json!({"calls": {"limit": 5}}), false)
        .await;
    app.assign(&creator, "c1", "t").await; // anchor: 2026-03-15T12:00:00Z
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "calls", "value": 5}),
    )
    .await;
    app.clock.set(APRIL + DAY); // April 2nd: a calendar month would have reset
    let r = app
        .event(&creator, json!({"customer_id": "c1", "meter": "calls"}))
        .await;
    assert_eq!(r["decision"], "block");
    let usage = app.usage(&creator, "c1").await;
    assert_eq!(usage["meters"][0]["period_start"], "2026-03-15T12:00:00Z");
    assert_eq!(usage["meters"][0]["period_end"], "2026-04-15T12:00:00Z");
    app.clock.set(1_776_254_400); // 2026-04-15T12:00:00Z
    let r = app
        .event(&creator, json!({"customer_id": "c1", "meter": "calls"}))
        .await;
    assert_eq!(
        (r["decision"].as_str(), r["used"].as_i64()),
        (Some("allow"), Some(1))
    );
    // Re-assigning the same tier keeps the cycle; the counter survives a restart.
    app.assign(&creator, "c1", "t").await;
    let app = app.restart().await;
    assert_eq!(app.used(&creator, "c1", "calls").await, 1);
}

async fn never_meters_never_reset(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "lifetime", "sum", "never").await;
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "lifetime", "value": 7}),
    )
    .await;
    app.clock.advance(400 * DAY);
    let r = app
        .event(&creator, json!({"customer_id": "c1", "meter": "lifetime"}))
        .await;
    assert_eq!(r["used"], 8);
    let usage = app.usage(&creator, "c1").await;
    assert_eq!(usage["meters"][0]["period_end"], serde_json::Value::Null);
    let app = app.restart().await;
    assert_eq!(app.used(&creator, "c1", "lifetime").await, 8);
}

async fn backdated_events_count_in_the_period_of_their_timestamp(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    app.clock.set(APRIL + 3_600);
    let r = app
        .event(&creator, json!({"customer_id": "c1", "meter": "calls", "value": 4, "timestamp": "2026-03-31T23:00:00Z"}))
        .await;
    assert_eq!(r["used"], 4);
    let r = app
        .event(
            &creator,
            json!({"customer_id": "c1", "meter": "calls", "value": 1, "timestamp": APRIL + 60}),
        )
        .await;
    assert_eq!(r["used"], 1, "April is a new period");
    assert_eq!(app.used(&creator, "c1", "calls").await, 1);
    // After a restart the March period is still there for late events.
    let app = app.restart().await;
    let r = app
        .event(&creator, json!({"customer_id": "c1", "meter": "calls", "value": 1, "timestamp": "2026-03-20T00:00:00Z"}))
        .await;
    assert_eq!(r["used"], 5);
}
