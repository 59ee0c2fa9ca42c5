//! The OpenAPI 3 document of the whole API, generated from the handlers' annotations and
//! the request/response types, served at `GET /openapi.json` and browsable at `/docs`. It
//! is also the daemon's one list of its routes: a request on a known path with another
//! method answers 405 with the path's methods from here (`http::unrouted`).
//!
//! Handlers list only the answers their own code gives. The answers of the extractors
//! (the key, the body, the query string) are added to every operation that uses them by
//! `CommonResponses`, from what the operation declares: its security scheme, its request
//! body, its query parameters. No handler can forget them, and no two list them apart.

use std::sync::OnceLock;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::Required;
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::{
    ai, analytics, audit, billing, creators, customers, docs, embeds, error, experiments, http,
    keys, meters, notices, outbox, privacy, sessions, tenants, tiers, usage, users, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Staryer", description = "Usage metering and monetization: allow/warn/block decisions in memory, durable counts. \
        Every error answers `{\"error\": {\"code\", \"message\"}}`; match on `code`. \
        A path with a method it does not serve answers 405 `method_not_allowed` with `Allow`."),
    paths(
        http::ops::healthz, http::ops::readyz, http::ops::metrics, http::ops::openapi,
        docs::routes::page, docs::routes::asset,
        creators::routes::create_creator, creators::routes::list_creators,
        creators::routes::update_creator, creators::routes::stats,
        meters::routes::create_meter, meters::routes::list_meters, meters::routes::get_meter,
        meters::routes::delete_meter,
        tiers::routes::create_tier, tiers::routes::list_tiers, tiers::routes::get_tier,
        tiers::routes::update_tier, tiers::routes::delete_tier,
        customers::routes::put_customer, customers::routes::get_usage,
        customers::routes::get_entitlement, customers::routes::list_customers,
        usage::routes::get_series,
        privacy::routes::export_customer, privacy::routes::erase_customer,
        usage::routes::post_events, usage::routes::post_check,
        billing::routes::get_account, billing::routes::put_account,
        billing::routes::start_onboarding, billing::routes::create_checkout_session,
        billing::routes::list_events, billing::routes::list_reports,
        billing::routes::retry_report,
        billing::routes::get_settings, billing::routes::put_settings,
        billing::routes::cancel_subscription, billing::routes::resume_subscription,
        billing::routes::create_billing_portal,
        billing::webhooks::receive,
        creators::routes::get_profile, creators::routes::update_profile,
        embeds::routes::create_embed, embeds::routes::list_embeds, embeds::routes::get_embed,
        embeds::routes::create_version, embeds::routes::publish, embeds::routes::snippet,
        embeds::script::serve,
        embeds::public::view, embeds::public::event, embeds::public::checkout,
        experiments::routes::create_experiment, experiments::routes::list_experiments,
        experiments::routes::get_experiment, experiments::routes::start,
        experiments::routes::stop, experiments::routes::convert, experiments::routes::results,
        sessions::routes::create_session, sessions::routes::revoke_session,
        sessions::routes::rotate_key,
        ai::routes::suggest, ai::routes::usage,
        notices::routes::get_notices, notices::routes::put_notices,
        webhooks::routes::create_endpoint, webhooks::routes::list_endpoints,
        webhooks::routes::get_endpoint, webhooks::routes::update_endpoint,
        webhooks::routes::delete_endpoint, webhooks::routes::list_deliveries,
        webhooks::routes::redeliver,
        analytics::routes::get_posthog, analytics::routes::put_posthog,
        analytics::routes::delete_posthog,
        outbox::routes::list_messages, outbox::routes::retry_message,
        outbox::routes::admin_list_messages, outbox::routes::admin_retry_message,
        keys::routes::list_keys, keys::routes::create_key, keys::routes::revoke_key,
        keys::routes::roll_publishable_key, users::routes::create_user, keys::routes::mint_key,
        audit::routes::list_audit_logs, audit::routes::list_platform_audit_logs,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail, tenants::registry::RateLimit)),
    modifiers(&SecuritySchemes, &CommonResponses, &PathParametersRequired, &Preflights),
)]
pub struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::openapi)
}

/// The document as served.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_json()
            .expect("the OpenAPI document serializes")
    })
}

/// A path's operations with their methods.
pub fn operations(item: &PathItem) -> impl Iterator<Item = (&'static str, &Operation)> {
    [
        ("GET", &item.get),
        ("PUT", &item.put),
        ("POST", &item.post),
        ("PATCH", &item.patch),
        ("DELETE", &item.delete),
        ("HEAD", &item.head),
        ("OPTIONS", &item.options),
        ("TRACE", &item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation.as_ref()?)))
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.patch,
        &mut item.delete,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

const SECRET_KEY: &str = "secret_key";
const ADMIN_TOKEN: &str = "admin_token";
const PUBLISHABLE_KEY: &str = "publishable_key";

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, what) in [
            (SECRET_KEY, "A creator's secret key (sk_…)"),
            (ADMIN_TOKEN, "The platform owner's admin token"),
            (
                PUBLISHABLE_KEY,
                "A creator's publishable key (pk_…), for widgets in browsers; also taken as \
                 `?key=`",
            ),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(what))
                        .build(),
                ),
            );
        }
    }
}

