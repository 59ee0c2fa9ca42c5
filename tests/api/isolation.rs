//! Tenant isolation: creator A's key cannot see or touch creator B's meters, tiers,
//! customers or usage; B's objects look exactly like objects that do not exist (404). On
//! PostgreSQL, row-level security keeps a query of the tenant-scoped path that forgets
//! its filter to the creator set for it.

use std::time::Duration;

use serde_json::json;
use sqlx::Connection;

use crate::helpers::{assert_error, ok_json, spawn_app, spawn_app_with, Backend};
use crate::on_both_databases;

on_both_databases!(
    one_creators_key_cannot_see_or_touch_another_creators_objects,
    an_unfiltered_query_of_the_tenant_path_sees_only_its_creators_rows,
);

async fn one_creators_key_cannot_see_or_touch_another_creators_objects(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.create_creator("alpha").await;
    let b = app.creator_with_cap("beta", 10, "block").await;
    app.create_meter(&b, "private", "sum", "month").await;
    app.assign(&b, "bob", "basic").await;
    app.event(
        &b,
        json!({"customer_id": "bob", "meter": "calls", "value": 5}),
    )
    .await;

    assert_error(
        app.get("/v1/meters/calls", &a.secret_key).await,
        404,
        "meter_not_found",
    )
    .await;
    assert_error(
        app.get("/v1/tiers/basic", &a.secret_key).await,
        404,
        "tier_not_found",
    )
    .await;
    assert_error(
        app.send(
            reqwest::Method::PATCH,
            "/v1/tiers/basic",
            &a.secret_key,
            Some(&json!({"name": "pwned"})),
        )
        .await,
        404,
        "tier_not_found",
    )
    .await;
    assert_error(
        app.get("/v1/customers/bob/usage", &a.secret_key).await,
        404,
        "customer_not_found",
    )
    .await;
    assert_error(
        app.get("/v1/customers/bob/entitlements/reports", &a.secret_key)
            .await,
        404,
        "customer_not_found",
    )
    .await;
    assert_error(
        app.post(
            "/v1/events",
            &a.secret_key,
            &json!({"customer_id": "bob", "meter": "calls"}),
        )
        .await,
        404,
        "meter_not_found",
    )
    .await;
    assert_error(
        app.post(
            "/v1/check",
            &a.secret_key,
            &json!({"customer_id": "bob", "meter": "calls"}),
        )
        .await,
        404,
        "meter_not_found",
    )
    .await;
    assert_error(
        app.send(
            reqwest::Method::PUT,
            "/v1/customers/bob",
            &a.secret_key,
            Some(&json!({"tier": "basic"})),
        )
        .await,
        404,
        "tier_not_found",
    )
    .await;
    // A's lists are empty; B's objects are unchanged.
    assert_eq!(
        ok_json(app.get("/v1/meters", &a.secret_key).await, 200).await,
        json!([])
    );
    assert_eq!(
        ok_json(app.get("/v1/tiers", &a.secret_key).await, 200).await,
        json!([])
    );
    assert_eq!(
        ok_json(app.get("/v1/tiers/basic", &b.secret_key).await, 200).await["name"],
        "basic"
    );
    assert_eq!(app.used(&b, "bob", "calls").await, 5);
    // The same ids on A's side are A's own.
    app.create_meter(&a, "calls", "sum", "month").await;
    app.event(
        &a,
        json!({"customer_id": "bob", "meter": "calls", "value": 1}),
    )
    .await;
    assert_eq!(app.used(&a, "bob", "calls").await, 1);
    assert_eq!(app.used(&b, "bob", "calls").await, 5);
}

/// A database owned by a role that is no superuser (row-level security binds it, as it
/// binds the daemon's role in production), and its URL.
async fn database_of_a_plain_owner(server: &str) -> String {
    let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
    for statement in [
        "DO $$ BEGIN CREATE ROLE staryer_test_owner LOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        "DO $$ BEGIN CREATE ROLE staryer_tenant NOLOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        "GRANT staryer_tenant TO staryer_test_owner",
    ] {
        sqlx::query(statement).execute(&mut admin).await.unwrap();
    }
    let name = format!("staryer_test_owned_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name} OWNER staryer_test_owner"))
        .execute(&mut admin)
        .await
        .unwrap();
    let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
    let base = base.replacen("://postgres@", "://staryer_test_owner@", 1);
    format!("{base}/{name}")
}

