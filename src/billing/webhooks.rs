//! Stripe's webhooks: `POST /v1/webhooks/stripe`. The platform's endpoint receives the
//! events of every connected account; the event's `account` names the creator.
//!
//! A request is believed only with a valid `Stripe-Signature`: HMAC-SHA256 of
//! `<t>.<raw body>` under the webhook secret, matching any of the header's `v1` values
//! (Stripe sends several while a secret is being rolled), compared in constant time, with
//! `t` at most 300 s from now. Each event is recorded by id *after* its effect: a
//! redelivery of a recorded event answers 200 and does nothing, and an event whose
//! handling failed (or was cut short by a crash) is not recorded, so Stripe's redelivery
//! applies it; every effect is idempotent (putting a customer on the tier it is on keeps
//! its billing cycle). Until the daemon is ready, webhooks answer 503 and Stripe retries.
//!
//! Subscription events apply to the subscription the customer bought through Checkout,
//! and only in order: an event about another subscription, or older than the last one
//! applied (a completed checkout included), changes nothing. A creator's events are
//! applied one at a time, so two deliveries cannot interleave.
//!
//! Only the fields used are read (serde, lenient), so events from any API version parse.

use actix_web::{post, web, HttpRequest, HttpResponse};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::audit::model::{Actor, Who};
use crate::billing::catalog::overage_prices;
use crate::billing::checkout::ANONYMOUS_BUYER_TAG;
use crate::billing::dunning::GRACE_ENDED;
use crate::billing::{billing_off, Billing};
use crate::error::{ApiError, ErrorBody};
use crate::http::body::Body;
use crate::outbox::model::{announcement, PAYMENT_FAILED, SUBSCRIPTION_UPDATED};
use crate::state::AppState;
use crate::store::billing::{BillingEventRow, SubscriptionRow};
use crate::store::outbox::Announcement;
use crate::telemetry::metric_names;
use crate::tenants::registry::Creator;
use crate::usage::period::rfc3339;

/// Signatures older or newer than this are refused (Stripe's own default tolerance).
pub const TOLERANCE_SECS: i64 = 300;

/// Checks a `Stripe-Signature` header against the raw body.
pub fn verify_signature(
    header: &str,
    payload: &[u8],
    secret: &str,
    now: i64,
) -> Result<(), ApiError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => candidates.push(value),
            _ => {}
        }
    }
    let bad_header = || {
        ApiError::bad_request(
            "invalid_signature_header",
            "Stripe-Signature must carry t=<timestamp> and at least one v1=<signature>",
        )
    };
    let timestamp = timestamp.ok_or_else(bad_header)?;
    if candidates.is_empty() {
        return Err(bad_header());
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    let matches = candidates.iter().any(|candidate| {
        hex::decode(candidate).is_ok_and(|signature| mac.clone().verify_slice(&signature).is_ok())
    });
    if !matches {
        return Err(ApiError::bad_request(
            "invalid_signature",
            "no v1 signature matches the body under the webhook secret",
        ));
    }
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(ApiError::bad_request(
            "stale_signature",
            format!("the signature's timestamp is more than {TOLERANCE_SECS} s from now"),
        ));
    }
    Ok(())
}

/// A Stripe event, snapshot (v1: `data.object`, `account`, `created` in Unix seconds) or
/// thin (v2: `object: "v2.core.event"`, `context` naming the account, `created` in RFC
/// 3339, `related_object` instead of data, which is fetched when needed). Both are signed
/// alike.
#[derive(Debug)]
struct Event {
    id: String,
    kind: String,
    account: Option<String>,
    created: i64,
    /// The snapshot's object; for a thin event, its `related_object` (`id`, `type`).
    object: Value,
    thin: bool,
}

#[derive(Debug, Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    object: Option<String>,
    account: Option<String>,
    context: Option<String>,
    #[serde(default)]
    created: Value,
    data: Option<EventData>,
    related_object: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: Value,
}