/// Adds the extractors' answers to every operation that uses them (see the module note).
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for operation in openapi.paths.paths.values_mut().flat_map(operations_mut) {
            for (status, codes) in common_answers(operation) {
                add_answer(operation, status, codes);
            }
            for (status, answer) in operation.responses.responses.iter_mut() {
                if let (RefOr::T(answer), "429" | "503") = (answer, status.as_str()) {
                    with_retry_after(answer);
                }
            }
        }
    }
}

/// The public embed API answers CORS preflights (`OPTIONS`) on each of its paths
/// (`embeds::cors`).
struct Preflights;

impl Modify for Preflights {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::OperationBuilder;
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/embed/") {
                continue;
            }
            // A preflight answers for any path segment: its parameters are plain strings.
            let parameters = item
                .get
                .iter()
                .chain(item.post.iter())
                .flat_map(|operation| operation.parameters.iter().flatten())
                .filter(|parameter| parameter.parameter_in == ParameterIn::Path)
                .map(|parameter| {
                    let mut plain = parameter.clone();
                    plain.schema = Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::String)
                            .into(),
                    );
                    plain
                })
                .collect::<Vec<_>>();
            let forbidden = ResponseBuilder::new()
                .description("`origin_not_allowed`: the creator does not allow the `Origin`")
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build();
            item.options = Some(
                OperationBuilder::new()
                    .tag("embed (browser)")
                    .summary(Some("CORS preflight"))
                    .parameters(Some(parameters))
                    .response(
                        "204",
                        ResponseBuilder::new().description(
                            "What a widget may send: methods, headers (with the \
                             `Access-Control-Allow-Origin` of an allowed origin)",
                        ),
                    )
                    .response("403", forbidden)
                    .build(),
            );
        }
    }
}

/// OpenAPI requires path parameters to say `required: true`; utoipa leaves it out of
/// those whose schema a parser gives (`schema_with`).
struct PathParametersRequired;

impl Modify for PathParametersRequired {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for parameter in openapi
            .paths
            .paths
            .values_mut()
            .flat_map(operations_mut)
            .flat_map(|operation| operation.parameters.iter_mut().flatten())
            .filter(|parameter| parameter.parameter_in == ParameterIn::Path)
        {
            parameter.required = Required::True;
        }
    }
}

/// The statuses an operation's extractors can answer, each with its codes.
fn common_answers(operation: &Operation) -> Vec<(&'static str, &'static str)> {
    let secured_by = |scheme: &str| {
        let required = SecurityRequirement::new(scheme, Vec::<String>::new());
        operation.security.iter().flatten().any(|r| *r == required)
    };
    let mut answers = Vec::new();
    if secured_by(PUBLISHABLE_KEY) {
        answers.extend([
            (
                "401",
                "`missing_key` (no `?key=` nor `Authorization` header), `invalid_key`",
            ),
            (
                "403",
                "`wrong_key_kind`: a key other than a publishable one; `origin_not_allowed`",
            ),
            ("503", "`not_ready` (loading at start)"),
        ]);
    }
    if secured_by(SECRET_KEY) || secured_by(ADMIN_TOKEN) {
        answers.extend([
            (
                "401",
                "`missing_key` (no `Authorization` header), `invalid_key` (not `Bearer <key>`, or no such key)",
            ),
            ("403", "`wrong_key_kind`: a valid key of another kind"),
            (
                "503",
                "`not_ready` (loading the counters at start), `store_unavailable`",
            ),
        ]);
    }
    if secured_by(SECRET_KEY) {
        answers.push(("429", "`rate_limited`: the key's rate limit"));
    }
    if let Some(body) = &operation.request_body {
        answers.extend([
            ("400", "`unreadable_body`"),
            ("408", "`body_timeout`: past `server.body_timeout_ms`"),
            ("413", "`payload_too_large`: past `server.max_body_bytes`"),
            (
                "415",
                "`unsupported_encoding`: a body with a `Content-Encoding`",
            ),
            (
                "503",
                "`busy`: bodies being read hold `server.max_body_bytes_in_flight` bytes",
            ),
        ]);
        if body.content.contains_key("application/json") {
            answers.extend([
                ("400", "`malformed_json`: the body is not JSON"),
                (
                    "422",
                    "`invalid_body` (not an object), `unknown_field`, `missing_field`, \
                     `invalid_value` (the message names the field), `duplicate_key`",
                ),
            ]);
        }
    }
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Query);
    if has_query {
        answers.push(("400", "`invalid_query`: a query parameter not of its type"));
    }
    answers
}

/// Adds `codes` to the operation's answer for `status`: a new error answer, or more codes
/// in the description of the one the handler declared.
fn add_answer(operation: &mut Operation, status: &str, codes: &str) {
    let answers = &mut operation.responses.responses;
    match answers.get_mut(status) {
        Some(RefOr::T(answer)) => {
            if answer.description.is_empty() {
                answer.description = codes.to_string();
            } else if !answer.description.contains(codes) {
                answer.description = format!("{}; {codes}", answer.description);
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let answer = ResponseBuilder::new()
                .description(codes)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build();
            answers.insert(status.to_string(), RefOr::T(answer));
        }
    }
}

/// 429 and 503 answers say when to retry (`ApiError` sets it on both).
fn with_retry_after(answer: &mut Response) {
    let seconds = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::Integer)
        .minimum(Some(1));
    answer.headers.insert(
        "Retry-After".to_string(),
        HeaderBuilder::new()
            .schema(seconds)
            .description(Some("Seconds to wait before retrying"))
            .build(),
    );
}
