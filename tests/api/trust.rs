//! Trust: named keys (made, listed, revoked at once, rolled with an overlap, minted by the
//! admin), the admin token rotated through configuration, and the audit log (a record for
//! each change, the chain verified by `staryer audit verify`, and a record altered behind
//! the daemon's back found).

use serde_json::{json, Value};

use crate::helpers::{
    assert_error, eventually, ok_json, rows_naming, run_binary, spawn_app_with, Backend, TestApp,
    ADMIN_TOKEN,
};
use crate::on_both_databases;

on_both_databases!(
    named_secret_keys_are_made_listed_and_revoked_at_once,
    a_rolled_publishable_key_answers_through_its_overlap_then_not,
    the_admin_mints_a_key_and_the_admin_token_rotates_through_config,
    every_change_is_audited_and_an_altered_record_breaks_the_chain,
    secrets_are_sealed_at_rest_and_a_new_master_key_seals_them_again,
    a_custom_domain_names_its_creator_for_embeds_only,
    every_surface_writes_its_audit_record,
);

fn quick_maintenance(config: &mut staryer::config::Config) {
    config.ingest.maintenance_interval_secs = 1;
}

async fn revoke(app: &TestApp, key: &str, id: &str) -> reqwest::Response {
    let path = format!("/v1/keys/{id}");
    app.send(reqwest::Method::DELETE, &path, key, None).await
}

async fn keys(app: &TestApp, key: &str) -> Vec<Value> {
    let list = ok_json(app.get("/v1/keys", key).await, 200).await;
    list["keys"].as_array().unwrap().clone()
}

fn id_of(keys: &[Value], name: &str) -> String {
    let key = keys
        .iter()
        .find(|k| k["name"] == name)
        .expect("a key of that name");
    key["id"].as_str().unwrap().to_string()
}