impl Event {
    /// A Checkout that completed, paid or not yet (`completed`), or whose delayed payment
    /// cleared (`async_payment_succeeded`): its object is the session.
    fn is_checkout(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "checkout.session.completed" | "checkout.session.async_payment_succeeded"
        )
    }

    fn parse(payload: &[u8]) -> Result<Event, String> {
        let raw: RawEvent = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
        let thin = raw.object.as_deref() == Some("v2.core.event");
        let created = match &raw.created {
            Value::Number(seconds) => seconds.as_i64().ok_or("created is not whole seconds")?,
            Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| format!("created: {e}"))?
                .timestamp(),
            Value::Null => 0,
            _ => return Err("created is neither seconds nor RFC 3339".into()),
        };
        let object = match (thin, raw.data, raw.related_object) {
            (false, Some(data), _) => data.object,
            (false, None, _) => return Err("missing field `data`".into()),
            (true, _, related) => related.unwrap_or(Value::Null),
        };
        Ok(Event {
            id: raw.id,
            kind: raw.kind,
            account: if thin { raw.context } else { raw.account },
            created,
            object,
            thin,
        })
    }
}

/// A string field, or the `id` of an expanded object in its place.
fn id_field(object: &Value, field: &str) -> Option<String> {
    match &object[field] {
        Value::String(id) => Some(id.clone()),
        Value::Object(expanded) => expanded.get("id")?.as_str().map(String::from),
        _ => None,
    }
}

fn metadata(object: &Value, key: &str) -> Option<String> {
    object["metadata"][key].as_str().map(String::from)
}

/// The answer to Stripe.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookReceipt {
    pub received: bool,
    /// Whether the event changed something (false: kept as history only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handled: Option<bool>,
    /// The event id was received before; nothing was done again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
}

/// Receive a Stripe webhook (signed with the platform's webhook secret).
#[utoipa::path(post, path = "/v1/webhooks/stripe", tag = "billing",
    request_body(content = String, description = "Stripe's event, byte for byte as Stripe sent it (the signature covers the bytes)"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex hmac>,…")),
    responses((status = 200, description = "Received (also for a redelivery)", body = WebhookReceipt),
        (status = 400, description = "`missing_signature`, `invalid_signature_header`, \
            `invalid_signature`, `stale_signature`", body = ErrorBody),
        (status = 409, description = "`billing_off`, `webhooks_off`", body = ErrorBody),
        (status = 422, description = "`invalid_event`: signed, but not a Stripe event", body = ErrorBody),
        (status = 503, description = "`not_ready`, `store_unavailable`: Stripe retries",
            body = ErrorBody)))]
#[post("/v1/webhooks/stripe")]
pub async fn receive(
    state: web::Data<AppState>,
    StripeSignature(header): StripeSignature,
    Body(payload): Body,
) -> Result<HttpResponse, ApiError> {
    let billing = state.billing.as_ref().ok_or_else(billing_off)?;
    // Snapshot and thin events may come through two destinations, each with its secret.
    let now = billing.clock.now();
    let config = &billing.config;
    verify_signature(&header, &payload, &config.webhook_secret, now)
        .or_else(|err| match config.thin_webhook_secret.as_str() {
            "" => Err(err),
            thin => verify_signature(&header, &payload, thin, now),
        })
        .map_err(rejected)?;
    let event = Event::parse(&payload).map_err(|err| {
        rejected(ApiError::invalid(
            "invalid_event",
            format!("not a Stripe event: {err}"),
        ))
    })?;
    let duplicate = || {
        metrics::counter!(metric_names::STRIPE_WEBHOOKS, "outcome" => "duplicate").increment(1);
        Ok(HttpResponse::Ok().json(WebhookReceipt {
            received: true,
            handled: None,
            duplicate: Some(true),
        }))
    };
    if billing.store.billing_event_seen(&event.id).await? {
        return duplicate();
    }
    let creator = match &event.account {
        Some(account) => match billing.store.creator_by_stripe_account(account).await? {
            Some(id) => Some(state.registry.creator(&id).ok_or_else(|| {
                ApiError::unavailable("not_ready", "the creator is still loading; retry")
            })?),
            None => None,
        },
        None => None,
    };
    let mut record = event_record(&event, creator.as_ref(), billing.clock.now());
    let handled = match &creator {
        Some(creator) if event.thin => handle_thin(billing, creator, &event).await?,
        Some(creator) => {
            record.customer_id = customer_of(billing, creator, &event).await?;
            handle(billing, creator, &event, record.customer_id.as_deref()).await?
        }
        None => false,
    };
    // A widget's checkout converts for the experiment the buyer saw (once per session).
    let converted = match &creator {
        Some(creator) if event.is_checkout() => {
            crate::experiments::service::checkout_completed(&state, creator, &event.object).await?
        }
        _ => false,
    };
    let announcements = match &creator {
        Some(creator) => announcements(billing, creator, &event, &record).await?,
        None => Vec::new(),
    };
    if !billing
        .store
        .record_billing_event(&record, &announcements)
        .await?
    {
        // A concurrent delivery of the same event got there first; the effect is the same.
        return duplicate();
    }
    metrics::counter!(metric_names::STRIPE_WEBHOOKS, "outcome" => "handled").increment(1);
    Ok(HttpResponse::Ok().json(WebhookReceipt {
        received: true,
        handled: Some(handled || converted),
        duplicate: None,
    }))
}

