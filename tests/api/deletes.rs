//! Deleting meters and tiers: refused while in use, gone from lists, events and restarts
//! after, a key made again starts empty; with billing on, the Stripe objects are put away
//! (meter deactivated, product and prices archived), and a Stripe failure leaves the delete
//! done and the reporter retrying until Stripe takes it.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use staryer::billing::request_key;

use crate::billing::{connected_app, ACCOUNT};
use crate::helpers::{assert_error, ok_json, spawn_app, Backend, TestApp, TestCreator};
use crate::on_both_databases;
use crate::stripe_fake::{form, header, FakeStripe};

on_both_databases!(
    a_meter_a_tier_caps_is_refused_until_the_cap_goes,
    a_tier_with_customers_on_it_is_refused_until_they_move,
    a_deleted_meter_is_gone_for_good_and_its_key_starts_empty,
    a_deleted_tier_is_gone_for_good_and_its_key_can_be_made_again,
    another_creators_meter_or_tier_is_not_found,
    deletes_put_the_stripe_objects_away_with_the_exact_requests,
    a_stripe_failure_leaves_the_delete_done_and_the_reporter_retries,
);

async fn delete(app: &TestApp, creator: &TestCreator, path: &str) -> reqwest::Response {
    app.send(Method::DELETE, path, &creator.secret_key, None)
        .await
}

async fn deleted(app: &TestApp, creator: &TestCreator, path: &str) {
    let response = delete(app, creator, path).await;
    assert_eq!(response.status(), 204, "DELETE {path}");
}

async fn keys(app: &TestApp, creator: &TestCreator, path: &str) -> Vec<String> {
    let listed = ok_json(app.get(path, &creator.secret_key).await, 200).await;
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["key"].as_str().unwrap().to_string())
        .collect()
}

async fn a_meter_a_tier_caps_is_refused_until_the_cap_goes(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("capped", 10, "block").await;
    let refused = assert_error(
        delete(&app, &creator, "/v1/meters/calls").await,
        409,
        "in_use",
    )
    .await;
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("`basic`"), "{message}");
    let patched = app
        .send(
            Method::PATCH,
            "/v1/tiers/basic",
            &creator.secret_key,
            Some(&json!({"caps": {}})),
        )
        .await;
    ok_json(patched, 200).await;
    deleted(&app, &creator, "/v1/meters/calls").await;
    assert!(keys(&app, &creator, "/v1/meters").await.is_empty());
}

async fn a_tier_with_customers_on_it_is_refused_until_they_move(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("busy", 10, "block").await;
    app.create_tier(&creator, "pro", json!({}), false).await;
    app.assign(&creator, "c1", "pro").await;
    let refused = assert_error(delete(&app, &creator, "/v1/tiers/pro").await, 409, "in_use").await;
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1 customer"));
    // A customer only seen in events has no tier: it is on the default tier.
    app.event(&creator, json!({"customer_id": "anon", "meter": "calls"}))
        .await;
    assert_error(
        delete(&app, &creator, "/v1/tiers/basic").await,
        409,
        "in_use",
    )
    .await;
    app.assign(&creator, "c1", "basic").await;
    deleted(&app, &creator, "/v1/tiers/pro").await;
    app.assign(&creator, "anon", "basic").await;
    // Customers are assigned to the default tier itself now.
    assert_error(
        delete(&app, &creator, "/v1/tiers/basic").await,
        409,
        "in_use",
    )
    .await;
    app.create_tier(&creator, "other", json!({}), false).await;
    app.assign(&creator, "c1", "other").await;
    app.assign(&creator, "anon", "other").await;
    deleted(&app, &creator, "/v1/tiers/basic").await;
    assert_eq!(keys(&app, &creator, "/v1/tiers").await, ["other"]);
}

