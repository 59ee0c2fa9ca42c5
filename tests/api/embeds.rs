//! Embeds through HTTP: the creator's API (versions, publish, snippet, strict configs),
//! the browser's API (publishable key, allowed origins and CORS, tiers from memory that
//! follow the creator's changes, clicks, checkout with its attribution) and `/embed.js`.

use reqwest::header::{HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, ORIGIN};
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::billing::connected_app;
use crate::helpers::{assert_error, ok_json, spawn_app, Backend, TestApp, TestCreator};
use crate::on_both_databases;
use crate::stripe_fake::form;
use crate::subscriptions::deliver;

on_both_databases!(
    embeds_keep_immutable_versions_and_publish_one,
    configs_are_checked_strictly,
    the_browser_api_takes_the_publishable_key_from_allowed_origins,
    the_widget_answer_follows_the_creators_tiers,
    clicks_and_started_checkouts_are_counted_per_version,
    a_widget_checkout_carries_its_attribution,
    an_anonymous_buyer_becomes_a_customer_named_by_its_stripe_id,
    embed_js_is_served_small_gzipped_and_cacheable,
    the_publishable_key_has_the_creators_rate_limit,
);

pub(crate) const SUCCESS_URL: &str = "https://acme.example/thanks";
pub(crate) const CANCEL_URL: &str = "https://acme.example/pricing";

/// A pricing table over the billing tests' three tiers (`free`, `pro`, `team`).
pub(crate) fn pricing_config(title: &str) -> Value {
    json!({
        "tiers": ["free", "pro", "team"], "highlight": "pro",
        "texts": {"title": title, "cta": "Start now"},
        "theme": {"primary_color": "#6d28d9", "radius_px": 12},
        "locale": "en-US",
        "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL,
    })
}

/// Makes an embed; answers its view.
pub(crate) async fn create_embed(
    app: &TestApp,
    creator: &TestCreator,
    key: &str,
    kind: &str,
    config: Value,
) -> Value {
    ok_json(
        app.post(
            "/v1/embeds",
            &creator.secret_key,
            json!({"key": key, "kind": kind, "config": config}),
        )
        .await,
        201,
    )
    .await
}