/// The `Stripe-Signature` of a webhook, taken before its body is read: a request the
/// daemon would refuse anyway (billing off, no secret to verify with, no signature) is
/// answered without reading what it sends.
pub struct StripeSignature(String);

impl actix_web::FromRequest for StripeSignature {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(signature_header(req).map_err(rejected))
    }
}

fn signature_header(req: &HttpRequest) -> Result<StripeSignature, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered by startup");
    let billing = state.billing.as_ref().ok_or_else(billing_off)?;
    state.ensure_ready()?;
    if billing.config.webhook_secret.is_empty() {
        return Err(ApiError::conflict(
            "webhooks_off",
            "the daemon has no stripe.webhook_secret to verify webhooks with",
        ));
    }
    let header = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_signature",
                "the Stripe-Signature header is missing",
            )
        })?;
    Ok(StripeSignature(header.to_owned()))
}

/// Counts a refused webhook.
fn rejected(err: ApiError) -> ApiError {
    metrics::counter!(metric_names::STRIPE_WEBHOOKS, "outcome" => "rejected").increment(1);
    err
}

/// What the creator's world is told of a Stripe event about one of its customers: a
/// subscription's change, a failed payment (with the grace it started). Written with the
/// event's record, so a redelivered event tells nothing twice.
async fn announcements(
    billing: &Billing,
    creator: &Creator,
    event: &Event,
    record: &BillingEventRow,
) -> Result<Vec<Announcement>, ApiError> {
    let Some(customer_id) = record.customer_id.as_deref() else {
        return Ok(Vec::new());
    };
    let object = &event.object;
    let (event_type, data) = match event.kind.as_str() {
        kind if kind.starts_with("customer.subscription.") => (
            SUBSCRIPTION_UPDATED,
            json!({
                "customer_id": customer_id,
                "stripe_event": kind,
                "stripe_subscription_id": object["id"],
                "status": object["status"],
                "cancel_at_period_end": object["cancel_at_period_end"],
            }),
        ),
        "invoice.payment_failed" => {
            let known = billing
                .store
                .subscription(&creator.tenant.id, customer_id)
                .await?;
            let amount_due = object["amount_due"].as_i64();
            let currency = object["currency"].as_str().unwrap_or_default();
            (
                PAYMENT_FAILED,
                json!({
                    "customer_id": customer_id,
                    "invoice_id": object["id"],
                    "amount_due": amount_due,
                    "currency": currency,
                    "amount": amount_due.map(|minor| display_amount(minor, currency)),
                    "grace_ends_at": known.grace_ends_at.map(rfc3339),
                }),
            )
        }
        _ => return Ok(Vec::new()),
    };
    Ok(vec![announcement(
        &creator.tenant.id,
        format!("stripe:{}", event.id),
        event_type,
        data,
        event.created,
    )])
}

/// An amount in minor units as a person reads it (`12.50 USD`; `500 JPY` for currencies
/// without minor units).
fn display_amount(minor: i64, currency: &str) -> String {
    const ZERO_DECIMAL: &[&str] = &[
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
        "xaf", "xof", "xpf",
    ];
    let code = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&currency.to_ascii_lowercase().as_str()) {
        format!("{minor} {code}")
    } else {
        format!("{}.{:02} {code}", minor / 100, (minor % 100).abs())
    }
}

