//! Notices by email through a fake Resend, and the outbox's promises: a threshold crossing
//! sends once per customer, meter, period and kind (retried, restarted, SIGKILLed between
//! the count and the send), retries back off and honour `Retry-After`, a poison message is
//! parked while the rest flow, and an integration without a key is off.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::embeds::{create_embed, pricing_config};
use crate::helpers::{
    assert_error, eventually, free_port, ok_json, quick_outbox, spawn_app, spawn_app_with, Backend,
    Daemon, TestApp, TestCreator, ADMIN_TOKEN,
};
use crate::on_both_databases;

on_both_databases!(
    crossing_warn_at_emails_once_per_customer_meter_period_and_kind,
    a_crossing_is_emailed_once_after_a_sigkill_between_the_count_and_the_send,
    a_429_and_a_500_are_retried_after_the_wait_they_ask_and_delivered_once,
    a_poison_message_is_parked_while_the_rest_flow_and_can_be_retried,
    templates_are_the_creators_with_values_escaped,
    integrations_without_keys_are_off_and_say_so_once,
);

/// Resend's answer to `POST /emails`.
fn resend_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"}))
}

/// A fake Resend that answers every email, and a webhook receiver beside it (`/hook`).
pub async fn fake_resend() -> MockServer {
    let resend = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(resend_ok())
        .mount(&resend)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&resend)
        .await;
    resend
}

/// The webhooks of `event_type` the receiver took, one per `webhook-id` (a receiver drops
/// a repeat by its id).
async fn webhooks(server: &MockServer, event_type: &str) -> Vec<Value> {
    let mut ids = BTreeSet::new();
    let mut hooks = Vec::new();
    for request in server.received_requests().await.unwrap_or_default() {
        if request.url.path() != "/hook" {
            continue;
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let id = request
            .headers
            .get("webhook-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if body["type"] == event_type && ids.insert(id) {
            hooks.push(body);
        }
    }
    hooks
}

async fn add_endpoint(app: &TestApp, creator: &TestCreator, base: &str) {
    ok_json(
        app.post(
            "/v1/webhook_endpoints",
            &creator.secret_key,
            json!({"url": format!("{base}/hook"), "events": ["usage.warning", "usage.limit_reached"]}),
        )
        .await,
        201,
    )
    .await;
}

/// The emails Resend took, by recipient, one per idempotency key (as Resend sends one
/// email per key, however often it is asked).
pub async fn emails(resend: &MockServer) -> Vec<Value> {
    let mut keys = BTreeSet::new();
    let mut emails = Vec::new();
    for request in resend.received_requests().await.unwrap_or_default() {
        if request.url.path() != "/emails" {
            continue;
        }
        let key = request
            .headers
            .get("idempotency-key")
            .map(|v| v.to_str().unwrap().to_string());
        assert!(key.is_some(), "every email carries an Idempotency-Key");
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        if keys.insert(key) {
            emails.push(body);
        }
    }
    emails
}

pub fn with_resend(resend: &MockServer) -> impl FnOnce(&mut staryer::config::Config) + '_ {
    move |config| {
        quick_outbox(config);
        config.resend.api_key = "re_test".into();
        config.resend.base_url = resend.uri();
        config.resend.from = "Acme <notices@acme.test>".into();
    }
}

/// A creator capping `calls` at 10 (warn at 0.8) with a notice address, and customer `c1`
/// with an email.
async fn creator_with_notices(app: &TestApp) -> TestCreator {
    let creator = app.creator_with_cap("acme", 10, "block").await;
    ok_json(
        app.send(
            reqwest::Method::PUT,
            "/v1/customers/c1",
            &creator.secret_key,
            Some(&json!({"tier": "basic", "email": "c1@customer.test"})),
        )
        .await,
        200,
    )
    .await;
    ok_json(
        app.send(
            reqwest::Method::PUT,
            "/v1/notices",
            &creator.secret_key,
            Some(&json!({"notice_email": "ops@acme.test"})),
        )
        .await,
        200,
    )
    .await;
    creator
}

