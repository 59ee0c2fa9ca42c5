//! Outgoing webhooks to a local receiver: signed per Standard Webhooks (checked with the
//! standard's own library), listed with their status codes, redelivered by hand, retried
//! for three days, an endpoint failing for days disabled with a notice, and endpoints on
//! internal networks refused.

use serde_json::{json, Value};
use sqlx::Connection;
use staryer::clock::Clock;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    assert_error, eventually, ok_json, quick_outbox, spawn_app, spawn_app_with, Backend, TestApp,
    TestCreator,
};
use crate::on_both_databases;

on_both_databases!(
    deliveries_are_signed_per_standard_webhooks_listed_and_redelivered,
    endpoints_on_internal_networks_are_refused_unless_the_operator_allows_them,
    deliveries_are_retried_for_three_days_and_a_failing_endpoint_is_disabled_with_a_notice,
);

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

async fn add_endpoint(app: &TestApp, creator: &TestCreator, url: String, events: Value) -> Value {
    ok_json(
        app.post(
            "/v1/webhook_endpoints",
            &creator.secret_key,
            json!({"url": url, "events": events, "description": "billing system"}),
        )
        .await,
        201,
    )
    .await
}

async fn deliveries(app: &TestApp, creator: &TestCreator, endpoint: &str) -> Vec<Value> {
    let page = ok_json(
        app.get(
            &format!("/v1/webhook_endpoints/{endpoint}/deliveries"),
            &creator.secret_key,
        )
        .await,
        200,
    )
    .await;
    page["messages"].as_array().unwrap().clone()
}

fn header(request: &wiremock::Request, name: &str) -> String {
    request
        .headers
        .get(name)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

async fn deliveries_are_signed_per_standard_webhooks_listed_and_redelivered(backend: Backend) {
    let hook = receiver(200).await;
    let app = spawn_app_with(backend, quick_outbox).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    app.create_tier(&creator, "pro", json!({"calls": {"limit": 100}}), false)
        .await;
    let endpoint = add_endpoint(
        &app,
        &creator,
        format!("{}/hook", hook.uri()),
        json!(["usage.warning", "customer.tier_changed"]),
    )
    .await;
    let secret = endpoint["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let id = endpoint["id"].as_str().unwrap().to_string();
    let shown = ok_json(
        app.get(&format!("/v1/webhook_endpoints/{id}"), &creator.secret_key)
            .await,
        200,
    )
    .await;
    assert!(
        shown.get("secret").is_none(),
        "the secret is shown once: {shown}"
    );
    assert_eq!(
        shown["events"],
        json!(["usage.warning", "customer.tier_changed"])
    );

    app.assign(&creator, "c1", "basic").await;
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "calls", "value": 9}),
    )
    .await;
    app.assign(&creator, "c1", "pro").await;
    let received = eventually("two deliveries", || async {
        let received = hook.received_requests().await.unwrap();
        (received.len() == 2).then_some(received)
    })
    .await;
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    let mut types = Vec::new();
    for request in &received {
        let (msg_id, timestamp) = (
            header(request, "webhook-id"),
            header(request, "webhook-timestamp"),
        );
        let timestamp: i64 = timestamp.parse().unwrap();
        assert_eq!(timestamp, app.clock.now());
        let expected = verifier.sign(&msg_id, timestamp, &request.body).unwrap();
        assert_eq!(header(request, "webhook-signature"), expected);
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        types.push(body["type"].as_str().unwrap().to_string());
        assert_eq!(body["data"]["customer_id"], "c1");
        assert!(body["id"].as_str().unwrap().starts_with("evt_"));
    }
    types.sort();
    assert_eq!(types, ["customer.tier_changed", "usage.warning"]);
    let tier_change: Value = received
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .find(|b| b["type"] == "customer.tier_changed")
        .unwrap();
    assert_eq!(
        tier_change["data"],
        json!({"customer_id": "c1", "from": "basic", "to": "pro"})
    );

    let listed = eventually("both deliveries recorded", || async {
        let listed = deliveries(&app, &creator, &id).await;
        listed
            .iter()
            .all(|d| d["status"] == "delivered")
            .then_some(listed)
    })
    .await;
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|d| d["last_status"] == 200 && d["attempts"] == 1));
    // Redelivery by hand: the same webhook-id again.
    let again = listed[0]["id"].as_str().unwrap();
    ok_json(
        app.post(
            &format!("/v1/webhook_endpoints/{id}/deliveries/{again}/retry"),
            &creator.secret_key,
            json!({}),
        )
        .await,
        200,
    )
    .await;
    eventually("the redelivery", || async {
        let received = hook.received_requests().await.unwrap();
        (received.len() == 3).then_some(())
    })
    .await;
    let last = hook.received_requests().await.unwrap().pop().unwrap();
    assert_eq!(header(&last, "webhook-id"), again);

    // The secret is sealed at rest, and another creator sees no endpoint.
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&app.database_url)
        .await
        .unwrap();
    let (sealed,): (String,) = sqlx::query_as("SELECT secret_sealed FROM webhook_endpoints")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(!sealed.contains(secret.trim_start_matches("whsec_")));
    let other = app.create_creator("other").await;
    assert_error(
        app.get(
            &format!("/v1/webhook_endpoints/{id}/deliveries"),
            &other.secret_key,
        )
        .await,
        404,
        "endpoint_not_found",
    )
    .await;
}

