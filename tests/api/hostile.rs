//! Hostile clients: bodies that never arrive, bodies in encodings the daemon does not read,
//! keys repeated inside a body, look-alike ids, text meant to forge log lines. Each gets a
//! clear JSON error, and none holds the daemon's memory or workers.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{assert_error, ok_json, spawn_app_with, Backend, TestApp};
use crate::on_both_databases;

on_both_databases!(
    stalled_bodies_are_cut_at_the_deadline_while_others_are_answered,
    bodies_beyond_the_bytes_in_flight_are_refused_busy,
    encodings_repeated_keys_and_look_alike_ids_are_refused,
    error_messages_are_bounded_and_escaped,
);

/// Opens a connection that declares a 1 MiB body and sends one byte of it.
async fn stall(app: &TestApp, path: &str, key: Option<&str>) -> TcpStream {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let auth = key.map_or(String::new(), |key| {
        format!("Authorization: Bearer {key}\r\n")
    });
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: 1048576\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    stream
}

/// The status line of what a stalled connection was answered, if anything within `wait`.
async fn answer(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buffer = vec![0u8; 1024];
    let read = tokio::time::timeout(wait, stream.read(&mut buffer)).await;
    match read {
        Ok(Ok(n)) if n > 0 => {
            let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
            text.lines().next().map(str::to_owned)
        }
        _ => None,
    }
}

async fn stalled_bodies_are_cut_at_the_deadline_while_others_are_answered(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.server.body_timeout_ms = 1_000).await;
    let creator = app.creator_with_cap("acme", 1_000, "block").await;
    let mut events = Vec::new();
    let mut webhooks = Vec::new();
    for _ in 0..150 {
        events.push(stall(&app, "/v1/events", Some(&creator.secret_key)).await);
        webhooks.push(stall(&app, "/v1/webhooks/stripe", None).await);
    }
    // With billing off, a webhook is refused before its body is read.
    for stream in &mut webhooks {
        let status = answer(stream, Duration::from_secs(5)).await;
        assert_eq!(status.as_deref(), Some("HTTP/1.1 409 Conflict"));
    }
    // The daemon answers others meanwhile.
    let started = Instant::now();
    let result = app
        .event(&creator, json!({"customer_id": "c1", "meter": "calls"}))
        .await;
    assert_eq!(result["decision"], "allow");
    assert!(started.elapsed() < Duration::from_secs(1));
    // Each stalled body is cut at its deadline.
    for stream in &mut events {
        let status = answer(stream, Duration::from_secs(10)).await;
        assert_eq!(status.as_deref(), Some("HTTP/1.1 408 Request Timeout"));
    }
    assert_eq!(app.used(&creator, "c1", "calls").await, 1);
}

async fn bodies_beyond_the_bytes_in_flight_are_refused_busy(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.server.max_body_bytes_in_flight = 4_096;
        config.server.body_timeout_ms = 5_000;
    })
    .await;
    let creator = app.creator_with_cap("acme", 1_000, "block").await;
    let mut stalled = stall(&app, "/v1/events", Some(&creator.secret_key)).await;
    stalled
        .write_all(&[b' '; 4_000])
        .await
        .expect("send part of the body");
    // Wait until the daemon holds those bytes: a request needing more is refused.
    let padded = format!(
        r#"{{"customer_id": "c1", "meter": "calls"{}}}"#,
        " ".repeat(500)
    );
    let mut refused = None;
    for _ in 0..50 {
        let response = app
            .post_raw("/v1/events", &creator.secret_key, padded.clone())
            .await;
        if response.status() == 503 {
            refused = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body = assert_error(
        refused.expect("a 503 while the bytes are held"),
        503,
        "busy",
    )
    .await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("bodies"));
    drop(stalled);
    // Once the stalled body is gone, its bytes are given back.
    let mut answered = None;
    for _ in 0..50 {
        let response = app
            .post_raw("/v1/events", &creator.secret_key, padded.clone())
            .await;
        if response.status() == 200 {
            answered = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        answered.is_some(),
        "the bytes of a closed connection came back"
    );
}

async fn encodings_repeated_keys_and_look_alike_ids_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let creator = app.creator_with_cap("acme", 1_000, "block").await;
    let key = &creator.secret_key;
    let url = format!("{}/v1/events", app.address);
    let event = r#"{"customer_id": "c1", "meter": "calls"}"#;
    for encoding in ["gzip", "br", "identity, gzip"] {
        let response = app
            .client
            .post(&url)
            .bearer_auth(key)
            .header("Content-Encoding", encoding)
            .body(event)
            .send()
            .await
            .unwrap();
        assert_error(response, 415, "unsupported_encoding").await;
    }
    // The scheme is case-insensitive; two Authorization headers are refused.
    let lower = app
        .client
        .post(&url)
        .header("Authorization", format!("bearer {key}"))
        .body(event)
        .send()
        .await
        .unwrap();
    ok_json(lower, 200).await;
    let twice = app
        .client
        .post(&url)
        .header("Authorization", format!("Bearer {key}"))
        .header("Authorization", "Bearer sk_other")
        .body(event)
        .send()
        .await
        .unwrap();
    assert_error(twice, 401, "invalid_key").await;
    // A key named twice in one object is refused, at any depth.
    let tier = r#"{"key": "pro", "name": "Pro", "price": {"amount": 1000, "currency": "usd",
        "interval": "month"}, "caps": {"calls": {"limit": 1}, "calls": {"limit": 1000}}}"#;
    let body = assert_error(
        app.post_raw("/v1/tiers", key, tier).await,
        422,
        "duplicate_key",
    )
    .await;
    assert!(body["error"]["message"].as_str().unwrap().contains("calls"));
    // Ids that look like others are refused, not rewritten.
    for id in ["c\u{202E}1", "c\u{200D}1", "\u{FEFF}c1"] {
        let event = json!({"customer_id": id, "meter": "calls"}).to_string();
        assert_error(
            app.post_raw("/v1/events", key, event).await,
            422,
            "invalid_id",
        )
        .await;
    }
    // A feature is a slug; a bad slug is not a bad key.
    assert_error(
        app.get("/v1/customers/c1/entitlements/Not%20A%20Slug", key)
            .await,
        422,
        "invalid_slug",
    )
    .await;
    let meter = json!({"key": "Bad Key", "aggregation": "sum", "reset": "month"});
    assert_error(
        app.post("/v1/meters", key, meter).await,
        422,
        "invalid_slug",
    )
    .await;
    // A rate limit of zero is not "unlimited".
    let patch = app
        .send(
            reqwest::Method::PATCH,
            "/v1/admin/creators/acme",
            crate::helpers::ADMIN_TOKEN,
            Some(&json!({"rate_limit": {"per_second": 0}})),
        )
        .await;
    assert_error(patch, 422, "invalid_rate_limit").await;
}

async fn error_messages_are_bounded_and_escaped(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let creator = app.creator_with_cap("acme", 1_000, "block").await;
    let field = format!("x\n2026-01-01 INFO forged\u{1b}[31m{}", "y".repeat(500_000));
    let mut event = json!({"customer_id": "c1", "meter": "calls"});
    event[field.as_str()] = json!(1);
    let body = event.to_string();
    let response = app.post_raw("/v1/events", &creator.secret_key, body).await;
    let text = response.text().await.unwrap();
    assert!(text.len() < 2_000, "an answer of {} bytes", text.len());
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["error"]["code"], "unknown_field");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(!message.contains('\n') && !message.contains('\u{1b}'));
    assert!(message.contains("\\n2026-01-01 INFO forged\\u{1b}[31m"));
}
