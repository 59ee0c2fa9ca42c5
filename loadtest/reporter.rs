//! How fast the usage reporter drains a backlog to Stripe, through v1 (one request per
//! report, paced at `stripe.meter_events_per_second`) and through the v2 meter event stream
//! (100 reports a request), against a local fake Stripe that answers at once: the daemon's
//! own cost of cutting, sending and marking reports, not Stripe's latency.
//!
//! `cargo run --release --example reporter -- [customers] [sqlite|postgres://…]`
//!
//! Each run: one creator with a connected account and an overage tier, `customers`
//! customers with Stripe ids, one batch of events giving each a whole unit to report, then
//! the time until every report is sent (read from `/metrics`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use staryer::clock::SystemClock;
use staryer::config::{Config, MeterEventTransport};
use staryer::startup::App;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ADMIN: &str = "adm_reporter_bench";

async fn fake_stripe() -> MockServer {
    let server = MockServer::start().await;
    for (route, body) in [
        ("/v1/products", json!({"id": "prod_bench"})),
        ("/v1/prices", json!({"id": "price_bench"})),
        ("/v1/billing/meters", json!({"id": "mtr_bench"})),
        (
            "/v1/billing/meter_events",
            json!({"object": "billing.meter_event", "identifier": "x"}),
        ),
        (
            "/v2/billing/meter_event_session",
            json!({"authentication_token": "tok", "expires_at": "2099-01-01T00:00:00Z"}),
        ),
        ("/v2/billing/meter_event_stream", json!({})),
    ] {
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex("^/v1/accounts/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "acct_bench"})))
        .mount(&server)
        .await;
    server
}

async fn call(
    client: &reqwest::Client,
    base: &str,
    verb: &str,
    path: &str,
    key: &str,
    body: Value,
) -> Value {
    let method = reqwest::Method::from_bytes(verb.as_bytes()).expect("a method");
    let response = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("the daemon answers");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.expect("JSON")
}

async fn sent_so_far(client: &reqwest::Client, base: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|line| line.starts_with("staryer_stripe_reports_sent_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One run; answers (reports, seconds to send them all).
async fn run(customers: usize, database_url: &str, transport: MeterEventTransport) -> (usize, f64) {
    let stripe = fake_stripe().await;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::defaults_in(data_dir.path());
    config.server.bind = "127.0.0.1:0".into();
    config.admin.token = ADMIN.into();
    config.database.url = database_url.into();
    config.stripe.secret_key = "sk_test_bench".into();
    config.stripe.api_base = stripe.uri();
    config.stripe.meter_events_base = stripe.uri();
    config.stripe.report_interval_ms = 100;
    config.stripe.meter_event_transport = transport;
    let app = App::build(config, Arc::new(SystemClock))
        .await
        .expect("the daemon builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    actix_rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    for _ in 0..400 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Fresh names per run, so that runs can share a PostgreSQL database.
    let run_id = format!("{}-{transport:?}", std::process::id()).to_lowercase();
    let slug = format!("bench-{run_id}");
    let creator = call(
        &client,
        &base,
        "POST",
        "/v1/admin/creators",
        ADMIN,
        json!({"slug": slug}),
    )
    .await;
    let key = creator["secret_key"].as_str().expect("a key").to_string();
    call(
        &client,
        &base,
        "POST",
        "/v1/meters",
        &key,
        json!({"key": "api", "aggregation": "sum", "reset": "month"}),
    )
    .await;
    call(
        &client,
        &base,
        "POST",
        "/v1/tiers",
        &key,
        json!({"key": "pro", "name": "Pro",
        "price": {"amount": 2900, "currency": "usd", "interval": "month"},
        "caps": {"api": {"limit": 1000, "on_exceed": "overage", "overage_price": 0.5}}}),
    )
    .await;
    call(
        &client,
        &base,
        "PUT",
        "/v1/billing/account",
        &key,
        json!({"account_id": format!("acct_bench_{}", run_id.replace('-', "_"))}),
    )
    .await;
    futures::stream::iter(0..customers)
        .map(|n| {
            let (client, base, key) = (&client, &base, &key);
            async move {
                call(
                    client,
                    base,
                    "PUT",
                    &format!("/v1/customers/c{n}"),
                    key,
                    json!({"tier": "pro", "stripe_customer_id": format!("cus_{n}")}),
                )
                .await
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;

    let before = sent_so_far(&client, &base).await;
    let started = Instant::now();
    for chunk in (0..customers).collect::<Vec<_>>().chunks(1_000) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|n| json!({"customer_id": format!("c{n}"), "meter": "api", "value": 2}))
            .collect();
        call(
            &client,
            &base,
            "POST",
            "/v1/events",
            &key,
            json!({"events": events}),
        )
        .await;
    }
    while sent_so_far(&client, &base).await - before < customers as f64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    handle.stop(true).await;
    (customers, elapsed)
}

#[actix_web::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let customers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let database = args.next().filter(|a| a != "sqlite").unwrap_or_default();
    let label = if database.is_empty() {
        "sqlite"
    } else {
        "postgres"
    };
    for (name, transport) in [
        ("v1", MeterEventTransport::V1),
        ("v2", MeterEventTransport::V2),
    ] {
        let (reports, seconds) = run(customers, &database, transport).await;
        println!(
            "{label} {name}: {reports} reports sent in {seconds:.2} s = {:.0} reports/s \
             (from the events' acknowledgement, incl. fold and cut)",
            reports as f64 / seconds
        );
    }
}
