//! `POST /v1/events` and `POST /v1/check`: thin handlers that parse the body (borrowing
//! from it), check each event and hand them to the usage service. `GET /v1/usage/series`:
//! usage over time, from the store.

use actix_web::{get, post, web, HttpResponse};

use crate::error::{ApiError, ErrorBody};
use crate::http::auth::CreatorAuth;
use crate::http::body::{parse_json, Body};
use crate::state::AppState;
use crate::usage::model::{
    BatchResults, CheckQuery, EventResult, EventsAnswer, EventsRequest, RawCheck, RawEvent,
    RawEventsBody, UsageEvent,
};
use crate::usage::series::{Series, SeriesQuery, SeriesRequest};

/// Post one usage event, or a batch of up to 1,000. A 2xx answer means every counted event
/// is durable. A batch with any invalid event is refused whole (nothing counted).
#[utoipa::path(
    post, path = "/v1/events", tag = "usage",
    request_body(content = RawEventsBody, examples(
        ("one event" = (value = json!({"customer_id": "alice", "meter": "api_calls"}))),
        ("a batch" = (value = json!({"events": [
            {"customer_id": "bob", "meter": "api_calls", "idempotency_key": "evt-1"},
            {"customer_id": "bob", "meter": "tokens", "value": 1520.5}
        ]}))),
    )),
    responses(
        (status = 200, description = "One result for one event, `{\"results\": [...]}` in order for a batch",
            body = EventsAnswer),
        (status = 404, description = "`meter_not_found`", body = ErrorBody),
        (status = 422, description = "`negative_value`, `too_precise`, `value_too_large`, `invalid_id`, \
            `invalid_timestamp`, `timestamp_out_of_range`, `empty_batch`, `batch_too_large`, \
            `counter_overflow`", body = ErrorBody),
        (status = 503, description = "`overloaded`, `busy`: nothing was counted", body = ErrorBody),
    ),
    security(("secret_key" = []))
)]
#[post("/v1/events")]
pub async fn post_events(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    Body(body): Body,
) -> Result<HttpResponse, ApiError> {
    let request = parse_json::<RawEventsBody>(&body)?.into_request()?;
    let config = creator.tenant.config();
    let now = state.usage.now();
    let (raw, batch): (Vec<RawEvent>, bool) = match request {
        EventsRequest::Single(event) => (vec![event], false),
        EventsRequest::Batch(events) => (events, true),
    };
    let events = raw
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            UsageEvent::parse(event, &config, now).map_err(|e| {
                if batch {
                    e.at_index(index)
                } else {
                    e
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut results = state
        .usage
        .record(&creator.tenant, &config, &events, batch)
        .await?;
    Ok(HttpResponse::Ok().json(if batch {
        EventsAnswer::Batch(BatchResults { results })
    } else {
        // One event, one result.
        EventsAnswer::One(results.swap_remove(0))
    }))
}

/// The decision an event would get now; nothing is counted. Answers from memory, also
/// while the store is down.
#[utoipa::path(
    post, path = "/v1/check", tag = "usage",
    request_body = RawCheck,
    responses(
        (status = 200, body = EventResult),
        (status = 404, description = "`meter_not_found`", body = ErrorBody),
        (status = 422, description = "`negative_value`, `too_precise`, `value_too_large`, `invalid_id`",
            body = ErrorBody),
    ),
    security(("secret_key" = []))
)]
#[post("/v1/check")]
pub async fn post_check(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    Body(body): Body,
) -> Result<HttpResponse, ApiError> {
    let raw = parse_json::<RawCheck>(&body)?;
    let config = creator.tenant.config();
    let query = CheckQuery::parse(raw, &config)?;
    let result = state.usage.check(&creator.tenant, &config, &query)?;
    Ok(HttpResponse::Ok().json(result))
}

/// A meter's usage over time, from the stored hours: one customer's, or every customer's.
#[utoipa::path(get, path = "/v1/usage/series", tag = "usage", params(SeriesQuery),
    responses((status = 200, body = Series),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 404, description = "`meter_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_slug`, `invalid_id`", body = ErrorBody)),
    security(("secret_key" = [])))]
#[get("/v1/usage/series")]
pub async fn get_series(
    state: web::Data<AppState>,
    CreatorAuth(creator): CreatorAuth,
    query: web::Query<SeriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let request = SeriesRequest::parse(
        query.into_inner(),
        &creator.tenant.config(),
        state.usage.now(),
    )?;
    let series = request.run(&state.store, &creator.tenant.id).await?;
    Ok(HttpResponse::Ok().json(series))
}
