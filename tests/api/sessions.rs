//! Customer sessions: a signed token shows one customer of one creator in a widget, and
//! nothing else: not after it expires or is revoked, not for another creator, scope or
//! customer, not with a forged signature or algorithm; its key survives a restart and
//! rotates without breaking tokens already handed out; its secret is stored sealed.

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::Connection;
use staryer::clock::Clock;

use crate::embeds::{create_embed, widget};
use crate::helpers::{
    assert_error, ok_json, rows_naming, spawn_app, Backend, TestApp, TestCreator, ADMIN_TOKEN,
};
use crate::on_both_databases;

on_both_databases!(
    a_token_shows_its_customer_until_it_expires_or_is_revoked,
    a_token_works_only_for_its_creator_scope_and_signature,
    session_keys_survive_a_restart_and_rotate,
    session_keys_are_sealed_at_rest,
);

const TOKEN_HEADER: &str = "x-staryer-customer-token";

/// A creator with meter `api`, tier `pro` capping it at 100 (the default), and a usage
/// meter embed `usage`.
async fn usage_creator(app: &TestApp, slug: &str) -> TestCreator {
    let creator = app.create_creator(slug).await;
    app.create_meter(&creator, "api", "sum", "month").await;
    app.create_tier(&creator, "pro", json!({"api": {"limit": 100}}), true)
        .await;
    create_embed(
        app,
        &creator,
        "usage",
        "usage_meter",
        json!({"texts": {"title": "Your usage"}}),
    )
    .await;
    creator
}

async fn session(app: &TestApp, creator: &TestCreator, customer: &str, body: Value) -> Value {
    ok_json(
        app.post(
            &format!("/v1/customers/{customer}/sessions"),
            &creator.secret_key,
            body,
        )
        .await,
        201,
    )
    .await
}

async fn shown_with(app: &TestApp, creator: &TestCreator, token: &str) -> reqwest::Response {
    widget(app, creator, "usage", "", &[(TOKEN_HEADER, token)]).await
}

async fn a_token_shows_its_customer_until_it_expires_or_is_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = usage_creator(&app, "acme").await;
    app.event(
        &creator,
        json!({"customer_id": "alice", "meter": "api", "value": 7}),
    )
    .await;
    app.event(
        &creator,
        json!({"customer_id": "bob", "meter": "api", "value": 50}),
    )
    .await;

    assert_error(
        widget(&app, &creator, "usage", "", &[]).await,
        401,
        "customer_token_required",
    )
    .await;
    let made = session(
        &app,
        &creator,
        "alice",
        json!({"scope": "embed", "ttl_seconds": 600}),
    )
    .await;
    assert!(made["id"].as_str().unwrap().starts_with("cs_"));
    let token = made["token"].as_str().unwrap();
    let shown = ok_json(shown_with(&app, &creator, token).await, 200).await;
    assert_eq!(shown["customer"]["customer_id"], "alice");
    assert_eq!(shown["customer"]["tier"], "pro");
    assert_eq!(shown["customer"]["usage"][0]["meter"], "api");
    assert_eq!(
        shown["customer"]["usage"][0]["used"], 7,
        "alice's usage, not bob's"
    );
    assert_eq!(shown["customer"]["usage"][0]["limit"], 100);

    // A customer never seen shows zero on the default tier.
    let fresh = session(&app, &creator, "carol", json!({"scope": "embed"})).await;
    let shown = ok_json(
        shown_with(&app, &creator, fresh["token"].as_str().unwrap()).await,
        200,
    )
    .await;
    assert_eq!(shown["customer"]["usage"][0]["used"], 0);

    // Expiry, by the daemon's clock.
    app.clock.advance(599);
    assert_eq!(shown_with(&app, &creator, token).await.status(), 200);
    app.clock.advance(1);
    assert_error(
        shown_with(&app, &creator, token).await,
        401,
        "invalid_customer_token",
    )
    .await;

    // Revocation, at once.
    let made = session(&app, &creator, "alice", json!({"scope": "embed"})).await;
    let token = made["token"].as_str().unwrap();
    assert_eq!(shown_with(&app, &creator, token).await.status(), 200);
    let revoked = ok_json(
        app.send(
            Method::DELETE,
            &format!("/v1/sessions/{}", made["id"].as_str().unwrap()),
            &creator.secret_key,
            None,
        )
        .await,
        200,
    )
    .await;
    assert!(revoked["revoked_at"].is_string());
    assert_error(
        shown_with(&app, &creator, token).await,
        401,
        "invalid_customer_token",
    )
    .await;
    assert_error(
        app.send(
            Method::DELETE,
            "/v1/sessions/cs_nope",
            &creator.secret_key,
            None,
        )
        .await,
        404,
        "session_not_found",
    )
    .await;

    // Lifetimes are bounded.
    for ttl in [59, 86_401] {
        assert_error(
            app.post(
                "/v1/customers/alice/sessions",
                &creator.secret_key,
                json!({"scope": "embed", "ttl_seconds": ttl}),
            )
            .await,
            422,
            "invalid_ttl",
        )
        .await;
    }
    assert_error(
        app.post(
            "/v1/customers/alice/sessions",
            &creator.secret_key,
            json!({"scope": "admin"}),
        )
        .await,
        422,
        "invalid_value",
    )
    .await;
}

