//! Exact admission: concurrent events never push a `block` cap past its limit.

use futures::future::join_all;
use serde_json::json;

use crate::helpers::{spawn_app, Backend};
use crate::on_both_databases;

on_both_databases!(a_thousand_simultaneous_events_at_cap_one_hundred_admit_exactly_one_hundred);

async fn a_thousand_simultaneous_events_at_cap_one_hundred_admit_exactly_one_hundred(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("acme", 100, "block").await;
    let event = json!({"customer_id": "c1", "meter": "calls", "value": 1});
    let answers =
        join_all((0..1000).map(|_| app.post("/v1/events", &creator.secret_key, &event))).await;
    let mut admitted = 0;
    let mut blocked = 0;
    for answer in answers {
        assert_eq!(answer.status(), 200);
        let body: serde_json::Value = answer.json().await.unwrap();
        match body["decision"].as_str().unwrap() {
            "allow" | "warn" => admitted += 1,
            "block" => blocked += 1,
            other => panic!("unexpected decision {other}"),
        }
        assert!(body["used"].as_i64().unwrap() <= 100);
    }
    assert_eq!((admitted, blocked), (100, 900));
    assert_eq!(app.used(&creator, "c1", "calls").await, 100);
    let app = app.restart().await;
    assert_eq!(app.used(&creator, "c1", "calls").await, 100);
}