/// The event as the creator's billing history keeps it.
fn event_record(event: &Event, creator: Option<&Creator>, now: i64) -> BillingEventRow {
    let object = &event.object;
    let amount = match event.kind.as_str() {
        "invoice.paid" => object["amount_paid"].as_i64(),
        _ if event.is_checkout() => object["amount_total"].as_i64(),
        _ => object["amount_due"].as_i64(),
    };
    BillingEventRow {
        event_id: event.id.clone(),
        creator_id: creator.map(|c| c.tenant.id.to_string()),
        r#type: event.kind.clone(),
        customer_id: None,
        stripe_customer_id: id_field(object, "customer"),
        object_id: object["id"].as_str().map(String::from),
        amount,
        currency: object["currency"].as_str().map(String::from),
        status: object["status"].as_str().map(String::from),
        stripe_created: event.created,
        received_at: now,
    }
}

/// Applies a thin event; `Ok(false)` for one kept only as history. A meter error report
/// marks the reports Stripe names as failed, with Stripe's reason (listed by
/// `GET /v1/billing/reports`, retried by `POST …/retry` once the cause is fixed), and
/// counts the errors in `staryer_stripe_meter_errors_total`.
async fn handle_thin(
    billing: &Billing,
    creator: &Creator,
    event: &Event,
) -> Result<bool, ApiError> {
    if event.kind != "v1.billing.meter.error_report_triggered" {
        return Ok(false);
    }
    let account = event.account.as_deref().unwrap_or_default();
    let full = billing.client.retrieve_v2_event(account, &event.id).await?;
    let reason = &full["data"]["reason"];
    metrics::counter!(metric_names::STRIPE_METER_ERRORS)
        .increment(reason["error_count"].as_u64().unwrap_or(0));
    let mut marked = 0;
    for error_type in reason["error_types"].as_array().into_iter().flatten() {
        let code = error_type["code"].as_str().unwrap_or("meter_error");
        for sample in error_type["sample_errors"].as_array().into_iter().flatten() {
            let Some(identifier) = sample["request"]["identifier"].as_str() else {
                continue;
            };
            let message = sample["error_message"].as_str().unwrap_or_default();
            let error = format!("Stripe reported the meter event invalid ({code}): {message}");
            marked += usize::from(
                billing
                    .store
                    .mark_report_rejected(&creator.tenant.id, identifier, &error)
                    .await?,
            );
        }
    }
    tracing::warn!(creator = %creator.tenant.slug, event = %event.id, marked,
        summary = full["data"]["developer_message_summary"].as_str().unwrap_or_default(),
        "Stripe reported meter event errors");
    Ok(marked > 0)
}

/// The creator's own id for the customer the event is about: what Checkout and our
/// subscriptions carry in metadata, the Stripe customer id for an anonymous buyer's
/// checkout (`billing::checkout::Sale`), else the customer with that Stripe customer id;
/// none for an erased customer's Stripe Customer.
async fn customer_of(
    billing: &Billing,
    creator: &Creator,
    event: &Event,
) -> Result<Option<String>, ApiError> {
    let object = &event.object;
    // Events about an erased customer's Stripe Customer are history only: they must not
    // make the customer again.
    let stripe_customer = match object["object"].as_str() {
        Some("customer") => id_field(object, "id"),
        _ => id_field(object, "customer"),
    };
    if let Some(stripe_id) = stripe_customer {
        if billing
            .store
            .is_erased_stripe_customer(&creator.tenant.id, &stripe_id)
            .await?
        {
            return Ok(None);
        }
    }
    let named = object["client_reference_id"]
        .as_str()
        .map(String::from)
        .or_else(|| metadata(object, "staryer_customer_id"));
    if named.is_some() {
        return Ok(named);
    }
    // A widget's anonymous buyer becomes the customer named by its Stripe customer id.
    if event.is_checkout() && metadata(object, ANONYMOUS_BUYER_TAG).is_some() {
        return Ok(id_field(object, "customer"));
    }
    match id_field(object, "customer") {
        Some(stripe_id) => Ok(billing
            .store
            .customer_by_stripe_id(&creator.tenant.id, &stripe_id)
            .await?
            .map(|row| row.id)),
        None => Ok(None),
    }
}