async fn a_token_works_only_for_its_creator_scope_and_signature(backend: Backend) {
    let app = spawn_app(backend).await;
    let acme = usage_creator(&app, "acme").await;
    let other = usage_creator(&app, "other").await;
    let made = session(&app, &acme, "alice", json!({"scope": "embed"})).await;
    let token = made["token"].as_str().unwrap();

    // Another creator's widget refuses it, and cannot revoke it.
    assert_error(
        shown_with(&app, &other, token).await,
        401,
        "invalid_customer_token",
    )
    .await;
    assert_error(
        app.send(
            Method::DELETE,
            &format!("/v1/sessions/{}", made["id"].as_str().unwrap()),
            &other.secret_key,
            None,
        )
        .await,
        404,
        "session_not_found",
    )
    .await;
    assert_eq!(shown_with(&app, &acme, token).await.status(), 200);

    // A portal session is for the portal.
    let portal = session(&app, &acme, "alice", json!({"scope": "portal"})).await;
    assert_eq!(portal["scope"], "portal");
    assert_error(
        shown_with(&app, &acme, portal["token"].as_str().unwrap()).await,
        401,
        "invalid_customer_token",
    )
    .await;

    // Forged tokens: another customer in the claims, no signature, another algorithm.
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["sub"], "alice");
    assert!(claims["aud"].as_str().unwrap().starts_with("cr_"));
    claims["sub"] = json!("bob");
    let forged_claims = engine.encode(claims.to_string());
    let header: Value = serde_json::from_slice(&engine.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "HS256");
    assert!(header["kid"].is_string());
    let none_header =
        engine.encode(json!({"alg": "none", "typ": "JWT", "kid": header["kid"]}).to_string());
    let hs512_header =
        engine.encode(json!({"alg": "HS512", "typ": "JWT", "kid": header["kid"]}).to_string());
    for forged in [
        format!("{}.{forged_claims}.{}", parts[0], parts[2]),
        format!("{none_header}.{}.", parts[1]),
        format!("{hs512_header}.{}.{}", parts[1], parts[2]),
        format!("{}.{}", parts[0], parts[1]),
        "garbage".to_string(),
    ] {
        assert_error(
            shown_with(&app, &acme, &forged).await,
            401,
            "invalid_customer_token",
        )
        .await;
    }
}

