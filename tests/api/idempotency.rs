//! Idempotency keys: a retry is answered with the first decision and never counted again;
//! keys are kept for the retention period and pruned after.

use serde_json::json;

use crate::helpers::{ok_json, spawn_app, spawn_app_with, Backend};
use crate::on_both_databases;

on_both_databases!(
    a_retried_event_is_answered_as_a_duplicate_and_counted_once,
    duplicates_within_one_batch_count_once,
    a_blocked_event_retried_repeats_the_block,
    keys_survive_a_restart,
    keys_are_kept_for_the_retention_period_and_pruned_after,
);

async fn a_retried_event_is_answered_as_a_duplicate_and_counted_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let event =
        json!({"customer_id": "c1", "meter": "calls", "value": 3, "idempotency_key": "evt-1"});
    let first = app.event(&creator, event.clone()).await;
    assert!(first.get("duplicate").is_none());
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "calls", "value": 1}),
    )
    .await;
    let retry = app.event(&creator, event).await;
    assert_eq!(retry["duplicate"], true);
    assert_eq!(retry["used"], 3, "the first answer is repeated");
    assert_eq!(retry["decision"], first["decision"]);
    assert_eq!(app.used(&creator, "c1", "calls").await, 4);
}

async fn duplicates_within_one_batch_count_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let event = json!({"customer_id": "c1", "meter": "calls", "value": 2, "idempotency_key": "k"});
    let body = ok_json(
        app.post(
            "/v1/events",
            &creator.secret_key,
            &json!({"events": [event, event, event]}),
        )
        .await,
        200,
    )
    .await;
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert!(results[0].get("duplicate").is_none());
    assert_eq!(
        (
            results[1]["duplicate"].as_bool(),
            results[2]["duplicate"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(app.used(&creator, "c1", "calls").await, 2);
}

async fn a_blocked_event_retried_repeats_the_block(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let event =
        json!({"customer_id": "c1", "meter": "calls", "value": 11, "idempotency_key": "big"});
    assert_eq!(
        app.event(&creator, event.clone()).await["decision"],
        "block"
    );
    let retry = app.event(&creator, event).await;
    assert_eq!(
        (retry["decision"].as_str(), retry["duplicate"].as_bool()),
        (Some("block"), Some(true))
    );
}

async fn keys_survive_a_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let event = json!({"customer_id": "c1", "meter": "calls", "idempotency_key": "evt-1"});
    app.event(&creator, event.clone()).await;
    let app = app.restart().await;
    assert_eq!(app.event(&creator, event).await["duplicate"], true);
    assert_eq!(app.used(&creator, "c1", "calls").await, 1);
}

async fn keys_are_kept_for_the_retention_period_and_pruned_after(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.ingest.idempotency_retention_hours = 24;
        config.ingest.maintenance_interval_secs = 1;
    })
    .await;
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "calls", "sum", "never").await;
    let event = json!({"customer_id": "c1", "meter": "calls", "idempotency_key": "evt-1"});
    app.event(&creator, event.clone()).await;
    app.clock.advance(23 * 3_600);
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await; // a maintenance tick
    assert_eq!(app.event(&creator, event.clone()).await["duplicate"], true);
    app.clock.advance(2 * 3_600);
    // Pruning runs on the maintenance interval: wait for a tick to forget the key.
    let mut counted_again = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let check = ok_json(
            app.post(
                "/v1/check",
                &creator.secret_key,
                &json!({"customer_id": "c1", "meter": "calls"}),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(check["used"], 2);
        let r = app.event(&creator, event.clone()).await;
        if r.get("duplicate").is_none() {
            counted_again = true;
            break;
        }
    }
    assert!(counted_again, "the key was never pruned");
    assert_eq!(app.used(&creator, "c1", "calls").await, 2);
    // The store pruned the old row too: had it stayed, the new use of the key would not
    // have been stored (first write wins) and the stale row would not load after restart.
    let app = app.restart().await;
    assert_eq!(app.event(&creator, event).await["duplicate"], true);
}