async fn calls(app: &TestApp, creator: &TestCreator, value: u64, key: Option<&str>) -> Value {
    let mut event = json!({"customer_id": "c1", "meter": "calls", "value": value});
    if let Some(key) = key {
        event["idempotency_key"] = json!(key);
    }
    app.event(creator, event).await
}

async fn emails_of_kind(resend: &MockServer, subject_part: &str) -> Vec<Value> {
    emails(resend)
        .await
        .into_iter()
        .filter(|e| {
            e["subject"]
                .as_str()
                .unwrap_or_default()
                .contains(subject_part)
        })
        .collect()
}

async fn crossing_warn_at_emails_once_per_customer_meter_period_and_kind(backend: Backend) {
    let resend = fake_resend().await;
    let app = spawn_app_with(backend, with_resend(&resend)).await;
    let creator = creator_with_notices(&app).await;
    add_endpoint(&app, &creator, &resend.uri()).await;
    assert_eq!(calls(&app, &creator, 8, None).await["decision"], "allow");
    let crossing = calls(&app, &creator, 1, Some("cross-1")).await;
    assert_eq!(crossing["decision"], "warn");
    // The same crossing retried: nothing new.
    assert_eq!(
        calls(&app, &creator, 1, Some("cross-1")).await["duplicate"],
        true
    );
    let sent = eventually("the warning to the customer and the creator", || async {
        let sent = emails_of_kind(&resend, "has used").await;
        (sent.len() >= 2).then_some(sent)
    })
    .await;
    let recipients: BTreeSet<String> = sent
        .iter()
        .map(|e| e["to"][0].as_str().unwrap().into())
        .collect();
    assert_eq!(
        recipients,
        BTreeSet::from(["c1@customer.test".to_string(), "ops@acme.test".to_string()])
    );
    assert_eq!(sent[0]["from"], "Acme <notices@acme.test>");
    assert!(
        sent[0]["text"]
            .as_str()
            .unwrap()
            .contains("9 of the 10 calls"),
        "{}",
        sent[0]
    );
    // Reaching the cap is another kind: told once too, however many events it refuses.
    assert_eq!(calls(&app, &creator, 1, None).await["decision"], "warn");
    for _ in 0..3 {
        assert_eq!(calls(&app, &creator, 1, None).await["decision"], "block");
    }
    eventually("the limit notice", || async {
        (emails_of_kind(&resend, "reached the calls limit")
            .await
            .len()
            == 2)
            .then_some(())
    })
    .await;

    let app = app.restart().await;
    assert_eq!(calls(&app, &creator, 1, None).await["decision"], "block");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        emails_of_kind(&resend, "has used").await.len(),
        2,
        "a restart tells nothing again"
    );
    assert_eq!(
        emails_of_kind(&resend, "reached the calls limit")
            .await
            .len(),
        2
    );
    assert_eq!(webhooks(&resend, "usage.warning").await.len(), 1);
    assert_eq!(webhooks(&resend, "usage.limit_reached").await.len(), 1);
    let messages = app.outbox(&creator, "?integration=email").await;
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert!(messages
        .iter()
        .all(|m| m["status"] == "delivered" && m["last_status"] == 200));

    // A new period may tell again.
    app.clock.advance(31 * 86_400);
    calls(&app, &creator, 9, None).await;
    eventually("the next period's warning", || async {
        (emails_of_kind(&resend, "has used").await.len() == 4
            && webhooks(&resend, "usage.warning").await.len() == 2)
            .then_some(())
    })
    .await;
}

