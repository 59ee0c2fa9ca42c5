//! Analytics to a fake PostHog (`POST /batch/`): widget exposures as
//! `$feature_flag_called`, clicks, notices and tier changes, batched, and usage as one
//! summary per customer, meter and hour; a creator's own project with its key sealed.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use sqlx::Connection;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::embeds::{create_embed, pricing_config, widget, widget_post};
use crate::helpers::{eventually, ok_json, quick_outbox, spawn_app_with, Backend, TestApp};
use crate::on_both_databases;

on_both_databases!(
    analytics_go_to_posthog_in_batches_with_hourly_usage_summaries,
    a_creators_own_project_gets_its_analytics_with_its_key_sealed,
);

async fn fake_posthog() -> MockServer {
    let posthog = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/batch/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": 1})))
        .mount(&posthog)
        .await;
    posthog
}

/// Every batch PostHog took: (api_key, events).
async fn batches(posthog: &MockServer) -> Vec<(String, Vec<Value>)> {
    posthog
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            (
                body["api_key"].as_str().unwrap().to_string(),
                body["batch"].as_array().unwrap().clone(),
            )
        })
        .collect()
}

async fn events(posthog: &MockServer) -> Vec<Value> {
    batches(posthog)
        .await
        .into_iter()
        .flat_map(|(_, events)| events)
        .collect()
}

async fn named(posthog: &MockServer, name: &str) -> Vec<Value> {
    events(posthog)
        .await
        .into_iter()
        .filter(|e| e["event"] == name)
        .collect()
}

