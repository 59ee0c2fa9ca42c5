//! A local fake of Stripe's API (wiremock) answering with Stripe's own example objects
//! (`tests/fixtures/stripe/objects.json`, copied from Stripe's openapi fixtures, MIT: see
//! `tests/fixtures/stripe/LICENSE`), with fresh ids and the fields the request set. Like
//! Stripe, it answers a repeated `Idempotency-Key` with the object made the first time.
//! Tests read back what the daemon sent: paths, headers, form fields, JSON bodies.
//!
//! Like an account, it keeps what it made (`Ledger`): products, prices and meters, which
//! updates change and which search and lists find, and the meter events taken, which its
//! meter event summaries add up (unless a test sets a customer's summary).

use std::collections::{BTreeMap, HashMap};
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
    ledger: Ledger,
    desk: SubscriptionDesk,
}

/// Makes objects of one type: the fixture, a fresh id, and what the form set.
struct Maker {
    kind: &'static str,
    prefix: &'static str,
    counter: Arc<AtomicUsize>,
    by_idempotency_key: Arc<Mutex<HashMap<String, Value>>>,
    ledger: Ledger,
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
        self.ledger.take(self.kind, &fields, &mut object);
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
        let ledger = Ledger::default();
        let made = |kind, prefix| Maker {
            kind,
            prefix,
            counter: Arc::default(),
            by_idempotency_key: replays.clone(),
            ledger: ledger.clone(),
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
        mount_lookups(&server, &ledger).await;
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
        let desk = SubscriptionDesk::default();
        Mock::given(path_regex(
            "^/v1/(customers|subscriptions|subscription_schedules|billing_portal/sessions)",
        ))
        .respond_with(desk.clone())
        .mount(&server)
        .await;
        FakeStripe {
            server,
            desk,
            ledger,
        }
    }

    /// A live subscription of `customer` (a Stripe customer id) to `prices` (recurring
    /// prices get quantity 1, the rest none), as Checkout would have made it; its period
    /// ends at `period_end`. Answers its id.
    pub fn subscribe(
        &self,
        customer: &str,
        prices: &[(&str, Option<u64>)],
        period_end: i64,
    ) -> String {
        self.desk.subscribe(customer, prices, period_end)
    }

    /// The subscription as the fake holds it now.
    pub fn subscription(&self, id: &str) -> Value {
        self.desk.state.lock().unwrap().objects[id].clone()
    }