async fn named_secret_keys_are_made_listed_and_revoked_at_once(backend: Backend) {
    let app = spawn_app_with(backend, quick_maintenance).await;
    let creator = app.creator_with_cap("acme", 1_000, "block").await;
    let made = ok_json(
        app.post("/v1/keys", &creator.secret_key, json!({"name": "ci"}))
            .await,
        201,
    )
    .await;
    let ci_key = made["key"].as_str().unwrap().to_string();
    assert!(ci_key.starts_with("sk_"));
    assert_eq!(made["name"], "ci");
    let ci_id = made["id"].as_str().unwrap().to_string();
    // The new key works, and its use is written down.
    let event = json!({"customer_id": "c1", "meter": "calls"});
    ok_json(app.post("/v1/events", &ci_key, &event).await, 200).await;
    let listed = eventually("the key's use is written", || async {
        let listed = keys(&app, &creator.secret_key).await;
        let ci = listed.iter().find(|k| k["id"] == ci_id.as_str())?.clone();
        ci["last_used_at"].is_string().then_some(listed)
    })
    .await;
    let mut names: Vec<&str> = listed.iter().map(|k| k["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["ci", "default", "publishable"]);
    assert!(
        listed.iter().all(|k| k.get("key").is_none()),
        "no secret is listed"
    );
    // Revoked: refused from the next request on, and after a restart.
    let revoked = ok_json(revoke(&app, &creator.secret_key, &ci_id).await, 200).await;
    assert!(revoked["revoked_at"].is_string());
    assert_error(
        app.post("/v1/events", &ci_key, &event).await,
        401,
        "invalid_key",
    )
    .await;
    assert_error(
        revoke(&app, &creator.secret_key, &ci_id).await,
        404,
        "key_not_found",
    )
    .await;
    // The last secret key stays: a creator cannot lock itself out.
    let default_id = id_of(&listed, "default");
    assert_error(
        revoke(&app, &creator.secret_key, &default_id).await,
        409,
        "last_secret_key",
    )
    .await;
    let app = app.restart().await;
    assert_error(
        app.post("/v1/events", &ci_key, &event).await,
        401,
        "invalid_key",
    )
    .await;
    ok_json(
        app.post("/v1/events", &creator.secret_key, &event).await,
        200,
    )
    .await;
}

async fn a_rolled_publishable_key_answers_through_its_overlap_then_not(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let creator = app.creator_with_cap("acme", 1_000, "block").await;
    let rolled = ok_json(
        app.post(
            "/v1/keys/publishable/roll",
            &creator.secret_key,
            json!({"overlap_seconds": 600}),
        )
        .await,
        201,
    )
    .await;
    let new_key = rolled["key"].as_str().unwrap().to_string();
    assert!(new_key.starts_with("pk_"));
    // A widget that does not exist: 404 once the key is accepted, 401 when it is not.
    let pricing = |key: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url(&format!("/v1/embed/tiers?key={key}")))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(pricing(creator.publishable_key.clone()).await.status(), 404);
    assert_eq!(pricing(new_key.clone()).await.status(), 404);
    let listed = keys(&app, &creator.secret_key).await;
    let old = listed
        .iter()
        .find(|k| k["kind"] == "publishable" && k["id"] != rolled["id"])
        .unwrap();
    assert!(old["expires_at"].is_string());
    app.clock.advance(601);
    assert_error(
        pricing(creator.publishable_key.clone()).await,
        401,
        "invalid_key",
    )
    .await;
    assert_eq!(pricing(new_key.clone()).await.status(), 404);
    // Past its overlap, the old key does not come back with a restart.
    let app = app.restart().await;
    let old_status = app
        .client
        .get(app.url(&format!("/v1/embed/tiers?key={}", creator.publishable_key)))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(old_status, 401);
}

async fn the_admin_mints_a_key_and_the_admin_token_rotates_through_config(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let creator = app.creator_with_cap("acme", 1_000, "block").await;
    // A creator that lost its key gets a new one from the platform owner.
    let minted = ok_json(
        app.post(
            "/v1/admin/creators/acme/keys",
            ADMIN_TOKEN,
            json!({"name": "recovered"}),
        )
        .await,
        201,
    )
    .await;
    let recovered = minted["key"].as_str().unwrap().to_string();
    let event = json!({"customer_id": "c1", "meter": "calls"});
    ok_json(app.post("/v1/events", &recovered, &event).await, 200).await;
    assert_error(
        app.post(
            "/v1/admin/creators/nobody/keys",
            ADMIN_TOKEN,
            json!({"name": "x"}),
        )
        .await,
        404,
        "creator_not_found",
    )
    .await;
    // A new admin token in the configuration: the old one is refused, nothing is lost.
    let app = app
        .restart_with(|config| config.admin.token = "adm_rotated_token".into())
        .await;
    assert_error(
        app.get("/v1/admin/creators", ADMIN_TOKEN).await,
        401,
        "invalid_key",
    )
    .await;
    let creators = ok_json(
        app.get("/v1/admin/creators", "adm_rotated_token").await,
        200,
    )
    .await;
    assert_eq!(creators[0]["slug"], "acme");
    assert_eq!(app.used(&creator, "c1", "calls").await, 1);
}

async fn audit(app: &TestApp, key: &str, query: &str) -> Vec<Value> {
    let page = ok_json(app.get(&format!("/v1/audit_logs{query}"), key).await, 200).await;
    page["records"].as_array().unwrap().clone()
}

fn verify(app: &TestApp) -> (i32, String, String) {
    let data_dir = app.config.data_dir.to_string_lossy().into_owned();
    run_binary(
        &["audit", "verify"],
        &[
            ("STARYER__DATABASE__URL", app.database_url.as_str()),
            ("STARYER__DATA_DIR", data_dir.as_str()),
        ],
    )
}

async fn every_change_is_audited_and_an_altered_record_breaks_the_chain(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let creator = app.creator_with_cap("acme", 1_000, "block").await;
    let key = &creator.secret_key;
    app.create_tier(&creator, "pro", json!({"calls": {"limit": 5000}}), false)
        .await;
    let patch = json!({"name": "Professional"});
    ok_json(
        app.send(reqwest::Method::PATCH, "/v1/tiers/pro", key, Some(&patch))
            .await,
        200,
    )
    .await;
    let put = app
        .client
        .put(app.url("/v1/customers/alice"))
        .bearer_auth(key)
        .header("X-Request-Id", "req-from-client-1")
        .json(&json!({"tier": "pro", "email": "alice@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.headers()["x-request-id"], "req-from-client-1");
    ok_json(put, 200).await;
    ok_json(app.post("/v1/keys", key, json!({"name": "ci"})).await, 201).await;

    let records = audit(&app, key, "").await;
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "key.create",
            "customer.put",
            "tier.update",
            "tier.create",
            "tier.create",
            "meter.create",
            "key.create",
            "key.create",
        ]
    );
    let own_key = id_of(&keys(&app, key).await, "default");
    let update = &records[2];
    assert_eq!(update["actor"], format!("key:{own_key}"));
    assert_eq!(update["before"]["name"], "pro");
    assert_eq!(update["after"]["name"], "Professional");
    assert_eq!(update["client_addr"], "127.0.0.1");
    // A customer is named by a hash, and its email is not in the log.
    let customer = &records[1];
    assert_eq!(customer["request_id"], "req-from-client-1");
    let reference = customer["object_id"].as_str().unwrap();
    assert!(reference.starts_with("cus_") && !reference.contains("alice"));
    assert!(!customer.to_string().contains("alice@example.com"));
    let by_id = audit(&app, key, "?object_type=customer&object_id=alice").await;
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[0]["object_id"], reference);
    // Filters and cursor pages.
    let tiers = audit(&app, key, "?object_type=tier&limit=2").await;
    assert_eq!(tiers.len(), 2);
    let page = ok_json(app.get("/v1/audit_logs?limit=3", key).await, 200).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = audit(&app, key, &format!("?limit=3&cursor={cursor}")).await;
    assert_eq!(next[0]["action"], "tier.create");
    assert!(audit(&app, key, "?actor=admin").await.len() >= 2);
    // The platform's own log holds the creator's creation, not the creator's changes.
    let platform = ok_json(app.get("/v1/admin/audit_logs", ADMIN_TOKEN).await, 200).await;
    let platform: Vec<&str> = platform["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(platform, ["creator.create"]);
    // Another creator sees none of it.
    let other = app.create_creator("other").await;
    let theirs = audit(&app, &other.secret_key, "").await;
    assert!(theirs.iter().all(|r| r["action"] == "key.create"));

    let (code, stdout, stderr) = verify(&app);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("intact"), "{stdout}");
    // The database refuses changes to the log...
    let altered = "UPDATE audit_log SET actor = 'admin' WHERE action = 'tier.update'";
    assert!(app.sql(altered).await.is_err(), "the log is append-only");
    assert!(app.sql("DELETE FROM audit_log").await.is_err());
    // ...and a change made past its guard is found.
    let unguarded = if app.database_url.starts_with("sqlite:") {
        "DROP TRIGGER audit_log_no_update"
    } else {
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"
    };
    app.sql(unguarded).await.unwrap();
    app.sql(altered).await.unwrap();
    let seq = update["seq"].as_i64().unwrap();
    let (code, _, stderr) = verify(&app);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!("broken at record {seq}")),
        "{stderr}"
    );
}

