//! Experiments through HTTP: their rules (weights, one running per embed, no restart),
//! sticky assignment (deterministic, by weight, the same after a restart, kept when a
//! visitor signs in), exposures counted once, conversions from the creator and from a
//! completed Checkout, and results equal to figures worked out independently.

use futures::StreamExt;
use serde_json::{json, Value};

use crate::billing::connected_app;
use crate::embeds::{create_embed, pricing_config, widget, widget_post};
use crate::helpers::{assert_error, ok_json, Backend, TestApp, TestCreator};
use crate::on_both_databases;
use crate::stripe_fake::form;
use crate::subscriptions::deliver;

on_both_databases!(
    experiments_follow_their_rules,
    assignment_is_sticky_deterministic_and_weighted,
    a_visitor_who_signs_in_keeps_its_variant,
    results_from_known_counts_equal_worked_values,
    a_completed_checkout_converts_for_the_variant_seen,
);

/// GrowthBook's hash (v2), written out again from its SDK's description, to predict the
/// daemon's assignment: FNV-1a 32 over UTF-16 units of seed + id, again over the decimal
/// digits, modulo 10,000.
fn growthbook_point(seed: &str, id: &str) -> f64 {
    let fnv = |text: &str| {
        let mut hash: u32 = 2_166_136_261;
        for unit in text.encode_utf16() {
            hash ^= u32::from(unit);
            hash = hash.wrapping_mul(16_777_619);
        }
        hash
    };
    f64::from(fnv(&fnv(&format!("{seed}{id}")).to_string()) % 10_000) / 10_000.0
}

fn predicted(seed: &str, id: &str, weights: &[f64]) -> usize {
    let point = growthbook_point(seed, id);
    let mut end = 0.0;
    for (index, weight) in weights.iter().enumerate() {
        end += weight;
        if point < end {
            return index;
        }
    }
    weights.len() - 1
}

/// An embed `pricing` with versions 1-3 (titles "v1".."v3").
async fn three_versions(app: &TestApp, creator: &TestCreator) {
    create_embed(
        app,
        creator,
        "pricing",
        "pricing_table",
        pricing_config("v1"),
    )
    .await;
    for title in ["v2", "v3"] {
        ok_json(
            app.post(
                "/v1/embeds/pricing/versions",
                &creator.secret_key,
                json!({"config": pricing_config(title)}),
            )
            .await,
            201,
        )
        .await;
    }
}

async fn create_experiment(app: &TestApp, creator: &TestCreator, body: Value) -> reqwest::Response {
    app.post("/v1/experiments", &creator.secret_key, body).await
}

async fn start(app: &TestApp, creator: &TestCreator, key: &str) -> reqwest::Response {
    app.post(
        &format!("/v1/experiments/{key}/start"),
        &creator.secret_key,
        json!({}),
    )
    .await
}

async fn results(app: &TestApp, creator: &TestCreator, key: &str) -> Value {
    ok_json(
        app.get(
            &format!("/v1/experiments/{key}/results"),
            &creator.secret_key,
        )
        .await,
        200,
    )
    .await
}

fn variants(weights: &[(&str, i64, f64)]) -> Value {
    json!(weights
        .iter()
        .map(|(key, version, weight)| json!({"key": key, "version": version, "weight": weight}))
        .collect::<Vec<_>>())
}

