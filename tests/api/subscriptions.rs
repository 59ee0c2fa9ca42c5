//! A subscription's life after Checkout, against the local fake Stripe: a tier change of
//! a subscribed customer is one subscription update (or a schedule for period end), never
//! a second checkout; cancel and resume; trials, promotion codes and tax; Stripe's
//! customer portal; Stripe customers made once and found again by metadata; dunning
//! through a clock the test moves.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use staryer::clock::Clock;
use stripe_webhook::Webhook;

use crate::billing::{
    billing_app_with, connected_app, connected_creator, post_webhook, put_customer, stripe_event,
    tier_of, ACCOUNT,
};
use crate::helpers::{
    assert_error, eventually, ok_json, quick_outbox, Backend, TestApp, TestCreator, START,
};
use crate::on_both_databases;
use crate::stripe_fake::{fixture, form, header, FakeStripe, WEBHOOK_SECRET};

on_both_databases!(
    a_subscribed_customer_changes_tier_by_one_subscription_update,
    downgrades_apply_at_once_when_the_creator_says_so,
    cancel_at_period_end_resume_and_cancel_now,
    cancelling_at_period_end_drops_a_waiting_downgrade,
    checkout_offers_trials_promotion_codes_and_tax_as_configured,
    the_billing_portal_opens_for_the_customer,
    a_failed_payment_keeps_the_tier_through_the_grace_period_then_drops_it,
    stripe_customers_are_made_once_and_found_again_by_metadata,
    a_second_completed_checkout_ends_the_first_subscription,
    billing_transitions_are_told_by_email_and_webhook_once,
);

/// When the test subscriptions' current period ends.
const PERIOD_END: i64 = START + 20 * 86_400;

/// Delivers a signed Stripe event, signed at the daemon's now; answers the receipt.
pub(crate) async fn deliver(app: &TestApp, id: &str, kind: &str, object: Value) -> Value {
    let now = app.clock.now();
    let body = stripe_event(id, kind, now, object);
    let signature = Webhook::generate_test_header(&body, WEBHOOK_SECRET, Some(now));
    ok_json(post_webhook(app, &body, Some(&signature)).await, 200).await
}

fn buy(customer: &str, tier: &str) -> Value {
    json!({"customer_id": customer, "tier": tier,
        "success_url": "https://acme.example/thanks", "cancel_url": "https://acme.example/pricing"})
}

async fn checkout(app: &TestApp, creator: &TestCreator, customer: &str, tier: &str) -> Value {
    ok_json(
        app.post(
            "/v1/checkout/sessions",
            &creator.secret_key,
            buy(customer, tier),
        )
        .await,
        200,
    )
    .await
}