/// `GET /v1/embed/{key}` as a widget sends it, with optional query and headers.
pub(crate) async fn widget(
    app: &TestApp,
    creator: &TestCreator,
    embed: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut request = app.client.get(app.url(&format!(
        "/v1/embed/{embed}?key={}{query}",
        creator.publishable_key
    )));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// A POST to the browser API with the publishable key in the query.
pub(crate) async fn widget_post(
    app: &TestApp,
    creator: &TestCreator,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> Response {
    let mut request = app
        .client
        .post(app.url(&format!("{path}?key={}", creator.publishable_key)))
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn embeds_keep_immutable_versions_and_publish_one(backend: Backend) {
    let (_fake, app, creator, _) = connected_app(backend).await;
    let created = create_embed(
        &app,
        &creator,
        "pricing",
        "pricing_table",
        pricing_config("Plans"),
    )
    .await;
    assert_eq!(created["published_version"], 1);
    assert_eq!(created["kind"], "pricing_table");
    assert_eq!(created["versions"][0]["config"]["texts"]["title"], "Plans");

    let second = ok_json(
        app.post(
            "/v1/embeds/pricing/versions",
            &creator.secret_key,
            json!({"config": pricing_config("Pick a plan")}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(second["version"], 2);
    // A new version is not shown until published.
    let shown = ok_json(widget(&app, &creator, "pricing", "", &[]).await, 200).await;
    assert_eq!(
        (
            shown["version"].clone(),
            shown["config"]["texts"]["title"].clone()
        ),
        (json!(1), json!("Plans"))
    );

    let published = ok_json(
        app.post(
            "/v1/embeds/pricing/publish",
            &creator.secret_key,
            json!({"version": 2}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(published["published_version"], 2);
    let shown = ok_json(widget(&app, &creator, "pricing", "", &[]).await, 200).await;
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["config"]["texts"]["title"], "Pick a plan");
    assert!(shown["experiment"].is_null() && shown["variant"].is_null());

    let one = ok_json(
        app.get("/v1/embeds/pricing", &creator.secret_key).await,
        200,
    )
    .await;
    let versions = one["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        versions[0]["config"]["texts"]["title"], "Plans",
        "version 1 never changes"
    );
    assert_eq!(
        (
            versions[0]["published"].clone(),
            versions[1]["published"].clone()
        ),
        (json!(false), json!(true))
    );
    let all = ok_json(app.get("/v1/embeds", &creator.secret_key).await, 200).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert!(all[0].get("versions").is_none());

    // Refusals.
    assert_error(
        app.post(
            "/v1/embeds",
            &creator.secret_key,
            json!({"key": "pricing", "kind": "pricing_table", "config": pricing_config("x")}),
        )
        .await,
        409,
        "already_exists",
    )
    .await;
    assert_error(
        app.post(
            "/v1/embeds/pricing/publish",
            &creator.secret_key,
            json!({"version": 9}),
        )
        .await,
        404,
        "version_not_found",
    )
    .await;
    for (method, path, body) in [
        (Method::GET, "/v1/embeds/nope", None),
        (Method::GET, "/v1/embeds/nope/snippet", None),
        (
            Method::POST,
            "/v1/embeds/nope/versions",
            Some(json!({"config": pricing_config("x")})),
        ),
        (
            Method::POST,
            "/v1/embeds/nope/publish",
            Some(json!({"version": 1})),
        ),
    ] {
        assert_error(
            app.send(method, path, &creator.secret_key, body.as_ref())
                .await,
            404,
            "embed_not_found",
        )
        .await;
    }
    assert_error(
        widget(&app, &creator, "nope", "", &[]).await,
        404,
        "embed_not_found",
    )
    .await;
    // Another creator's embed does not exist for it.
    let other = app.create_creator("other").await;
    assert_error(
        app.get("/v1/embeds/pricing", &other.secret_key).await,
        404,
        "embed_not_found",
    )
    .await;
    assert_error(
        widget(&app, &other, "pricing", "", &[]).await,
        404,
        "embed_not_found",
    )
    .await;

    // Versions and publication survive a restart.
    let app = app.restart().await;
    let shown = ok_json(widget(&app, &creator, "pricing", "", &[]).await, 200).await;
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["config"]["texts"]["title"], "Pick a plan");
}

async fn configs_are_checked_strictly(backend: Backend) {
    let (_fake, app, creator, _) = connected_app(backend).await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut config = pricing_config("Plans");
        change(&mut config);
        config
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "pricing_table",
            with(&|c| c["tiers"] = json!(["free", "gold"])),
            "unknown_tier",
        ),
        (
            "pricing_table",
            with(&|c| c["tiers"] = json!([])),
            "invalid_config",
        ),
        (
            "pricing_table",
            with(&|c| c["tiers"] = json!(["pro", "pro"])),
            "invalid_config",
        ),
        (
            "pricing_table",
            with(&|c| c["highlight"] = json!("team2")),
            "invalid_config",
        ),
        (
            "pricing_table",
            with(&|c| c["colour"] = json!("red")),
            "invalid_config",
        ),
        (
            "pricing_table",
            with(&|c| c["theme"]["primary_color"] = json!("red")),
            "invalid_config",
        ),
        (
            "pricing_table",
            with(&|c| c["theme"]["font_family"] = json!("x; background: url(evil)")),
            "invalid_config",
        ),
        (
            "pricing_table",
            with(&|c| c["theme"]["radius_px"] = json!(99)),
            "invalid_config",
        ),
        (
            "pricing_table",
            with(&|c| c["texts"]["title"] = json!("x".repeat(201))),
            "invalid_config",
        ),
        (
            "pricing_table",
            with(&|c| c["success_url"] = json!("javascript:alert(1)")),
            "invalid_url",
        ),
        (
            "pricing_table",
            with(&|c| c["locale"] = json!("not a locale")),
            "invalid_config",
        ),
        (
            "pricing_table",
            json!({"meters": ["api"]}),
            "invalid_config",
        ),
        (
            "usage_meter",
            json!({"meters": ["tokens"]}),
            "unknown_meter",
        ),
        ("usage_meter", pricing_config("Plans"), "invalid_config"),
        (
            "upgrade_prompt",
            json!({"upgrade_to": "gold", "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL}),
            "unknown_tier",
        ),
        (
            "upgrade_prompt",
            json!({"upgrade_to": "pro"}),
            "invalid_config",
        ),
    ];
    for (kind, config, code) in cases {
        let answer = app
            .post(
                "/v1/embeds",
                &creator.secret_key,
                json!({"key": "w", "kind": kind, "config": config}),
            )
            .await;
        let body = assert_error(answer, 422, code).await;
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_error(
        app.post(
            "/v1/embeds",
            &creator.secret_key,
            json!({"key": "w", "kind": "carousel", "config": {}}),
        )
        .await,
        422,
        "invalid_value",
    )
    .await;
    assert_error(
        app.post(
            "/v1/embeds",
            &creator.secret_key,
            json!({"key": "Not A Slug", "kind": "usage_meter", "config": {}}),
        )
        .await,
        422,
        "invalid_slug",
    )
    .await;
    // A version must be of the embed's kind.
    create_embed(
        &app,
        &creator,
        "meter",
        "usage_meter",
        json!({"meters": ["api"]}),
    )
    .await;
    assert_error(
        app.post(
            "/v1/embeds/meter/versions",
            &creator.secret_key,
            json!({"config": pricing_config("x")}),
        )
        .await,
        422,
        "invalid_config",
    )
    .await;
    // Nothing refused was kept.
    let all = ok_json(app.get("/v1/embeds", &creator.secret_key).await, 200).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
}

async fn the_browser_api_takes_the_publishable_key_from_allowed_origins(backend: Backend) {
    let (_fake, app, creator, _) = connected_app(backend).await;
    create_embed(
        &app,
        &creator,
        "pricing",
        "pricing_table",
        pricing_config("Plans"),
    )
    .await;
    let shown = ok_json(widget(&app, &creator, "pricing", "", &[]).await, 200).await;
    let tiers: Vec<&str> = shown["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(tiers, ["free", "pro", "team"], "in the config's order");
    assert_eq!(
        shown["tiers"][1]["price"],
        json!({"amount": 2900, "currency": "usd", "interval": "month"})
    );
    assert_eq!(shown["tiers"][1]["caps"]["api"]["limit"], 1000);
    assert_eq!(shown["meters"][0]["key"], "api");
    assert!(shown.get("customer").is_none());

    // The key in the header works too; a missing, secret or unknown key does not.
    let in_header = app.get("/v1/embed/pricing", &creator.publishable_key).await;
    assert_eq!(in_header.status(), 200);
    assert_error(
        app.client
            .get(app.url("/v1/embed/pricing"))
            .send()
            .await
            .unwrap(),
        401,
        "missing_key",
    )
    .await;
    assert_error(
        app.get("/v1/embed/pricing", &creator.secret_key).await,
        403,
        "wrong_key_kind",
    )
    .await;
    assert_error(
        app.client
            .get(app.url("/v1/embed/pricing?key=pk_unknown"))
            .send()
            .await
            .unwrap(),
        401,
        "invalid_key",
    )
    .await;
    // A publishable key opens no creator endpoint.
    assert_error(
        app.get("/v1/embeds", &creator.publishable_key).await,
        403,
        "wrong_key_kind",
    )
    .await;

    // Any origin while none is listed.
    let site = "https://acme.example";
    let open = widget(
        &app,
        &creator,
        "pricing",
        "",
        &[("origin", "https://elsewhere.example")],
    )
    .await;
    assert_eq!(open.status(), 200);
    assert_eq!(
        open.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
        "https://elsewhere.example"
    );

    let profile = ok_json(
        app.send(
            Method::PATCH,
            "/v1/creator",
            &creator.secret_key,
            Some(&json!({"allowed_origins": [site, "http://localhost:3000"]})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        profile["allowed_origins"],
        json!([site, "http://localhost:3000"])
    );
    let listed = widget(&app, &creator, "pricing", "", &[("origin", site)]).await;
    assert_eq!(listed.status(), 200);
    assert_eq!(
        listed.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(&HeaderValue::from_static(site))
    );
    let refused = widget(
        &app,
        &creator,
        "pricing",
        "",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert!(refused.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    assert_error(refused, 403, "origin_not_allowed").await;
    let refused = widget_post(
        &app,
        &creator,
        "/v1/embed/events",
        json!({"embed": "pricing", "visitor_id": "v1", "type": "click"}),
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_error(refused, 403, "origin_not_allowed").await;

    // Preflights answer for listed origins only.
    let preflight = |origin: &'static str| {
        app.client
            .request(
                Method::OPTIONS,
                app.url(&format!(
                    "/v1/embed/checkout?key={}",
                    creator.publishable_key
                )),
            )
            .header(ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, x-staryer-customer-token",
            )
            .send()
    };
    let allowed = preflight(site).await.unwrap();
    assert_eq!(allowed.status(), 204);
    assert_eq!(
        allowed.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
        site
    );
    let headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(headers.contains("x-staryer-customer-token") && headers.contains("content-type"));
    let denied = preflight("https://evil.example").await.unwrap();
    assert!(denied.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    assert_error(denied, 403, "origin_not_allowed").await;

    // Origins are checked; the list survives a restart.
    for bad in [
        "acme.example",
        "https://acme.example/",
        "https://acme.example/path",
        "HTTPS://ACME.EXAMPLE",
    ] {
        assert_error(
            app.send(
                Method::PATCH,
                "/v1/creator",
                &creator.secret_key,
                Some(&json!({"allowed_origins": [bad]})),
            )
            .await,
            422,
            "invalid_origin",
        )
        .await;
    }
    let app = app.restart().await;
    let profile = ok_json(app.get("/v1/creator", &creator.secret_key).await, 200).await;
    assert_eq!(
        profile["allowed_origins"],
        json!([site, "http://localhost:3000"])
    );
    let refused = widget(
        &app,
        &creator,
        "pricing",
        "",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_error(refused, 403, "origin_not_allowed").await;
}

async fn the_widget_answer_follows_the_creators_tiers(backend: Backend) {
    let (_fake, app, creator, _) = connected_app(backend).await;
    create_embed(
        &app,
        &creator,
        "pricing",
        "pricing_table",
        pricing_config("Plans"),
    )
    .await;
    let before = ok_json(widget(&app, &creator, "pricing", "", &[]).await, 200).await;
    assert_eq!(before["tiers"][1]["name"], "Pro");
    ok_json(
        app.send(
            Method::PATCH,
            "/v1/tiers/pro",
            &creator.secret_key,
            Some(&json!({"name": "Pro plus", "features": ["sso"]})),
        )
        .await,
        200,
    )
    .await;
    let after = ok_json(widget(&app, &creator, "pricing", "", &[]).await, 200).await;
    assert_eq!(after["tiers"][1]["name"], "Pro plus");
    assert_eq!(after["tiers"][1]["features"], json!(["sso"]));
}

async fn clicks_and_started_checkouts_are_counted_per_version(backend: Backend) {
    let (_fake, app, creator, _) = connected_app(backend).await;
    create_embed(
        &app,
        &creator,
        "pricing",
        "pricing_table",
        pricing_config("Plans"),
    )
    .await;
    for kind in ["click", "click", "checkout_started"] {
        let answer = widget_post(
            &app,
            &creator,
            "/v1/embed/events",
            json!({"embed": "pricing", "visitor_id": "v1", "type": kind}),
            &[],
        )
        .await;
        assert_eq!(ok_json(answer, 202).await, json!({"recorded": true}));
    }
    assert_error(
        widget_post(
            &app,
            &creator,
            "/v1/embed/events",
            json!({"embed": "nope", "visitor_id": "v1", "type": "click"}),
            &[],
        )
        .await,
        404,
        "embed_not_found",
    )
    .await;
    assert_error(
        widget_post(
            &app,
            &creator,
            "/v1/embed/events",
            json!({"embed": "pricing", "visitor_id": "v1", "type": "hover"}),
            &[],
        )
        .await,
        422,
        "invalid_value",
    )
    .await;
    // Committed at once, folded into the daily counts within the fold interval (each
    // commit is a log record; folds may take them apart).
    let mut version = Value::Null;
    for _ in 0..100 {
        let embed = ok_json(
            app.get("/v1/embeds/pricing", &creator.secret_key).await,
            200,
        )
        .await;
        version = embed["versions"][0].clone();
        if version["clicks"] == 2 && version["checkouts_started"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        (
            version["clicks"].clone(),
            version["checkouts_started"].clone()
        ),
        (json!(2), json!(1))
    );
}

async fn a_widget_checkout_carries_its_attribution(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    create_embed(
        &app,
        &creator,
        "pricing",
        "pricing_table",
        pricing_config("Plans"),
    )
    .await;
    let bought = ok_json(
        widget_post(
            &app,
            &creator,
            "/v1/embed/checkout",
            json!({"embed": "pricing", "tier": "pro", "visitor_id": "visitor-1"}),
            &[],
        )
        .await,
        200,
    )
    .await;
    assert_eq!(bought["kind"], "checkout");
    assert!(bought["url"].as_str().unwrap().starts_with("https://"));
    let sessions = fake.posts("/v1/checkout/sessions").await;
    let sent = form(sessions.last().unwrap());
    assert_eq!(sent["metadata[staryer_embed]"], "pricing");
    assert_eq!(sent["metadata[staryer_embed_version]"], "1");
    assert_eq!(sent["metadata[staryer_tier]"], "pro");
    assert_eq!(sent["metadata[staryer_anonymous_buyer]"], "true");
    assert_eq!(sent["success_url"], SUCCESS_URL);
    assert!(
        !sent.contains_key("customer"),
        "an anonymous buyer has no Stripe customer yet"
    );

    // With a customer token it buys for that customer.
    let session = ok_json(
        app.post(
            "/v1/customers/alice/sessions",
            &creator.secret_key,
            json!({"scope": "embed"}),
        )
        .await,
        201,
    )
    .await;
    let token = session["token"].as_str().unwrap();
    ok_json(
        widget_post(
            &app,
            &creator,
            "/v1/embed/checkout",
            json!({"embed": "pricing", "tier": "team", "visitor_id": "visitor-1"}),
            &[("x-staryer-customer-token", token)],
        )
        .await,
        200,
    )
    .await;
    let sessions = fake.posts("/v1/checkout/sessions").await;
    let sent = form(sessions.last().unwrap());
    assert_eq!(sent["metadata[staryer_customer_id]"], "alice");
    assert_eq!(sent["client_reference_id"], "alice");
    assert!(sent["customer"].starts_with("cus_"));

    // Only what the widget offers, and only what has a price.
    ok_json(
        app.post(
            "/v1/tiers",
            &creator.secret_key,
            json!({"key": "enterprise", "name": "Enterprise",
            "price": {"amount": 50000, "currency": "usd", "interval": "month"}}),
        )
        .await,
        201,
    )
    .await;
    assert_error(
        widget_post(
            &app,
            &creator,
            "/v1/embed/checkout",
            json!({"embed": "pricing", "tier": "enterprise", "visitor_id": "v"}),
            &[],
        )
        .await,
        422,
        "tier_not_offered",
    )
    .await;
    assert_error(
        widget_post(
            &app,
            &creator,
            "/v1/embed/checkout",
            json!({"embed": "pricing", "tier": "free", "visitor_id": "v"}),
            &[],
        )
        .await,
        422,
        "tier_not_priced",
    )
    .await;
    assert_error(
        widget_post(
            &app,
            &creator,
            "/v1/embed/checkout",
            json!({"embed": "pricing", "tier": "pro", "visitor_id": "v"}),
            &[("x-staryer-customer-token", "not.a.token")],
        )
        .await,
        401,
        "invalid_customer_token",
    )
    .await;

    // Without billing there is nothing to buy.
    let plain = spawn_app(Backend::Sqlite).await;
    let creator = plain.create_creator("plain").await;
    plain.create_meter(&creator, "api", "sum", "month").await;
    plain
        .create_tier(&creator, "pro", json!({"api": {"limit": 10}}), false)
        .await;
    create_embed(
        &plain,
        &creator,
        "pricing",
        "pricing_table",
        json!({"tiers": ["pro"], "success_url": SUCCESS_URL, "cancel_url": CANCEL_URL}),
    )
    .await;
    assert_error(
        widget_post(
            &plain,
            &creator,
            "/v1/embed/checkout",
            json!({"embed": "pricing", "tier": "pro", "visitor_id": "v"}),
            &[],
        )
        .await,
        409,
        "billing_off",
    )
    .await;
}

async fn an_anonymous_buyer_becomes_a_customer_named_by_its_stripe_id(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    create_embed(
        &app,
        &creator,
        "pricing",
        "pricing_table",
        pricing_config("Plans"),
    )
    .await;
    ok_json(
        widget_post(
            &app,
            &creator,
            "/v1/embed/checkout",
            json!({"embed": "pricing", "tier": "pro", "visitor_id": "visitor-9"}),
            &[],
        )
        .await,
        200,
    )
    .await;
    let sessions = fake.posts("/v1/checkout/sessions").await;
    let sent = form(sessions.last().unwrap());
    let metadata: serde_json::Map<String, Value> = sent
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix("metadata[")?.strip_suffix(']')?.to_string(),
                json!(v),
            ))
        })
        .collect();
    // Stripe made the buyer a customer and a subscription; the completion says so.
    let receipt = deliver(
        &app,
        "evt_anon_1",
        "checkout.session.completed",
        json!({"id": "cs_anon_1", "object": "checkout.session", "mode": "subscription",
            "payment_status": "paid", "status": "complete", "amount_total": 2900,
            "currency": "usd", "customer": "cus_Anon1", "subscription": "sub_Anon1",
            "customer_details": {"email": "buyer@example.com"}, "metadata": metadata}),
    )
    .await;
    assert_eq!(receipt["handled"], true);
    let usage = ok_json(
        app.get("/v1/customers/cus_Anon1/usage", &creator.secret_key)
            .await,
        200,
    )
    .await;
    assert_eq!(usage["tier"], "pro");
}

async fn embed_js_is_served_small_gzipped_and_cacheable(backend: Backend) {
    let app = spawn_app(backend).await;
    // reqwest here sends no Accept-Encoding of its own: the plain script.
    let plain = app.client.get(app.url("/embed.js")).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(plain.headers()["cache-control"], "public, max-age=300");
    let etag = plain.headers()["etag"].to_str().unwrap().to_string();
    let source = plain.text().await.unwrap();
    assert_eq!(source, include_str!("../../assets/embed/embed.js"));

    let gzipped = app
        .client
        .get(app.url("/embed.js"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    let compressed = gzipped.bytes().await.unwrap();
    let mut unzipped = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, source);

    let again = app
        .client
        .get(app.url("/embed.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let version = etag.trim_matches('"');
    let versioned = app
        .client
        .get(app.url(&format!("/embed.js?v={version}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        versioned.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );

    // The snippet links that version, with the key when given.
    let creator = app.create_creator("acme").await;
    app.create_meter(&creator, "api", "sum", "month").await;
    create_embed(&app, &creator, "usage", "usage_meter", json!({})).await;
    let snippet = ok_json(
        app.get("/v1/embeds/usage/snippet", &creator.secret_key)
            .await,
        200,
    )
    .await;
    let html = snippet["html"].as_str().unwrap();
    assert!(html.contains("data-staryer-embed=\"usage\""));
    assert!(
        html.contains(&format!("{}/embed.js?v={version}", app.address)),
        "{html}"
    );
    let snippet = ok_json(
        app.get(
            &format!(
                "/v1/embeds/usage/snippet?publishable_key={}",
                creator.publishable_key
            ),
            &creator.secret_key,
        )
        .await,
        200,
    )
    .await;
    assert!(snippet["html"]
        .as_str()
        .unwrap()
        .contains(&creator.publishable_key));
    let other = app.create_creator("other").await;
    assert_error(
        app.get(
            &format!(
                "/v1/embeds/usage/snippet?publishable_key={}",
                other.publishable_key
            ),
            &creator.secret_key,
        )
        .await,
        422,
        "invalid_publishable_key",
    )
    .await;
}

async fn the_publishable_key_has_the_creators_rate_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = ok_json(
        app.post(
            "/v1/admin/creators",
            crate::helpers::ADMIN_TOKEN,
            json!({"slug": "limited", "rate_limit": {"per_second": 1, "burst": 2}}),
        )
        .await,
        201,
    )
    .await;
    let creator = TestCreator {
        secret_key: body["secret_key"].as_str().unwrap().into(),
        publishable_key: body["publishable_key"].as_str().unwrap().into(),
    };
    for _ in 0..2 {
        // Within the burst: the embed is unknown.
        assert_error(
            widget(&app, &creator, "none", "", &[]).await,
            404,
            "embed_not_found",
        )
        .await;
    }
    let limited = widget(&app, &creator, "none", "", &[]).await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_error(limited, 429, "rate_limited").await;
}
