//! Durability: acknowledged events survive SIGKILL of the real binary; while the store is
//! down, ingest answers 503 (nothing counted) and checks and reads answer from memory; the
//! daemon recovers by itself when the store returns.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Connection;

use crate::helpers::{
    assert_error, free_port, ok_json, spawn_app, Backend, Daemon, Outage, ADMIN_TOKEN,
};
use crate::on_both_databases;

on_both_databases!(
    acknowledged_events_survive_a_sigkill_of_the_daemon,
    a_store_outage_refuses_ingest_keeps_answering_checks_and_recovers,
);

async fn post(client: &reqwest::Client, url: String, key: &str, body: Value) -> Value {
    ok_json(
        client
            .post(url)
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await
}

async fn acknowledged_events_survive_a_sigkill_of_the_daemon(backend: Backend) {
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = backend.fresh_database().await;
    let port = free_port();
    let client = reqwest::Client::new();
    let daemon = Daemon::start(data_dir.path(), &database_url, port, &[]).await;
    let created = ok_json(
        client
            .post(format!("{}/v1/admin/creators", daemon.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"slug": "acme"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let key = created["secret_key"].as_str().unwrap().to_string();
    let meter = client
        .post(format!("{}/v1/meters", daemon.base))
        .bearer_auth(&key)
        .json(&json!({"key": "calls", "aggregation": "sum", "reset": "month"}))
        .send()
        .await
        .unwrap();
    assert_eq!(meter.status(), 201);
    // Acknowledged one by one, in batches, and concurrently.
    for _ in 0..20 {
        post(
            &client,
            format!("{}/v1/events", daemon.base),
            &key,
            json!({"customer_id": "c1", "meter": "calls", "value": 1.5}),
        )
        .await;
    }
    let batch: Vec<Value> = (0..100)
        .map(|_| json!({"customer_id": "c1", "meter": "calls"}))
        .collect();
    post(
        &client,
        format!("{}/v1/events", daemon.base),
        &key,
        json!({"events": batch}),
    )
    .await;
    let concurrent = (0..50).map(|_| {
        post(
            &client,
            format!("{}/v1/events", daemon.base),
            &key,
            json!({"customer_id": "c1", "meter": "calls", "value": 2}),
        )
    });
    let last = futures::future::join_all(concurrent).await;
    assert!(last.iter().all(|r| r["decision"] == "allow"));
    daemon.sigkill();

    let daemon = Daemon::start(data_dir.path(), &database_url, port, &[]).await;
    let usage = ok_json(
        client
            .get(format!("{}/v1/customers/c1/usage", daemon.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(usage["meters"][0]["used"], 20.0 * 1.5 + 100.0 + 100.0);
}

async fn a_store_outage_refuses_ingest_keeps_answering_checks_and_recovers(backend: Backend) {
    let app = spawn_app(backend.clone()).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let event = json!({"customer_id": "c1", "meter": "calls", "value": 1, "idempotency_key": "during-outage"});
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "calls", "value": 1}),
    )
    .await;

    let outage = Outage::begin(&app.database_url, &backend).await;
    let refused = app.post("/v1/events", &creator.secret_key, &event).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, 503, "store_unavailable").await;
    // Marked down: refused at once, still nothing counted.
    let again = app.post("/v1/events", &creator.secret_key, &event).await;
    assert_error(again, 503, "store_unavailable").await;
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
    assert_eq!(check["used"], 2, "1 counted + 1 checked");
    assert_eq!(app.used(&creator, "c1", "calls").await, 1);
    // Not ready, and the body names the database's own refusal.
    let expected_cause = match backend {
        Backend::Sqlite => "database is locked",
        Backend::Postgres(_) => "not currently accepting connections",
    };
    let mut readyz = Value::Null;
    for _ in 0..100 {
        readyz = ok_json(
            app.client.get(app.url("/readyz")).send().await.unwrap(),
            503,
        )
        .await;
        if readyz["error"]["message"]
            .as_str()
            .unwrap()
            .contains(expected_cause)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        readyz["error"]["message"]
            .as_str()
            .unwrap()
            .contains(expected_cause),
        "{readyz}"
    );
    let metrics = app.metrics().await;
    assert!(metrics.contains("staryer_store_errors_total"), "{metrics}");

    outage.end().await;
    let mut recovered = None;
    for _ in 0..100 {
        let r = app.post("/v1/events", &creator.secret_key, &event).await;
        if r.status() == 200 {
            recovered = Some(r.json::<Value>().await.unwrap());
            break;
        }
        assert_error(r, 503, "store_unavailable").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = recovered.expect("ingest recovered by itself");
    assert!(
        recovered.get("duplicate").is_none(),
        "the failed attempts left no key behind"
    );
    assert_eq!(recovered["used"], 2);
    app.wait_until_ready().await;
    let app = app.restart().await;
    assert_eq!(app.used(&creator, "c1", "calls").await, 2);
}

on_both_databases!(the_commit_log_is_folded_into_hourly_buckets);

async fn the_commit_log_is_folded_into_hourly_buckets(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 1_000, "block").await;
    let hour = crate::helpers::START / 3_600 * 3_600;
    for (offset, value) in [(-3_600, 2), (-3_599, 3), (0, 7)] {
        app.event(
            &creator,
            json!({"customer_id": "c1", "meter": "calls", "value": value, "timestamp": hour + offset}),
        )
        .await;
    }
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&app.database_url)
        .await
        .unwrap();
    let mut buckets: Vec<(i64, i64)> = Vec::new();
    for _ in 0..100 {
        let (log,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_log")
            .fetch_one(&mut db)
            .await
            .unwrap();
        if log == 0 {
            buckets = sqlx::query_as(
                "SELECT bucket_start, value FROM usage_buckets WHERE customer_id = 'c1' ORDER BY bucket_start",
            )
            .fetch_all(&mut db)
            .await
            .unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(buckets, vec![(hour - 3_600, 5_000_000), (hour, 7_000_000)]);
}