    /// A subscription's price ids, in item order.
    pub fn subscription_prices(&self, id: &str) -> Vec<String> {
        self.subscription(id)["items"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["price"]["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Stripe starts the next phase of the subscription's schedule: the subscription now
    /// holds that phase's prices. Answers the subscription.
    pub fn start_next_phase(&self, subscription: &str) -> Value {
        let mut state = self.desk.state.lock().unwrap();
        let schedule = state.objects[subscription]["schedule"]
            .as_str()
            .unwrap()
            .to_string();
        let phase = state.objects[&schedule]["phases"][1].clone();
        let end = phase["end_date"].as_i64().unwrap_or(0);
        let items: Vec<Value> = phase["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                state.item(
                    item["price"].as_str().unwrap(),
                    item["quantity"].as_u64(),
                    end,
                )
            })
            .collect();
        let held = state.objects.get_mut(subscription).unwrap();
        held["items"]["data"] = json!(items);
        held.clone()
    }

    /// Gives a subscription a discount (as a promotion code at Checkout would).
    pub fn give_discount(&self, subscription: &str, discount: &str) {
        self.desk
            .state
            .lock()
            .unwrap()
            .objects
            .get_mut(subscription)
            .unwrap()["discounts"] = json!([discount]);
    }

    /// Sets a subscription's status (`active`, `past_due`, …), as Stripe's own dunning would.
    pub fn set_subscription_status(&self, id: &str, status: &str) {
        self.desk.state.lock().unwrap().objects.get_mut(id).unwrap()["status"] = json!(status);
    }

    /// Holds a customer an earlier database made (found by its metadata).
    pub fn hold_customer(&self, creator_slug: &str, customer_id: &str) -> String {
        let mut state = self.desk.state.lock().unwrap();
        let id = state.next_id("cus");
        let mut customer = fixture("customer");
        customer["id"] = json!(id);
        customer["metadata"] =
            json!({"staryer_creator": creator_slug, "staryer_customer_id": customer_id});
        state.objects.insert(id.clone(), customer);
        id
    }

    /// The Stripe customer held for a Staryer customer, if any.
    pub fn stripe_customer_of(&self, customer_id: &str) -> Option<String> {
        let state = self.desk.state.lock().unwrap();
        state
            .objects
            .values()
            .find(|o| {
                o["object"] == "customer" && o["metadata"]["staryer_customer_id"] == customer_id
            })
            .map(|o| o["id"].as_str().unwrap().to_string())
    }

    /// From now on, the meter event summaries of this Stripe customer answer `value`,
    /// whatever the events taken add up to (Stripe's view drifted from the reports).
    pub fn set_summary(&self, stripe_customer_id: &str, value: f64) {
        self.ledger
            .lock()
            .summaries
            .insert(stripe_customer_id.to_string(), value);
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

    /// The POSTs to `path` (creates, where a GET of the same path lists).
    pub async fn posts(&self, path: &str) -> Vec<Request> {
        let mut posts = self.requests(path).await;
        posts.retain(|r| r.method == "POST");
        posts
    }

    /// From now on, search finds nothing: Stripe's search lags behind a create (it is
    /// eventually consistent), and a retry must not count on it.
    pub fn search_lags(&self) {
        self.ledger.lock().search_lags = true;
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

/// What the fake account holds: the objects made, the meter events taken, and the
/// summaries a test set.
#[derive(Clone, Default)]
struct Ledger(Arc<Mutex<Holdings>>);

#[derive(Default)]
struct Holdings {
    /// Products, prices and meters, in the order made.
    objects: Vec<Value>,
    /// Meter events by identifier (Stripe takes an identifier once): event name, Stripe
    /// customer, value, timestamp.
    meter_events: BTreeMap<String, (String, String, f64, i64)>,
    /// Stripe customer -> the aggregated value its summaries answer instead.
    summaries: HashMap<String, f64>,
    /// Search finds nothing (`FakeStripe::search_lags`).
    search_lags: bool,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Holdings> {
        self.0.lock().unwrap()
    }

    /// Keeps what a create made, with the fields Stripe would set from its form.
    fn take(&self, kind: &str, fields: &HashMap<String, String>, object: &mut Value) {
        match kind {
            "product" | "price" | "billing.meter" => {
                let metadata: serde_json::Map<String, Value> = fields
                    .iter()
                    .filter_map(|(name, value)| {
                        let key = name.strip_prefix("metadata[")?.strip_suffix(']')?;
                        Some((key.to_string(), json!(value)))
                    })
                    .collect();
                object["metadata"] = Value::Object(metadata);
                object["active"] = json!(true);
                if kind == "price" {
                    for field in ["meter", "usage_type", "interval"] {
                        if let Some(value) = fields.get(&format!("recurring[{field}]")) {
                            object["recurring"][field] = json!(value);
                        }
                    }
                }
                self.lock().objects.push(object.clone());
            }
            "billing.meter_event" => {
                let event = (
                    fields["event_name"].clone(),
                    fields["payload[stripe_customer_id]"].clone(),
                    fields["payload[value]"].parse().unwrap(),
                    fields["timestamp"].parse().unwrap(),
                );
                let identifier = fields["identifier"].clone();
                self.lock().meter_events.entry(identifier).or_insert(event);
            }
            _ => {}
        }
    }

    /// The objects of a type that `keep` takes, in the order made.
    fn listed(&self, kind: &str, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.lock()
            .objects
            .iter()
            .filter(|o| o["object"] == kind && keep(o))
            .cloned()
            .collect()
    }
}

/// The query parameters of a request.
fn query(request: &Request) -> HashMap<String, String> {
    request.url.query_pairs().into_owned().collect()
}

/// Stripe's list object: the page after `starting_after`, at most `limit` long.
fn list(request: &Request, objects: Vec<Value>) -> ResponseTemplate {
    let params = query(request);
    let limit = params.get("limit").map_or(10, |l| l.parse().unwrap());
    let start = params
        .get("starting_after")
        .and_then(|after| objects.iter().position(|o| o["id"] == after.as_str()))
        .map_or(0, |at| at + 1);
    let page: Vec<Value> = objects.iter().skip(start).take(limit).cloned().collect();
    ResponseTemplate::new(200).set_body_json(json!({
        "object": "list",
        "data": page,
        "has_more": start + limit < objects.len(),
        "url": request.url.path(),
    }))
}

fn invalid(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({
        "error": {"type": "invalid_request_error", "message": message}
    }))
}

/// `metadata['k']:'v'` terms joined by ` AND `, and `active:'true'`: the part of Stripe's
/// search language the daemon speaks. `None` for anything else.
fn search_terms(query: &str) -> Option<Vec<(Option<String>, String)>> {
    query
        .split(" AND ")
        .map(|term| {
            let (field, value) = term.split_once(":'")?;
            let value = value.strip_suffix('\'')?.replace("\\'", "'");
            match field {
                "active" => Some((None, value)),
                _ => {
                    let key = field.strip_prefix("metadata['")?.strip_suffix("']")?;
                    Some((Some(key.to_string()), value))
                }
            }
        })
        .collect()
}

/// Search, lists, updates and event summaries over what the ledger holds, and the v2
/// meter event stream, whose events it takes.
async fn mount_lookups(server: &MockServer, ledger: &Ledger) {
    let held = ledger.clone();
    Mock::given(method("GET"))
        .and(path("/v1/products/search"))
        .respond_with(move |request: &Request| {
            let Some(terms) = query(request).get("query").and_then(|q| search_terms(q)) else {
                return invalid("the fake parses metadata['k']:'v' and active:'true' only");
            };
            let lags = held.lock().search_lags;
            let found = held.listed("product", |product| {
                !lags
                    && terms.iter().all(|(key, value)| match key {
                        Some(key) => product["metadata"][key] == value.as_str(),
                        None => product["active"] == (value == "true"),
                    })
            });
            ResponseTemplate::new(200).set_body_json(json!({
                "object": "search_result",
                "data": found,
                "has_more": false,
                "next_page": null,
                "url": "/v1/products/search",
            }))
        })
        .mount(server)
        .await;
    let held = ledger.clone();
    Mock::given(method("GET"))
        .and(path("/v1/prices"))
        .respond_with(move |request: &Request| {
            let params = query(request);
            let found = held.listed("price", |price| {
                params
                    .get("product")
                    .is_none_or(|p| price["product"] == p.as_str())
                    && params
                        .get("active")
                        .is_none_or(|a| price["active"] == (a == "true"))
            });
            list(request, found)
        })
        .mount(server)
        .await;
    let held = ledger.clone();
    Mock::given(method("GET"))
        .and(path("/v1/billing/meters"))
        .respond_with(move |request: &Request| {
            let params = query(request);
            let found = held.listed("billing.meter", |meter| {
                params
                    .get("status")
                    .is_none_or(|s| meter["status"] == s.as_str())
            });
            list(request, found)
        })
        .mount(server)
        .await;
    // Updates change the object and answer it (archive a price, rename a product).
    for (pattern, kind) in [
        ("^/v1/products/[^/]+$", "product"),
        ("^/v1/prices/[^/]+$", "price"),
    ] {
        let held = ledger.clone();
        Mock::given(method("POST"))
            .and(path_regex(pattern))
            .respond_with(move |request: &Request| {
                let id = request.url.path().rsplit('/').next().unwrap();
                let fields = form(request);
                let mut holdings = held.lock();
                let Some(object) = holdings.objects.iter_mut().find(|o| o["id"] == id) else {
                    return ResponseTemplate::new(200).set_body_json(fixture(kind));
                };
                if let Some(name) = fields.get("name") {
                    object["name"] = json!(name);
                }
                if let Some(active) = fields.get("active") {
                    object["active"] = json!(active == "true");
                }
                ResponseTemplate::new(200).set_body_json(object.clone())
            })
            .mount(server)
            .await;
    }
    // Deactivating a meter: it stops taking events and leaves the active list.
    let held = ledger.clone();
    Mock::given(method("POST"))
        .and(path_regex("^/v1/billing/meters/[^/]+/deactivate$"))
        .respond_with(move |request: &Request| {
            let id = request.url.path().split('/').nth(4).unwrap();
            let mut holdings = held.lock();
            let Some(meter) = holdings.objects.iter_mut().find(|o| o["id"] == id) else {
                return ResponseTemplate::new(404).set_body_json(json!({"error": {
                    "type": "invalid_request_error", "code": "resource_missing",
                    "message": format!("No such billing meter: '{id}'")}}));
            };
            meter["status"] = json!("inactive");
            ResponseTemplate::new(200).set_body_json(meter.clone())
        })
        .mount(server)
        .await;
    let held = ledger.clone();
    Mock::given(method("GET"))
        .and(path_regex("^/v1/billing/meters/[^/]+/event_summaries$"))
        .respond_with(move |request: &Request| {
            let params = query(request);
            let meter = request.url.path().split('/').nth(4).unwrap().to_string();
            let time = |name: &str| params.get(name).and_then(|t| t.parse::<i64>().ok());
            let (Some(customer), Some(start), Some(end)) =
                (params.get("customer"), time("start_time"), time("end_time"))
            else {
                return invalid("customer, start_time and end_time are required");
            };
            if start % 60 != 0 || end % 60 != 0 {
                return invalid("start_time and end_time must be aligned with minute boundaries");
            }
            let holdings = held.lock();
            let event_name = holdings
                .objects
                .iter()
                .find(|o| o["id"] == meter.as_str())
                .map(|o| o["event_name"].as_str().unwrap().to_string());
            let summed = holdings
                .meter_events
                .values()
                .filter(|(name, to, _, at)| {
                    Some(name) == event_name.as_ref() && to == customer && (start..end).contains(at)
                })
                .map(|(_, _, value, _)| value)
                .sum::<f64>();
            let mut summary = fixture("billing.meter_event_summary");
            summary["id"] = json!(format!("mtrusg_fake_{start}"));
            summary["meter"] = json!(meter);
            summary["start_time"] = json!(start);
            summary["end_time"] = json!(end);
            summary["aggregated_value"] =
                json!(holdings.summaries.get(customer).copied().unwrap_or(summed));
            list(request, vec![summary])
        })
        .mount(server)
        .await;
    let held = ledger.clone();
    Mock::given(method("POST"))
        .and(path("/v2/billing/meter_event_stream"))
        .respond_with(move |request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let mut holdings = held.lock();
            for event in body["events"].as_array().unwrap() {
                let at = chrono::DateTime::parse_from_rfc3339(event["timestamp"].as_str().unwrap())
                    .unwrap()
                    .timestamp();
                let taken = (
                    event["event_name"].as_str().unwrap().to_string(),
                    event["payload"]["stripe_customer_id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    event["payload"]["value"].as_str().unwrap().parse().unwrap(),
                    at,
                );
                let identifier = event["identifier"].as_str().unwrap().to_string();
                holdings.meter_events.entry(identifier).or_insert(taken);
            }
            ResponseTemplate::new(200).set_body_json(json!({}))
        })
        .mount(server)
        .await;
}

/// Customers, subscriptions, subscription schedules and portal sessions: objects that
/// later requests read and change, kept by id.
#[derive(Clone, Default)]
struct SubscriptionDesk {
    state: Arc<Mutex<DeskState>>,
}

#[derive(Default)]
struct DeskState {
    objects: HashMap<String, Value>,
    by_idempotency_key: HashMap<String, Value>,
    counter: usize,
}

impl DeskState {
    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_fake{}", self.counter)
    }

    fn item(&mut self, price: &str, quantity: Option<u64>, period_end: i64) -> Value {
        json!({"id": self.next_id("si"), "object": "subscription_item",
            "price": {"id": price, "object": "price"}, "quantity": quantity,
            "current_period_start": period_end - 30 * 86_400,
            "current_period_end": period_end})
    }
}

/// The values of `prefix[<n>][field]` form fields, by n in order.
fn indexed(fields: &HashMap<String, String>, prefix: &str) -> Vec<HashMap<String, String>> {
    let mut rows: std::collections::BTreeMap<usize, HashMap<String, String>> = Default::default();
    for (key, value) in fields {
        let Some(rest) = key.strip_prefix(&format!("{prefix}[")) else {
            continue;
        };
        let Some((n, field)) = rest.split_once("][") else {
            continue;
        };
        let Ok(n) = n.parse() else { continue };
        rows.entry(n)
            .or_default()
            .insert(field.trim_end_matches(']').to_string(), value.clone());
    }
    rows.into_values().collect()
}

impl SubscriptionDesk {
    fn subscribe(&self, customer: &str, prices: &[(&str, Option<u64>)], period_end: i64) -> String {
        let mut state = self.state.lock().unwrap();
        let id = state.next_id("sub");
        let items: Vec<Value> = prices
            .iter()
            .map(|(price, quantity)| state.item(price, *quantity, period_end))
            .collect();
        let mut subscription = fixture("subscription");
        for (field, value) in [
            ("id", json!(id)),
            ("customer", json!(customer)),
            ("status", json!("active")),
            ("cancel_at_period_end", json!(false)),
            ("cancel_at", Value::Null),
            ("canceled_at", Value::Null),
            ("ended_at", Value::Null),
            ("schedule", Value::Null),
            ("metadata", json!({})),
            ("discounts", json!([])),
            ("trial_end", Value::Null),
        ] {
            subscription[field] = value;
        }
        subscription["items"]["data"] = json!(items);
        state.objects.insert(id.clone(), subscription);
        id
    }

    fn not_found(id: &str) -> (u16, Value) {
        (
            404,
            json!({"error": {
            "type": "invalid_request_error", "code": "resource_missing",
            "message": format!("No such object: '{id}'")}}),
        )
    }

    fn answer(&self, request: &Request) -> (u16, Value) {
        let mut state = self.state.lock().unwrap();
        let fields = form(request);
        let segments: Vec<&str> = request
            .url
            .path()
            .trim_start_matches("/v1/")
            .split('/')
            .collect();
        let verb = request.method.as_str();
        match (verb, segments.as_slice()) {
            ("GET", ["customers", "search"]) => {
                let query = request
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "query")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let terms: Vec<(String, String)> = query
                    .split(" AND ")
                    .filter_map(|term| {
                        let (key, value) = term.strip_prefix("metadata['")?.split_once("']:'")?;
                        Some((
                            key.to_string(),
                            value.strip_suffix('\'')?.replace("\\'", "'"),
                        ))
                    })
                    .collect();
                let found: Vec<Value> = state
                    .objects
                    .values()
                    .filter(|o| o["object"] == "customer")
                    .filter(|o| terms.iter().all(|(k, v)| o["metadata"][k] == json!(v)))
                    .cloned()
                    .collect();
                (
                    200,
                    json!({"object": "search_result",
                    "data": found, "has_more": false, "next_page": null,
                    "url": "/v1/customers/search"}),
                )
            }
            ("POST", ["customers"]) => {
                let id = state.next_id("cus");
                let mut customer = fixture("customer");
                customer["id"] = json!(id);
                customer["email"] = json!(fields.get("email"));
                let metadata: HashMap<String, String> = fields
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((
                            k.strip_prefix("metadata[")?.strip_suffix(']')?.to_string(),
                            v.clone(),
                        ))
                    })
                    .collect();
                customer["metadata"] = json!(metadata);
                state.objects.insert(id, customer.clone());
                (200, customer)
            }
            ("DELETE", ["customers", id]) => match state.objects.remove(*id) {
                Some(_) => (
                    200,
                    json!({"id": id, "object": "customer", "deleted": true}),
                ),
                None => Self::not_found(id),
            },
            ("POST", ["billing_portal", "sessions"]) => {
                let id = state.next_id("bps");
                let mut session = fixture("billing_portal.session");
                session["id"] = json!(id);
                session["customer"] = json!(fields.get("customer"));
                session["return_url"] = json!(fields.get("return_url"));
                session["url"] = json!(format!("https://billing.stripe.com/p/session/{id}"));
                (200, session)
            }
            ("GET", ["subscriptions" | "subscription_schedules", id]) => {
                match state.objects.get(*id) {
                    Some(object) => (200, object.clone()),
                    None => Self::not_found(id),
                }
            }
            ("DELETE", ["subscriptions", id]) => {
                let Some(subscription) = state.objects.get_mut(*id) else {
                    return Self::not_found(id);
                };
                subscription["status"] = json!("canceled");
                (200, subscription.clone())
            }
            ("POST", ["subscriptions", id]) => {
                let Some(mut subscription) = state.objects.get(*id).cloned() else {
                    return Self::not_found(id);
                };
                let period_end = subscription["items"]["data"][0]["current_period_end"]
                    .as_i64()
                    .unwrap_or(0);
                let mut items: Vec<Value> = subscription["items"]["data"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for change in indexed(&fields, "items") {
                    if change.get("deleted").map(String::as_str) == Some("true") {
                        items.retain(|item| {
                            Some(item["id"].as_str().unwrap_or_default())
                                != change.get("id").map(String::as_str)
                        });
                    } else if let Some(price) = change.get("price") {
                        let quantity = change.get("quantity").and_then(|q| q.parse().ok());
                        items.push(state.item(price, quantity, period_end));
                    }
                }
                subscription["items"]["data"] = json!(items);
                if let Some(ending) = fields.get("cancel_at_period_end") {
                    subscription["cancel_at_period_end"] = json!(ending == "true");
                }
                if let Some(tier) = fields.get("metadata[staryer_tier]") {
                    subscription["metadata"]["staryer_tier"] = json!(tier);
                }
                state.objects.insert(id.to_string(), subscription.clone());
                (200, subscription)
            }
            ("POST", ["subscription_schedules"]) => {
                let Some(from) = fields.get("from_subscription") else {
                    return (
                        400,
                        json!({"error": {"type": "invalid_request_error",
                        "message": "from_subscription is required"}}),
                    );
                };
                let Some(subscription) = state.objects.get(from).cloned() else {
                    return Self::not_found(from);
                };
                let id = state.next_id("sub_sched");
                let items = subscription["items"]["data"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let end = items[0]["current_period_end"].as_i64().unwrap_or(0);
                let phase_items: Vec<Value> = items
                    .iter()
                    .map(|item| json!({"price": item["price"]["id"], "quantity": item["quantity"]}))
                    .collect();
                let mut schedule = fixture("subscription_schedule");
                schedule["id"] = json!(id);
                schedule["subscription"] = json!(from);
                // The phase carries what the subscription has: its discounts and trial.
                let discounts: Vec<Value> = subscription["discounts"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|id| json!({"coupon": null, "discount": id, "promotion_code": null}))
                    .collect();
                schedule["phases"] = json!([{"start_date": end - 30 * 86_400, "end_date": end,
                    "items": phase_items, "discounts": discounts,
                    "trial_end": subscription["trial_end"]}]);
                state.objects.get_mut(from.as_str()).unwrap()["schedule"] = json!(id);
                state.objects.insert(id, schedule.clone());
                (200, schedule)
            }
            ("POST", ["subscription_schedules", id, "release"]) => {
                let Some(mut schedule) = state.objects.get(*id).cloned() else {
                    return Self::not_found(id);
                };
                schedule["status"] = json!("released");
                if let Some(subscription) = schedule["subscription"].as_str() {
                    if let Some(held) = state.objects.get_mut(subscription) {
                        held["schedule"] = Value::Null;
                    }
                }
                state.objects.insert(id.to_string(), schedule.clone());
                (200, schedule)
            }
            ("POST", ["subscription_schedules", id]) => {
                let Some(mut schedule) = state.objects.get(*id).cloned() else {
                    return Self::not_found(id);
                };
                let mut phases: Vec<Value> = Vec::new();
                for n in 0.. {
                    let prefix = format!("phases[{n}]");
                    if !fields.keys().any(|k| k.starts_with(&prefix)) {
                        break;
                    }
                    let items: Vec<Value> = indexed(&fields, &format!("{prefix}[items]"))
                        .into_iter()
                        .map(|item| {
                            json!({"price": item.get("price"),
                            "quantity": item.get("quantity").and_then(|q| q.parse::<u64>().ok())})
                        })
                        .collect();
                    let date = |field: &str| {
                        fields
                            .get(&format!("{prefix}[{field}]"))
                            .and_then(|v| v.parse::<i64>().ok())
                    };
                    // Stripe fills in each phase's start: where the one before it ends.
                    let start = date("start_date")
                        .or_else(|| phases.last().and_then(|before| before["end_date"].as_i64()));
                    phases.push(json!({"start_date": start, "end_date": date("end_date"),
                        "items": items}));
                }
                schedule["phases"] = json!(phases);
                if let Some(end_behavior) = fields.get("end_behavior") {
                    schedule["end_behavior"] = json!(end_behavior);
                }
                state.objects.insert(id.to_string(), schedule.clone());
                (200, schedule)
            }
            _ => (
                404,
                json!({"error": {
                "type": "invalid_request_error", "message": "Unrecognized request URL"}}),
            ),
        }
    }
}

impl Respond for SubscriptionDesk {
    /// Like Stripe, a repeated `Idempotency-Key` answers what the first request made.
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let key = header(request, "idempotency-key").map(String::from);
        if let Some(made) = key.as_ref().and_then(|k| {
            self.state
                .lock()
                .unwrap()
                .by_idempotency_key
                .get(k)
                .cloned()
        }) {
            return ResponseTemplate::new(200)
                .insert_header("idempotent-replayed", "true")
                .set_body_json(made);
        }
        let (status, body) = self.answer(request);
        if let (Some(key), 200) = (key, status) {
            self.state
                .lock()
                .unwrap()
                .by_idempotency_key
                .insert(key, body.clone());
        }
        ResponseTemplate::new(status).set_body_json(body)
    }
}