/// A tier's recurring and overage prices, as the subscription's items carry them.
fn prices<'a>(connected: &'a Value, tier: &str) -> [(&'a str, Option<u64>); 2] {
    let standing = &connected["tiers"][tier];
    [
        (standing["price_id"].as_str().unwrap(), Some(1)),
        (standing["overage_prices"]["api"].as_str().unwrap(), None),
    ]
}

/// `customer` buys `pro` through Checkout and Stripe reports it paid: answers the
/// subscription id and the Stripe customer.
async fn subscribe(
    app: &TestApp,
    fake: &FakeStripe,
    creator: &TestCreator,
    connected: &Value,
    customer: &str,
) -> (String, String) {
    let email = format!("{customer}@example.com");
    put_customer(
        app,
        creator,
        customer,
        json!({"tier": "free", "email": email}),
    )
    .await;
    assert_eq!(
        checkout(app, creator, customer, "pro").await["kind"],
        "checkout"
    );
    let usage = app.usage(creator, customer).await;
    assert_eq!(usage["tier"], "free", "a checkout alone grants nothing");
    let stripe_customer = fake
        .requests("/v1/checkout/sessions")
        .await
        .iter()
        .map(form)
        .rfind(|fields| fields["client_reference_id"] == customer)
        .unwrap()["customer"]
        .clone();
    let subscription = fake.subscribe(&stripe_customer, &prices(connected, "pro"), PERIOD_END);
    let mut session = fixture("checkout.session");
    session["mode"] = json!("subscription");
    session["client_reference_id"] = json!(customer);
    session["customer"] = json!(stripe_customer);
    session["subscription"] = json!(subscription);
    session["metadata"] = json!({"staryer_customer_id": customer, "staryer_tier": "pro"});
    session["payment_status"] = json!("paid");
    let event = format!("evt_checkout_{customer}");
    deliver(app, &event, "checkout.session.completed", session).await;
    assert_eq!(tier_of(app, creator, customer).await, "pro");
    (subscription, stripe_customer)
}

async fn put_tier(app: &TestApp, creator: &TestCreator, customer: &str, tier: &str) -> Value {
    ok_json(
        app.send(
            Method::PUT,
            &format!("/v1/customers/{customer}"),
            &creator.secret_key,
            Some(&json!({"tier": tier, "email": format!("{customer}@example.com")})),
        )
        .await,
        200,
    )
    .await
}

async fn put_settings(app: &TestApp, creator: &TestCreator, settings: Value) -> Value {
    ok_json(
        app.send(
            Method::PUT,
            "/v1/billing/settings",
            &creator.secret_key,
            Some(&settings),
        )
        .await,
        200,
    )
    .await
}

/// The POSTs to one subscription, each as its form.
async fn subscription_updates(
    fake: &FakeStripe,
    subscription: &str,
) -> Vec<std::collections::HashMap<String, String>> {
    fake.requests(&format!("/v1/subscriptions/{subscription}"))
        .await
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| {
            assert_eq!(header(r, "stripe-account"), Some(ACCOUNT));
            assert!(
                header(r, "idempotency-key").is_some(),
                "every change carries a key"
            );
            form(r)
        })
        .collect()
}

/// Every request that creates or changes something at Stripe carried an idempotency key.
async fn every_change_was_keyed(fake: &FakeStripe) {
    for request in fake.all_requests().await {
        if request.method.as_str() != "GET" {
            assert!(
                header(&request, "idempotency-key").is_some(),
                "{} {} carried no Idempotency-Key",
                request.method,
                request.url.path()
            );
        }
    }
}

fn as_set(prices: &[(&str, Option<u64>)]) -> HashSet<String> {
    prices.iter().map(|(p, _)| p.to_string()).collect()
}