async fn a_deleted_meter_is_gone_for_good_and_its_key_starts_empty(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.create_creator("gone").await;
    app.create_meter(&creator, "calls", "sum", "month").await;
    app.create_meter(&creator, "seats", "max", "never").await;
    app.create_tier(&creator, "basic", json!({"seats": {"limit": 5}}), true)
        .await;
    for n in 0..3 {
        let event = json!({"customer_id": "c1", "meter": "calls", "value": 4,
            "idempotency_key": format!("k{n}")});
        app.event(&creator, event).await;
    }
    deleted(&app, &creator, "/v1/meters/calls").await;
    assert_eq!(keys(&app, &creator, "/v1/meters").await, ["seats"]);
    assert_error(
        app.get("/v1/meters/calls", &creator.secret_key).await,
        404,
        "meter_not_found",
    )
    .await;
    assert_error(
        delete(&app, &creator, "/v1/meters/calls").await,
        404,
        "meter_not_found",
    )
    .await;
    let event = json!({"customer_id": "c1", "meter": "calls"});
    assert_error(
        app.post("/v1/events", &creator.secret_key, &event).await,
        404,
        "meter_not_found",
    )
    .await;
    let usage = app.usage(&creator, "c1").await;
    assert_eq!(usage["meters"].as_array().unwrap().len(), 1, "{usage}");
    // The other meter, and the tier's cap on it, still work.
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "seats", "value": 3}),
    )
    .await;

    let app = app.restart().await;
    assert_eq!(keys(&app, &creator, "/v1/meters").await, ["seats"]);
    assert_eq!(app.used(&creator, "c1", "seats").await, 3);
    let event = json!({"customer_id": "c1", "meter": "seats", "value": 6});
    assert_eq!(app.event(&creator, event).await["decision"], "block");

    // The same key made again starts empty, before and after a restart.
    app.create_meter(&creator, "calls", "sum", "month").await;
    assert_eq!(app.used(&creator, "c1", "calls").await, 0);
    app.event(
        &creator,
        json!({"customer_id": "c1", "meter": "calls", "value": 2}),
    )
    .await;
    let app = app.restart().await;
    assert_eq!(app.used(&creator, "c1", "calls").await, 2);
    assert_eq!(keys(&app, &creator, "/v1/meters").await, ["seats", "calls"]);
}

async fn a_deleted_tier_is_gone_for_good_and_its_key_can_be_made_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = app.creator_with_cap("tiers", 10, "block").await;
    app.create_tier(&creator, "pro", json!({"calls": {"limit": 50}}), false)
        .await;
    deleted(&app, &creator, "/v1/tiers/pro").await;
    assert_eq!(keys(&app, &creator, "/v1/tiers").await, ["basic"]);
    assert_error(
        app.get("/v1/tiers/pro", &creator.secret_key).await,
        404,
        "tier_not_found",
    )
    .await;
    let assign = app
        .send(
            Method::PUT,
            "/v1/customers/c1",
            &creator.secret_key,
            Some(&json!({"tier": "pro"})),
        )
        .await;
    assert_error(assign, 404, "tier_not_found").await;

    let app = app.restart().await;
    assert_eq!(keys(&app, &creator, "/v1/tiers").await, ["basic"]);
    app.create_tier(&creator, "pro", json!({"calls": {"limit": 20}}), false)
        .await;
    app.assign(&creator, "c1", "pro").await;
    let event = json!({"customer_id": "c1", "meter": "calls", "value": 15});
    assert_eq!(app.event(&creator, event).await["decision"], "allow");
    let app = app.restart().await;
    assert_eq!(keys(&app, &creator, "/v1/tiers").await, ["basic", "pro"]);
    let tier = ok_json(app.get("/v1/tiers/pro", &creator.secret_key).await, 200).await;
    assert_eq!(tier["caps"]["calls"]["limit"], 20);
}

async fn another_creators_meter_or_tier_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.creator_with_cap("owner", 10, "block").await;
    let other = app.create_creator("other").await;
    for (path, code) in [
        ("/v1/meters/calls", "meter_not_found"),
        ("/v1/tiers/basic", "tier_not_found"),
        ("/v1/meters/nope", "meter_not_found"),
        ("/v1/tiers/nope", "tier_not_found"),
    ] {
        assert_error(delete(&app, &other, path).await, 404, code).await;
    }
    assert_eq!(keys(&app, &owner, "/v1/meters").await, ["calls"]);
    assert_eq!(keys(&app, &owner, "/v1/tiers").await, ["basic"]);
}

