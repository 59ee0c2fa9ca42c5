//! Privacy: a customer's export holds everything put in; an erase leaves its id in no
//! table, no answer and no memory, also after a SIGKILL and a restart, while what billing
//! needs stays under its reference; with billing on its Stripe Customer is deleted unless
//! kept; retention removes exactly the rows older than their settings.

use reqwest::Method;
use serde_json::{json, Value};

use crate::billing::{connected_app, put_customer};
use crate::embeds::{create_embed, widget};
use crate::helpers::{
    assert_error, eventually, free_port, ok_json, rows_naming, run_binary, spawn_app_with, Backend,
    Daemon, TestApp, TestCreator, ADMIN_TOKEN, START,
};
use crate::on_both_databases;
use crate::stripe_fake::fixture;
use crate::subscriptions::deliver;

on_both_databases!(
    an_export_holds_everything_and_an_erase_leaves_only_references,
    an_erased_customer_stays_gone_after_a_sigkill_and_a_restart,
    erasing_a_billed_customer_deletes_its_stripe_customer_unless_kept,
    retention_removes_exactly_what_is_older,
);

const TOKEN_HEADER: &str = "x-staryer-customer-token";
const DAY: i64 = 86_400;

async fn erase(app: &TestApp, key: &str, customer: &str, query: &str) -> reqwest::Response {
    let path = format!("/v1/customers/{customer}{query}");
    app.send(Method::DELETE, &path, key, None).await
}

async fn event(app: &TestApp, creator: &TestCreator, body: Value) -> Value {
    ok_json(
        app.post("/v1/events", &creator.secret_key, &body).await,
        200,
    )
    .await
}

