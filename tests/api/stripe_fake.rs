//! A local fake of Stripe's API (wiremock) answering with Stripe's own example objects
//! (`tests/fixtures/stripe/objects.json`, copied from Stripe's openapi fixtures, MIT: see
//! `tests/fixtures/stripe/LICENSE`), with fresh ids and the fields the request set. Like
//! Stripe, it answers a repeated `Idempotency-Key` with the object made the first time.
//! Tests read back what the daemon sent: paths, headers, form fields, JSON bodies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const PLATFORM_KEY: &str = "sk_test_platform";
pub const WEBHOOK_SECRET: &str = "whsec_test_secret";
/// The one account id the fake does not know.
pub const MISSING_ACCOUNT: &str = "acct_1Missing";

/// Stripe's example object of a type (`product`, `checkout.session`, …).
pub fn fixture(kind: &str) -> Value {
    static OBJECTS: OnceLock<Value> = OnceLock::new();
    OBJECTS
        .get_or_init(|| {
            serde_json::from_str(include_str!("../fixtures/stripe/objects.json"))
                .expect("the fixtures parse")
        })
        .get(kind)
        .unwrap_or_else(|| panic!("no fixture {kind}"))
        .clone()
}

/// The decoded form fields of a request (`tiers[0][up_to]` → `1000`).
pub fn form(request: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

pub fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

pub struct FakeStripe {
    pub server: MockServer,
}

/// Makes objects of one type: the fixture, a fresh id, and what the form set.
struct Maker {
    kind: &'static str,
    prefix: &'static str,
    counter: Arc<AtomicUsize>,
    by_idempotency_key: Arc<Mutex<HashMap<String, Value>>>,
}

impl Respond for Maker {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let key = header(request, "idempotency-key").map(String::from);
        if let Some(made) = key
            .as_ref()
            .and_then(|k| self.by_idempotency_key.lock().unwrap().get(k).cloned())
        {
            return ResponseTemplate::new(200)
                .insert_header("idempotent-replayed", "true")
                .set_body_json(made);
        }
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let mut object = fixture(self.kind);
        let fields = form(request);
        let id = format!("{}_fake{n}", self.prefix);
        // Objects Stripe names by id get a fresh one; a meter event has none.
        if object.get("id").is_some() {
            object["id"] = json!(id);
        }
        for field in [
            "name",
            "event_name",
            "identifier",
            "currency",
            "product",
            "mode",
        ] {
            if let Some(value) = fields.get(field) {
                object[field] = json!(value);
            }
        }
        if self.kind == "checkout.session" {
            object["url"] = json!(format!("https://checkout.stripe.com/c/pay/{id}"));
        }
        if let Some(key) = key {
            self.by_idempotency_key
                .lock()
                .unwrap()
                .insert(key, object.clone());
        }
        ResponseTemplate::new(200).set_body_json(object)
    }
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let server = MockServer::start().await;
        let replays = Arc::new(Mutex::new(HashMap::new()));
        let made = |kind, prefix| Maker {
            kind,
            prefix,
            counter: Arc::default(),
            by_idempotency_key: replays.clone(),
        };
        for (route, kind, prefix) in [
            ("/v1/products", "product", "prod"),
            ("/v1/prices", "price", "price"),
            ("/v1/billing/meters", "billing.meter", "mtr"),
            ("/v1/billing/meter_events", "billing.meter_event", "mevt"),
            ("/v1/checkout/sessions", "checkout.session", "cs"),
            ("/v1/accounts", "account", "acct"),
        ] {
            Mock::given(method("POST"))
                .and(path(route))
                .respond_with(made(kind, prefix))
                .mount(&server)
                .await;
        }
        // Updates answer the object (archive a price, rename a product).
        for (pattern, kind) in [
            ("^/v1/products/[^/]+$", "product"),
            ("^/v1/prices/[^/]+$", "price"),
        ] {
            Mock::given(method("POST"))
                .and(path_regex(pattern))
                .respond_with(ResponseTemplate::new(200).set_body_json(fixture(kind)))
                .mount(&server)
                .await;
        }
        // Any account is known, but for `MISSING_ACCOUNT`.
        Mock::given(method("GET"))
            .and(path(format!("/v1/accounts/{MISSING_ACCOUNT}")))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({
                "error": {"type": "invalid_request_error", "code": "account_invalid",
                    "message": "No such account"}
            })))
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex("^/v1/accounts/acct_[A-Za-z0-9_]+$"))
            .respond_with(ResponseTemplate::new(200).set_body_json(fixture("account")))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/account_links"))
            .respond_with(ResponseTemplate::new(200).set_body_json(fixture("account_link")))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v2/billing/meter_event_session"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": "mes_fake1",
                "object": "v2.billing.meter_event_session",
                "authentication_token": "mes_token_fake1",
                "created": "2026-03-15T12:00:00.000Z",
                "expires_at": "2099-01-01T00:00:00.000Z",
                "livemode": false,
            })))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v2/billing/meter_event_stream"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .mount(&server)
            .await;
        FakeStripe { server }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The next `times` requests to `route` answer `status` (with `Stripe-Should-Retry`
    /// when given) before the normal answers resume.
    pub async fn fail(&self, route: &str, times: u64, status: u16, should_retry: Option<bool>) {
        let mut answer = ResponseTemplate::new(status).set_body_json(json!({
            "error": {"type": "api_error", "code": "fake_failure", "message": "injected by the test"}
        }));
        if let Some(retry) = should_retry {
            answer = answer.insert_header("stripe-should-retry", retry.to_string());
        }
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(answer)
            .up_to_n_times(times)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// The next request to `route` answers 429 with `Retry-After: <secs>`.
    pub async fn throttle(&self, route: &str, retry_after_secs: u64) {
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("retry-after", retry_after_secs.to_string())
                    .set_body_json(json!({
                        "error": {"type": "invalid_request_error", "code": "rate_limit",
                            "message": "Too many requests"}
                    })),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// `GET /v2/core/events/{event_id}` answers a meter error report naming the meter
    /// event `identifier`, as Stripe's thin event's full body does.
    pub async fn meter_error_report(&self, event_id: &str, identifier: &str) {
        Mock::given(method("GET"))
            .and(path(format!("/v2/core/events/{event_id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": event_id,
                "object": "v2.core.event",
                "type": "v1.billing.meter.error_report_triggered",
                "created": "2026-03-15T12:00:00.000Z",
                "livemode": false,
                "related_object": {"id": "mtr_fake", "type": "billing.meter",
                    "url": "/v1/billing/meters/mtr_fake"},
                "data": {
                    "developer_message_summary": "There is 1 invalid event",
                    "validation_start": "2026-03-15T11:00:00.000Z",
                    "validation_end": "2026-03-15T12:00:00.000Z",
                    "reason": {
                        "error_count": 1,
                        "error_types": [{
                            "code": "meter_event_no_customer_defined",
                            "error_count": 1,
                            "sample_errors": [{
                                "error_message": "No customer found for the event",
                                "request": {"id": "req_fake", "identifier": identifier}
                            }]
                        }]
                    }
                }
            })))
            .mount(&self.server)
            .await;
    }

    /// The next meter event for this Stripe customer is refused (400, not to be retried).
    pub async fn refuse_customer(&self, stripe_customer_id: &str) {
        Mock::given(method("POST"))
            .and(path("/v1/billing/meter_events"))
            .and(wiremock::matchers::body_string_contains(stripe_customer_id))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "error": {"type": "invalid_request_error", "code": "resource_missing",
                    "message": "No such customer"}
            })))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// The next meter event request answers after `delay` (a report caught mid-flight).
    pub async fn slow_meter_events(&self, delay: Duration) {
        Mock::given(method("POST"))
            .and(path("/v1/billing/meter_events"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(fixture("billing.meter_event"))
                    .set_delay(delay),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// Every request received so far.
    pub async fn all_requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }

    pub async fn requests(&self, path: &str) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.url.path() == path)
            .collect()
    }

    /// Waits until at least `count` requests reached `path` (10 s at most) and answers them.
    pub async fn wait_for(&self, path: &str, count: usize) -> Vec<Request> {
        for _ in 0..400 {
            let seen = self.requests(path).await;
            if seen.len() >= count {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "{count} requests to {path} never came; saw {}",
            self.requests(path).await.len()
        );
    }
}
