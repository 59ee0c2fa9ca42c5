//! Billing through Stripe Connect, against a local fake Stripe: the exact requests of tier
//! sync and checkout, the reporter's identifiers and whole-number carry, a Stripe outage
//! and recovery with nothing lost or doubled, a kill mid-report, the v2 meter event
//! stream, webhook signatures, and what each handled webhook does to the customer's tier.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use staryer::config::MeterEventTransport;
use stripe_webhook::Webhook;

use crate::helpers::{
    assert_error, free_port, ok_json, spawn_app, spawn_app_with, Backend, Daemon, Outage, TestApp,
    TestCreator, ADMIN_TOKEN, START,
};
use crate::on_both_databases;
use crate::stripe_fake::{
    fixture, form, header, FakeStripe, MISSING_ACCOUNT, PLATFORM_KEY, WEBHOOK_SECRET,
};

on_both_databases!(
    tiers_become_products_and_prices_with_the_exact_requests,
    a_failed_sync_is_retried_and_gets_the_objects_made_the_first_time,
    checkout_sells_a_tier_with_its_prices_and_the_platform_fee,
    the_reporter_sends_whole_units_and_carries_fractions,
    tier_changes_bill_each_unit_once_by_the_tier_in_force,
    usage_from_before_billing_starts_is_not_billed,
    a_stripe_outage_loses_and_doubles_nothing,
    a_kill_mid_report_resends_the_same_identifier,
    the_v2_stream_carries_reports_in_bulk,
    webhooks_are_verified_and_idempotent,
    webhooks_move_customers_between_tiers,
    a_webhook_whose_effect_fails_is_applied_on_redelivery,
    every_call_that_creates_or_changes_carries_an_idempotency_key,
    a_rate_limited_report_waits_as_long_as_stripe_asks,
    a_stream_refusal_resent_through_v1_counts_as_v1,
    a_rename_updates_the_product_and_keeps_every_price,
    a_free_tier_that_bills_overage_sells_no_zero_price,
    a_failed_sync_is_retried_in_the_background,
    a_tier_sync_that_keeps_failing_is_retried_with_backoff,
    a_thin_meter_error_event_marks_the_reports_it_names,
    a_thin_event_signed_by_its_own_destination_is_believed,
    a_new_database_finds_the_objects_made_before_instead_of_making_them,
    reported_usage_is_reconciled_with_what_stripe_counted,
);

pub(crate) const ACCOUNT: &str = "acct_1TestCreator";

pub(crate) async fn billing_app(backend: Backend, fake: &FakeStripe) -> TestApp {
    billing_app_with(backend, fake, MeterEventTransport::V1, |_| {}).await
}

/// A billing app with `more` settings changed.
pub(crate) async fn billing_app_with(
    backend: Backend,
    fake: &FakeStripe,
    transport: MeterEventTransport,
    more: impl FnOnce(&mut staryer::config::Config),
) -> TestApp {
    let base = fake.uri();
    spawn_app_with(backend, move |config| {
        config.stripe.secret_key = PLATFORM_KEY.into();
        config.stripe.webhook_secret = WEBHOOK_SECRET.into();
        config.stripe.api_base = base.clone();
        config.stripe.meter_events_base = base;
        config.stripe.report_interval_ms = 50;
        config.stripe.platform_fee_percent = 10.0;
        config.stripe.meter_event_transport = transport;
        config.ingest.fold_interval_ms = 50;
        more(config);
    })
    .await
}

/// Asks to connect the creator to `ACCOUNT`.
async fn put_account(app: &TestApp, creator: &TestCreator) -> reqwest::Response {
    app.send(
        Method::PUT,
        "/v1/billing/account",
        &creator.secret_key,
        Some(&json!({"account_id": ACCOUNT})),
    )
    .await
}

/// Connects the creator to `ACCOUNT`; answers each tier's Stripe standing.
async fn connect_account(app: &TestApp, creator: &TestCreator) -> Value {
    ok_json(put_account(app, creator).await, 200).await
}

/// A billing daemon on a fresh fake Stripe, with a connected creator (`connected_creator`).
pub(crate) async fn connected_app(backend: Backend) -> (FakeStripe, TestApp, TestCreator, Value) {
    let fake = FakeStripe::start().await;
    let app = billing_app(backend, &fake).await;
    let (creator, connected) = connected_creator(&app).await;
    (fake, app, creator, connected)
}

/// The tiers every billing test sells: `free` (the default; api blocked at 100), `pro`
/// ($29 a month, 1000 api calls included, 0.5¢ each past them) and `team` ($99, 10000
/// included, 0.25¢ each).
pub(crate) fn tiers() -> [Value; 3] {
    [
        json!({"key": "free", "name": "Free", "default": true,
            "price": {"amount": 0, "currency": "usd", "interval": "month"},
            "caps": {"api": {"limit": 100}}}),
        json!({"key": "pro", "name": "Pro",
            "price": {"amount": 2900, "currency": "usd", "interval": "month"},
            "caps": {"api": {"limit": 1000, "on_exceed": "overage", "overage_price": 0.5}}}),
        json!({"key": "team", "name": "Team",
            "price": {"amount": 9900, "currency": "usd", "interval": "month"},
            "caps": {"api": {"limit": 10000, "on_exceed": "overage", "overage_price": 0.25}}}),
    ]
}

/// A creator with meter `api`, the three tiers, and its Stripe account connected;
/// answers the creator and the connect answer (each tier's Stripe ids).
pub(crate) async fn connected_creator(app: &TestApp) -> (TestCreator, Value) {
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "api", "sum", "month").await;
    for tier in tiers() {
        ok_json(app.post("/v1/tiers", &creator.secret_key, &tier).await, 201).await;
    }
    let connected = connect_account(app, &creator).await;
    (creator, connected)
}

pub(crate) async fn put_customer(app: &TestApp, creator: &TestCreator, id: &str, body: Value) {
    ok_json(
        app.send(
            Method::PUT,
            &format!("/v1/customers/{id}"),
            &creator.secret_key,
            Some(&body),
        )
        .await,
        200,
    )
    .await;
}

async fn use_api(app: &TestApp, creator: &TestCreator, customer: &str, value: f64) {
    app.event(
        creator,
        json!({"customer_id": customer, "meter": "api", "value": value}),
    )
    .await;
}

async fn reports(app: &TestApp, creator: &TestCreator) -> Vec<Value> {
    let body = ok_json(
        app.get("/v1/billing/reports", &creator.secret_key).await,
        200,
    )
    .await;
    body.as_array().unwrap().clone()
}

pub(crate) fn metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|line| line.starts_with(name))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