async fn endpoints_on_internal_networks_are_refused_unless_the_operator_allows_them(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let creator = app.create_creator("acme").await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data/",
        "ftp://example.com/hook",
    ] {
        assert_error(
            app.post(
                "/v1/webhook_endpoints",
                &creator.secret_key,
                json!({"url": url, "events": ["usage.warning"]}),
            )
            .await,
            422,
            "invalid_url",
        )
        .await;
    }
    assert_error(
        app.post(
            "/v1/webhook_endpoints",
            &creator.secret_key,
            json!({"url": "https://93.184.216.34/hook", "events": ["usage.everything"]}),
        )
        .await,
        422,
        "invalid_events",
    )
    .await;
    let public = ok_json(
        app.post(
            "/v1/webhook_endpoints",
            &creator.secret_key,
            json!({"url": "https://93.184.216.34/hook", "events": ["usage.warning"]}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(public["enabled"], true);
}

async fn deliveries_are_retried_for_three_days_and_a_failing_endpoint_is_disabled_with_a_notice(
    backend: Backend,
) {
    let hook = receiver(500).await;
    let resend = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "e1"})))
        .mount(&resend)
        .await;
    let app = spawn_app_with(backend, |config| {
        quick_outbox(config);
        config.webhooks.disable_after_hours = 100;
        config.resend.api_key = "re_test".into();
        config.resend.base_url = resend.uri();
    })
    .await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    app.create_tier(&creator, "pro", json!({}), false).await;
    ok_json(
        app.send(
            reqwest::Method::PUT,
            "/v1/notices",
            &creator.secret_key,
            Some(&json!({"notice_email": "ops@acme.test",
                "kinds": {"usage.warning": {"enabled": false}}})),
        )
        .await,
        200,
    )
    .await;
    let endpoint = add_endpoint(
        &app,
        &creator,
        format!("{}/hook", hook.uri()),
        json!(["usage.warning", "customer.tier_changed"]),
    )
    .await;
    let id = endpoint["id"].as_str().unwrap().to_string();
    app.assign(&creator, "c1", "basic").await;
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "calls", "value": 9}),
    )
    .await;
    eventually("the first failure", || async {
        let listed = deliveries(&app, &creator, &id).await;
        (listed.first()?["last_status"] == 500).then_some(())
    })
    .await;
    // Three days of failures, then parked; the endpoint stays on (it fails for 100 h).
    app.clock.advance(73 * 3_600);
    let parked = eventually("the delivery parked", || async {
        let listed = deliveries(&app, &creator, &id).await;
        listed.first().filter(|d| d["status"] == "parked").cloned()
    })
    .await;
    assert!(
        parked["last_error"]
            .as_str()
            .unwrap()
            .contains("still failing after 72 h"),
        "{parked}"
    );
    let shown = ok_json(
        app.get(&format!("/v1/webhook_endpoints/{id}"), &creator.secret_key)
            .await,
        200,
    )
    .await;
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["failing_since"], "2026-03-15T12:00:00Z");

    // Past 100 hours of failures: disabled, and the creator told by email.
    app.clock.advance(30 * 3_600);
    app.assign(&creator, "c1", "pro").await;
    let disabled = eventually("the endpoint disabled", || async {
        let shown = ok_json(
            app.get(&format!("/v1/webhook_endpoints/{id}"), &creator.secret_key)
                .await,
            200,
        )
        .await;
        (shown["enabled"] == false).then_some(shown)
    })
    .await;
    assert!(disabled["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("100 hours"));
    let notice = eventually("the notice", || async {
        let requests = resend.received_requests().await.unwrap();
        requests
            .first()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
    })
    .await;
    assert_eq!(notice["to"], json!(["ops@acme.test"]));
    assert!(
        notice["subject"].as_str().unwrap().contains("/hook"),
        "{notice}"
    );

    // Enabled again, it is owed nothing new until something happens.
    let enabled = ok_json(
        app.send(
            reqwest::Method::PATCH,
            &format!("/v1/webhook_endpoints/{id}"),
            &creator.secret_key,
            Some(&json!({"enabled": true})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["failing_since"], Value::Null);
}