async fn a_crossing_is_emailed_once_after_a_sigkill_between_the_count_and_the_send(
    backend: Backend,
) {
    // Resend and the webhook receiver are down while the crossing is counted: nothing can
    // go before the kill.
    let resend = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&resend)
        .await;
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = backend.fresh_database().await;
    let port = free_port();
    let env = [
        ("STARYER__RESEND__API_KEY", "re_test".to_string()),
        ("STARYER__RESEND__BASE_URL", resend.uri()),
        ("STARYER__OUTBOX__POLL_INTERVAL_MS", "50".to_string()),
        ("STARYER__OUTBOX__RETRY_BASE_SECS", "1".to_string()),
        ("STARYER__OUTBOX__RETRY_MAX_SECS", "1".to_string()),
        (
            "STARYER__WEBHOOKS__ALLOW_PRIVATE_TARGETS",
            "true".to_string(),
        ),
    ];
    let daemon = Daemon::start(data_dir.path(), &database_url, port, &env).await;
    let client = reqwest::Client::new();
    let call = |path: &str, key: &str, body: Value| {
        client
            .request(
                if path.starts_with("PUT ") {
                    reqwest::Method::PUT
                } else {
                    reqwest::Method::POST
                },
                format!("{}{}", daemon.base, path.trim_start_matches("PUT ")),
            )
            .bearer_auth(key.to_string())
            .json(&body)
            .send()
    };
    let created = ok_json(
        call("/v1/admin/creators", ADMIN_TOKEN, json!({"slug": "acme"}))
            .await
            .unwrap(),
        201,
    )
    .await;
    let key = created["secret_key"].as_str().unwrap().to_string();
    ok_json(
        call(
            "/v1/meters",
            &key,
            json!({"key": "calls", "aggregation": "sum", "reset": "month"}),
        )
        .await
        .unwrap(),
        201,
    )
    .await;
    ok_json(
        call(
            "/v1/tiers",
            &key,
            json!({"key": "basic", "name": "Basic", "default": true,
                "price": {"amount": 0, "currency": "usd", "interval": "month"},
                "caps": {"calls": {"limit": 10}}, "features": []}),
        )
        .await
        .unwrap(),
        201,
    )
    .await;
    ok_json(
        call(
            "PUT /v1/notices",
            &key,
            json!({"notice_email": "ops@acme.test"}),
        )
        .await
        .unwrap(),
        200,
    )
    .await;
    ok_json(
        call(
            "/v1/webhook_endpoints",
            &key,
            json!({"url": format!("{}/hook", resend.uri()), "events": ["usage.warning"]}),
        )
        .await
        .unwrap(),
        201,
    )
    .await;
    let crossing = ok_json(
        call(
            "/v1/events",
            &key,
            json!({"customer_id": "c1", "meter": "calls", "value": 9}),
        )
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(crossing["decision"], "warn");
    daemon.sigkill();

    // Both are back; the restarted daemon sends what the killed one owed, once.
    let tried = resend.received_requests().await.unwrap().len();
    resend.reset().await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(resend_ok())
        .mount(&resend)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&resend)
        .await;
    let daemon = Daemon::start(data_dir.path(), &database_url, port, &env).await;
    eventually("the email and the webhook owed", || async {
        let (sent, hooks) = (
            emails(&resend).await,
            webhooks(&resend, "usage.warning").await,
        );
        (!sent.is_empty() && !hooks.is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = emails(&resend).await;
    assert_eq!(sent.len(), 1, "{sent:?} (tried {tried} times while down)");
    assert_eq!(sent[0]["to"][0], "ops@acme.test");
    assert_eq!(webhooks(&resend, "usage.warning").await.len(), 1);
    drop(daemon);
}

/// Answers each request with the next of `answers`, then with the last one.
struct InTurn(std::sync::Mutex<Vec<ResponseTemplate>>);

impl Respond for InTurn {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut answers = self.0.lock().unwrap();
        if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers[0].clone()
        }
    }
}