async fn tiers_become_products_and_prices_with_the_exact_requests(backend: Backend) {
    let (fake, app, creator, connected) = connected_app(backend).await;
    let pro = &connected["tiers"]["pro"];
    assert_eq!(pro["status"], "synced", "{connected}");
    assert_eq!(connected["tiers"]["free"]["status"], "not_priced");

    let every = fake.server.received_requests().await.unwrap();
    let (checks, calls): (Vec<_>, Vec<_>) = every
        .iter()
        .partition(|r| r.url.path().starts_with("/v1/accounts/"));
    // The account was looked up first, as the platform.
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].url.path(), format!("/v1/accounts/{ACCOUNT}"));
    assert_eq!(header(checks[0], "stripe-account"), None);
    for request in calls {
        assert_eq!(header(request, "stripe-account"), Some(ACCOUNT));
        assert_eq!(
            header(request, "authorization"),
            Some(format!("Bearer {PLATFORM_KEY}").as_str())
        );
        // Lookups before each create (`recovery`) change nothing: no key.
        if request.method == "GET" {
            assert_eq!(header(request, "idempotency-key"), None);
            continue;
        }
        let key = header(request, "idempotency-key").expect("every create is idempotent");
        assert!(key.starts_with("staryer:"), "{key}");
    }
    // Two priced tiers: two products, four prices, and one meter they share.
    let products: Vec<_> = fake
        .requests("/v1/products")
        .await
        .iter()
        .map(form)
        .collect();
    assert_eq!(products.len(), 2);
    let pro_product = products.iter().find(|f| f["name"] == "Pro").unwrap();
    assert_eq!(pro_product["metadata[staryer_tier]"], "pro");
    let meters: Vec<_> = fake
        .posts("/v1/billing/meters")
        .await
        .iter()
        .map(form)
        .collect();
    assert_eq!(meters.len(), 1);
    for (field, value) in [
        ("event_name", "staryer_api"),
        ("display_name", "api"),
        ("default_aggregation[formula]", "sum"),
        ("customer_mapping[type]", "by_id"),
        ("customer_mapping[event_payload_key]", "stripe_customer_id"),
        ("value_settings[event_payload_key]", "value"),
    ] {
        assert_eq!(meters[0][field], value, "{field}");
    }
    let prices: Vec<_> = fake.posts("/v1/prices").await.iter().map(form).collect();
    assert_eq!(prices.len(), 4);
    let base = prices
        .iter()
        .find(|f| f.get("unit_amount").map(String::as_str) == Some("2900"))
        .unwrap();
    assert_eq!(base["currency"], "usd");
    assert_eq!(base["recurring[interval]"], "month");
    assert_eq!(base["product"], pro["product_id"].as_str().unwrap());
    let overage = prices
        .iter()
        .find(|f| {
            f.get("metadata[staryer_tier]").map(String::as_str) == Some("pro")
                && f.contains_key("tiers[0][up_to]")
        })
        .unwrap();
    for (field, value) in [
        ("recurring[usage_type]", "metered"),
        ("recurring[interval]", "month"),
        ("billing_scheme", "tiered"),
        ("tiers_mode", "graduated"),
        ("tiers[0][up_to]", "1000"),
        ("tiers[0][unit_amount]", "0"),
        ("tiers[1][up_to]", "inf"),
        ("tiers[1][unit_amount_decimal]", "0.5"),
    ] {
        assert_eq!(overage[field], value, "{field}");
    }
    assert!(overage["recurring[meter]"].starts_with("mtr_"));
    let overage_id = pro["overage_prices"]["api"].as_str().unwrap();
    assert!(overage_id.starts_with("price_") && pro["price_id"] != overage_id);

    // The same definition again changes nothing at Stripe.
    let same = ok_json(
        app.send(
            Method::PATCH,
            "/v1/tiers/pro",
            &creator.secret_key,
            Some(&json!({"name": "Pro"})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(same["stripe"]["price_id"], pro["price_id"]);
    assert_eq!(fake.posts("/v1/prices").await.len(), 4);

    // A new price: new prices on the same product, renamed; the old prices archived.
    let changed = ok_json(
        app.send(
            Method::PATCH,
            "/v1/tiers/pro",
            &creator.secret_key,
            Some(&json!({"name": "Pro 2026",
                "price": {"amount": 3900, "currency": "usd", "interval": "month"}})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(changed["stripe"]["status"], "synced");
    assert_eq!(changed["stripe"]["product_id"], pro["product_id"]);
    assert_ne!(changed["stripe"]["price_id"], pro["price_id"]);
    assert_eq!(fake.posts("/v1/prices").await.len(), 6);
    let product_path = format!("/v1/products/{}", pro["product_id"].as_str().unwrap());
    let renamed = fake.requests(&product_path).await;
    assert_eq!(form(&renamed[0])["name"], "Pro 2026");
    for old in [
        pro["price_id"].as_str().unwrap(),
        pro["overage_prices"]["api"].as_str().unwrap(),
    ] {
        let archived = fake.requests(&format!("/v1/prices/{old}")).await;
        assert_eq!(archived.len(), 1, "{old} archived once");
        assert_eq!(form(&archived[0])["active"], "false");
    }
}

/// A tier's Stripe standing as `GET /v1/billing/account` reads it from the store.
async fn tier_standing(app: &TestApp, creator: &TestCreator, tier: &str) -> Value {
    let account = ok_json(
        app.get("/v1/billing/account", &creator.secret_key).await,
        200,
    )
    .await;
    assert_eq!(account["account_id"], ACCOUNT);
    account["tiers"][tier]["status"].clone()
}

/// A connected creator whose tier `pro` was saved but not synced: the product was made,
/// then Stripe failed on the price. Search has not caught up with the product, so the
/// retry gets it back by its idempotency key. Answers the creator and the create answer.
async fn tier_whose_sync_failed(app: &TestApp, fake: &FakeStripe) -> (TestCreator, Value) {
    fake.search_lags();
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "api", "sum", "month").await;
    connect_account(app, &creator).await;
    fake.fail("/v1/prices", 1, 500, None).await;
    let created = ok_json(
        app.post("/v1/tiers", &creator.secret_key, &tiers()[1])
            .await,
        201,
    )
    .await;
    assert_eq!(created["stripe"]["status"], "failed", "{created}");
    (creator, created)
}

async fn a_failed_sync_is_retried_and_gets_the_objects_made_the_first_time(backend: Backend) {
    let fake = FakeStripe::start().await;
    // No background pass during the test: the retry here is the next change's.
    let base = fake.uri();
    let app = spawn_app_with(backend, move |config| {
        config.stripe.secret_key = PLATFORM_KEY.into();
        config.stripe.api_base = base;
        config.stripe.report_interval_ms = 3_600_000;
    })
    .await;
    let (creator, created) = tier_whose_sync_failed(&app, &fake).await;
    assert!(created["stripe"]["error"]
        .as_str()
        .unwrap()
        .contains("Stripe answered 500"));
    assert_eq!(tier_standing(&app, &creator, "pro").await, "not_synced");

    let retried = ok_json(
        app.send(
            Method::PATCH,
            "/v1/tiers/pro",
            &creator.secret_key,
            Some(&json!({})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(retried["stripe"]["status"], "synced", "{retried}");
    assert_eq!(tier_standing(&app, &creator, "pro").await, "synced");
    // The product step went again under its key and got back the one product made.
    let products = fake.requests("/v1/products").await;
    assert_eq!(products.len(), 2);
    assert_eq!(
        header(&products[0], "idempotency-key"),
        header(&products[1], "idempotency-key")
    );
    assert_eq!(retried["stripe"]["product_id"], "prod_fake1");
    // The refused step went again under a new key: Stripe would replay its refusal.
    let prices = fake.posts("/v1/prices").await;
    let first = header(&prices[0], "idempotency-key").unwrap();
    let again = header(&prices[1], "idempotency-key").unwrap();
    assert!(
        first.ends_with(":price:0") && again.ends_with(":price:1"),
        "{first} {again}"
    );
}

async fn checkout_sells_a_tier_with_its_prices_and_the_platform_fee(backend: Backend) {
    let (fake, app, creator, connected) = connected_app(backend).await;
    put_customer(
        &app,
        &creator,
        "c1",
        json!({"tier": "free", "email": "c1@example.com"}),
    )
    .await;
    let buy = |tier: &str| {
        json!({"customer_id": "c1", "tier": tier,
            "success_url": "https://acme.example/thanks", "cancel_url": "https://acme.example/pricing"})
    };
    // Whoever starts a checkout for a customer id changes that customer's tier: not
    // something a publishable key may do.
    assert_error(
        app.post(
            "/v1/checkout/sessions",
            &creator.publishable_key,
            buy("pro"),
        )
        .await,
        403,
        "wrong_key_kind",
    )
    .await;
    let session = ok_json(
        app.post("/v1/checkout/sessions", &creator.secret_key, buy("pro"))
            .await,
        200,
    )
    .await;
    assert!(session["url"]
        .as_str()
        .unwrap()
        .starts_with("https://checkout.stripe.com/"));
    assert_eq!(session["kind"], "checkout");
    // The buyer becomes a Stripe Customer on the creator's account first, named by
    // metadata (searched for before it is made), so that every purchase of one customer
    // lands on one Stripe customer.
    let searched = fake.requests("/v1/customers/search").await;
    assert_eq!(searched.len(), 1);
    assert_eq!(header(&searched[0], "stripe-account"), Some(ACCOUNT));
    let made = fake.requests("/v1/customers").await;
    assert_eq!(made.len(), 1);
    assert_eq!(header(&made[0], "stripe-account"), Some(ACCOUNT));
    assert!(header(&made[0], "idempotency-key").is_some());
    let customer_fields = form(&made[0]);
    assert_eq!(customer_fields["email"], "c1@example.com");
    assert_eq!(customer_fields["metadata[staryer_customer_id]"], "c1");
    assert_eq!(customer_fields["metadata[staryer_creator]"], "acme");
    let stripe_customer = ok_json(
        app.send(
            Method::PUT,
            "/v1/customers/c1",
            &creator.secret_key,
            Some(&json!({"tier": "free", "email": "c1@example.com"})),
        )
        .await,
        200,
    )
    .await["stripe_customer_id"]
        .as_str()
        .expect("the customer keeps its Stripe customer")
        .to_string();
    let sent = fake.requests("/v1/checkout/sessions").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(header(&sent[0], "stripe-account"), Some(ACCOUNT));
    let fields = form(&sent[0]);
    let pro = &connected["tiers"]["pro"];
    for (field, value) in [
        ("mode", "subscription"),
        ("line_items[0][price]", pro["price_id"].as_str().unwrap()),
        ("line_items[0][quantity]", "1"),
        (
            "line_items[1][price]",
            pro["overage_prices"]["api"].as_str().unwrap(),
        ),
        ("client_reference_id", "c1"),
        ("customer", stripe_customer.as_str()),
        ("success_url", "https://acme.example/thanks"),
        ("cancel_url", "https://acme.example/pricing"),
        ("subscription_data[metadata][staryer_tier]", "pro"),
        ("subscription_data[metadata][staryer_customer_id]", "c1"),
        ("metadata[staryer_tier]", "pro"),
    ] {
        assert_eq!(
            fields.get(field).map(String::as_str),
            Some(value),
            "{field}"
        );
    }
    assert!(
        !fields.contains_key("line_items[1][quantity]"),
        "metered prices take no quantity"
    );
    let fee: f64 = fields["subscription_data[application_fee_percent]"]
        .parse()
        .unwrap();
    assert_eq!(fee, 10.0);

    assert_error(
        app.post("/v1/checkout/sessions", &creator.secret_key, buy("free"))
            .await,
        422,
        "tier_not_priced",
    )
    .await;
    assert_error(
        app.post("/v1/checkout/sessions", &creator.secret_key, buy("gold"))
            .await,
        404,
        "tier_not_found",
    )
    .await;
    let mut bad_url = buy("pro");
    bad_url["success_url"] = json!("javascript:alert(1)");
    assert_error(
        app.post("/v1/checkout/sessions", &creator.secret_key, bad_url)
            .await,
        422,
        "invalid_url",
    )
    .await;
    // A creator without an account cannot sell yet.
    let other = app.create_creator("beta").await;
    app.create_meter(&other, "api", "sum", "month").await;
    ok_json(
        app.post("/v1/tiers", &other.secret_key, &tiers()[1]).await,
        201,
    )
    .await;
    assert_error(
        app.post("/v1/checkout/sessions", &other.secret_key, buy("pro"))
            .await,
        409,
        "stripe_account_missing",
    )
    .await;
    // Nor can it take the first creator's account, or one the platform cannot reach.
    for (account, status, code) in [
        (ACCOUNT, 409, "account_taken"),
        (MISSING_ACCOUNT, 422, "stripe_account_not_found"),
        ("cus_123", 422, "invalid_account_id"),
    ] {
        assert_error(
            app.send(
                Method::PUT,
                "/v1/billing/account",
                &other.secret_key,
                Some(&json!({"account_id": account})),
            )
            .await,
            status,
            code,
        )
        .await;
    }
}

/// The meter event requests' forms, in arrival order.
async fn meter_events(fake: &FakeStripe, count: usize) -> Vec<HashMap<String, String>> {
    let requests = fake.wait_for("/v1/billing/meter_events", count).await;
    requests.iter().map(form).collect()
}

async fn the_reporter_sends_whole_units_and_carries_fractions(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    put_customer(
        &app,
        &creator,
        "c1",
        json!({"tier": "pro", "stripe_customer_id": "cus_C1"}),
    )
    .await;
    // A customer without a Stripe customer id, and one on a tier that bills nothing.
    put_customer(&app, &creator, "c2", json!({"tier": "pro"})).await;
    put_customer(
        &app,
        &creator,
        "c3",
        json!({"tier": "free", "stripe_customer_id": "cus_C3"}),
    )
    .await;
    use_api(&app, &creator, "c2", 50.0).await;
    use_api(&app, &creator, "c3", 50.0).await;
    use_api(&app, &creator, "c1", 0.4).await;
    use_api(&app, &creator, "c1", 0.4).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        fake.requests("/v1/billing/meter_events").await.is_empty(),
        "0.8 units is not a whole unit yet; c2 and c3 are not billed"
    );

    use_api(&app, &creator, "c1", 0.4).await; // 1.2
    let first = meter_events(&fake, 1).await;
    use_api(&app, &creator, "c1", 0.9).await; // 2.1
    let second = meter_events(&fake, 2).await;
    use_api(&app, &creator, "c1", 1000.0).await; // 1002.1
    let sent = meter_events(&fake, 3).await;
    assert_eq!(first.len(), 1);
    assert_eq!(second.len(), 2);
    let values: Vec<&str> = sent.iter().map(|f| f["payload[value]"].as_str()).collect();
    assert_eq!(values, ["1", "1", "1000"]);
    let prefix = sent[0]["identifier"]
        .rsplit_once('_')
        .unwrap()
        .0
        .to_string();
    for (seq, event) in sent.iter().enumerate() {
        assert_eq!(event["identifier"], format!("{prefix}_{seq}"));
        assert_eq!(event["event_name"], "staryer_api");
        assert_eq!(event["payload[stripe_customer_id]"], "cus_C1");
        assert_eq!(event["timestamp"], START.to_string());
    }
    for request in fake.requests("/v1/billing/meter_events").await {
        let fields = form(&request);
        let key = format!("{}:{}", fields["identifier"], fields["timestamp"]);
        assert_eq!(header(&request, "idempotency-key"), Some(key.as_str()));
        assert_eq!(header(&request, "stripe-account"), Some(ACCOUNT));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.requests("/v1/billing/meter_events").await.len(), 3);
    let reports = reports(&app, &creator).await;
    assert_eq!(reports.len(), 3);
    assert!(reports.iter().all(|r| r["state"] == "sent"), "{reports:?}");
}

async fn tier_changes_bill_each_unit_once_by_the_tier_in_force(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    let on = |tier: &str| json!({"tier": tier, "stripe_customer_id": "cus_C1"});
    put_customer(&app, &creator, "c1", on("pro")).await;
    use_api(&app, &creator, "c1", 5.0).await;
    meter_events(&fake, 1).await;
    // An upgrade within the same hour: only what comes after it is new.
    put_customer(&app, &creator, "c1", on("team")).await;
    use_api(&app, &creator, "c1", 1.0).await;
    meter_events(&fake, 2).await;
    // On a tier that bills nothing, usage is passed over, not saved up.
    put_customer(&app, &creator, "c1", on("free")).await;
    use_api(&app, &creator, "c1", 3.0).await;
    // Passes run every 50 ms after a 50 ms fold: two seconds is many passes, even loaded.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    put_customer(&app, &creator, "c1", on("pro")).await;
    use_api(&app, &creator, "c1", 2.0).await;
    let sent = meter_events(&fake, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.requests("/v1/billing/meter_events").await.len(), 3);
    let values: Vec<&str> = sent.iter().map(|f| f["payload[value]"].as_str()).collect();
    assert_eq!(values, ["5", "1", "2"]);
}

async fn usage_from_before_billing_starts_is_not_billed(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    // On pro, but with no Stripe customer yet: nothing to bill to.
    put_customer(&app, &creator, "c1", json!({"tier": "pro"})).await;
    use_api(&app, &creator, "c1", 5.0).await;
    app.clock.advance(2 * 3_600);
    put_customer(
        &app,
        &creator,
        "c1",
        json!({"tier": "pro", "stripe_customer_id": "cus_C1"}),
    )
    .await;
    use_api(&app, &creator, "c1", 2.0).await;
    let sent = meter_events(&fake, 1).await;
    assert_eq!(
        sent[0]["payload[value]"], "2",
        "the 5 from before are not billed"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.requests("/v1/billing/meter_events").await.len(), 1);
}

/// Moves the clock past every backoff until `count` reports are sent (10 s at most).
async fn until_sent(app: &TestApp, creator: &TestCreator, count: usize) -> Vec<Value> {
    for _ in 0..200 {
        let all = reports(app, creator).await;
        if all.iter().filter(|r| r["state"] == "sent").count() >= count {
            return all;
        }
        app.clock.advance(601);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{count} reports were never sent: {:?}",
        reports(app, creator).await
    );
}

async fn a_stripe_outage_loses_and_doubles_nothing(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    // Three failures that Stripe says to retry (a rate limit, a 503, an explicit yes),
    // then a refusal for good for one customer.
    fake.fail("/v1/billing/meter_events", 1, 429, None).await;
    fake.fail("/v1/billing/meter_events", 1, 503, None).await;
    fake.fail("/v1/billing/meter_events", 1, 400, Some(true))
        .await;
    fake.refuse_customer("cus_GONE").await;
    for (customer, stripe_id) in [("c1", "cus_C1"), ("c2", "cus_C2"), ("c3", "cus_C3")] {
        put_customer(
            &app,
            &creator,
            customer,
            json!({"tier": "pro", "stripe_customer_id": stripe_id}),
        )
        .await;
        use_api(&app, &creator, customer, 5.0).await;
    }
    let all = until_sent(&app, &creator, 3).await;
    put_customer(
        &app,
        &creator,
        "c4",
        json!({"tier": "pro", "stripe_customer_id": "cus_GONE"}),
    )
    .await;
    use_api(&app, &creator, "c4", 2.0).await;
    let mut refused = Value::Null;
    for _ in 0..200 {
        let all = reports(&app, &creator).await;
        if let Some(failed) = all.iter().find(|r| r["state"] == "failed") {
            refused = failed.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(refused["customer_id"], "c4");
    assert!(refused["last_error"]
        .as_str()
        .unwrap()
        .contains("No such customer"));

    // Each of the three reports was accepted exactly once, after three failed attempts.
    let sent: Vec<_> = all.iter().filter(|r| r["customer_id"] != "c4").collect();
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent.iter()
            .map(|r| r["value"].as_i64().unwrap())
            .sum::<i64>(),
        15
    );
    assert_eq!(
        sent.iter()
            .map(|r| r["attempts"].as_i64().unwrap())
            .sum::<i64>(),
        6
    );
    app.clock.advance(3_600);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests: Vec<_> = fake
        .requests("/v1/billing/meter_events")
        .await
        .iter()
        .map(form)
        .collect();
    assert_eq!(
        requests.len(),
        7,
        "3 failed + 3 accepted + 1 refused, never resent"
    );
    let mut identifiers: Vec<&str> = requests.iter().map(|f| f["identifier"].as_str()).collect();
    identifiers.sort();
    identifiers.dedup();
    assert_eq!(identifiers.len(), 4, "retries reuse their identifier");

    // Once the customer exists at Stripe again, the creator puts the report back.
    let identifier = refused["identifier"].as_str().unwrap();
    ok_json(
        app.post(
            &format!("/v1/billing/reports/{identifier}/retry"),
            &creator.secret_key,
            json!({}),
        )
        .await,
        200,
    )
    .await;
    let all = until_sent(&app, &creator, 4).await;
    let retried = all.iter().find(|r| r["identifier"] == identifier).unwrap();
    assert_eq!(retried["value"], 2);
    assert_error(
        app.post(
            &format!("/v1/billing/reports/{identifier}/retry"),
            &creator.secret_key,
            json!({}),
        )
        .await,
        404,
        "report_not_found",
    )
    .await;

    // The recorder is shared by every test in this binary: counts are at least ours.
    let metrics = app.metrics().await;
    assert!(metric(&metrics, "staryer_stripe_reports_retried_total") >= 3.0);
    assert!(metric(&metrics, "staryer_stripe_reports_failed_total") >= 1.0);
    assert!(
        metric(
            &metrics,
            "staryer_stripe_reports_sent_total{transport=\"v1\"}"
        ) >= 3.0
    );
}

/// On a daemon of its own (the real binary): creator `acme` with meter `api`, tier `pro`,
/// the Stripe account connected and customer `c1` on `pro` with Stripe id `cus_C1`;
/// answers the creator's secret key.
async fn billed_customer_on(client: &reqwest::Client, base: &str) -> String {
    let call = |method: Method, path: &str, key: &str, body: Value| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let created = ok_json(
        call(
            Method::POST,
            "/v1/admin/creators",
            ADMIN_TOKEN,
            json!({"slug": "acme"}),
        )
        .await
        .unwrap(),
        201,
    )
    .await;
    let key = created["secret_key"].as_str().unwrap().to_string();
    let steps = [
        (
            Method::POST,
            "/v1/meters",
            json!({"key": "api", "aggregation": "sum", "reset": "month"}),
        ),
        (Method::POST, "/v1/tiers", tiers()[1].clone()),
        (
            Method::PUT,
            "/v1/billing/account",
            json!({"account_id": ACCOUNT}),
        ),
        (
            Method::PUT,
            "/v1/customers/c1",
            json!({"tier": "pro", "stripe_customer_id": "cus_C1"}),
        ),
    ];
    for (method, path, body) in steps {
        let response = call(method, path, &key, body).await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }
    key
}

/// Posts `value` of meter `api` for `c1` on that daemon.
async fn post_usage_on(client: &reqwest::Client, base: &str, key: &str, value: u64) {
    let event = json!({"customer_id": "c1", "meter": "api", "value": value});
    let response = client
        .post(format!("{base}/v1/events"))
        .bearer_auth(key)
        .json(&event)
        .send()
        .await
        .unwrap();
    ok_json(response, 200).await;
}

async fn a_kill_mid_report_resends_the_same_identifier(backend: Backend) {
    let fake = FakeStripe::start().await;
    // The first meter event is answered only after the daemon is gone.
    fake.slow_meter_events(Duration::from_secs(30)).await;
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = backend.fresh_database().await;
    let port = free_port();
    let env = [
        ("STARYER__STRIPE__SECRET_KEY", PLATFORM_KEY.to_string()),
        ("STARYER__STRIPE__API_BASE", fake.uri()),
        ("STARYER__STRIPE__REPORT_INTERVAL_MS", "100".to_string()),
        ("STARYER__INGEST__FOLD_INTERVAL_MS", "100".to_string()),
    ];
    let daemon = Daemon::start(data_dir.path(), &database_url, port, &env).await;
    let client = reqwest::Client::new();
    let key = billed_customer_on(&client, &daemon.base).await;
    post_usage_on(&client, &daemon.base, &key, 7).await;
    let in_flight = fake.wait_for("/v1/billing/meter_events", 1).await;
    daemon.sigkill();

    let daemon = Daemon::start(data_dir.path(), &database_url, port, &env).await;
    let sent = fake.wait_for("/v1/billing/meter_events", 2).await;
    let (first, again) = (form(&in_flight[0]), form(&sent[1]));
    assert_eq!(first["identifier"], again["identifier"]);
    assert_eq!(first["payload[value]"], "7");
    assert_eq!(again["payload[value]"], "7");
    let mut state = Value::Null;
    for _ in 0..100 {
        let listed = ok_json(
            client
                .get(format!("{}/v1/billing/reports", daemon.base))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        state = listed.clone();
        if listed[0]["state"] == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state.as_array().unwrap().len(), 1, "{state}");
    assert_eq!(state[0]["state"], "sent", "{state}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        fake.requests("/v1/billing/meter_events").await.len(),
        2,
        "no third request, no second report"
    );
    // This daemon is its own process: its metrics are its own.
    let metrics = client
        .get(format!("{}/metrics", daemon.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(
            &metrics,
            "staryer_stripe_reports_sent_total{transport=\"v1\"}"
        ),
        1.0
    );
    assert!(
        metrics.contains("staryer_stripe_oldest_unsent_report_seconds 0"),
        "{metrics}"
    );
}

async fn the_v2_stream_carries_reports_in_bulk(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = billing_app_with(backend, &fake, MeterEventTransport::V2, |_| {}).await;
    let (creator, _) = connected_creator(&app).await;
    for n in 0..3 {
        let customer = format!("c{n}");
        put_customer(
            &app,
            &creator,
            &customer,
            json!({"tier": "pro", "stripe_customer_id": format!("cus_{n}")}),
        )
        .await;
        use_api(&app, &creator, &customer, 3.0 + n as f64).await;
    }
    let cut_at: HashMap<String, Value> = until_sent(&app, &creator, 3)
        .await
        .into_iter()
        .map(|r| {
            (
                r["identifier"].as_str().unwrap().to_string(),
                r["created_at"].clone(),
            )
        })
        .collect();
    let sessions = fake.requests("/v2/billing/meter_event_session").await;
    assert_eq!(sessions.len(), 1, "the session is reused");
    assert_eq!(header(&sessions[0], "stripe-context"), Some(ACCOUNT));
    assert_eq!(
        header(&sessions[0], "authorization"),
        Some(format!("Bearer {PLATFORM_KEY}").as_str())
    );
    let mut events = Vec::new();
    for request in fake.requests("/v2/billing/meter_event_stream").await {
        assert_eq!(
            header(&request, "authorization"),
            Some("Bearer mes_token_fake1")
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        events.extend(body["events"].as_array().unwrap().clone());
    }
    assert_eq!(events.len(), 3);
    let mut values: Vec<&str> = events
        .iter()
        .map(|e| e["payload"]["value"].as_str().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, ["3", "4", "5"]);
    for event in &events {
        assert_eq!(event["event_name"], "staryer_api");
        let identifier = event["identifier"].as_str().unwrap();
        assert!(identifier.starts_with("stry_"));
        assert_eq!(event["timestamp"], cut_at[identifier], "stamped when cut");
    }
    assert!(fake.requests("/v1/billing/meter_events").await.is_empty());

    // A stream request Stripe refuses for good goes again through v1, report by report.
    fake.fail("/v2/billing/meter_event_stream", 1, 400, None)
        .await;
    put_customer(
        &app,
        &creator,
        "c9",
        json!({"tier": "pro", "stripe_customer_id": "cus_9"}),
    )
    .await;
    use_api(&app, &creator, "c9", 4.0).await;
    until_sent(&app, &creator, 4).await;
    let fallback = fake.requests("/v1/billing/meter_events").await;
    assert_eq!(fallback.len(), 1);
    assert_eq!(form(&fallback[0])["payload[value]"], "4");
}

/// A Stripe event of `kind` about `object`, created at `created`, from the creator's
/// connected account.
pub(crate) fn stripe_event(id: &str, kind: &str, created: i64, object: Value) -> String {
    let mut event = fixture("event");
    event["id"] = json!(id);
    event["created"] = json!(created);
    event["type"] = json!(kind);
    event["account"] = json!(ACCOUNT);
    event["data"] = json!({"object": object});
    event.to_string()
}

pub(crate) async fn post_webhook(
    app: &TestApp,
    body: &str,
    signature: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/v1/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    request.send().await.unwrap()
}

/// Signs like Stripe does (with Stripe's own SDK), at the daemon's now.
fn sign(body: &str) -> String {
    Webhook::generate_test_header(body, WEBHOOK_SECRET, Some(START))
}

async fn webhooks_are_verified_and_idempotent(backend: Backend) {
    // `_fake` keeps the fake Stripe serving until the test ends.
    let (_fake, app, creator, _) = connected_app(backend).await;
    let mut invoice = fixture("invoice");
    invoice["customer"] = json!("cus_nobody");
    let body = stripe_event("evt_1", "invoice.created", START, invoice);

    let first = ok_json(post_webhook(&app, &body, Some(&sign(&body))).await, 200).await;
    assert_eq!(first["received"], true);
    let again = ok_json(post_webhook(&app, &body, Some(&sign(&body))).await, 200).await;
    assert_eq!(
        again["duplicate"], true,
        "a redelivery is recognised by event id"
    );

    let wrong_secret = Webhook::generate_test_header(&body, "whsec_other", Some(START));
    assert_error(
        post_webhook(&app, &body, Some(&wrong_secret)).await,
        400,
        "invalid_signature",
    )
    .await;
    let stale = Webhook::generate_test_header(&body, WEBHOOK_SECRET, Some(START - 301));
    assert_error(
        post_webhook(&app, &body, Some(&stale)).await,
        400,
        "stale_signature",
    )
    .await;
    let tampered = body.replace("evt_1", "evt_2");
    assert_error(
        post_webhook(&app, &tampered, Some(&sign(&body))).await,
        400,
        "invalid_signature",
    )
    .await;
    assert_error(
        post_webhook(&app, &body, None).await,
        400,
        "missing_signature",
    )
    .await;
    assert_error(
        post_webhook(&app, &body, Some("t=abc")).await,
        400,
        "invalid_signature_header",
    )
    .await;
    // While a secret is rolled, Stripe signs with both: any matching v1 will do.
    let other_body = stripe_event("evt_3", "invoice.created", START, fixture("invoice"));
    let good = sign(&other_body);
    let good_v1 = good.split_once(",v1=").unwrap().1;
    let both = format!("t={START},v1={},v1={good_v1}", "0".repeat(64));
    ok_json(post_webhook(&app, &other_body, Some(&both)).await, 200).await;

    let events = ok_json(
        app.get("/v1/billing/events", &creator.secret_key).await,
        200,
    )
    .await;
    let ids: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{events}");
    assert!(ids.contains(&"evt_1") && ids.contains(&"evt_3"));
    let metrics = app.metrics().await;
    assert!(
        metric(
            &metrics,
            "staryer_stripe_webhooks_total{outcome=\"rejected\"}"
        ) >= 5.0
    );
}

/// Customer `c1`'s completed Checkout Session for tier `pro`, subscription `subscription`,
/// Stripe customer `cus_NEW`.
pub(crate) fn completed_checkout(subscription: &str) -> Value {
    let mut session = fixture("checkout.session");
    session["mode"] = json!("subscription");
    session["client_reference_id"] = json!("c1");
    session["customer"] = json!("cus_NEW");
    session["subscription"] = json!(subscription);
    session["metadata"] = json!({"staryer_customer_id": "c1", "staryer_tier": "pro"});
    session["status"] = json!("complete");
    session["payment_status"] = json!("paid");
    session
}

async fn a_webhook_whose_effect_fails_is_applied_on_redelivery(backend: Backend) {
    let (_fake, app, creator, _) = connected_app(backend.clone()).await;
    put_customer(&app, &creator, "c1", json!({"tier": "free"})).await;
    let body = stripe_event(
        "evt_buy",
        "checkout.session.completed",
        START,
        completed_checkout("sub_1"),
    );
    let outage = Outage::begin(&app.database_url, &backend).await;
    let failed = post_webhook(&app, &body, Some(&sign(&body))).await;
    assert_eq!(failed.status(), 503, "Stripe will deliver it again");
    outage.end().await;
    // Stripe redelivers until it gets a 2xx.
    let mut answer = Value::Null;
    for _ in 0..100 {
        let response = post_webhook(&app, &body, Some(&sign(&body))).await;
        if response.status() == 200 {
            answer = response.json().await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        answer["handled"], true,
        "not recorded before, so applied now: {answer}"
    );
    assert_eq!(tier_of(&app, &creator, "c1").await, "pro");
    let again = ok_json(post_webhook(&app, &body, Some(&sign(&body))).await, 200).await;
    assert_eq!(again["duplicate"], true);
}

pub(crate) async fn tier_of(app: &TestApp, creator: &TestCreator, customer: &str) -> Value {
    app.usage(creator, customer).await["tier"].clone()
}

async fn webhooks_move_customers_between_tiers(backend: Backend) {
    let (fake, app, creator, connected) = connected_app(backend).await;
    put_customer(
        &app,
        &creator,
        "c1",
        json!({"tier": "free", "email": "c1@example.com"}),
    )
    .await;
    // Each delivery is an event created one second after the one before, unless told.
    let clock = std::cell::Cell::new(START);
    let deliver_at = |id: &'static str, kind: &'static str, created: i64, object: Value| {
        let body = stripe_event(id, kind, created, object);
        let app = &app;
        async move { ok_json(post_webhook(app, &body, Some(&sign(&body))).await, 200).await }
    };
    let deliver = |id: &'static str, kind: &'static str, object: Value| {
        clock.set(clock.get() + 1);
        deliver_at(id, kind, clock.get(), object)
    };
    let bought = fixture("subscription")["id"].as_str().unwrap().to_string();

    // A checkout completed with its payment still due grants nothing yet.
    let mut unpaid = completed_checkout(&bought);
    unpaid["payment_status"] = json!("unpaid");
    let pending = deliver("evt_checkout_unpaid", "checkout.session.completed", unpaid).await;
    assert_eq!(pending["handled"], false);
    assert_eq!(tier_of(&app, &creator, "c1").await, "free");
    // The bank debit clears: Stripe says so with `async_payment_succeeded`.
    let handled = deliver(
        "evt_checkout",
        "checkout.session.async_payment_succeeded",
        completed_checkout(&bought),
    )
    .await;
    assert_eq!(handled["handled"], true);
    assert_eq!(tier_of(&app, &creator, "c1").await, "pro");

    // Subscriptions as Stripe sends them: found by the Stripe customer id, the tier by
    // its price.
    let subscription = |id: &str, status: &str, price: &str| {
        let mut object = fixture("subscription");
        object["id"] = json!(id);
        object["customer"] = json!("cus_NEW");
        object["status"] = json!(status);
        object["metadata"] = json!({});
        object["items"]["data"][0]["price"]["id"] = json!(price);
        object
    };
    let team_price = connected["tiers"]["team"]["price_id"].as_str().unwrap();
    let pro_price = connected["tiers"]["pro"]["price_id"].as_str().unwrap();
    let (updated, deleted) = (
        "customer.subscription.updated",
        "customer.subscription.deleted",
    );
    let steps = [
        // An upgrade made in Stripe.
        (
            "evt_upgrade",
            updated,
            subscription(&bought, "active", team_price),
            "team",
        ),
        // Another subscription of the same Stripe customer does not decide the tier.
        (
            "evt_foreign",
            deleted,
            subscription("sub_other", "canceled", pro_price),
            "team",
        ),
        // Cancelled: back on the default tier.
        (
            "evt_cancel",
            updated,
            subscription(&bought, "canceled", team_price),
            "free",
        ),
        (
            "evt_back",
            updated,
            subscription(&bought, "active", team_price),
            "team",
        ),
        // Paused (collection stopped): the paid caps go until it resumes.
        (
            "evt_paused",
            "customer.subscription.paused",
            subscription(&bought, "paused", team_price),
            "free",
        ),
        (
            "evt_resumed",
            "customer.subscription.resumed",
            subscription(&bought, "active", team_price),
            "team",
        ),
        // Past due keeps the tier while Stripe retries the payment.
        (
            "evt_past_due",
            updated,
            subscription(&bought, "past_due", team_price),
            "team",
        ),
        (
            "evt_deleted",
            deleted,
            subscription(&bought, "canceled", team_price),
            "free",
        ),
    ];
    for (id, kind, object, tier) in steps {
        deliver(id, kind, object).await;
        assert_eq!(tier_of(&app, &creator, "c1").await, tier, "after {id}");
    }
    let deleted_at = clock.get();
    // An update that Stripe sent before the deletion, delivered after it, is stale.
    let late = deliver_at(
        "evt_late",
        "customer.subscription.updated",
        deleted_at - 10,
        subscription(&bought, "active", pro_price),
    )
    .await;
    assert_eq!(late["handled"], false);
    assert_eq!(tier_of(&app, &creator, "c1").await, "free");
    // So is the checkout itself, redelivered after the deletion.
    let replayed = deliver_at(
        "evt_checkout_again",
        "checkout.session.completed",
        deleted_at - 20,
        completed_checkout(&bought),
    )
    .await;
    assert_eq!(replayed["handled"], false);
    assert_eq!(tier_of(&app, &creator, "c1").await, "free");

    for (id, kind, status) in [
        ("evt_inv1", "invoice.created", "draft"),
        ("evt_inv2", "invoice.paid", "paid"),
        ("evt_inv3", "invoice.payment_failed", "open"),
    ] {
        let mut invoice = fixture("invoice");
        invoice["customer"] = json!("cus_NEW");
        invoice["status"] = json!(status);
        invoice["amount_paid"] = json!(if status == "paid" { 2900 } else { 0 });
        invoice["amount_due"] = json!(2900);
        let answer = deliver(id, kind, invoice).await;
        assert_eq!(
            answer["handled"], false,
            "invoices are history, not tier changes"
        );
    }
    let events = ok_json(
        app.get("/v1/billing/events", &creator.secret_key).await,
        200,
    )
    .await;
    let invoices: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("invoice."))
        .collect();
    assert_eq!(invoices.len(), 3, "{events}");
    for invoice in invoices {
        assert_eq!(invoice["customer_id"], "c1");
        assert_eq!(invoice["stripe_customer_id"], "cus_NEW");
        assert_eq!(invoice["amount"], 2900);
        assert_eq!(invoice["currency"], "usd");
    }
    // The Stripe customer the checkout made is the customer's now: the next checkout
    // names it instead of the email.
    ok_json(
        app.post(
            "/v1/checkout/sessions",
            &creator.secret_key,
            json!({"customer_id": "c1", "tier": "pro",
                "success_url": "https://acme.example/ok", "cancel_url": "https://acme.example/no"}),
        )
        .await,
        200,
    )
    .await;
    let fields = form(&fake.requests("/v1/checkout/sessions").await[0]);
    assert_eq!(fields["customer"], "cus_NEW");
    assert!(!fields.contains_key("customer_email"));
}

#[actix_web::test]
async fn billing_is_off_without_a_key() {
    let app = spawn_app(Backend::Sqlite).await;
    let creator = app.create_creator("acme").await;
    assert_error(
        app.get("/v1/billing/account", &creator.secret_key).await,
        409,
        "billing_off",
    )
    .await;
    assert_error(
        app.post(
            "/v1/checkout/sessions",
            &creator.secret_key,
            json!({"customer_id": "c1", "tier": "pro", "success_url": "https://a.example",
                "cancel_url": "https://a.example"}),
        )
        .await,
        409,
        "billing_off",
    )
    .await;
    assert_error(
        post_webhook(&app, "{}", Some("t=1,v1=00")).await,
        409,
        "billing_off",
    )
    .await;
    app.create_meter(&creator, "api", "sum", "month").await;
    let tier = ok_json(
        app.post("/v1/tiers", &creator.secret_key, &tiers()[1])
            .await,
        201,
    )
    .await;
    assert!(tier.get("stripe").is_none(), "{tier}");
}

#[actix_web::test]
async fn overage_prices_are_validated() {
    let app = spawn_app(Backend::Sqlite).await;
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "api", "sum", "month").await;
    app.create_meter(&creator, "seats", "max", "month").await;
    let tier = |caps: Value| {
        json!({"key": "pro", "name": "Pro",
            "price": {"amount": 100, "currency": "usd", "interval": "month"}, "caps": caps})
    };
    for caps in [
        json!({"api": {"limit": 10, "overage_price": 1}}),
        json!({"api": {"limit": 10.5, "on_exceed": "overage", "overage_price": 1}}),
        json!({"seats": {"limit": 10, "on_exceed": "overage", "overage_price": 1}}),
    ] {
        assert_error(
            app.post("/v1/tiers", &creator.secret_key, tier(caps)).await,
            422,
            "invalid_cap",
        )
        .await;
    }
}

/// A Stripe that does not answer in time is named as such, not as "error sending request".
#[actix_web::test]
async fn a_stripe_timeout_says_it_timed_out() {
    let silent = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&silent)
        .await;
    let base = silent.uri();
    let app = spawn_app_with(Backend::Sqlite, move |config| {
        config.stripe.secret_key = PLATFORM_KEY.into();
        config.stripe.api_base = base;
        config.stripe.request_timeout_ms = 200;
    })
    .await;
    let creator = app.create_creator("acme").await;
    let body = assert_error(put_account(&app, &creator).await, 502, "stripe_unreachable").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("timed out"), "{message}");
}

/// Every call that creates or changes something at Stripe carries an `Idempotency-Key`:
/// a checkout asked again is the same session (by the caller's key, or within the retry
/// window without one), an onboarding link asked again the same link, and replaced prices
/// are archived under keys of their own.
async fn every_call_that_creates_or_changes_carries_an_idempotency_key(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    put_customer(&app, &creator, "c1", json!({"tier": "free"})).await;
    let buy = json!({"customer_id": "c1", "tier": "pro",
        "success_url": "https://acme.example/thanks", "cancel_url": "https://acme.example/pricing"});
    let checkout = |key: Option<&'static str>| {
        let mut request = app
            .client
            .post(app.url("/v1/checkout/sessions"))
            .bearer_auth(&creator.secret_key)
            .json(&buy);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        async move { ok_json(request.send().await.unwrap(), 200).await["id"].clone() }
    };
    let first = checkout(None).await;
    assert_eq!(checkout(None).await, first, "a retry is the same session");
    let keyed = checkout(Some("order-1")).await;
    assert_ne!(keyed, first, "the caller's key names another checkout");
    assert_eq!(checkout(Some("order-1")).await, keyed);
    assert_ne!(checkout(Some("order-2")).await, keyed);
    app.clock.advance(601);
    assert_ne!(
        checkout(None).await,
        first,
        "past the window, a new session"
    );

    // A price change archives the replaced prices.
    ok_json(
        app.send(
            Method::PATCH,
            "/v1/tiers/pro",
            &creator.secret_key,
            Some(&json!({"price": {"amount": 3900, "currency": "usd", "interval": "month"}})),
        )
        .await,
        200,
    )
    .await;
    // Onboarding for a creator without an account: an account, then a link.
    let other = app.create_creator("beta").await;
    let onboard = json!({"refresh_url": "https://beta.example/retry",
        "return_url": "https://beta.example/done"});
    let onboarding = |key: Option<&'static str>| {
        let mut request = app
            .client
            .post(app.url("/v1/billing/onboarding"))
            .bearer_auth(&other.secret_key)
            .json(&onboard);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        async move { ok_json(request.send().await.unwrap(), 200).await }
    };
    // Links are single-use: asked again without a key, a new one; with the caller's key
    // repeated, the same request.
    for key in [None, None, Some("link-1"), Some("link-1")] {
        onboarding(key).await;
    }
    let links = fake.requests("/v1/account_links").await;
    let keys: Vec<_> = links.iter().map(|l| header(l, "idempotency-key")).collect();
    assert_eq!(keys.len(), 4);
    assert_ne!(keys[0], keys[1]);
    assert_eq!(keys[2], keys[3]);

    let mut archived = 0;
    for request in fake.all_requests().await {
        if request.method.as_str() != "POST" {
            continue;
        }
        let path = request.url.path();
        archived += usize::from(path.starts_with("/v1/prices/"));
        // The v2 stream's requests are named by their events' identifiers.
        if !path.starts_with("/v2/") {
            assert!(
                header(&request, "idempotency-key").is_some(),
                "POST {path} carries no Idempotency-Key"
            );
        }
    }
    assert!(
        archived >= 2,
        "the replaced price and overage price are archived"
    );
}

/// A 429 with `Retry-After: 30` is not resent before 30 seconds, though the backoff
/// after one failure would be a second or two.
async fn a_rate_limited_report_waits_as_long_as_stripe_asks(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    fake.throttle("/v1/billing/meter_events", 30).await;
    put_customer(
        &app,
        &creator,
        "c1",
        json!({"tier": "pro", "stripe_customer_id": "cus_C1"}),
    )
    .await;
    use_api(&app, &creator, "c1", 5.0).await;
    fake.wait_for("/v1/billing/meter_events", 1).await;
    // The refusal is recorded (with its wait) before the clock moves: moved first, the
    // wait would count from the moved clock.
    for _ in 0..400 {
        if reports(&app, &creator).await[0]["attempts"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    app.clock.advance(10);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        fake.requests("/v1/billing/meter_events").await.len(),
        1,
        "not resent before Retry-After"
    );
    app.clock.advance(25);
    fake.wait_for("/v1/billing/meter_events", 2).await;
    let sent = until_sent(&app, &creator, 1).await;
    assert_eq!(sent[0]["attempts"], 2, "{sent:?}");
}

/// A v2 stream request refused for good is resent through v1, and its reports count as
/// sent through v1. The real binary, so that its metrics are its own.
async fn a_stream_refusal_resent_through_v1_counts_as_v1(backend: Backend) {
    let fake = FakeStripe::start().await;
    fake.fail("/v2/billing/meter_event_stream", 1, 400, None)
        .await;
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = backend.fresh_database().await;
    let env = [
        ("STARYER__STRIPE__SECRET_KEY", PLATFORM_KEY.to_string()),
        ("STARYER__STRIPE__API_BASE", fake.uri()),
        ("STARYER__STRIPE__METER_EVENTS_BASE", fake.uri()),
        ("STARYER__STRIPE__METER_EVENT_TRANSPORT", "v2".to_string()),
        ("STARYER__STRIPE__REPORT_INTERVAL_MS", "100".to_string()),
        ("STARYER__INGEST__FOLD_INTERVAL_MS", "100".to_string()),
    ];
    let daemon = Daemon::start(data_dir.path(), &database_url, free_port(), &env).await;
    let client = reqwest::Client::new();
    let key = billed_customer_on(&client, &daemon.base).await;
    post_usage_on(&client, &daemon.base, &key, 7).await;
    fake.wait_for("/v2/billing/meter_event_stream", 1).await;
    fake.wait_for("/v1/billing/meter_events", 1).await;
    let sent = |metrics: &str, transport: &str| {
        metric(
            metrics,
            &format!("staryer_stripe_reports_sent_total{{transport=\"{transport}\"}}"),
        )
    };
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = client
            .get(format!("{}/metrics", daemon.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if sent(&metrics, "v1") == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent(&metrics, "v1"), 1.0, "{metrics}");
    assert_eq!(sent(&metrics, "v2"), 0.0, "{metrics}");
}

/// POSTs the fake received on paths starting with `prefix`.
async fn posts_under(fake: &FakeStripe, prefix: &str) -> usize {
    fake.all_requests()
        .await
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path().starts_with(prefix))
        .count()
}

/// A new name is an update of the Product: no Price is made or archived. A new amount
/// still replaces the Prices.
async fn a_rename_updates_the_product_and_keeps_every_price(backend: Backend) {
    let (fake, app, creator, connected) = connected_app(backend).await;
    let pro = &connected["tiers"]["pro"];
    let prices_before = posts_under(&fake, "/v1/prices").await;
    let (app, creator) = (&app, &creator);
    let patch = |body: Value| async move {
        app.send(
            Method::PATCH,
            "/v1/tiers/pro",
            &creator.secret_key,
            Some(&body),
        )
        .await
    };
    let renamed = ok_json(patch(json!({"name": "Pro (2026)"})).await, 200).await;
    assert_eq!(renamed["stripe"]["price_id"], pro["price_id"], "{renamed}");
    assert_eq!(renamed["stripe"]["overage_prices"], pro["overage_prices"]);
    assert_eq!(
        posts_under(&fake, "/v1/prices").await,
        prices_before,
        "no price made or archived"
    );
    let product = pro["product_id"].as_str().unwrap();
    let updates = fake.requests(&format!("/v1/products/{product}")).await;
    let last = updates.last().expect("the product is updated");
    assert_eq!(form(last)["name"], "Pro (2026)");
    assert!(header(last, "idempotency-key").is_some());

    let repriced = ok_json(
        patch(json!({"price": {"amount": 3900, "currency": "usd", "interval": "month"}})).await,
        200,
    )
    .await;
    assert_ne!(
        repriced["stripe"]["price_id"], pro["price_id"],
        "{repriced}"
    );
}

/// A free tier whose cap bills overage is sold by its metered price alone: no $0
/// recurring Price, and no `quantity=1` line at checkout.
async fn a_free_tier_that_bills_overage_sells_no_zero_price(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    let prices_before = posts_under(&fake, "/v1/prices").await;
    let payg = ok_json(
        app.post(
            "/v1/tiers",
            &creator.secret_key,
            &json!({"key": "payg", "name": "Pay as you go",
                "price": {"amount": 0, "currency": "usd", "interval": "month"},
                "caps": {"api": {"limit": 0, "on_exceed": "overage", "overage_price": 1}}}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(payg["stripe"]["status"], "synced", "{payg}");
    assert!(payg["stripe"].get("price_id").is_none(), "{payg}");
    let metered = payg["stripe"]["overage_prices"]["api"].as_str().unwrap();
    assert_eq!(
        posts_under(&fake, "/v1/prices").await,
        prices_before + 1,
        "the metered price only"
    );
    put_customer(&app, &creator, "c1", json!({"tier": "free"})).await;
    ok_json(
        app.post(
            "/v1/checkout/sessions",
            &creator.secret_key,
            json!({"customer_id": "c1", "tier": "payg",
                "success_url": "https://acme.example/thanks",
                "cancel_url": "https://acme.example/pricing"}),
        )
        .await,
        200,
    )
    .await;
    let sent = fake.requests("/v1/checkout/sessions").await;
    let fields = form(sent.last().unwrap());
    assert_eq!(fields["line_items[0][price]"], metered);
    assert!(
        !fields.contains_key("line_items[0][quantity]"),
        "{fields:?}"
    );
    assert!(!fields.contains_key("line_items[1][price]"), "{fields:?}");
}

/// A tier whose sync failed is synced by the reporter's next pass, with no change or
/// checkout to prompt it.
async fn a_failed_sync_is_retried_in_the_background(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = billing_app(backend, &fake).await;
    let (creator, _) = tier_whose_sync_failed(&app, &fake).await;
    let mut standing = Value::Null;
    for _ in 0..200 {
        standing = tier_standing(&app, &creator, "pro").await;
        if standing == "synced" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(standing, "synced");
    assert_eq!(
        fake.requests("/v1/products").await.len(),
        2,
        "one product, asked twice"
    );
}

async fn a_tier_sync_that_keeps_failing_is_retried_with_backoff(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = billing_app(backend, &fake).await;
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "api", "sum", "month").await;
    connect_account(&app, &creator).await;
    // Stripe refuses the tier's price every time (say, a parameter the account cannot use).
    fake.fail("/v1/prices", 10_000, 400, Some(false)).await;
    let created = ok_json(
        app.post("/v1/tiers", &creator.secret_key, &tiers()[1])
            .await,
        201,
    )
    .await;
    assert_eq!(created["stripe"]["status"], "failed");
    // About twenty passes of the reporter (every 50 ms): the first retries at once, the
    // rest wait out the backoff (30 s on the daemon's clock, which stands still here).
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let tries = fake.posts("/v1/prices").await.len();
    assert_eq!(tries, 2, "the change's try and one background try");
    app.clock.advance(31);
    for _ in 0..200 {
        if fake.posts("/v1/prices").await.len() > tries {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fake.posts("/v1/prices").await.len(),
        tries + 1,
        "one more try once the backoff ran out, then the next (doubled) wait"
    );
}

/// A thin event as Stripe delivers it: no `data`, `created` in RFC 3339, the account as
/// `context`.
fn thin_event(id: &str, kind: &str) -> String {
    json!({
        "id": id,
        "object": "v2.core.event",
        "type": kind,
        "created": "2026-03-15T12:00:00.000Z",
        "livemode": false,
        "context": ACCOUNT,
        "related_object": {"id": "mtr_fake", "type": "billing.meter",
            "url": "/v1/billing/meters/mtr_fake"},
        "reason": null
    })
    .to_string()
}

/// `v1.billing.meter.error_report_triggered` is accepted, recorded, and the reports it
/// names are marked failed with Stripe's reason and counted; other thin events are kept.
async fn a_thin_meter_error_event_marks_the_reports_it_names(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    put_customer(
        &app,
        &creator,
        "c1",
        json!({"tier": "pro", "stripe_customer_id": "cus_C1"}),
    )
    .await;
    use_api(&app, &creator, "c1", 3.0).await;
    let sent = until_sent(&app, &creator, 1).await;
    let identifier = sent[0]["identifier"].as_str().unwrap().to_string();
    fake.meter_error_report("evt_thin_1", &identifier).await;
    // Signed at the daemon's clock, which sending moved on.
    let sign = |body: &str| {
        Webhook::generate_test_header(
            body,
            WEBHOOK_SECRET,
            Some(staryer::clock::Clock::now(&app.clock)),
        )
    };

    let body = thin_event("evt_thin_1", "v1.billing.meter.error_report_triggered");
    let answer = ok_json(post_webhook(&app, &body, Some(&sign(&body))).await, 200).await;
    assert_eq!(answer["handled"], true, "{answer}");
    let again = ok_json(post_webhook(&app, &body, Some(&sign(&body))).await, 200).await;
    assert_eq!(again["duplicate"], true);
    let listed = reports(&app, &creator).await;
    assert_eq!(listed[0]["state"], "failed", "{listed:?}");
    assert!(listed[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("meter_event_no_customer_defined"));
    let full = fake.requests("/v2/core/events/evt_thin_1").await;
    assert_eq!(full.len(), 1, "fetched once");
    assert_eq!(header(&full[0], "stripe-context"), Some(ACCOUNT));

    let other = thin_event("evt_thin_2", "v1.billing.meter.no_meter_found");
    let kept = ok_json(post_webhook(&app, &other, Some(&sign(&other))).await, 200).await;
    assert_eq!(kept["handled"], false);
    let events = ok_json(
        app.get("/v1/billing/events", &creator.secret_key).await,
        200,
    )
    .await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .or(events.as_array())
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"v1.billing.meter.error_report_triggered"),
        "{events}"
    );
    assert!(
        kinds.contains(&"v1.billing.meter.no_meter_found"),
        "{events}"
    );
    assert!(app
        .metrics()
        .await
        .contains("staryer_stripe_meter_errors_total"));
}

/// Thin events come through an event destination of their own, with its own secret
/// (`stripe.thin_webhook_secret`); either secret's signature is believed, no other.
async fn a_thin_event_signed_by_its_own_destination_is_believed(backend: Backend) {
    const THIN_SECRET: &str = "whsec_thin_destination";
    let fake = FakeStripe::start().await;
    let base = fake.uri();
    let app = spawn_app_with(backend, move |config| {
        config.stripe.secret_key = PLATFORM_KEY.into();
        config.stripe.webhook_secret = WEBHOOK_SECRET.into();
        config.stripe.thin_webhook_secret = THIN_SECRET.into();
        config.stripe.api_base = base;
    })
    .await;
    connected_creator(&app).await;
    let body = thin_event("evt_thin_other", "v1.billing.meter.no_meter_found");
    let by_thin = Webhook::generate_test_header(&body, THIN_SECRET, Some(START));
    let answer = ok_json(post_webhook(&app, &body, Some(&by_thin)).await, 200).await;
    assert_eq!(answer["received"], true);
    let forged = Webhook::generate_test_header(&body, "whsec_someone_else", Some(START));
    assert_error(
        post_webhook(&app, &body, Some(&forged)).await,
        400,
        "invalid_signature",
    )
    .await;
}

/// Creates at the fake: products, prices, meters.
async fn creates(fake: &FakeStripe) -> [usize; 3] {
    [
        fake.posts("/v1/products").await.len(),
        fake.posts("/v1/prices").await.len(),
        fake.posts("/v1/billing/meters").await.len(),
    ]
}

/// A second daemon on a new, empty database, connected to the account the first one
/// filled, finds its product, prices and meter (search, lists) instead of making them
/// again, and sells the prices it found.
async fn a_new_database_finds_the_objects_made_before_instead_of_making_them(backend: Backend) {
    let (fake, _first, _, made) = connected_app(backend.clone()).await;
    let before = creates(&fake).await;
    assert_eq!(before, [2, 4, 1]);
    let lookups_before = fake.all_requests().await.len();

    let second = billing_app(backend, &fake).await;
    let (creator, found) = connected_creator(&second).await;
    assert_eq!(found["tiers"], made["tiers"], "the same ids");
    assert_eq!(creates(&fake).await, before, "nothing made again");
    let requests = fake.all_requests().await;
    let lookups: Vec<_> = requests[lookups_before..]
        .iter()
        .filter(|r| r.method == "GET" && !r.url.path().starts_with("/v1/accounts/"))
        .collect();
    let paths: Vec<&str> = lookups.iter().map(|r| r.url.path()).collect();
    for wanted in ["/v1/products/search", "/v1/prices", "/v1/billing/meters"] {
        assert!(paths.contains(&wanted), "{paths:?}");
    }
    for lookup in lookups {
        assert_eq!(header(lookup, "stripe-account"), Some(ACCOUNT));
        assert_eq!(header(lookup, "idempotency-key"), None);
    }

    put_customer(&second, &creator, "c1", json!({"tier": "free"})).await;
    ok_json(
        second
            .post(
                "/v1/checkout/sessions",
                &creator.secret_key,
                json!({"customer_id": "c1", "tier": "pro",
                    "success_url": "https://acme.example/thanks",
                    "cancel_url": "https://acme.example/pricing"}),
            )
            .await,
        200,
    )
    .await;
    let fields = form(&fake.requests("/v1/checkout/sessions").await[0]);
    let pro = &made["tiers"]["pro"];
    assert_eq!(
        fields["line_items[0][price]"],
        pro["price_id"].as_str().unwrap()
    );
    assert_eq!(
        fields["line_items[1][price]"],
        pro["overage_prices"]["api"].as_str().unwrap()
    );
}

/// The billing events of type `staryer.usage_drift`.
async fn drifts(app: &TestApp, creator: &TestCreator) -> Vec<Value> {
    let events = ok_json(
        app.get("/v1/billing/events", &creator.secret_key).await,
        200,
    )
    .await;
    let mut drifts = events.as_array().unwrap().clone();
    drifts.retain(|e| e["type"] == "staryer.usage_drift");
    drifts
}

/// Once the hour of the reports has closed and another has passed, what each Stripe
/// customer was reported is compared with Stripe's meter event summary: in agreement,
/// nothing; a difference is a `staryer.usage_drift` event and a count, recorded once
/// however often the hour is checked again.
async fn reported_usage_is_reconciled_with_what_stripe_counted(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    for (customer, stripe_id) in [("c1", "cus_C1"), ("c2", "cus_C2")] {
        put_customer(
            &app,
            &creator,
            customer,
            json!({"tier": "pro", "stripe_customer_id": stripe_id}),
        )
        .await;
        use_api(&app, &creator, customer, 5.0).await;
    }
    // Sent at START (the clock stands still): the hour from START is theirs.
    for _ in 0..200 {
        let all = reports(&app, &creator).await;
        if all.iter().filter(|r| r["state"] == "sent").count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Stripe counted 3 of cus_C2's 5 units; cus_C1's summary adds up its events.
    fake.set_summary("cus_C2", 3.0);
    app.clock.advance(2 * 3_600);
    let mut found = Vec::new();
    for _ in 0..200 {
        found = drifts(&app, &creator).await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Stripe customers are compared in order: cus_C1's comparison came first.
    assert_eq!(found.len(), 1, "{found:?}");
    let drift = &found[0];
    assert_eq!(drift["customer_id"], "c2");
    assert_eq!(drift["stripe_customer_id"], "cus_C2");
    assert_eq!(drift["amount"], 2, "reported minus counted");
    let meter = drift["object_id"].as_str().unwrap().to_string();
    assert!(meter.starts_with("mtr_"), "{drift}");
    let summaries_path = format!("/v1/billing/meters/{meter}/event_summaries");
    let asked = fake.wait_for(&summaries_path, 2).await;
    let mut customers = Vec::new();
    for request in &asked {
        let params: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        assert_eq!(params["start_time"], START.to_string());
        assert_eq!(params["end_time"], (START + 3_600).to_string());
        customers.push(params["customer"].clone());
        assert_eq!(header(request, "stripe-account"), Some(ACCOUNT));
        assert_eq!(header(request, "idempotency-key"), None);
    }
    assert_eq!(customers, ["cus_C1", "cus_C2"]);
    assert!(metric(&app.metrics().await, "staryer_stripe_usage_drift_total") >= 1.0);

    // A restarted daemon checks the same hour again: the drift is not recorded twice.
    let app = app.restart().await;
    fake.wait_for(&summaries_path, 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = drifts(&app, &creator).await;
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0]["event_id"], drift["event_id"]);
}