async fn an_unfiltered_query_of_the_tenant_path_sees_only_its_creators_rows(backend: Backend) {
    let owned = match &backend {
        Backend::Postgres(server) => Some(database_of_a_plain_owner(server).await),
        Backend::Sqlite => None,
    };
    let app = spawn_app_with(backend, |config| {
        if let Some(url) = owned {
            config.database.url = url;
        }
    })
    .await;
    // The daemon's work, tenant-scoped and system-wide, goes on under the policies.
    let mut creators = Vec::new();
    for slug in ["alpha", "beta"] {
        let creator = app.creator_with_cap(slug, 10, "block").await;
        app.assign(&creator, "bob", "basic").await;
        app.assign(&creator, "carol", "basic").await;
        for customer in ["bob", "carol"] {
            let event = json!({"customer_id": customer, "meter": "calls", "idempotency_key": "e1"});
            ok_json(
                app.post("/v1/events", &creator.secret_key, &event).await,
                200,
            )
            .await;
        }
        let session = json!({"scope": "embed"});
        let path = "/v1/customers/bob/sessions";
        ok_json(app.post(path, &creator.secret_key, &session).await, 201).await;
        let export = app.get("/v1/customers/bob/export", &creator.secret_key);
        assert_eq!(
            ok_json(export.await, 200).await["usage"]["meters"][0]["used"],
            1
        );
        let erase = app.send(
            reqwest::Method::DELETE,
            "/v1/customers/carol",
            &creator.secret_key,
            None,
        );
        ok_json(erase.await, 200).await;
        creators.push(creator);
    }
    let app = app.restart().await;
    assert_eq!(app.used(&creators[1], "bob", "calls").await, 1);
    let store = staryer::store::Store::connect(&app.database_url, 2, Duration::from_secs(5))
        .await
        .unwrap();
    if store.dialect() == staryer::store::Dialect::Sqlite {
        // SQLite has no roles: one process owns the file, and the store API's tenant-first
        // methods are the isolation.
        return;
    }
    // The daemon's own role, which the policies let through.
    let mut system = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    let creator_of = |slug: &str| format!("(SELECT id FROM creators WHERE slug = '{slug}')");
    let (alpha, beta): (String, String) = sqlx::query_as(&format!(
        "SELECT {}, {}",
        creator_of("alpha"),
        creator_of("beta")
    ))
    .fetch_one(&mut system)
    .await
    .unwrap();
    // Every table with a creator's rows is bound by a forced policy.
    let unbound: Vec<String> = sqlx::query_scalar(
        "SELECT c.table_name::text FROM information_schema.columns c \
         JOIN pg_class t ON t.relname = c.table_name \
         WHERE c.table_schema = current_schema() AND c.column_name = 'creator_id' \
         AND NOT (t.relrowsecurity AND t.relforcerowsecurity)",
    )
    .fetch_all(&mut system)
    .await
    .unwrap();
    assert_eq!(unbound, Vec::<String>::new());
    drop(system);

    let mut alpha_only = store.begin_tenant(&alpha).await.unwrap();
    for (table, owner) in [
        ("creators", "id"),
        ("api_keys", "creator_id"),
        ("meters", "creator_id"),
        ("tiers", "creator_id"),
        ("customers", "creator_id"),
        ("usage_buckets", "creator_id"),
        ("idempotency_keys", "creator_id"),
        ("customer_sessions", "creator_id"),
        ("audit_log", "creator_id"),
    ] {
        // Deliberately unfiltered.
        let owners: Vec<String> = sqlx::query_scalar(&format!("SELECT {owner} FROM {table}"))
            .fetch_all(&mut *alpha_only)
            .await
            .unwrap();
        assert!(!owners.is_empty(), "{table}: alpha's rows show");
        assert!(
            owners.iter().all(|o| *o == alpha),
            "{table}: only alpha's rows"
        );
    }
    // Nothing can be written under another creator, and the audit log takes no update.
    let foreign = sqlx::query(&format!(
        "INSERT INTO idempotency_keys (creator_id, key, result, created_at) \
         VALUES ('{beta}', 'sneaky', '{{}}', 0)"
    ))
    .execute(&mut *alpha_only)
    .await
    .unwrap_err();
    assert!(
        foreign.to_string().contains("row-level security"),
        "{foreign}"
    );
    drop(alpha_only);
    let mut alpha_only = store.begin_tenant(&alpha).await.unwrap();
    let rewrite = sqlx::query("UPDATE audit_log SET actor = 'someone else'")
        .execute(&mut *alpha_only)
        .await
        .unwrap_err();
    assert!(
        rewrite.to_string().contains("permission denied"),
        "{rewrite}"
    );
}
