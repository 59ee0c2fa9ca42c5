//! Operations endpoints: health, readiness, metrics, the OpenAPI document.

use serde_json::json;

use crate::helpers::{ok_json, spawn_app, Backend};
use crate::on_both_databases;

on_both_databases!(operations_endpoints_answer_without_a_key);

async fn operations_endpoints_answer_without_a_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    app.event(&creator, json!({"customer_id": "c1", "meter": "calls"}))
        .await;
    let get = |path: &str| {
        let request = app.client.get(app.url(path)).send();
        async { request.await.expect("request sent") }
    };
    assert_eq!(ok_json(get("/healthz").await, 200).await["status"], "ok");
    assert_eq!(ok_json(get("/readyz").await, 200).await["status"], "ready");
    let metrics = get("/metrics").await.text().await.unwrap();
    for name in [
        "staryer_events_total{decision=\"allow\"}",
        "staryer_decision_seconds_bucket",
        "staryer_flush_batch_size_bucket",
        "staryer_flush_seconds_bucket",
        "staryer_live_counters",
        "staryer_store_up",
        "# HELP staryer_events_total Events answered",
        "staryer_http_requests_total{method=\"POST\",route=\"/v1/events\",status=\"2xx\"}",
        "staryer_http_request_seconds_bucket{method=\"GET\",route=\"/readyz\",status=\"2xx\"",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    let document = ok_json(get("/openapi.json").await, 200).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/v1/admin/creators",
        "/v1/admin/creators/{slug}",
        "/v1/admin/stats",
        "/v1/meters",
        "/v1/meters/{key}",
        "/v1/tiers",
        "/v1/tiers/{key}",
        "/v1/customers/{customer_id}",
        "/v1/customers/{customer_id}/usage",
        "/v1/customers/{customer_id}/entitlements/{feature}",
        "/v1/events",
        "/v1/check",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(document["components"]["securitySchemes"]["secret_key"].is_object());
}

on_both_databases!(platform_stats_count_customers_known_by_events_too);

async fn platform_stats_count_customers_known_by_events_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    app.assign(&creator, "alice", "basic").await;
    for customer in ["bob", "carol", "alice"] {
        app.event(&creator, json!({"customer_id": customer, "meter": "calls"}))
            .await;
    }
    // Usage reaches the buckets with the next fold (every second by default).
    let mut stats = json!(null);
    for _ in 0..100 {
        stats = ok_json(
            app.get("/v1/admin/stats", crate::helpers::ADMIN_TOKEN)
                .await,
            200,
        )
        .await;
        if stats["customers"] == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(stats["customers"], 3, "{stats}");
    assert_eq!(stats["creators"], 1, "{stats}");
}
