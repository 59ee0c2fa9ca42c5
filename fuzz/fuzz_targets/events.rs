//! `POST /v1/events` bodies, parsed as the route parses them: whatever the bytes, the
//! parser answers an event or a clear refusal, never panics, and an accepted event holds
//! only what the contract allows.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use staryer::http::body::parse_json;
use staryer::meters::model::NewMeter;
use staryer::tenants::config::TenantConfig;
use staryer::usage::model::{EventsRequest, RawEventsBody, UsageEvent};
use staryer::usage::quantity::{MAX_UNITS, SCALE};

const NOW: i64 = 1_773_576_000;

static TENANT: LazyLock<TenantConfig> = LazyLock::new(|| {
    let meter: NewMeter =
        serde_json::from_str(r#"{"key": "calls", "aggregation": "sum", "reset": "month"}"#)
            .expect("a meter");
    TenantConfig::default().with_meter(meter.parse(NOW).expect("a valid meter"))
});

fuzz_target!(|data: &[u8]| {
    let request = match parse_json::<RawEventsBody>(data).and_then(RawEventsBody::into_request) {
        Ok(request) => request,
        Err(err) => return check_refusal(&err),
    };
    let events = match request {
        EventsRequest::Single(event) => vec![event],
        EventsRequest::Batch(events) => events,
    };
    for raw in events {
        match UsageEvent::parse(raw, &TENANT, NOW) {
            Ok(event) => {
                assert!((0..=MAX_UNITS * SCALE).contains(&event.value.micros()));
                let id_chars = event.customer_id.chars().count();
                assert!((1..=128).contains(&id_chars));
                assert!(!event.customer_id.chars().any(char::is_control));
            }
            Err(err) => check_refusal(&err),
        }
    }
});

/// A refusal is a client error whose message quotes the client's text only escaped and
/// cut short.
fn check_refusal(err: &staryer::error::ApiError) {
    assert!(err.status.is_client_error(), "{err:?}");
    assert!(!err.message.chars().any(char::is_control), "{err:?}");
    assert!(err.message.chars().count() <= 600, "{err:?}");
}