async fn a_429_and_a_500_are_retried_after_the_wait_they_ask_and_delivered_once(backend: Backend) {
    let resend = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(InTurn(std::sync::Mutex::new(vec![
            ResponseTemplate::new(429)
                .insert_header("retry-after", "120")
                .set_body_json(
                    json!({"name": "rate_limit_exceeded", "message": "Too many requests"}),
                ),
            ResponseTemplate::new(500).set_body_json(json!({"name": "internal_server_error"})),
            resend_ok(),
        ])))
        .mount(&resend)
        .await;
    let app = spawn_app_with(backend, with_resend(&resend)).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    ok_json(
        app.send(
            reqwest::Method::PUT,
            "/v1/notices",
            &creator.secret_key,
            Some(&json!({"notice_email": "ops@acme.test"})),
        )
        .await,
        200,
    )
    .await;
    calls(&app, &creator, 9, None).await;
    let waiting = eventually("the 429", || async {
        let messages = app.outbox(&creator, "").await;
        messages
            .first()
            .filter(|m| m["last_status"] == 429)
            .cloned()
    })
    .await;
    assert_eq!(waiting["status"], "pending");
    assert_eq!(
        waiting["next_attempt_at"], "2026-03-15T12:02:00Z",
        "Retry-After: 120 is honoured"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        resend.received_requests().await.unwrap().len(),
        1,
        "nothing before the wait"
    );
    app.clock.advance(120);
    eventually("the 500", || async {
        let messages = app.outbox(&creator, "").await;
        (messages[0]["last_status"] == 500).then_some(())
    })
    .await;
    // Backoff: the second failure waits twice the base (5 s), ±20 %.
    app.clock.advance(13);
    let delivered = eventually("the delivery", || async {
        let messages = app.outbox(&creator, "").await;
        messages
            .first()
            .filter(|m| m["status"] == "delivered")
            .cloned()
    })
    .await;
    assert_eq!(delivered["attempts"], 3);
    let keys: BTreeSet<String> = resend
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "every try of one email carries one idempotency key"
    );
    assert_eq!(emails(&resend).await.len(), 1);
    // The metrics are the process's (other tests share it): their series exist.
    let metrics = app.metrics().await;
    for series in [
        r#"staryer_outbox_sent_total{integration="email"}"#,
        r#"staryer_outbox_retried_total{integration="email"}"#,
        r#"staryer_outbox_oldest_pending_seconds{integration="email"}"#,
        r#"staryer_outbox_pending{integration="webhook"}"#,
    ] {
        assert!(metrics.contains(series), "{series}: {metrics}");
    }
}