/// Applies the event; `Ok(false)` for an event kept only as history.
async fn handle(
    billing: &Billing,
    creator: &Creator,
    event: &Event,
    customer_id: Option<&str>,
) -> Result<bool, ApiError> {
    let object = &event.object;
    let Some(customer_id) = customer_id else {
        return Ok(false);
    };
    let subscription_id = match event.kind.as_str() {
        _ if event.is_checkout() => id_field(object, "subscription"),
        _ => object["id"].as_str().map(String::from),
    };
    // Read, decide and write one event at a time, so two events cannot interleave.
    let _turn = billing.subscription_turn(&creator.tenant.id).await;
    let known = billing
        .store
        .subscription(&creator.tenant.id, customer_id)
        .await?;
    // Payments move the customer's standing, whatever order they come in (`dunning`).
    match event.kind.as_str() {
        "invoice.payment_failed" => {
            return billing
                .payment_failed(creator, customer_id, known, object)
                .await
        }
        "invoice.paid" => {
            return billing
                .payment_recovered(creator, customer_id, known, object)
                .await
        }
        _ => {}
    }
    let stale = known
        .subscription_event_at
        .is_some_and(|at| event.created < at);
    let other = event.kind.starts_with("customer.subscription.")
        && known.stripe_subscription_id.is_some()
        && known.stripe_subscription_id != subscription_id;
    if other || stale {
        tracing::info!(creator = %creator.tenant.slug, event = %event.id, other, stale,
            "an event that no longer decides the tier; kept as history");
        return Ok(false);
    }
    // Whether the event says the subscription is paid up, and the tier it pays for
    // (which a customer held back by dunning is not on).
    let mut paid_up = false;
    let mut paid_for = None;
    let tier = match event.kind.as_str() {
        _ if event.is_checkout() => {
            match metadata(object, "staryer_tier") {
                Some(tier) if object["mode"].as_str() == Some("subscription") => {
                    // Completed is not paid: a checkout whose first payment is still due
                    // (an asynchronous payment method) grants nothing yet; its subscription
                    // is remembered without moving the event clock (so an `active` update
                    // created earlier still applies), and `async_payment_succeeded` or the
                    // subscription becoming `active` grants the tier.
                    let paid = matches!(
                        object["payment_status"].as_str(),
                        Some("paid" | "no_payment_required")
                    );
                    if !paid {
                        let pending = SubscriptionRow {
                            stripe_subscription_id: subscription_id,
                            ..known
                        };
                        billing
                            .save_subscription(&creator.tenant.id, customer_id, pending)
                            .await?;
                        return Ok(false);
                    }
                    paid_up = true;
                    Some(tier)
                }
                _ => return Ok(false),
            }
        }
        "customer.subscription.updated"
        | "customer.subscription.paused"
        | "customer.subscription.resumed" => {
            // A subscription that is paid up (`active`, `trialing`), within its retries
            // (`past_due`) or just made (`incomplete`, whose checkout decided) keeps the
            // paid tier; paused, unpaid or ended ones put the customer back on the
            // default tier. A customer whose grace ran out stays on the default tier
            // until the subscription is paid up again (`dunning`).
            let status = object["status"].as_str();
            if matches!(
                status,
                Some("canceled" | "unpaid" | "incomplete_expired" | "paused")
            ) {
                None
            } else {
                let Some(subscribed) = subscribed_tier(billing, creator, object).await? else {
                    return Ok(false);
                };
                paid_up = matches!(status, Some("active" | "trialing"));
                paid_for = Some(subscribed.clone());
                let held_back = known.billing_status.as_deref() == Some(GRACE_ENDED) && !paid_up;
                Some(subscribed).filter(|_| !held_back)
            }
        }
        "customer.subscription.deleted" => None,
        _ => return Ok(false),
    };
    if let Some(key) = &tier {
        if creator.tenant.config().tier_id(key).is_none() {
            // Redelivery cannot bring the tier back: keep the event as history only.
            tracing::warn!(creator = %creator.tenant.slug, tier = %key, event = %event.id,
                "a Stripe event names a tier that does not exist; ignored");
            return Ok(false);
        }
    }
    if event.is_checkout() && tier.is_some() {
        let superseded = known
            .stripe_subscription_id
            .as_deref()
            .filter(|old| Some(*old) != subscription_id.as_deref());
        if let (Some(old), Some(account)) = (superseded, event.account.as_deref()) {
            billing.end_superseded(creator, account, old).await?;
        }
    }
    billing
        .assign_tier(
            creator,
            &Who::acting(Actor::Stripe),
            customer_id,
            tier.as_deref(),
            id_field(object, "customer"),
        )
        .await?;
    // A deleted subscription decides nothing any more; its time still orders late events.
    let deleted = event.kind == "customer.subscription.deleted";
    // Paid up, or ended (the tier fell already): in good standing. Held back by dunning:
    // still `grace_ended`. Otherwise as it was.
    let held_back = tier.is_none() && paid_for.is_some();
    let standing = if deleted || paid_up || (tier.is_none() && !held_back) {
        None
    } else {
        known.billing_status.clone()
    };
    let current = SubscriptionRow {
        stripe_subscription_id: subscription_id.filter(|_| !deleted),
        subscription_event_at: known.subscription_event_at.max(Some(event.created)),
        grace_ends_at: known.grace_ends_at.filter(|_| standing.is_some()),
        failed_invoice_id: known.failed_invoice_id.filter(|_| standing.is_some()),
        billing_status: standing,
        // A downgrade that waited is done once the subscription pays for it (or ends).
        pending_tier: known
            .pending_tier
            .filter(|pending| !deleted && paid_for.as_ref().or(tier.as_ref()) != Some(pending)),
        subscribed_tier: if deleted {
            None
        } else {
            paid_for.or(tier).or(known.subscribed_tier)
        },
    };
    billing
        .save_subscription(&creator.tenant.id, customer_id, current)
        .await?;
    Ok(true)
}