async fn an_export_holds_everything_and_an_erase_leaves_only_references(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let creator = app.creator_with_cap("acme", 100, "block").await;
    let key = &creator.secret_key;
    let texts = json!({"texts": {"title": "Your usage"}});
    create_embed(&app, &creator, "usage", "usage_meter", texts).await;
    let put = json!({"tier": "basic", "email": "dana.erasable@example.com"});
    let path = "/v1/customers/dana-erasable";
    ok_json(app.send(Method::PUT, path, key, Some(&put)).await, 200).await;
    for n in 1..=3 {
        let body = json!({"customer_id": "dana-erasable", "meter": "calls", "value": 2,
            "idempotency_key": format!("dana-{n}")});
        event(&app, &creator, body).await;
    }
    event(
        &app,
        &creator,
        json!({"customer_id": "bob", "meter": "calls", "value": 5}),
    )
    .await;
    let session = ok_json(
        app.post(
            "/v1/customers/dana-erasable/sessions",
            key,
            json!({"scope": "embed"}),
        )
        .await,
        201,
    )
    .await;
    let token = session["token"].as_str().unwrap().to_string();
    ok_json(
        widget(&app, &creator, "usage", "", &[(TOKEN_HEADER, &token)]).await,
        200,
    )
    .await;

    let export = ok_json(
        app.get("/v1/customers/dana-erasable/export", key).await,
        200,
    )
    .await;
    assert_eq!(export["customer_id"], "dana-erasable");
    assert_eq!(export["customer"]["email"], "dana.erasable@example.com");
    assert_eq!(export["customer"]["tier_key"], "basic");
    assert_eq!(export["usage"]["meters"][0]["used"], 6);
    let hours = export["usage_hours"].as_array().unwrap();
    let stored: i64 = hours.iter().map(|h| h["value"].as_i64().unwrap()).sum();
    assert_eq!(
        stored, 6_000_000,
        "every counted unit, in millionths: {hours:?}"
    );
    assert!(hours.iter().all(|h| h["meter_key"] == "calls"));
    assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(export["sessions"][0]["id"], session["id"]);
    assert_eq!(export["sessions"][0]["scope"], "embed");
    let actions: Vec<&str> = export["audit_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["customer.put"]);
    let answers = export["idempotency_answers"].as_array().unwrap();
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0]["result"]["customer_id"], "dana-erasable");
    // No token is ever stored, so none is exported.
    assert!(!export.to_string().contains(&token));
    assert_error(
        app.get("/v1/customers/nobody/export", key).await,
        404,
        "customer_not_found",
    )
    .await;

    let receipt = ok_json(erase(&app, key, "dana-erasable", "").await, 200).await;
    let reference = receipt["reference"].as_str().unwrap().to_string();
    assert!(reference.starts_with("cus_"));
    assert_eq!(receipt["removed"]["customers"], 1);
    assert_eq!(receipt["removed"]["idempotency_keys"], 3);
    assert!(receipt["removed"]["usage_buckets"].as_u64().unwrap() >= 1);
    assert_eq!(receipt["kept"]["customer_sessions"], 1);
    assert_eq!(receipt["stripe_customer_deleted"], false);

    // Gone from every answer, and from memory: its token no longer works, and its
    // idempotency keys count anew.
    assert_error(
        app.get("/v1/customers/dana-erasable/usage", key).await,
        404,
        "customer_not_found",
    )
    .await;
    assert_error(
        app.get("/v1/customers/dana-erasable/export", key).await,
        404,
        "customer_not_found",
    )
    .await;
    assert_error(
        erase(&app, key, "dana-erasable", "").await,
        404,
        "customer_not_found",
    )
    .await;
    assert_error(
        widget(&app, &creator, "usage", "", &[(TOKEN_HEADER, &token)]).await,
        401,
        "invalid_customer_token",
    )
    .await;
    assert_eq!(app.used(&creator, "bob", "calls").await, 5);
    assert_eq!(
        rows_naming(&app.database_url, "dana").await,
        Vec::<String>::new(),
        "no row names the customer or its email"
    );
    let again = json!({"customer_id": "dana-erasable", "meter": "calls", "value": 2,
        "idempotency_key": "dana-1"});
    let counted = event(&app, &creator, again).await;
    assert!(counted.get("duplicate").is_none(), "{counted}");
    assert_eq!(counted["used"], 2);
    // The same id, made again, is erased again (its rows kept under the same reference).
    ok_json(app.send(Method::PUT, path, key, Some(&put)).await, 200).await;
    let again = ok_json(erase(&app, key, "dana-erasable", "").await, 200).await;
    assert_eq!(again["reference"], reference.as_str());
    assert_eq!(again["removed"]["customers"], 1);
    assert_eq!(
        rows_naming(&app.database_url, "dana").await,
        Vec::<String>::new()
    );

    // The erase is in the log, under the reference, and the chain holds.
    let page = ok_json(
        app.get(
            "/v1/audit_logs?object_type=customer&object_id=dana-erasable",
            key,
        )
        .await,
        200,
    )
    .await;
    let erased = &page["records"][0];
    assert_eq!(erased["action"], "customer.erase");
    assert_eq!(erased["object_id"], reference.as_str());
    assert_eq!(erased["after"]["removed"]["customers"], 1);
    let data_dir = app.config.data_dir.to_string_lossy().into_owned();
    let (code, out, err) = run_binary(
        &["audit", "verify"],
        &[
            ("STARYER__DATABASE__URL", app.database_url.as_str()),
            ("STARYER__DATA_DIR", data_dir.as_str()),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
}

async fn an_erased_customer_stays_gone_after_a_sigkill_and_a_restart(backend: Backend) {
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = backend.fresh_database().await;
    let port = free_port();
    let client = reqwest::Client::new();
    let daemon = Daemon::start(data_dir.path(), &database_url, port, &[]).await;
    let send = |method: Method, path: &str, key: &str, body: Option<Value>| {
        let mut request = client
            .request(method, format!("{}{path}", daemon.base))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let created = ok_json(
        send(
            Method::POST,
            "/v1/admin/creators",
            ADMIN_TOKEN,
            Some(json!({"slug": "acme"})),
        )
        .await
        .unwrap(),
        201,
    )
    .await;
    let key = created["secret_key"].as_str().unwrap().to_string();
    let meter = json!({"key": "calls", "aggregation": "sum", "reset": "month"});
    ok_json(
        send(Method::POST, "/v1/meters", &key, Some(meter))
            .await
            .unwrap(),
        201,
    )
    .await;
    let tier = json!({"key": "free", "name": "Free", "default": true,
        "price": {"amount": 0, "currency": "usd", "interval": "month"}});
    ok_json(
        send(Method::POST, "/v1/tiers", &key, Some(tier))
            .await
            .unwrap(),
        201,
    )
    .await;
    let put = json!({"tier": "free", "email": "erin.erasable@example.com"});
    let path = "/v1/customers/erin-erasable";
    ok_json(send(Method::PUT, path, &key, Some(put)).await.unwrap(), 200).await;
    for (customer, n) in [("erin-erasable", 1), ("erin-erasable", 2), ("bob", 1)] {
        let body = json!({"customer_id": customer, "meter": "calls", "value": 3,
            "idempotency_key": format!("{customer}-{n}")});
        ok_json(
            send(Method::POST, "/v1/events", &key, Some(body))
                .await
                .unwrap(),
            200,
        )
        .await;
    }
    // The last events of the customer may still wait in the commit log: the erase folds it.
    ok_json(send(Method::DELETE, path, &key, None).await.unwrap(), 200).await;
    daemon.sigkill();

    // The next start replays nothing of the customer, and says nothing of it in its log.
    let log = data_dir.path().join("restart.log");
    let daemon = Daemon::start_logging_to(&log, data_dir.path(), &database_url, port).await;
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("staryer started"),
        "the log was written: {logged}"
    );
    assert!(!logged.contains("erin"), "{logged}");
    let get = |path: &str| {
        client
            .get(format!("{}{path}", daemon.base))
            .bearer_auth(&key)
            .send()
    };
    assert_error(
        get("/v1/customers/erin-erasable/usage").await.unwrap(),
        404,
        "customer_not_found",
    )
    .await;
    assert_error(
        get("/v1/customers/erin-erasable/export").await.unwrap(),
        404,
        "customer_not_found",
    )
    .await;
    let bob = ok_json(get("/v1/customers/bob/usage").await.unwrap(), 200).await;
    assert_eq!(bob["meters"][0]["used"], 3);
    drop(daemon);
    let url = if database_url.is_empty() {
        format!("sqlite://{}/staryer.db", data_dir.path().display())
    } else {
        database_url
    };
    assert_eq!(rows_naming(&url, "erin").await, Vec::<String>::new());
}

async fn erasing_a_billed_customer_deletes_its_stripe_customer_unless_kept(backend: Backend) {
    let (fake, app, creator, _) = connected_app(backend).await;
    let key = &creator.secret_key;
    for customer in ["fay-erasable", "gil-erasable"] {
        let email = format!("{customer}@example.com");
        put_customer(
            &app,
            &creator,
            customer,
            json!({"tier": "pro", "email": email}),
        )
        .await;
    }
    let stripe_id = |customer: &str| {
        let made = fake.stripe_customer_of(customer);
        made.unwrap_or_else(|| panic!("{customer} has a Stripe customer"))
    };
    let (fay, gil) = (stripe_id("fay-erasable"), stripe_id("gil-erasable"));

    let receipt = ok_json(erase(&app, key, "fay-erasable", "").await, 200).await;
    assert_eq!(receipt["stripe_customer_deleted"], true);
    let deletes = fake.requests(&format!("/v1/customers/{fay}")).await;
    assert_eq!(
        deletes
            .iter()
            .filter(|r| r.method.as_str() == "DELETE")
            .count(),
        1
    );
    assert!(fake.stripe_customer_of("fay-erasable").is_none());
    // Stripe's last events about the deleted customer are history only: they do not make
    // the customer again.
    let mut subscription = fixture("subscription");
    subscription["customer"] = json!(fay);
    subscription["status"] = json!("canceled");
    subscription["metadata"] = json!({"staryer_customer_id": "fay-erasable"});
    deliver(
        &app,
        "evt_fay_gone",
        "customer.subscription.deleted",
        subscription,
    )
    .await;
    let usage = app.get("/v1/customers/fay-erasable/usage", key).await;
    assert_error(usage, 404, "customer_not_found").await;

    let receipt = ok_json(
        erase(&app, key, "gil-erasable", "?keep_stripe_customer=true").await,
        200,
    )
    .await;
    assert_eq!(receipt["stripe_customer_deleted"], false);
    assert_eq!(
        fake.stripe_customer_of("gil-erasable").as_deref(),
        Some(gil.as_str())
    );
    assert_eq!(
        rows_naming(&app.database_url, "-erasable").await,
        Vec::<String>::new()
    );
}

async fn retention_removes_exactly_what_is_older(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.retention.interval_secs = 1;
        config.retention.audit_days = 2;
        config.retention.batch_rows = 2;
    })
    .await;
    let creator = app.creator_with_cap("acme", 100, "block").await;
    let id = "(SELECT id FROM creators WHERE slug = 'acme')";
    // Rows dated around each limit, inserted behind the daemon: (age in days, what).
    let usage = |age: i64, period_start: i64, customer: &str| {
        let at = START - age * DAY;
        let period = if period_start == 0 { 0 } else { at };
        format!("INSERT INTO usage_buckets VALUES ({id}, '{customer}', 'calls', {period}, {at}, 1)")
    };
    let billing = |age: i64, event: &str| {
        format!(
            "INSERT INTO billing_events (event_id, creator_id, type, stripe_created, \
             received_at) VALUES ('{event}', {id}, 'invoice.paid', 0, {})",
            START - age * DAY
        )
    };
    let session = |age: i64, session: &str| {
        let expired = START - age * DAY;
        format!(
            "INSERT INTO customer_sessions (id, creator_id, customer_id, scope, created_at, \
             expires_at) VALUES ('{session}', {id}, 'c', 'embed', {}, {expired})",
            expired - 3_600
        )
    };
    let browser = |age: i64, subject: &str| {
        let expired = START - age * DAY;
        format!(
            "INSERT INTO browser_sessions (id_hash, surface, creator_id, subject, created_at, \
             last_seen_at, expires_at) VALUES ('hash-{subject}', 'dashboard', {id}, '{subject}', \
             {expired}, {expired}, {expired})"
        )
    };
    let link = |age: i64, user: &str| {
        let expired = START - age * DAY;
        format!(
            "INSERT INTO dashboard_tokens (token_hash, creator_id, user_id, purpose, created_at, \
             expires_at) VALUES ('hash-{user}', {id}, '{user}', 'invite', {expired}, {expired})"
        )
    };
    let statements = [
        usage(401, 1, "expired-row-1"),
        usage(402, 1, "expired-row-2"),
        usage(403, 1, "expired-row-3"),
        usage(399, 1, "kept-row-recent"),
        usage(900, 0, "kept-row-endless"),
        billing(401, "evt_expired-row"),
        billing(399, "evt_kept-row"),
        session(31, "cs_expired-row"),
        session(29, "cs_kept-row"),
        browser(31, "du_expired-row"),
        browser(29, "du_kept-row"),
        link(31, "du_expired-row-link"),
        link(29, "du_kept-row-link"),
    ];
    for statement in &statements {
        app.sql(statement).await.unwrap();
    }
    // Removed hours leave their sum per customer and meter (all-time totals stay whole).
    let remaining = eventually("the expired rows go", || async {
        let remaining = rows_naming(&app.database_url, "expired-row").await;
        remaining
            .iter()
            .all(|row| row.starts_with("usage_pruned: "))
            .then_some(remaining)
    })
    .await;
    assert_eq!(remaining.len(), 3, "{remaining:?}");
    assert!(
        remaining.iter().all(|row| row.ends_with("|calls|1")),
        "{remaining:?}"
    );
    assert_eq!(rows_naming(&app.database_url, "kept-row").await.len(), 6);

    // Audit records older than two days are cut off the chain's beginning, which still
    // verifies from its new anchor.
    let before = ok_json(app.get("/v1/audit_logs", &creator.secret_key).await, 200).await;
    let first_records = before["records"].as_array().unwrap().len();
    assert!(first_records >= 2);
    app.clock.advance(3 * DAY);
    app.create_meter(&creator, "later", "sum", "month").await;
    eventually("old audit records go", || async {
        let page = ok_json(app.get("/v1/audit_logs", &creator.secret_key).await, 200).await;
        let records = page["records"].as_array().unwrap().clone();
        (records.len() == 1).then_some(records)
    })
    .await;
    let data_dir = app.config.data_dir.to_string_lossy().into_owned();
    let (code, out, err) = run_binary(
        &["audit", "verify"],
        &[
            ("STARYER__DATABASE__URL", app.database_url.as_str()),
            ("STARYER__DATA_DIR", data_dir.as_str()),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("removed by retention"), "{out}");
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("staryer_retention_removed_rows_total{table=\"usage_buckets\"}"),
        "{text}"
    );
}
