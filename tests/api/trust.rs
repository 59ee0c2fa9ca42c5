//! Trust: named keys (made, listed, revoked at once, rolled with an overlap, minted by the
//! admin), the admin token rotated through configuration, and the audit log (a record for
//! each change, the chain verified by `staryer audit verify`, and a record altered behind
//! the daemon's back found).

use serde_json::{json, Value};

use crate::helpers::{
    assert_error, eventually, ok_json, run_binary, spawn_app_with, Backend, TestApp, ADMIN_TOKEN,
};
use crate::on_both_databases;

on_both_databases!(
    named_secret_keys_are_made_listed_and_revoked_at_once,
    a_rolled_publishable_key_answers_through_its_overlap_then_not,
    the_admin_mints_a_key_and_the_admin_token_rotates_through_config,
    every_change_is_audited_and_an_altered_record_breaks_the_chain,
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