/// The tier a subscription is for: the tier whose current price is among its items, else
/// the tier our Checkout wrote into its metadata.
async fn subscribed_tier(
    billing: &Billing,
    creator: &Creator,
    subscription: &Value,
) -> Result<Option<String>, ApiError> {
    let prices: Vec<&str> = subscription["items"]["data"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["price"]["id"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let synced = billing.store.load_stripe_tiers(&creator.tenant.id).await?;
    let by_price = synced.iter().find(|row| {
        prices.contains(&row.price_id.as_str())
            || overage_prices(row)
                .values()
                .any(|id| prices.contains(&id.as_str()))
    });
    Ok(by_price
        .map(|row| row.tier_key.clone())
        .or_else(|| metadata(subscription, "staryer_tier")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, payload: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{payload}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn accepts_any_matching_v1_and_refuses_the_rest() {
        let body = r#"{"id":"evt_1"}"#;
        let good = sign("whsec_a", 1_000, body);
        let other = sign("whsec_b", 1_000, body);
        let ok = |header: &str| verify_signature(header, body.as_bytes(), "whsec_a", 1_100);
        assert!(ok(&format!("t=1000,v1={good}")).is_ok());
        assert!(ok(&format!("t=1000,v1={other},v1={good},v0=abc")).is_ok());
        assert_eq!(
            ok(&format!("t=1000,v1={other}")).unwrap_err().code,
            "invalid_signature"
        );
        assert_eq!(ok("t=1000,v1=zz").unwrap_err().code, "invalid_signature");
        assert_eq!(
            ok(&format!("v1={good}")).unwrap_err().code,
            "invalid_signature_header"
        );
        assert_eq!(ok("t=1000").unwrap_err().code, "invalid_signature_header");
        let tampered = verify_signature(
            &format!("t=1000,v1={good}"),
            br#"{"id":"evt_2"}"#,
            "whsec_a",
            1_100,
        );
        assert_eq!(tampered.unwrap_err().code, "invalid_signature");
    }

    #[test]
    fn tolerance_is_300_seconds_either_way() {
        let body = "{}";
        for (offset, accepted) in [
            (-301, false),
            (-300, true),
            (0, true),
            (300, true),
            (301, false),
        ] {
            let t = 10_000 + offset;
            let header = format!("t={t},v1={}", sign("s", t, body));
            let result = verify_signature(&header, body.as_bytes(), "s", 10_000);
            assert_eq!(result.is_ok(), accepted, "offset {offset}");
            if !accepted {
                assert_eq!(result.unwrap_err().code, "stale_signature");
            }
        }
    }
}