async fn experiments_follow_their_rules(backend: Backend) {
    let (_fake, app, creator, _) = connected_app(backend).await;
    three_versions(&app, &creator).await;
    let good = variants(&[("control", 1, 0.5), ("bold", 2, 0.5)]);
    for (body, status, code) in [
        (
            json!({"key": "t", "embed": "nope", "variants": good}),
            404,
            "embed_not_found",
        ),
        (
            json!({"key": "t", "embed": "pricing", "variants": variants(&[("a", 1, 0.5), ("b", 2, 0.4)])}),
            422,
            "invalid_weights",
        ),
        (
            json!({"key": "t", "embed": "pricing", "variants": variants(&[("a", 1, 1.2), ("b", 2, -0.2)])}),
            422,
            "invalid_weights",
        ),
        (
            json!({"key": "t", "embed": "pricing", "variants": variants(&[("a", 1, 1.0)])}),
            422,
            "invalid_variants",
        ),
        (
            json!({"key": "t", "embed": "pricing", "variants": variants(&[("a", 1, 0.5), ("a", 2, 0.5)])}),
            422,
            "invalid_variants",
        ),
        (
            json!({"key": "t", "embed": "pricing", "variants": variants(&[("a", 1, 0.5), ("b", 7, 0.5)])}),
            422,
            "unknown_version",
        ),
    ] {
        assert_error(create_experiment(&app, &creator, body).await, status, code).await;
    }
    let made = ok_json(
        create_experiment(
            &app,
            &creator,
            json!({"key": "headline", "embed": "pricing", "variants": good}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(made["status"], "draft");
    assert_eq!(made["goal"], "checkout_completed");
    assert_error(
        create_experiment(
            &app,
            &creator,
            json!({"key": "headline", "embed": "pricing", "variants": good}),
        )
        .await,
        409,
        "already_exists",
    )
    .await;
    // A draft shows nobody anything new.
    let shown = ok_json(
        widget(&app, &creator, "pricing", "&visitor_id=v1", &[]).await,
        200,
    )
    .await;
    assert!(shown["experiment"].is_null());

    let running = ok_json(start(&app, &creator, "headline").await, 200).await;
    assert_eq!(running["status"], "running");
    assert!(running["started_at"].is_string());
    assert_error(
        start(&app, &creator, "headline").await,
        409,
        "already_started",
    )
    .await;
    ok_json(
        create_experiment(
            &app,
            &creator,
            json!({"key": "second", "embed": "pricing", "variants": good}),
        )
        .await,
        201,
    )
    .await;
    assert_error(
        start(&app, &creator, "second").await,
        409,
        "experiment_running",
    )
    .await;
    assert_error(
        start(&app, &creator, "nope").await,
        404,
        "experiment_not_found",
    )
    .await;

    let stopped = ok_json(
        app.post(
            "/v1/experiments/headline/stop",
            &creator.secret_key,
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(stopped["status"], "stopped");
    assert_error(
        app.post(
            "/v1/experiments/headline/stop",
            &creator.secret_key,
            json!({}),
        )
        .await,
        409,
        "not_running",
    )
    .await;
    assert_error(
        start(&app, &creator, "headline").await,
        409,
        "already_started",
    )
    .await;
    // Once stopped, the published version shows again; the next experiment may start.
    let shown = ok_json(
        widget(&app, &creator, "pricing", "&visitor_id=v1", &[]).await,
        200,
    )
    .await;
    assert!(shown["experiment"].is_null());
    assert_eq!(shown["version"], 1);
    ok_json(start(&app, &creator, "second").await, 200).await;
    let listed = ok_json(app.get("/v1/experiments", &creator.secret_key).await, 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    // Another creator sees none of it.
    let other = app.create_creator("other").await;
    assert_error(
        app.get("/v1/experiments/second", &other.secret_key).await,
        404,
        "experiment_not_found",
    )
    .await;
    assert_error(
        app.get("/v1/experiments/second/results", &other.secret_key)
            .await,
        404,
        "experiment_not_found",
    )
    .await;

    // The status survives a restart.
    let app = app.restart().await;
    let second = ok_json(
        app.get("/v1/experiments/second", &creator.secret_key).await,
        200,
    )
    .await;
    assert_eq!(second["status"], "running");
    let first = ok_json(
        app.get("/v1/experiments/headline", &creator.secret_key)
            .await,
        200,
    )
    .await;
    assert_eq!(first["status"], "stopped");
}

/// Shows the embed to each visitor (64 at a time); answers each one's variant key.
async fn show_all(app: &TestApp, creator: &TestCreator, visitors: &[String]) -> Vec<String> {
    futures::stream::iter(visitors.iter().map(|visitor| async move {
        let shown = ok_json(
            widget(
                app,
                creator,
                "pricing",
                &format!("&visitor_id={visitor}"),
                &[],
            )
            .await,
            200,
        )
        .await;
        shown["variant"].as_str().unwrap().to_string()
    }))
    .buffered(64)
    .collect()
    .await
}

async fn assignment_is_sticky_deterministic_and_weighted(backend: Backend) {
    let (_fake, app, creator, _) = connected_app(backend).await;
    three_versions(&app, &creator).await;
    let weights = [0.5, 0.3, 0.2];
    let keys = ["control", "bold", "short"];
    ok_json(
        create_experiment(
            &app,
            &creator,
            json!({"key": "split", "embed": "pricing",
            "variants": variants(&[("control", 1, 0.5), ("bold", 2, 0.3), ("short", 3, 0.2)])}),
        )
        .await,
        201,
    )
    .await;
    ok_json(start(&app, &creator, "split").await, 200).await;

    let visitors: Vec<String> = (0..10_000).map(|n| format!("visitor-{n}")).collect();
    let seen = show_all(&app, &creator, &visitors).await;
    let mut counts = [0usize; 3];
    for (visitor, variant) in visitors.iter().zip(&seen) {
        let expected = keys[predicted("split", visitor, &weights)];
        assert_eq!(
            variant, expected,
            "{visitor}: the daemon follows GrowthBook's hash"
        );
        counts[keys.iter().position(|k| k == variant).unwrap()] += 1;
    }
    for (count, weight) in counts.iter().zip(weights) {
        let share = *count as f64 / 10_000.0;
        assert!(
            (share - weight).abs() <= 0.02,
            "{counts:?} against {weights:?}"
        );
    }
    // The version shown is the variant's.
    let shown = ok_json(
        widget(&app, &creator, "pricing", "&visitor_id=visitor-0", &[]).await,
        200,
    )
    .await;
    let index = keys.iter().position(|k| *k == shown["variant"]).unwrap();
    assert_eq!(shown["version"], index + 1);
    assert_eq!(shown["experiment"], "split");
    assert_eq!(shown["config"]["texts"]["title"], format!("v{}", index + 1));

    // Seen again: the same variant, counted once.
    let again = show_all(&app, &creator, &visitors[..500]).await;
    assert_eq!(again, seen[..500]);
    let counted = results(&app, &creator, "split").await;
    let visitors_counted: Vec<u64> = counted["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["visitors"].as_u64().unwrap())
        .collect();
    assert_eq!(
        visitors_counted,
        counts.iter().map(|&c| c as u64).collect::<Vec<_>>()
    );
    assert_eq!(counted["ready"], true);
    assert_eq!(counted["srm_alert"], false);

    // After a restart: the same variants, the same counts.
    let app = app.restart().await;
    let after = show_all(&app, &creator, &visitors[..500]).await;
    assert_eq!(after, seen[..500]);
    let counted_after = results(&app, &creator, "split").await;
    assert_eq!(counted_after["variants"], counted["variants"]);
}

async fn a_visitor_who_signs_in_keeps_its_variant(backend: Backend) {
    let (_fake, app, creator, _) = connected_app(backend).await;
    three_versions(&app, &creator).await;
    ok_json(
        create_experiment(
            &app,
            &creator,
            json!({"key": "signin", "embed": "pricing", "goal": "signup",
            "variants": variants(&[("control", 1, 0.5), ("bold", 2, 0.5)])}),
        )
        .await,
        201,
    )
    .await;
    ok_json(start(&app, &creator, "signin").await, 200).await;
    // A visitor whose own id and whose customer id hash to different variants.
    let weights = [0.5, 0.5];
    let visitor = (0..1000)
        .map(|n| format!("anon-{n}"))
        .find(|id| predicted("signin", id, &weights) != predicted("signin", "dana", &weights))
        .unwrap();
    let anonymous = ok_json(
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
    let session = ok_json(
        app.post(
            "/v1/customers/dana/sessions",
            &creator.secret_key,
            json!({"scope": "embed"}),
        )
        .await,
        201,
    )
    .await;
    let token = session["token"].as_str().unwrap();
    let signed_in = ok_json(
        widget(
            &app,
            &creator,
            "pricing",
            &format!("&visitor_id={visitor}"),
            &[("x-staryer-customer-token", token)],
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        signed_in["variant"], anonymous["variant"],
        "signing in keeps the variant seen"
    );
    // On another device, signed in without that visitor id: still the same.
    let elsewhere = ok_json(
        widget(
            &app,
            &creator,
            "pricing",
            "&visitor_id=other-device",
            &[("x-staryer-customer-token", token)],
        )
        .await,
        200,
    )
    .await;
    assert_eq!(elsewhere["variant"], anonymous["variant"]);
    let counted = results(&app, &creator, "signin").await;
    let total: u64 = counted["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["visitors"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 1, "one person, one visitor");
    // A conversion reported for the customer counts for the variant the visitor saw.
    let receipt = ok_json(
        app.post(
            "/v1/experiments/signin/conversions",
            &creator.secret_key,
            json!({"customer_id": "dana"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(receipt["variant"], anonymous["variant"]);
}

async fn results_from_known_counts_equal_worked_values(backend: Backend) {
    let (_fake, app, creator, _) = connected_app(backend).await;
    three_versions(&app, &creator).await;
    ok_json(
        create_experiment(
            &app,
            &creator,
            json!({"key": "cta", "embed": "pricing", "goal": "signup",
            "variants": variants(&[("control", 1, 0.5), ("bold", 2, 0.5)])}),
        )
        .await,
        201,
    )
    .await;
    ok_json(start(&app, &creator, "cta").await, 200).await;
    // Exactly 100 visitors in each variant, picked by the hash.
    let weights = [0.5, 0.5];
    let mut picked: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    for n in 0.. {
        let id = format!("known-{n}");
        let slot = &mut picked[predicted("cta", &id, &weights)];
        if slot.len() < 100 {
            slot.push(id);
        }
        if picked.iter().all(|p| p.len() == 100) {
            break;
        }
    }
    for group in &picked {
        show_all(&app, &creator, group).await;
    }
    // 10 of the control's visitors convert (one twice), 20 of the variant's, with revenue.
    let convert = |visitor: &str, revenue: i64, id: Option<&str>| {
        let mut body = json!({"visitor_id": visitor, "revenue": revenue});
        if let Some(id) = id {
            body["conversion_id"] = json!(id);
        }
        app.post("/v1/experiments/cta/conversions", &creator.secret_key, body)
    };
    for visitor in &picked[0][..10] {
        ok_json(convert(visitor, 1000, None).await, 201).await;
    }
    ok_json(convert(&picked[0][0], 500, None).await, 201).await;
    for (n, visitor) in picked[1][..20].iter().enumerate() {
        ok_json(
            convert(visitor, 2000, Some(&format!("order-{n}"))).await,
            201,
        )
        .await;
    }
    // The same conversion id again counts nothing.
    let repeated = ok_json(convert(&picked[1][0], 2000, Some("order-0")).await, 201).await;
    assert_eq!(repeated["counted"], false);
    assert_error(
        convert("never-seen", 0, None).await,
        404,
        "visitor_not_found",
    )
    .await;
    assert_error(
        app.post(
            "/v1/experiments/cta/conversions",
            &creator.secret_key,
            json!({"visitor_id": "a", "customer_id": "b"}),
        )
        .await,
        422,
        "invalid_conversion",
    )
    .await;
    assert_error(
        convert(&picked[0][1], -5, None).await,
        422,
        "invalid_revenue",
    )
    .await;

    let check = |counted: &Value| {
        let [control, bold] = [&counted["variants"][0], &counted["variants"][1]];
        assert_eq!(
            (control["key"].clone(), bold["key"].clone()),
            (json!("control"), json!("bold"))
        );
        assert_eq!(
            (control["visitors"].clone(), bold["visitors"].clone()),
            (json!(100), json!(100))
        );
        assert_eq!(
            (control["conversions"].clone(), bold["conversions"].clone()),
            (json!(10), json!(20))
        );
        assert_eq!(control["conversion_rate"], 0.1);
        assert_eq!(bold["conversion_rate"], 0.2);
        assert_eq!(
            (control["revenue"].clone(), bold["revenue"].clone()),
            (json!(10_500), json!(40_000))
        );
        assert_eq!(control["revenue_per_visitor"], 105.0);
        assert_eq!(bold["revenue_per_visitor"], 400.0);
        assert!(control["chance_to_beat_control"].is_null() && control["p_value"].is_null());
        // P(p_bold > p_control), Beta(21, 81) against Beta(11, 91): mpmath (30 digits)
        // quad of betapdf(x; 21, 81) · betainc(11, 91, 0, x) over [0, 1] = 0.97517303315287.
        let chance = bold["chance_to_beat_control"].as_f64().unwrap();
        assert!((chance - 0.975_173_033_152_87).abs() < 1e-9, "{chance}");
        // Pooled z-test: p = 30/200, se = sqrt(0.15 · 0.85 · (1/100 + 1/100)), z = 0.1/se =
        // 1.98030; two-sided p = 2 · scipy.stats.norm.sf(1.98030) = 0.0476703806561614.
        let p = bold["p_value"].as_f64().unwrap();
        assert!((p - 0.047_670_380_656_161_4).abs() < 1e-12, "{p}");
        // 100 and 100 at 50/50: chi-square 0, p = 1 (scipy.stats.chisquare).
        assert_eq!(counted["srm_p_value"], 1.0);
        assert_eq!(counted["srm_alert"], false);
        assert_eq!(counted["ready"], true);
        assert_eq!(counted["status"], "running");
    };
    check(&results(&app, &creator, "cta").await);
    let app = app.restart().await;
    check(&results(&app, &creator, "cta").await);
}

async fn a_completed_checkout_converts_for_the_variant_seen(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    three_versions(&app, &creator).await;
    ok_json(
        create_experiment(
            &app,
            &creator,
            json!({"key": "buy", "embed": "pricing",
            "variants": variants(&[("control", 1, 0.5), ("bold", 2, 0.5)])}),
        )
        .await,
        201,
    )
    .await;
    ok_json(start(&app, &creator, "buy").await, 200).await;
    // A custom conversion is refused: this experiment counts checkouts.
    let shown = ok_json(
        widget(&app, &creator, "pricing", "&visitor_id=buyer-1", &[]).await,
        200,
    )
    .await;
    assert_error(
        app.post(
            "/v1/experiments/buy/conversions",
            &creator.secret_key,
            json!({"visitor_id": "buyer-1"}),
        )
        .await,
        409,
        "wrong_goal",
    )
    .await;
    ok_json(
        widget_post(
            &app,
            &creator,
            "/v1/embed/checkout",
            json!({"embed": "pricing", "tier": "pro", "visitor_id": "buyer-1"}),
            &[],
        )
        .await,
        200,
    )
    .await;
    let sessions = fake.posts("/v1/checkout/sessions").await;
    let sent = form(sessions.last().unwrap());
    assert_eq!(sent["metadata[staryer_experiment]"], "buy");
    assert_eq!(
        sent["metadata[staryer_variant]"],
        shown["variant"].as_str().unwrap()
    );
    assert_eq!(sent["metadata[staryer_visitor]"], "v:buyer-1");
    assert_eq!(
        sent["metadata[staryer_embed_version]"],
        shown["version"].to_string()
    );
    let metadata: serde_json::Map<String, Value> = sent
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix("metadata[")?.strip_suffix(']')?.to_string(),
                json!(v),
            ))
        })
        .collect();
    let mut session = json!({"id": "cs_buy_1", "object": "checkout.session", "mode": "subscription",
        "payment_status": "unpaid", "status": "complete", "amount_total": 2900, "currency": "usd",
        "customer": "cus_Buyer1", "subscription": "sub_Buyer1", "metadata": metadata});
    // Completed but not paid yet (an asynchronous payment method): no conversion.
    deliver(
        &app,
        "evt_buy_1",
        "checkout.session.completed",
        session.clone(),
    )
    .await;
    let unpaid = results(&app, &creator, "buy").await;
    let conversions: u64 = unpaid["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["conversions"].as_u64().unwrap())
        .sum();
    assert_eq!(conversions, 0);
    session["payment_status"] = json!("paid");
    deliver(
        &app,
        "evt_buy_2",
        "checkout.session.async_payment_succeeded",
        session.clone(),
    )
    .await;
    // The same session again (another event) converts nothing more.
    deliver(&app, "evt_buy_3", "checkout.session.completed", session).await;
    let counted = results(&app, &creator, "buy").await;
    let variant = counted["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["key"] == shown["variant"])
        .unwrap();
    assert_eq!(
        (
            variant["visitors"].clone(),
            variant["conversions"].clone(),
            variant["revenue"].clone()
        ),
        (json!(1), json!(1), json!(2900))
    );
    let app = app.restart().await;
    let after = results(&app, &creator, "buy").await;
    assert_eq!(after["variants"], counted["variants"]);
}