/// The fake's meters, as `GET /v1/billing/meters` lists them.
async fn stripe_meters(fake: &FakeStripe) -> Vec<Value> {
    let listed: Value = reqwest::get(format!("{}/v1/billing/meters", fake.uri()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    listed["data"].as_array().unwrap().clone()
}

/// Deletes the three billing tiers (`billing::tiers`), then meter `api`.
async fn delete_the_catalog(app: &TestApp, creator: &TestCreator) {
    for tier in ["pro", "team", "free"] {
        deleted(app, creator, &format!("/v1/tiers/{tier}")).await;
    }
    deleted(app, creator, "/v1/meters/api").await;
}

async fn deletes_put_the_stripe_objects_away_with_the_exact_requests(backend: Backend) {
    let (fake, app, creator, connected) = connected_app(backend).await;
    let pro = &connected["tiers"]["pro"];
    let product = pro["product_id"].as_str().unwrap();
    let prices = [
        pro["price_id"].as_str().unwrap(),
        pro["overage_prices"]["api"].as_str().unwrap(),
    ];
    let meter = stripe_meters(&fake).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    delete_the_catalog(&app, &creator).await;

    // Each object once, on the creator's account, with its own idempotency key (the
    // requests go right after the delete has answered).
    let archived = fake.wait_for(&format!("/v1/products/{product}"), 1).await;
    assert_eq!(archived.len(), 1);
    assert_eq!(form(&archived[0])["active"], "false");
    assert_eq!(header(&archived[0], "stripe-account"), Some(ACCOUNT));
    assert_eq!(
        header(&archived[0], "idempotency-key"),
        Some(request_key("product_archive", &[product]).as_str())
    );
    for price in prices {
        let archived = fake.wait_for(&format!("/v1/prices/{price}"), 1).await;
        assert_eq!(archived.len(), 1, "{price}");
        assert_eq!(form(&archived[0])["active"], "false");
        assert_eq!(header(&archived[0], "stripe-account"), Some(ACCOUNT));
        assert_eq!(
            header(&archived[0], "idempotency-key"),
            Some(request_key("price_archive", &[price]).as_str())
        );
    }
    let deactivated = fake
        .posts(&format!("/v1/billing/meters/{meter}/deactivate"))
        .await;
    assert_eq!(deactivated.len(), 1);
    assert_eq!(header(&deactivated[0], "stripe-account"), Some(ACCOUNT));
    assert_eq!(
        header(&deactivated[0], "idempotency-key"),
        Some(request_key("meter_deactivate", &[&meter]).as_str())
    );
    assert_eq!(stripe_meters(&fake).await[0]["status"], "inactive");
    let account = ok_json(
        app.get("/v1/billing/account", &creator.secret_key).await,
        200,
    )
    .await;
    assert_eq!(account["tiers"], json!({}), "{account}");

    // Made again, the meter and a priced tier get new Stripe objects.
    app.create_meter(&creator, "api", "sum", "month").await;
    let again = ok_json(
        app.post(
            "/v1/tiers",
            &creator.secret_key,
            &crate::billing::tiers()[1],
        )
        .await,
        201,
    )
    .await;
    assert_eq!(again["stripe"]["status"], "synced", "{again}");
    assert_ne!(again["stripe"]["product_id"], product);
    assert!(!prices.contains(&again["stripe"]["price_id"].as_str().unwrap()));
    let meters = stripe_meters(&fake).await;
    assert_eq!(
        meters.len(),
        2,
        "a new Billing Meter, not the deactivated one"
    );
    assert_eq!(meters[1]["status"], "active");
}

async fn a_stripe_failure_leaves_the_delete_done_and_the_reporter_retries(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    let meter = stripe_meters(&fake).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let route = format!("/v1/billing/meters/{meter}/deactivate");
    fake.fail(&route, 3, 500, None).await;
    delete_the_catalog(&app, &creator).await;
    assert!(keys(&app, &creator, "/v1/meters").await.is_empty());
    // The reporter's passes retry until Stripe takes it, then stop.
    let attempts = fake.wait_for(&route, 4).await;
    for _ in 0..100 {
        if stripe_meters(&fake).await[0]["status"] == "inactive" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(stripe_meters(&fake).await[0]["status"], "inactive");
    let key = request_key("meter_deactivate", &[&meter]);
    for attempt in &attempts {
        assert_eq!(header(attempt, "idempotency-key"), Some(key.as_str()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fake.posts(&route).await.len(),
        4,
        "no retry after Stripe took it"
    );
}