async fn analytics_go_to_posthog_in_batches_with_hourly_usage_summaries(backend: Backend) {
    let posthog = fake_posthog().await;
    let app = spawn_app_with(backend, |config| {
        quick_outbox(config);
        config.ingest.fold_interval_ms = 20;
        config.posthog.api_key = "phc_platform".into();
        config.posthog.host = posthog.uri();
        config.posthog.batch_linger_ms = 10_000;
    })
    .await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    for tier in ["free", "pro", "team"] {
        app.create_tier(&creator, tier, json!({}), false).await;
    }
    // A widget in an experiment: exposures and a click.
    create_embed(
        &app,
        &creator,
        "pricing",
        "pricing_table",
        pricing_config("v1"),
    )
    .await;
    ok_json(
        app.post(
            "/v1/embeds/pricing/versions",
            &creator.secret_key,
            json!({"config": pricing_config("v2")}),
        )
        .await,
        201,
    )
    .await;
    ok_json(
        app.post(
            "/v1/experiments",
            &creator.secret_key,
            json!({
                "key": "headline", "embed": "pricing",
                "variants": [{"key": "control", "version": 1, "weight": 0.5},
                             {"key": "bold", "version": 2, "weight": 0.5}],
            }),
        )
        .await,
        201,
    )
    .await;
    ok_json(
        app.post(
            "/v1/experiments/headline/start",
            &creator.secret_key,
            json!({}),
        )
        .await,
        200,
    )
    .await;
    let mut shown = BTreeSet::new();
    for visitor in ["v1", "v2", "v3"] {
        for _ in 0..2 {
            let view = ok_json(
                widget(
                    &app,
                    &creator,
                    "pricing",
                    &format!("&visitor_id={visitor}"),
                    &[],
                )
                .await,
                200,
            )
            .await;
            shown.insert((
                visitor.to_string(),
                view["variant"].as_str().unwrap().to_string(),
            ));
        }
    }
    ok_json(
        widget_post(
            &app,
            &creator,
            "/v1/embed/events",
            json!({"embed": "pricing", "visitor_id": "v1", "type": "click"}),
            &[],
        )
        .await,
        202,
    )
    .await;
    // Usage: 30 events for c1 (a warning, the cap reached), and a tier change.
    app.assign(&creator, "c1", "basic").await;
    for _ in 0..30 {
        app.event(
            &creator,
            json!({"customer_id": "c1", "meter": "calls", "value": 1}),
        )
        .await;
    }
    app.assign(&creator, "c1", "pro").await;

    // A partial batch waits for more, up to posthog.batch_linger_ms (the daemon's clock).
    eventually("seven events waiting", || async {
        let waiting = app
            .outbox(&creator, "?integration=posthog&status=pending")
            .await;
        (waiting.len() == 7).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(batches(&posthog).await.is_empty());
    app.clock.advance(10);
    let sent = eventually("one batch", || async { batches(&posthog).await.pop() }).await;
    assert_eq!(sent.0, "phc_platform");
    assert_eq!(sent.1.len(), 7, "{:?}", sent.1);
    let exposures = named(&posthog, "$feature_flag_called").await;
    let told: BTreeSet<(String, String)> = exposures
        .iter()
        .map(|e| {
            assert_eq!(e["properties"]["$feature_flag"], "headline");
            (
                e["distinct_id"].as_str().unwrap().to_string(),
                e["properties"]["$feature_flag_response"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        told, shown,
        "one exposure per visitor, with the variant it saw"
    );
    for name in [
        "embed clicked",
        "usage warning",
        "usage limit reached",
        "tier changed",
    ] {
        assert_eq!(named(&posthog, name).await.len(), 1, "{name}");
    }
    // Usage goes as one summary per customer, meter and hour, once the hour is over.
    assert!(named(&posthog, "usage summary").await.is_empty());
    app.clock.advance(3_600 + 301 - 10);
    eventually("the summary waiting", || async {
        let waiting = app
            .outbox(&creator, "?integration=posthog&status=pending")
            .await;
        (waiting.len() == 1).then_some(())
    })
    .await;
    app.clock.advance(10);
    let summary = eventually("the hour's summary", || async {
        named(&posthog, "usage summary").await.pop()
    })
    .await;
    assert_eq!(summary["distinct_id"], "c1");
    assert_eq!(summary["properties"]["meter"], "calls");
    assert_eq!(
        summary["properties"]["value"], 10,
        "the 10 events counted, not the 20 refused"
    );
    assert_eq!(summary["properties"]["hour_start"], "2026-03-15T12:00:00Z");
    let all = events(&posthog).await;
    let uuids: BTreeSet<&str> = all.iter().map(|e| e["uuid"].as_str().unwrap()).collect();
    assert_eq!(uuids.len(), all.len(), "every event has a uuid of its own");
    assert!(
        all.len() < 15,
        "never one PostHog event per usage event: {}",
        all.len()
    );
    assert_eq!(batches(&posthog).await.len(), 2);
}

async fn a_creators_own_project_gets_its_analytics_with_its_key_sealed(backend: Backend) {
    let platform = fake_posthog().await;
    let own = fake_posthog().await;
    let app: TestApp = spawn_app_with(backend, |config| {
        quick_outbox(config);
        config.posthog.api_key = "phc_platform".into();
        config.posthog.host = platform.uri();
        config.posthog.batch_linger_ms = 0;
    })
    .await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let status = ok_json(
        app.get("/v1/integrations/posthog", &creator.secret_key)
            .await,
        200,
    )
    .await;
    assert_eq!(status["destination"], "platform");
    let status = ok_json(
        app.send(
            reqwest::Method::PUT,
            "/v1/integrations/posthog",
            &creator.secret_key,
            Some(&json!({"api_key": "phc_creator_secret", "host": own.uri()})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(status["destination"], "creator");
    assert!(!status.to_string().contains("phc_creator_secret"));
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "calls", "value": 9}),
    )
    .await;
    let sent = eventually("the warning to the creator's project", || async {
        batches(&own).await.pop()
    })
    .await;
    assert_eq!(sent.0, "phc_creator_secret");
    assert_eq!(sent.1[0]["event"], "usage warning");
    assert!(
        events(&platform).await.is_empty(),
        "nothing of it to the platform's project"
    );

    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&app.database_url)
        .await
        .unwrap();
    let (sealed,): (String,) = sqlx::query_as("SELECT api_key_sealed FROM posthog_settings")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(!sealed.contains("phc_creator_secret"));

    // Removed, the platform's project takes over; kept across a restart while set.
    let status = ok_json(
        app.send(
            reqwest::Method::DELETE,
            "/v1/integrations/posthog",
            &creator.secret_key,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(status["destination"], "platform");
    ok_json(
        app.send(
            reqwest::Method::PUT,
            "/v1/integrations/posthog",
            &creator.secret_key,
            Some(&json!({"api_key": "phc_creator_secret", "host": own.uri()})),
        )
        .await,
        200,
    )
    .await;
    let app = app.restart().await;
    let status = ok_json(
        app.get("/v1/integrations/posthog", &creator.secret_key)
            .await,
        200,
    )
    .await;
    assert_eq!(status["destination"], "creator");
}