async fn a_subscribed_customer_changes_tier_by_one_subscription_update(backend: Backend) {
    let (fake, app, creator, connected) = connected_app(backend).await;
    let (subscription, _) = subscribe(&app, &fake, &creator, &connected, "c1").await;

    // An upgrade applies at once: one update swapping the items, prorated by default.
    let moved = put_tier(&app, &creator, "c1", "team").await;
    assert_eq!(moved["tier"], "team");
    assert_eq!(moved["plan_change"]["change"], "updated", "{moved}");
    assert_eq!(
        moved["plan_change"]["subscription_id"],
        subscription.as_str()
    );
    let updates = subscription_updates(&fake, &subscription).await;
    assert_eq!(updates.len(), 1);
    let update = &updates[0];
    assert_eq!(update["proration_behavior"], "create_prorations");
    assert_eq!(update["items[0][deleted]"], "true");
    assert_eq!(update["items[1][deleted]"], "true");
    let team = prices(&connected, "team");
    assert_eq!(update["items[2][price]"], team[0].0);
    assert_eq!(update["items[2][quantity]"], "1");
    assert_eq!(update["items[3][price]"], team[1].0);
    assert!(
        !update.contains_key("items[3][quantity]"),
        "metered: no quantity"
    );
    let held: HashSet<String> = fake
        .subscription_prices(&subscription)
        .into_iter()
        .collect();
    assert_eq!(held, as_set(&team));
    assert_eq!(tier_of(&app, &creator, "c1").await, "team");

    // A checkout for a subscribed customer answers with the subscription, not a second
    // one. Moving to the cheaper `pro` is a downgrade: by default at period end, through
    // a schedule whose next phase holds pro's prices.
    let sessions_before = fake.requests("/v1/checkout/sessions").await.len();
    fake.give_discount(&subscription, "di_fake_launch");
    let answer = checkout(&app, &creator, "c1", "pro").await;
    assert_eq!(answer["kind"], "subscription_update", "{answer}");
    assert_eq!(answer["id"], subscription.as_str());
    assert_eq!(answer["url"], "https://acme.example/thanks");
    assert_eq!(answer["plan_change"]["change"], "scheduled");
    assert_eq!(
        answer["plan_change"]["effective_at"],
        chrono::DateTime::from_timestamp(PERIOD_END, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(
        fake.requests("/v1/checkout/sessions").await.len(),
        sessions_before
    );
    assert_eq!(
        tier_of(&app, &creator, "c1").await,
        "team",
        "the tier paid for holds until the period ends"
    );
    let created = fake.requests("/v1/subscription_schedules").await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        form(&created[0])["from_subscription"],
        subscription.as_str()
    );
    assert!(header(&created[0], "idempotency-key").is_some());
    let schedule_id = fake.subscription(&subscription)["schedule"]
        .as_str()
        .unwrap()
        .to_string();
    let phased = fake
        .requests(&format!("/v1/subscription_schedules/{schedule_id}"))
        .await;
    assert_eq!(phased.len(), 1);
    assert!(header(&phased[0], "idempotency-key").is_some());
    let phases = form(&phased[0]);
    let pro = prices(&connected, "pro");
    assert_eq!(phases["end_behavior"], "release");
    assert_eq!(phases["phases[0][end_date]"], PERIOD_END.to_string());
    let paid: HashSet<String> = [
        &phases["phases[0][items][0][price]"],
        &phases["phases[0][items][1][price]"],
    ]
    .into_iter()
    .cloned()
    .collect();
    assert_eq!(paid, as_set(&team));
    assert_eq!(phases["phases[1][items][0][price]"], pro[0].0);
    assert_eq!(phases["phases[1][items][1][price]"], pro[1].0);
    assert_eq!(phases["phases[1][proration_behavior]"], "none");
    // Rewritten phases keep what Checkout gave: the discount, the platform's fee.
    for phase in 0..2 {
        assert_eq!(
            phases[&format!("phases[{phase}][discounts][0][discount]")],
            "di_fake_launch"
        );
        let fee: f64 = phases[&format!("phases[{phase}][application_fee_percent]")]
            .parse()
            .unwrap();
        assert_eq!(fee, 10.0);
    }
    assert!(
        !phases.contains_key("phases[0][trial_end]"),
        "no trial to keep"
    );

    // The creator changes its mind: back to team, the tier it is on, drops the downgrade.
    let kept = put_tier(&app, &creator, "c1", "team").await;
    assert_eq!(kept["plan_change"]["change"], "updated", "{kept}");
    assert_eq!(kept["tier"], "team");
    let released = fake
        .requests(&format!("/v1/subscription_schedules/{schedule_id}/release"))
        .await;
    assert_eq!(released.len(), 1);
    assert!(fake.subscription(&subscription)["schedule"].is_null());
    // And to pro once more: a schedule of its own.
    let again = checkout(&app, &creator, "c1", "pro").await;
    assert_eq!(again["plan_change"]["change"], "scheduled");
    let schedule_id = fake.subscription(&subscription)["schedule"]
        .as_str()
        .unwrap()
        .to_string();

    // Stripe starts the next phase: the subscription now bills pro, and so the tier is pro.
    let started = fake.start_next_phase(&subscription);
    let held: HashSet<String> = fake
        .subscription_prices(&subscription)
        .into_iter()
        .collect();
    assert_eq!(held, as_set(&pro));
    app.clock.advance(1);
    let receipt = deliver(&app, "evt_phase", "customer.subscription.updated", started).await;
    assert_eq!(receipt["handled"], true, "{receipt}");
    assert_eq!(tier_of(&app, &creator, "c1").await, "pro");

    // A change now, while a schedule still manages the subscription, releases it first
    // (Stripe refuses direct changes to a scheduled subscription).
    let before = subscription_updates(&fake, &subscription).await.len();
    put_tier(&app, &creator, "c1", "team").await;
    let released = fake
        .requests(&format!("/v1/subscription_schedules/{schedule_id}/release"))
        .await;
    assert_eq!(released.len(), 1);
    assert!(header(&released[0], "idempotency-key").is_some());
    assert!(fake.subscription(&subscription)["schedule"].is_null());
    assert_eq!(
        subscription_updates(&fake, &subscription).await.len(),
        before + 1
    );
    assert_eq!(tier_of(&app, &creator, "c1").await, "team");
    every_change_was_keyed(&fake).await;
}

async fn downgrades_apply_at_once_when_the_creator_says_so(backend: Backend) {
    let (fake, app, creator, connected) = connected_app(backend).await;
    let defaults = ok_json(
        app.get("/v1/billing/settings", &creator.secret_key).await,
        200,
    )
    .await;
    assert_eq!(
        defaults,
        json!({"proration_behavior": "create_prorations", "downgrades": "period_end",
            "allow_promotion_codes": false, "automatic_tax": false, "tax_behavior": null,
            "grace_period_days": 7})
    );
    for (settings, code) in [
        (json!({"grace_period_days": 61}), "invalid_grace_period"),
        (json!({"downgrades": "later"}), "invalid_value"),
        (json!({"surprise": true}), "unknown_field"),
    ] {
        let refused = app
            .send(
                Method::PUT,
                "/v1/billing/settings",
                &creator.secret_key,
                Some(&settings),
            )
            .await;
        assert_error(refused, 422, code).await;
    }
    let saved = put_settings(
        &app,
        &creator,
        json!({"downgrades": "now", "proration_behavior": "none"}),
    )
    .await;
    assert_eq!(
        saved["grace_period_days"], 7,
        "a field left out takes its default"
    );
    let (subscription, _) = subscribe(&app, &fake, &creator, &connected, "c1").await;
    put_tier(&app, &creator, "c1", "team").await;
    let moved = put_tier(&app, &creator, "c1", "pro").await;
    assert_eq!(moved["plan_change"]["change"], "updated");
    assert_eq!(moved["tier"], "pro");
    let updates = subscription_updates(&fake, &subscription).await;
    assert_eq!(updates.len(), 2);
    assert!(updates.iter().all(|u| u["proration_behavior"] == "none"));
    assert!(fake.requests("/v1/subscription_schedules").await.is_empty());
    let held: HashSet<String> = fake
        .subscription_prices(&subscription)
        .into_iter()
        .collect();
    assert_eq!(held, as_set(&prices(&connected, "pro")));

    // A tier that sells nothing ends the subscription: now, without proration.
    let freed = put_tier(&app, &creator, "c1", "free").await;
    assert_eq!(freed["plan_change"]["change"], "canceled", "{freed}");
    assert_eq!(freed["tier"], "free");
    let deleted: Vec<_> = fake
        .requests(&format!("/v1/subscriptions/{subscription}"))
        .await
        .into_iter()
        .filter(|r| r.method.as_str() == "DELETE")
        .collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(form(&deleted[0])["prorate"], "false");
    assert_eq!(fake.subscription(&subscription)["status"], "canceled");
    // With nothing left to move, a paid tier is sold through Checkout again.
    assert_eq!(
        checkout(&app, &creator, "c1", "pro").await["kind"],
        "checkout"
    );
    every_change_was_keyed(&fake).await;
}

async fn cancel_at_period_end_resume_and_cancel_now(backend: Backend) {
    let (fake, app, creator, connected) = connected_app(backend).await;
    let (subscription, _) = subscribe(&app, &fake, &creator, &connected, "c1").await;
    let post = |path: &str, body: Value| {
        let app = &app;
        let key = creator.secret_key.clone();
        let path = path.to_string();
        async move { app.post(&path, &key, body).await }
    };
    // No body: at period end, the default.
    let ending = ok_json(
        app.client
            .post(app.url("/v1/customers/c1/subscription/cancel"))
            .bearer_auth(&creator.secret_key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(ending["cancel_at_period_end"], true);
    assert_eq!(ending["subscription_id"], subscription.as_str());
    assert!(ending["current_period_end"].is_string());
    assert_eq!(
        tier_of(&app, &creator, "c1").await,
        "pro",
        "paid until the end"
    );
    let resumed = ok_json(
        post("/v1/customers/c1/subscription/resume", json!({})).await,
        200,
    )
    .await;
    assert_eq!(resumed["cancel_at_period_end"], false);
    let updates = subscription_updates(&fake, &subscription).await;
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0]["cancel_at_period_end"], "true");
    assert_eq!(updates[1]["cancel_at_period_end"], "false");

    let ended = ok_json(
        post(
            "/v1/customers/c1/subscription/cancel",
            json!({"at_period_end": false}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(ended["status"], "canceled");
    assert_eq!(tier_of(&app, &creator, "c1").await, "free");
    let deletes = fake
        .requests(&format!("/v1/subscriptions/{subscription}"))
        .await
        .into_iter()
        .filter(|r| r.method.as_str() == "DELETE")
        .count();
    assert_eq!(deletes, 1);
    for path in [
        "/v1/customers/c1/subscription/cancel",
        "/v1/customers/nobody/subscription/resume",
    ] {
        assert_error(post(path, json!({})).await, 404, "subscription_not_found").await;
    }
    every_change_was_keyed(&fake).await;
}

async fn cancelling_at_period_end_drops_a_waiting_downgrade(backend: Backend) {
    let (fake, app, creator, connected) = connected_app(backend).await;
    let (subscription, _) = subscribe(&app, &fake, &creator, &connected, "c1").await;
    put_tier(&app, &creator, "c1", "team").await;
    let scheduled = checkout(&app, &creator, "c1", "pro").await;
    assert_eq!(scheduled["plan_change"]["change"], "scheduled");
    let schedule_id = fake.subscription(&subscription)["schedule"]
        .as_str()
        .unwrap()
        .to_string();
    let ending = ok_json(
        app.post(
            "/v1/customers/c1/subscription/cancel",
            &creator.secret_key,
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(ending["cancel_at_period_end"], true);
    let released = fake
        .requests(&format!("/v1/subscription_schedules/{schedule_id}/release"))
        .await;
    assert_eq!(released.len(), 1, "the downgrade no longer waits");
    // A later change of the customer's email is only that: the cancellation stands.
    let updates = subscription_updates(&fake, &subscription).await.len();
    let edited = put_tier(&app, &creator, "c1", "team").await;
    assert!(edited.get("plan_change").is_none(), "{edited}");
    assert_eq!(
        subscription_updates(&fake, &subscription).await.len(),
        updates
    );
    assert_eq!(
        fake.subscription(&subscription)["cancel_at_period_end"],
        true
    );

    // An unpaid subscription changes tier only once it is paid.
    fake.set_subscription_status(&subscription, "unpaid");
    assert_error(
        app.send(
            Method::PUT,
            "/v1/customers/c1",
            &creator.secret_key,
            Some(&json!({"tier": "pro"})),
        )
        .await,
        409,
        "subscription_not_active",
    )
    .await;
    assert_eq!(
        tier_of(&app, &creator, "c1").await,
        "team",
        "nothing changed"
    );
    every_change_was_keyed(&fake).await;
}

async fn checkout_offers_trials_promotion_codes_and_tax_as_configured(backend: Backend) {
    let (fake, app, creator, connected) = connected_app(backend).await;
    ok_json(
        app.send(
            Method::PATCH,
            "/v1/tiers/pro",
            &creator.secret_key,
            Some(&json!({"trial_days": 14})),
        )
        .await,
        200,
    )
    .await;
    assert_error(
        app.send(
            Method::PATCH,
            "/v1/tiers/pro",
            &creator.secret_key,
            Some(&json!({"trial_days": 731})),
        )
        .await,
        422,
        "invalid_trial_days",
    )
    .await;
    put_settings(
        &app,
        &creator,
        json!({"allow_promotion_codes": true, "automatic_tax": true, "tax_behavior": "exclusive"}),
    )
    .await;
    let prices_before = fake.posts("/v1/prices").await.len();
    let (subscription, _) = subscribe(&app, &fake, &creator, &connected, "c1").await;
    // A tax behavior is part of a Price: pro got new ones carrying it.
    let pro_product = connected["tiers"]["pro"]["product_id"].as_str().unwrap();
    let new_prices: Vec<_> = fake.posts("/v1/prices").await[prices_before..]
        .iter()
        .map(form)
        .filter(|price| price["product"] == pro_product)
        .collect();
    assert_eq!(new_prices.len(), 2, "pro's recurring and overage prices");
    assert!(new_prices.iter().all(|p| p["tax_behavior"] == "exclusive"));
    let sessions = fake.requests("/v1/checkout/sessions").await;
    let fields = form(sessions.last().unwrap());
    for (field, value) in [
        ("allow_promotion_codes", "true"),
        ("automatic_tax[enabled]", "true"),
        ("customer_update[address]", "auto"),
        ("subscription_data[trial_period_days]", "14"),
    ] {
        assert_eq!(
            fields.get(field).map(String::as_str),
            Some(value),
            "{field}"
        );
    }
    // The trial is for the first subscription only.
    ok_json(
        app.post(
            "/v1/customers/c1/subscription/cancel",
            &creator.secret_key,
            json!({"at_period_end": false}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(fake.subscription(&subscription)["status"], "canceled");
    checkout(&app, &creator, "c1", "pro").await;
    let sessions = fake.requests("/v1/checkout/sessions").await;
    let again = form(sessions.last().unwrap());
    assert!(!again.contains_key("subscription_data[trial_period_days]"));
    every_change_was_keyed(&fake).await;
}

async fn the_billing_portal_opens_for_the_customer(backend: Backend) {
    let (fake, app, creator, connected) = connected_app(backend).await;
    let (_, stripe_customer) = subscribe(&app, &fake, &creator, &connected, "c1").await;
    let portal =
        |body: Value| app.post("/v1/customers/c1/billing_portal", &creator.secret_key, body);
    let opened = ok_json(
        portal(json!({"return_url": "https://acme.example/account"})).await,
        200,
    )
    .await;
    assert!(opened["url"]
        .as_str()
        .unwrap()
        .starts_with("https://billing.stripe.com/"));
    let sent = fake.requests("/v1/billing_portal/sessions").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(header(&sent[0], "stripe-account"), Some(ACCOUNT));
    assert!(header(&sent[0], "idempotency-key").is_some());
    let fields = form(&sent[0]);
    assert_eq!(fields["customer"], stripe_customer);
    assert_eq!(fields["return_url"], "https://acme.example/account");
    assert_error(
        portal(json!({"return_url": "ftp://x"})).await,
        422,
        "invalid_url",
    )
    .await;
    assert_error(
        app.post(
            "/v1/customers/nobody/billing_portal",
            &creator.secret_key,
            json!({"return_url": "https://acme.example/account"}),
        )
        .await,
        404,
        "customer_not_found",
    )
    .await;
    every_change_was_keyed(&fake).await;
}

/// Polls the customer's usage until `check` holds (the reporter's pass runs every 50 ms;
/// ten seconds allow for a loaded machine).
async fn until(
    app: &TestApp,
    creator: &TestCreator,
    customer: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..400 {
        let usage = app.usage(creator, customer).await;
        if check(&usage) {
            return usage;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "{customer}'s usage never got there: {}",
        app.usage(creator, customer).await
    );
}

fn invoice_for(subscription: &str, stripe_customer: &str) -> Value {
    let mut invoice = fixture("invoice");
    invoice["customer"] = json!(stripe_customer);
    invoice["parent"] = json!({"type": "subscription_details",
        "subscription_details": {"subscription": subscription, "metadata": {}}});
    invoice
}

async fn a_failed_payment_keeps_the_tier_through_the_grace_period_then_drops_it(backend: Backend) {
    let (fake, app, creator, connected) = connected_app(backend).await;
    let (sub1, cus1) = subscribe(&app, &fake, &creator, &connected, "c1").await;
    let (sub2, cus2) = subscribe(&app, &fake, &creator, &connected, "c2").await;
    let failed = deliver(
        &app,
        "evt_failed_1",
        "invoice.payment_failed",
        invoice_for(&sub1, &cus1),
    )
    .await;
    assert_eq!(failed["handled"], true);
    deliver(
        &app,
        "evt_failed_2",
        "invoice.payment_failed",
        invoice_for(&sub2, &cus2),
    )
    .await;
    // Stripe's retries fail again: the grace period does not start over.
    app.clock.advance(86_400);
    deliver(
        &app,
        "evt_failed_1b",
        "invoice.payment_failed",
        invoice_for(&sub1, &cus1),
    )
    .await;
    let usage = app.usage(&creator, "c1").await;
    assert_eq!(usage["tier"], "pro");
    assert_eq!(usage["billing_status"], "past_due");
    // Another invoice of the subscription paid (a proration's) leaves the failed one open.
    let mut other = invoice_for(&sub1, &cus1);
    other["id"] = json!("in_fake_proration");
    let paid_other = deliver(&app, "evt_paid_other", "invoice.paid", other).await;
    assert_eq!(paid_other["handled"], false);
    assert_eq!(
        app.usage(&creator, "c1").await["billing_status"],
        "past_due"
    );
    fake.set_subscription_status(&sub1, "past_due");
    // c2 paid in the meantime, though its `invoice.paid` never arrived.
    fake.set_subscription_status(&sub2, "active");

    app.clock.advance(6 * 86_400 - 10);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.usage(&creator, "c1").await["tier"],
        "pro",
        "still in grace"
    );
    app.clock.advance(11);
    // The tier falls first, then the standing is written (a crash between leaves the
    // customer `past_due`, and the next pass falls again).
    until(&app, &creator, "c1", |u| {
        u["tier"] == "free" && u["billing_status"] == "grace_ended"
    })
    .await;
    let restored = until(&app, &creator, "c2", |u| u["billing_status"].is_null()).await;
    assert_eq!(restored["tier"], "pro", "Stripe said it is paid: no fall");
    let events = ok_json(
        app.get("/v1/billing/events", &creator.secret_key).await,
        200,
    )
    .await;
    let grace_ended: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "staryer.grace_ended")
        .collect();
    assert_eq!(grace_ended.len(), 1, "{events}");
    assert_eq!(grace_ended[0]["customer_id"], "c1");
    assert_eq!(grace_ended[0]["object_id"], sub1.as_str());

    // Stripe keeps retrying (`past_due`): the customer stays where the grace left it.
    let mut retrying = fixture("subscription");
    retrying["id"] = json!(sub1);
    retrying["customer"] = json!(cus1);
    retrying["status"] = json!("past_due");
    retrying["metadata"] = json!({});
    retrying["items"]["data"][0]["price"]["id"] = json!(prices(&connected, "pro")[0].0);
    app.clock.advance(1);
    deliver(
        &app,
        "evt_retrying",
        "customer.subscription.updated",
        retrying,
    )
    .await;
    let usage = app.usage(&creator, "c1").await;
    assert_eq!(
        usage["tier"], "free",
        "no paid tier before a payment: {usage}"
    );
    assert_eq!(usage["billing_status"], "grace_ended");

    // The payment finally goes through: back on the tier it pays for.
    let paid = deliver(
        &app,
        "evt_paid_1",
        "invoice.paid",
        invoice_for(&sub1, &cus1),
    )
    .await;
    assert_eq!(paid["handled"], true);
    let usage = app.usage(&creator, "c1").await;
    assert_eq!(usage["tier"], "pro");
    assert!(usage.get("billing_status").is_none(), "{usage}");
    // Standing survives a restart (usage answers read it from memory, loaded at start).
    deliver(
        &app,
        "evt_failed_1c",
        "invoice.payment_failed",
        invoice_for(&sub1, &cus1),
    )
    .await;
    let app = app.restart().await;
    assert_eq!(
        app.usage(&creator, "c1").await["billing_status"],
        "past_due"
    );
}

async fn stripe_customers_are_made_once_and_found_again_by_metadata(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    // Put on a paid tier with an email: its Stripe customer is made at once.
    let put = put_tier(&app, &creator, "c9", "pro").await;
    let made = put["stripe_customer_id"]
        .as_str()
        .expect("made")
        .to_string();
    assert_eq!(fake.requests("/v1/customers").await.len(), 1);
    checkout(&app, &creator, "c9", "pro").await;
    assert_eq!(fake.requests("/v1/customers").await.len(), 1, "made once");
    let sessions = fake.requests("/v1/checkout/sessions").await;
    assert_eq!(form(&sessions[0])["customer"], made);

    // A customer an earlier database made is found by its metadata, not made again.
    let held = fake.hold_customer("acme", "c10");
    checkout(&app, &creator, "c10", "pro").await;
    assert_eq!(fake.requests("/v1/customers").await.len(), 1);
    let sessions = fake.requests("/v1/checkout/sessions").await;
    assert_eq!(form(&sessions[1])["customer"], held);
    every_change_was_keyed(&fake).await;
}

async fn a_second_completed_checkout_ends_the_first_subscription(backend: Backend) {
    let (fake, app, creator, connected) = connected_app(backend).await;
    let (first, stripe_customer) = subscribe(&app, &fake, &creator, &connected, "c1").await;
    // A session opened in another tab before the first purchase completes too.
    let second = fake.subscribe(&stripe_customer, &prices(&connected, "team"), PERIOD_END);
    let mut session = fixture("checkout.session");
    session["mode"] = json!("subscription");
    session["client_reference_id"] = json!("c1");
    session["customer"] = json!(stripe_customer);
    session["subscription"] = json!(second);
    session["metadata"] = json!({"staryer_customer_id": "c1", "staryer_tier": "team"});
    session["payment_status"] = json!("paid");
    app.clock.advance(1);
    deliver(
        &app,
        "evt_second_checkout",
        "checkout.session.completed",
        session,
    )
    .await;
    assert_eq!(
        tier_of(&app, &creator, "c1").await,
        "team",
        "the latest purchase"
    );
    assert_eq!(fake.subscription(&first)["status"], "canceled");
    assert_eq!(fake.subscription(&second)["status"], "active");
    let moved = put_tier(&app, &creator, "c1", "pro").await;
    assert_eq!(moved["plan_change"]["subscription_id"], second.as_str());
    every_change_was_keyed(&fake).await;
}

async fn billing_transitions_are_told_by_email_and_webhook_once(backend: Backend) {
    let services = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({"id": "e1"})))
        .mount(&services)
        .await;
    let fake = FakeStripe::start().await;
    let base = services.uri();
    let app = billing_app_with(
        backend,
        &fake,
        staryer::config::MeterEventTransport::V1,
        |config| {
            quick_outbox(config);
            config.resend.api_key = "re_test".into();
            config.resend.base_url = base;
        },
    )
    .await;
    let (creator, connected) = connected_creator(&app).await;
    ok_json(
        app.send(
            Method::PUT,
            "/v1/notices",
            &creator.secret_key,
            Some(&json!({"notice_email": "ops@acme.test"})),
        )
        .await,
        200,
    )
    .await;
    ok_json(
        app.post("/v1/webhook_endpoints", &creator.secret_key, json!({
            "url": format!("{}/hook", services.uri()),
            "events": ["invoice.payment_failed", "subscription.updated", "customer.tier_changed"],
        }))
        .await,
        201,
    )
    .await;
    let (subscription, stripe_customer) = subscribe(&app, &fake, &creator, &connected, "c1").await;
    for _ in 0..2 {
        // Stripe delivers an event again: told once.
        deliver(
            &app,
            "evt_failed_told",
            "invoice.payment_failed",
            invoice_for(&subscription, &stripe_customer),
        )
        .await;
    }
    let told = |path: &'static str| {
        let services = &services;
        async move {
            services
                .received_requests()
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.url.path() == path)
                .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
                .collect::<Vec<_>>()
        }
    };
    let emails = eventually("the payment notices", || async {
        let emails = told("/emails").await;
        (emails.len() == 2).then_some(emails)
    })
    .await;
    let recipients: HashSet<&str> = emails
        .iter()
        .map(|e| e["to"][0].as_str().unwrap())
        .collect();
    assert_eq!(
        recipients,
        HashSet::from(["c1@example.com", "ops@acme.test"])
    );
    let text = emails[0]["text"].as_str().unwrap();
    assert!(
        text.contains("A payment of ") && text.contains(" USD from c1 failed"),
        "{text}"
    );
    let hooks = eventually("the webhooks", || async {
        let hooks = told("/hook").await;
        hooks
            .iter()
            .any(|h| h["type"] == "invoice.payment_failed")
            .then_some(hooks)
    })
    .await;
    let types: Vec<&str> = hooks.iter().map(|h| h["type"].as_str().unwrap()).collect();
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "invoice.payment_failed")
            .count(),
        1,
        "{types:?}"
    );
    assert!(
        types.contains(&"customer.tier_changed"),
        "the checkout moved c1: {types:?}"
    );
    let failed = hooks
        .iter()
        .find(|h| h["type"] == "invoice.payment_failed")
        .unwrap();
    assert_eq!(failed["data"]["customer_id"], "c1");
    assert!(failed["data"]["grace_ends_at"].is_string(), "{failed}");
}
