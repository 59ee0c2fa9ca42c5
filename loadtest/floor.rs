//! The floor for the load test: a bare actix-web server with the daemon's worker count
//! that parses the same event JSON with the same types, and answers a fixed decision; and
//! a GET that answers a fixed widget answer of the daemon's size (a pricing table's). No
//! auth, no counters, no store: what HTTP and JSON alone cost on this machine.
//!
//! Any other request is answered `200 {"id": "fake", "status": 1}` at the same cost: the
//! load test points the integrations (Resend's `/emails`, PostHog's `/batch/`, a webhook
//! endpoint) here, so the daemon's outbox has services that answer at once.
//!
//! `cargo run --release --example floor -- 127.0.0.1:8090 2`

use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};
use staryer::http::body::{parse_json, Body};
use staryer::usage::decide::Decision;
use staryer::usage::model::{BatchResults, EventResult, EventsRequest, RawCheck, RawEventsBody};
use staryer::usage::quantity::Quantity;

fn fixed_result(customer_id: &str, meter: &str) -> EventResult {
    EventResult {
        customer_id: Arc::from(customer_id),
        meter: Arc::from(meter),
        decision: Decision::Allow,
        used: Quantity::from_units(1),
        limit: Some(Quantity::from_units(1_000_000)),
        remaining: Some(Quantity::from_units(999_999)),
        overage: false,
        duplicate: false,
    }
}

async fn events(Body(body): Body) -> HttpResponse {
    match parse_json::<RawEventsBody>(&body).and_then(RawEventsBody::into_request) {
        Ok(EventsRequest::Single(event)) => {
            HttpResponse::Ok().json(fixed_result(&event.customer_id, &event.meter))
        }
        Ok(EventsRequest::Batch(events)) => HttpResponse::Ok().json(BatchResults {
            results: events
                .iter()
                .map(|e| fixed_result(&e.customer_id, &e.meter))
                .collect(),
        }),
        Err(err) => actix_web::ResponseError::error_response(&err),
    }
}

async fn check(Body(body): Body) -> HttpResponse {
    match parse_json::<RawCheck>(&body) {
        Ok(query) => HttpResponse::Ok().json(fixed_result(&query.customer_id, &query.meter)),
        Err(err) => actix_web::ResponseError::error_response(&err),
    }
}

/// What the daemon answers a pricing table's widget under an experiment (one tier), byte
/// for byte in shape and close in size.
const WIDGET_ANSWER: &str = r#"{"embed":"pricing","kind":"pricing_table","version":2,"experiment":"headline","variant":"ship","config":{"tiers":["pro"],"texts":{"title":"Ship faster"},"theme":{},"success_url":"https://load.example/thanks","cancel_url":"https://load.example/pricing"},"tiers":[{"key":"pro","name":"Pro","price":{"amount":2900,"currency":"usd","interval":"month"},"caps":{"calls":{"limit":1000000000000,"warn_at":0.8,"on_exceed":"block"},"seats":{"limit":1000000000000,"warn_at":0.8,"on_exceed":"block"},"tokens":{"limit":1000000000000,"warn_at":0.8,"on_exceed":"block"}},"features":[]}],"meters":[{"key":"calls","name":"calls","unit":"units"},{"key":"tokens","name":"tokens","unit":"units"},{"key":"seats","name":"seats","unit":"units"}]}"#;

async fn widget() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(WIDGET_ANSWER)
}

/// What a service the daemon sends to answers: taken.
async fn service() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"id":"fake","status":1}"#)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:8090".into());
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(2);
    HttpServer::new(|| {
        App::new()
            .route("/v1/events", web::post().to(events))
            .route("/v1/check", web::post().to(check))
            .route("/v1/embed/{key}", web::get().to(widget))
            .default_service(web::to(service))
    })
    .workers(workers)
    .bind(bind)?
    .run()
    .await
}
