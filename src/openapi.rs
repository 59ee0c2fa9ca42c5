//! The OpenAPI 3 document of the whole API, generated from the handlers' annotations and
//! the request/response types, served at `GET /openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{billing, creators, customers, error, http, meters, tenants, tiers, usage};

#[derive(OpenApi)]
#[openapi(
    info(title = "Staryer", description = "Usage metering and monetization: allow/warn/block decisions in memory, durable counts."),
    paths(
        http::ops::healthz, http::ops::readyz, http::ops::metrics, http::ops::openapi,
        creators::routes::create_creator, creators::routes::list_creators,
        creators::routes::update_creator, creators::routes::stats,
        meters::routes::create_meter, meters::routes::list_meters, meters::routes::get_meter,
        tiers::routes::create_tier, tiers::routes::list_tiers, tiers::routes::get_tier,
        tiers::routes::update_tier,
        customers::routes::put_customer, customers::routes::get_usage,
        customers::routes::get_entitlement,
        usage::routes::post_events, usage::routes::post_check,
        billing::routes::get_account, billing::routes::put_account,
        billing::routes::start_onboarding, billing::routes::create_checkout_session,
        billing::routes::list_events, billing::routes::list_reports,
        billing::routes::retry_report,
        billing::webhooks::receive,
    ),
    components(schemas(
        error::ErrorBody, error::ErrorDetail, tenants::registry::RateLimit,
        usage::model::EventResult, usage::model::BatchResults,
    )),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, what) in [
            ("secret_key", "A creator's secret key (sk_…)"),
            ("admin_token", "The platform owner's admin token"),
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