async fn secrets_are_sealed_at_rest_and_a_new_master_key_seals_them_again(backend: Backend) {
    use base64::Engine;
    let key = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    let target = wiremock::MockServer::start().await;
    let app = spawn_app_with(backend, |config| {
        config.security.master_key = key(1);
        config.webhooks.allow_private_targets = true;
    })
    .await;
    let creator = app.creator_with_cap("acme", 1_000, "block").await;
    let endpoint = json!({"url": format!("{}/hook", target.uri()), "events": ["usage.warning"]});
    let made = ok_json(
        app.post("/v1/webhook_endpoints", &creator.secret_key, &endpoint)
            .await,
        201,
    )
    .await;
    let signing_secret = made["secret"].as_str().unwrap().to_string();
    assert!(signing_secret.starts_with("whsec_"));
    let posthog = json!({"api_key": "phc_sealed_secret_value", "host": target.uri()});
    let path = "/v1/integrations/posthog";
    let put = app.send(
        reqwest::Method::PUT,
        path,
        &creator.secret_key,
        Some(&posthog),
    );
    ok_json(put.await, 200).await;
    // In no table in clear: not the settings, not the audit log.
    for secret in [signing_secret.as_str(), "phc_sealed_secret_value"] {
        assert_eq!(
            rows_naming(&app.database_url, secret).await,
            Vec::<String>::new()
        );
    }
    // The webhook secret, the PostHog key and the session signing key, sealed.
    let sealed_before = rows_naming(&app.database_url, "v2.").await;
    assert_eq!(sealed_before.len(), 3, "{sealed_before:?}");

    // A new master key, the old one listed as previous: every secret is sealed again.
    let app = app
        .restart_with(|config| {
            config.security.master_key = key(2);
            config.security.previous_master_keys = key(1);
        })
        .await;
    let sealed_after = rows_naming(&app.database_url, "v2.").await;
    assert_eq!(sealed_after.len(), 3);
    assert!(sealed_after.iter().all(|row| !sealed_before.contains(row)));
    // So the old key can go: the creator's PostHog key still opens.
    let app = app
        .restart_with(|config| config.security.previous_master_keys = String::new())
        .await;
    let status = ok_json(app.get(path, &creator.secret_key).await, 200).await;
    assert_eq!(status["destination"], "creator");
}