async fn session_keys_survive_a_restart_and_rotate(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = usage_creator(&app, "acme").await;
    let kept = session(
        &app,
        &creator,
        "alice",
        json!({"scope": "embed", "ttl_seconds": 86_400}),
    )
    .await;
    let revoked = session(
        &app,
        &creator,
        "alice",
        json!({"scope": "embed", "ttl_seconds": 86_400}),
    )
    .await;
    ok_json(
        app.send(
            Method::DELETE,
            &format!("/v1/sessions/{}", revoked["id"].as_str().unwrap()),
            &creator.secret_key,
            None,
        )
        .await,
        200,
    )
    .await;
    let app = app.restart().await;
    assert_eq!(
        shown_with(&app, &creator, kept["token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    assert_error(
        shown_with(&app, &creator, revoked["token"].as_str().unwrap()).await,
        401,
        "invalid_customer_token",
    )
    .await;

    // Rotation: new tokens carry the new key's id; tokens signed before still work.
    let kid_of = |token: &str| -> Value {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = token.split('.').next().unwrap();
        serde_json::from_slice::<Value>(&engine.decode(header).unwrap()).unwrap()["kid"].clone()
    };
    let rotated = ok_json(
        app.post("/v1/admin/session-keys/rotate", ADMIN_TOKEN, json!({}))
            .await,
        200,
    )
    .await;
    assert_error(
        app.post(
            "/v1/admin/session-keys/rotate",
            &creator.secret_key,
            json!({}),
        )
        .await,
        403,
        "wrong_key_kind",
    )
    .await;
    let fresh = session(&app, &creator, "alice", json!({"scope": "embed"})).await;
    assert_eq!(kid_of(fresh["token"].as_str().unwrap()), rotated["kid"]);
    assert_ne!(kid_of(kept["token"].as_str().unwrap()), rotated["kid"]);
    assert_eq!(
        shown_with(&app, &creator, kept["token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    assert_eq!(
        shown_with(&app, &creator, fresh["token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // Two days on, a second rotation drops the first key: every token it signed is gone.
    app.clock.advance(2 * 86_400);
    ok_json(
        app.post("/v1/admin/session-keys/rotate", ADMIN_TOKEN, json!({}))
            .await,
        200,
    )
    .await;
    let app = app.restart().await;
    let newest = session(&app, &creator, "alice", json!({"scope": "embed"})).await;
    assert_eq!(
        shown_with(&app, &creator, newest["token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

/// Every stored signing key: `(kid, secret as stored)`.
async fn stored_keys(app: &TestApp) -> Vec<(String, String)> {
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&app.database_url)
        .await
        .unwrap();
    sqlx::query_as("SELECT kid, secret FROM session_signing_keys ORDER BY created_at, kid")
        .fetch_all(&mut db)
        .await
        .unwrap()
}

async fn session_keys_are_sealed_at_rest(backend: Backend) {
    let app = spawn_app(backend).await;
    let creator = usage_creator(&app, "acme").await;
    let made = session(
        &app,
        &creator,
        "alice",
        json!({"scope": "embed", "ttl_seconds": 86_400}),
    )
    .await;
    let token = made["token"].as_str().unwrap();
    let keys = stored_keys(&app).await;
    assert_eq!(keys.len(), 1);
    for (kid, secret) in &keys {
        assert!(secret.starts_with("v2."), "key {kid} is stored sealed");
    }
    let app = app.restart().await;
    assert_eq!(shown_with(&app, &creator, token).await.status(), 200);

    // A key an earlier version stored in clear (hex), the newest: it loads, and is sealed.
    const LEGACY: &str = "6c6567616379206b657920696e20636c6561722c206f6620333220627974657321";
    app.clock.advance(1);
    app.sql(&format!(
        "INSERT INTO session_signing_keys (kid, secret, created_at) \
         VALUES ('sklegacy', '{LEGACY}', {})",
        app.clock.now()
    ))
    .await
    .unwrap();
    let app = app.restart().await;
    let keys = stored_keys(&app).await;
    assert_eq!(keys.len(), 2);
    for (kid, secret) in &keys {
        assert!(secret.starts_with("v2."), "key {kid} is stored sealed");
    }
    assert!(keys.iter().any(|(kid, _)| kid == "sklegacy"));
    assert_eq!(
        rows_naming(&app.database_url, LEGACY).await,
        Vec::<String>::new()
    );
    // It signs from now on, with the very secret it was stored with; the older key still
    // verifies what it signed.
    let fresh = session(&app, &creator, "alice", json!({"scope": "embed"})).await;
    let fresh = fresh["token"].as_str().unwrap();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (signed, signature) = fresh.rsplit_once('.').unwrap();
    let header: Value =
        serde_json::from_slice(&engine.decode(signed.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["kid"], "sklegacy");
    let mut mac = Hmac::<Sha256>::new_from_slice(&hex::decode(LEGACY).unwrap()).unwrap();
    mac.update(signed.as_bytes());
    assert_eq!(engine.encode(mac.finalize().into_bytes()), signature);
    assert_eq!(shown_with(&app, &creator, fresh).await.status(), 200);
    assert_eq!(shown_with(&app, &creator, token).await.status(), 200);

    // Without the key that sealed them, the daemon does not start, and says why.
    std::fs::remove_file(app.config.data_dir.join("sealing_key")).unwrap();
    let why = app.restart_failing_with(|_| {}).await;
    assert!(
        why.contains("does not open") && why.contains("security.master_key"),
        "{why}"
    );
}