async fn a_poison_message_is_parked_while_the_rest_flow_and_can_be_retried(backend: Backend) {
    let resend = MockServer::start().await;
    let poisoned = Mock::given(method("POST"))
        .and(path("/emails"))
        .and(wiremock::matchers::body_partial_json(
            json!({"to": ["c1@customer.test"]}),
        ))
        .respond_with(ResponseTemplate::new(422).set_body_json(
            json!({"name": "validation_error", "message": "The `to` field is invalid."}),
        ))
        .named("poison")
        .mount_as_scoped(&resend)
        .await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .respond_with(resend_ok())
        .mount(&resend)
        .await;
    let app = spawn_app_with(backend, with_resend(&resend)).await;
    let creator = creator_with_notices(&app).await;
    calls(&app, &creator, 9, None).await;
    let parked = eventually("the poison parked", || async {
        app.outbox(&creator, "?status=parked")
            .await
            .first()
            .cloned()
    })
    .await;
    assert_eq!(parked["target"], "c1@customer.test");
    assert_eq!(parked["last_status"], 422);
    assert!(parked["last_error"]
        .as_str()
        .unwrap()
        .contains("validation_error"));
    eventually("the creator's copy, delivered beside it", || async {
        let delivered = app.outbox(&creator, "?status=delivered").await;
        (delivered.len() == 1 && delivered[0]["target"] == "ops@acme.test").then_some(())
    })
    .await;
    // The platform owner sees it too; once fixed, a retry by hand delivers it.
    let everyone = ok_json(
        app.get("/v1/admin/outbox?status=parked", ADMIN_TOKEN).await,
        200,
    )
    .await;
    assert_eq!(everyone["messages"][0]["id"], parked["id"]);
    drop(poisoned);
    let id = parked["id"].as_str().unwrap();
    let retried = ok_json(
        app.post(
            &format!("/v1/outbox/{id}/retry"),
            &creator.secret_key,
            json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(retried["status"], "pending");
    eventually("the retried message delivered", || async {
        (app.outbox(&creator, "?status=delivered").await.len() == 2).then_some(())
    })
    .await;
    let other = app.create_creator("other").await;
    assert_error(
        app.post(
            &format!("/v1/outbox/{id}/retry"),
            &other.secret_key,
            json!({}),
        )
        .await,
        404,
        "message_not_found",
    )
    .await;
}

async fn templates_are_the_creators_with_values_escaped(backend: Backend) {
    let resend = fake_resend().await;
    let app = spawn_app_with(backend, with_resend(&resend)).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let (app, creator) = (&app, &creator);
    let put = |body: Value| async move {
        app.send(
            reqwest::Method::PUT,
            "/v1/notices",
            &creator.secret_key,
            Some(&body),
        )
        .await
    };
    assert_error(
        put(json!({"kinds": {"usage.warning": {"subject": "{{customr}}"}}})).await,
        422,
        "unknown_placeholder",
    )
    .await;
    assert_error(
        put(json!({"kinds": {"usage.nope": {}}})).await,
        422,
        "unknown_kind",
    )
    .await;
    assert_error(
        put(json!({"notice_email": "not an address"})).await,
        422,
        "invalid_email",
    )
    .await;
    let settings = ok_json(
        put(json!({
            "notice_email": "ops@acme.test",
            "kinds": {
                "usage.warning": {
                    "subject": "Heads up: {{customer}} at {{used}}/{{limit}}",
                    "text": "{{customer}} used {{used}} {{meter}} ({{tier}}).",
                    "html": "<p>Customer <b>{{customer}}</b> used {{used}}.</p>"
                },
                "usage.limit_reached": {"enabled": false}
            }
        }))
        .await,
        200,
    )
    .await;
    assert_eq!(settings["email_enabled"], true);
    assert_eq!(settings["kinds"]["usage.limit_reached"]["enabled"], false);
    assert!(
        settings["kinds"]["usage.overage_started"]["subject"].is_string(),
        "built-in kept"
    );
    let hostile = "<img src=x onerror=alert(1)>";
    app.event(
        creator,
        json!({"customer_id": hostile, "meter": "calls", "value": 10}),
    )
    .await;
    let sent = eventually("the warning", || async {
        emails(&resend).await.first().cloned()
    })
    .await;
    assert_eq!(sent["subject"], format!("Heads up: {hostile} at 10/10"));
    assert_eq!(sent["text"], format!("{hostile} used 10 calls (basic)."));
    assert_eq!(
        sent["html"],
        "<p>Customer <b>&lt;img src=x onerror=alert(1)&gt;</b> used 10.</p>"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        emails(&resend).await.len(),
        1,
        "limit_reached is turned off"
    );
}

async fn integrations_without_keys_are_off_and_say_so_once(backend: Backend) {
    let app = spawn_app(backend.clone()).await;
    let creator = app.creator_with_cap("acme", 10, "block").await;
    let notices = ok_json(app.get("/v1/notices", &creator.secret_key).await, 200).await;
    assert_eq!(notices["email_enabled"], false);
    assert_eq!(calls(&app, &creator, 9, None).await["decision"], "warn");
    for tier in ["free", "pro", "team"] {
        app.create_tier(&creator, tier, json!({}), false).await;
    }
    create_embed(
        &app,
        &creator,
        "pricing",
        "pricing_table",
        pricing_config("v1"),
    )
    .await;
    assert_error(
        app.post(
            "/v1/embeds/pricing/suggestions",
            &creator.secret_key,
            json!({"prompt": "bolder"}),
        )
        .await,
        409,
        "ai_disabled",
    )
    .await;
    let posthog = ok_json(
        app.get("/v1/integrations/posthog", &creator.secret_key)
            .await,
        200,
    )
    .await;
    assert_eq!(posthog["destination"], "off");

    // The real binary says each integration is off, once.
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_staryer"))
        .env("STARYER__DATA_DIR", data_dir.path())
        .env(
            "STARYER__SERVER__BIND",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("STARYER__DATABASE__URL", backend.fresh_database().await)
        .env("STARYER__LOG__FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for off in [
        "notices by email are off",
        "AI suggestions are off",
        "analytics to the platform's PostHog project are off",
    ] {
        assert_eq!(log.matches(off).count(), 1, "{off}: {log}");
    }
}