async fn a_custom_domain_names_its_creator_for_embeds_only(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let body = json!({"slug": "acme", "custom_domain": "Widgets.Acme.example"});
    let made = ok_json(
        app.post("/v1/admin/creators", ADMIN_TOKEN, &body).await,
        201,
    )
    .await;
    let taken = json!({"slug": "other", "custom_domain": "widgets.acme.example"});
    assert_error(
        app.post("/v1/admin/creators", ADMIN_TOKEN, &taken).await,
        409,
        "domain_taken",
    )
    .await;
    let acme = crate::helpers::TestCreator {
        secret_key: made["secret_key"].as_str().unwrap().into(),
        publishable_key: made["publishable_key"].as_str().unwrap().into(),
    };
    let beta = app.create_creator("beta").await;
    app.create_meter(&acme, "calls", "sum", "month").await;
    let texts = json!({"texts": {"title": "Your usage"}});
    crate::embeds::create_embed(&app, &acme, "usage", "usage_meter", texts).await;
    let session = json!({"scope": "embed"});
    let made = app.post("/v1/customers/c1/sessions", &acme.secret_key, &session);
    let token = ok_json(made.await, 201).await["token"]
        .as_str()
        .unwrap()
        .to_string();

    let widget = |app: &TestApp, host: Option<&str>, key: Option<&str>| {
        let mut request = app
            .client
            .get(app.url("/v1/embed/usage"))
            .header("x-staryer-customer-token", &token);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    let shown = ok_json(
        widget(&app, Some("WIDGETS.acme.example:443"), None)
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(shown["customer"]["customer_id"], "c1");
    assert_error(widget(&app, None, None).await.unwrap(), 401, "missing_key").await;
    assert_error(
        widget(&app, Some("unknown.example"), None).await.unwrap(),
        401,
        "missing_key",
    )
    .await;
    // A key sent to a creator's domain must be that creator's.
    let foreign = widget(
        &app,
        Some("widgets.acme.example"),
        Some(&beta.publishable_key),
    );
    assert_error(foreign.await.unwrap(), 401, "invalid_key").await;
    // A key in the query and another in the header: which one counts is no question.
    let two_keys = app
        .client
        .get(app.url(&format!("/v1/embed/usage?key={}", acme.publishable_key)))
        .bearer_auth(&beta.publishable_key)
        .send()
        .await
        .unwrap();
    assert_error(two_keys, 401, "invalid_key").await;
    // The API still needs keys.
    let api = app
        .client
        .get(app.url("/v1/meters"))
        .header("host", "widgets.acme.example")
        .send()
        .await
        .unwrap();
    assert_error(api, 401, "missing_key").await;

    let app = app.restart().await;
    let shown = ok_json(
        widget(&app, Some("widgets.acme.example"), None)
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(shown["customer"]["customer_id"], "c1");
}

/// One change on each surface that needs no outside service, then the creator's log: a
/// record per change, by the key that made it, about the right object, and none holding a
/// secret, a token or a customer's id.
async fn every_surface_writes_its_audit_record(backend: Backend) {
    let hook = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let app = spawn_app_with(backend, crate::helpers::quick_outbox).await;
    let creator = app.creator_with_cap("acme", 1_000, "block").await;
    let key = creator.secret_key.as_str();
    let creator_id = ok_json(app.get("/v1/creator", key).await, 200).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.create_tier(&creator, "pro", json!({"calls": {"limit": 5000}}), false)
        .await;

    // Embeds: made, a second version, published; the profile's allowed origins.
    let texts = |title: &str| json!({"texts": {"title": title}});
    crate::embeds::create_embed(&app, &creator, "usage", "usage_meter", texts("v1")).await;
    let version = json!({"config": texts("v2")});
    ok_json(
        app.post("/v1/embeds/usage/versions", key, &version).await,
        201,
    )
    .await;
    let publish = json!({"version": 2});
    ok_json(
        app.post("/v1/embeds/usage/publish", key, &publish).await,
        200,
    )
    .await;
    let origins = json!({"allowed_origins": ["https://acme.example"]});
    let patched = app.send(reqwest::Method::PATCH, "/v1/creator", key, Some(&origins));
    ok_json(patched.await, 200).await;
    // An experiment made, started, stopped.
    let experiment = json!({"key": "headline", "embed": "usage", "variants": [
        {"key": "control", "version": 1, "weight": 0.5},
        {"key": "bold", "version": 2, "weight": 0.5}]});
    ok_json(app.post("/v1/experiments", key, &experiment).await, 201).await;
    for step in ["start", "stop"] {
        let path = format!("/v1/experiments/headline/{step}");
        ok_json(app.post(&path, key, json!({})).await, 200).await;
    }
    // Notice settings.
    let notices = json!({"notice_email": "ops@acme.test"});
    let put = app.send(reqwest::Method::PUT, "/v1/notices", key, Some(&notices));
    ok_json(put.await, 200).await;
    // A webhook endpoint made; one of its deliveries retried by hand; changed, deleted.
    let endpoint = json!({"url": format!("{}/hook", hook.uri()),
        "events": ["customer.tier_changed"]});
    let made = ok_json(app.post("/v1/webhook_endpoints", key, &endpoint).await, 201).await;
    let signing_secret = made["secret"].as_str().unwrap().to_string();
    assert!(signing_secret.starts_with("whsec_"));
    let endpoint_id = made["id"].as_str().unwrap().to_string();
    app.assign(&creator, "hooked", "basic").await;
    app.assign(&creator, "hooked", "pro").await;
    let message_id = eventually("a delivery", || async {
        let messages = app.outbox(&creator, "?integration=webhook").await;
        let delivered = messages.iter().find(|m| m["status"] == "delivered")?;
        Some(delivered["id"].as_str().unwrap().to_string())
    })
    .await;
    let retry = format!("/v1/outbox/{message_id}/retry");
    ok_json(app.post(&retry, key, json!({})).await, 200).await;
    let endpoint_path = format!("/v1/webhook_endpoints/{endpoint_id}");
    let patch = json!({"description": "billing system"});
    let changed = app.send(reqwest::Method::PATCH, &endpoint_path, key, Some(&patch));
    ok_json(changed.await, 200).await;
    let deleted = app
        .send(reqwest::Method::DELETE, &endpoint_path, key, None)
        .await;
    assert_eq!(deleted.status(), 204);
    // The creator's own PostHog project, set and removed.
    let posthog_key = "phc_audited_never_shown";
    let posthog = json!({"api_key": posthog_key, "host": hook.uri()});
    let path = "/v1/integrations/posthog";
    ok_json(
        app.send(reqwest::Method::PUT, path, key, Some(&posthog))
            .await,
        200,
    )
    .await;
    ok_json(
        app.send(reqwest::Method::DELETE, path, key, None).await,
        200,
    )
    .await;
    // A customer session made and revoked; the platform's signing key rotated.
    let customer_id = "dana-in-session";
    let session_path = format!("/v1/customers/{customer_id}/sessions");
    let session = ok_json(
        app.post(&session_path, key, json!({"scope": "embed"}))
            .await,
        201,
    )
    .await;
    let token = session["token"].as_str().unwrap().to_string();
    let session_id = session["id"].as_str().unwrap().to_string();
    let revoke_path = format!("/v1/sessions/{session_id}");
    let revoked = app
        .send(reqwest::Method::DELETE, &revoke_path, key, None)
        .await;
    ok_json(revoked, 200).await;
    let rotated = ok_json(
        app.post("/v1/admin/session-keys/rotate", ADMIN_TOKEN, json!({}))
            .await,
        200,
    )
    .await;

    let records = audit(&app, key, "?limit=100").await;
    let record = |action: &str| -> Value {
        let found: Vec<&Value> = records.iter().filter(|r| r["action"] == action).collect();
        assert_eq!(found.len(), 1, "one {action} in {records:#?}");
        found[0].clone()
    };
    let own_key = format!("key:{}", id_of(&keys(&app, key).await, "default"));
    for (action, object_id) in [
        ("embed.create", "usage"),
        ("embed.create_version", "usage"),
        ("embed.publish", "usage"),
        ("profile.update", creator_id.as_str()),
        ("experiment.create", "headline"),
        ("experiment.start", "headline"),
        ("experiment.stop", "headline"),
        ("notice_settings.update", creator_id.as_str()),
        ("webhook_endpoint.create", endpoint_id.as_str()),
        ("webhook_endpoint.update", endpoint_id.as_str()),
        ("webhook_endpoint.delete", endpoint_id.as_str()),
        ("outbox_message.retry", message_id.as_str()),
        ("posthog_settings.put", creator_id.as_str()),
        ("posthog_settings.delete", creator_id.as_str()),
        ("session.create", session_id.as_str()),
        ("session.revoke", session_id.as_str()),
    ] {
        let found = record(action);
        let object_type = action.split('.').next().unwrap();
        assert_eq!(found["object_type"], object_type, "{found}");
        assert_eq!(found["object_id"], object_id, "{found}");
        assert_eq!(found["actor"], own_key.as_str(), "{found}");
        // Each new type is one the log can be filtered by.
        let query = format!("?object_type={object_type}&object_id={object_id}");
        assert!(audit(&app, key, &query)
            .await
            .iter()
            .any(|r| r["action"] == action));
    }
    // What the records hold.
    let published = record("embed.publish");
    assert_eq!(published["before"]["published_version"], 1);
    assert_eq!(published["after"]["published_version"], 2);
    assert_eq!(record("embed.create_version")["after"]["version"], 2);
    let profile = record("profile.update");
    assert_eq!(profile["before"]["allowed_origins"], json!([]));
    assert_eq!(
        profile["after"]["allowed_origins"],
        json!(["https://acme.example"])
    );
    let started = record("experiment.start");
    assert_eq!(started["before"]["status"], "draft");
    assert_eq!(started["after"]["status"], "running");
    assert_eq!(record("experiment.stop")["after"]["status"], "stopped");
    assert_eq!(
        record("notice_settings.update")["after"]["notice_email"],
        "ops@acme.test"
    );
    let changed = record("webhook_endpoint.update");
    assert_eq!(changed["before"]["description"], "");
    assert_eq!(changed["after"]["description"], "billing system");
    assert!(record("webhook_endpoint.delete")["after"].is_null());
    let retried = record("outbox_message.retry");
    assert_eq!(retried["before"]["status"], "delivered");
    assert_eq!(retried["after"]["status"], "pending");
    let posthog_put = record("posthog_settings.put");
    assert_eq!(posthog_put["after"]["api_key_set"], true);
    assert!(posthog_put["after"]["host"]
        .as_str()
        .unwrap()
        .starts_with(&hook.uri()));
    assert!(record("posthog_settings.delete")["after"].is_null());
    let session_made = record("session.create");
    let reference = session_made["after"]["customer"].as_str().unwrap();
    assert!(reference.starts_with("cus_"), "{session_made}");
    assert_eq!(session_made["after"]["scope"], "embed");
    assert!(record("session.revoke")["after"]["revoked_at"].is_string());
    // No secret, token or customer id in any record.
    let log = serde_json::to_string(&records).unwrap();
    for secret in [
        signing_secret.as_str(),
        posthog_key,
        token.as_str(),
        customer_id,
        "hooked",
    ] {
        assert!(!log.contains(secret), "`{secret}` is in the log: {log}");
    }
    // The rotation is the platform's change, named by the key's id.
    let platform = ok_json(app.get("/v1/admin/audit_logs", ADMIN_TOKEN).await, 200).await;
    let rotation = platform["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "session_key.rotate")
        .expect("the rotation's record")
        .clone();
    assert_eq!(rotation["object_type"], "session_key");
    assert_eq!(rotation["object_id"], rotated["kid"]);
    assert_eq!(rotation["actor"], "admin");
    assert!(!records.iter().any(|r| r["object_type"] == "session_key"));
    // Every record is in the chain.
    let (code, stdout, stderr) = verify(&app);
    assert_eq!(code, 0, "{stdout}{stderr}");
}
