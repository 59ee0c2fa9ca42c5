//! HTTP: the route table, extractors (the authenticated creator, bodies), the operations
//! endpoints and the answer to a request no route takes (`unrouted`: 405 or 404).
//! Handlers live with their domain (`meters/routes.rs`, …); the browser faces register
//! theirs (`dashboard::routes::register`, …).

pub mod auth;
pub mod body;
pub mod observe;
pub mod ops;
pub mod unrouted;

use actix_web::web as actix;

use crate::{
    admin_ui, ai, analytics, audit, billing, creators, customers, dashboard, docs, embeds,
    experiments, keys, meters, notices, outbox, portal, privacy, sessions, tiers, usage, users,
    web, webhooks,
};

/// Every route of the daemon. The hot routes come first: a request is matched against the
/// routes in order, and each route with a `{param}` costs a regex match.
pub fn routes(cfg: &mut actix::ServiceConfig) {
    cfg.service(usage::routes::post_events)
        .service(usage::routes::post_check)
        // Widgets' traffic, the other hot path: a prefix match, then three routes.
        .service(embeds::public::scope())
        .service(ops::healthz)
        .service(ops::readyz)
        .service(ops::metrics)
        .service(ops::openapi)
        .service(docs::routes::page)
        .service(docs::routes::asset)
        .service(creators::routes::create_creator)
        .service(creators::routes::list_creators)
        .service(creators::routes::update_creator)
        .service(creators::routes::stats)
        .service(meters::routes::create_meter)
        .service(meters::routes::list_meters)
        .service(meters::routes::get_meter)
        .service(meters::routes::delete_meter)
        .service(tiers::routes::create_tier)
        .service(tiers::routes::list_tiers)
        .service(tiers::routes::get_tier)
        .service(tiers::routes::update_tier)
        .service(tiers::routes::delete_tier)
        .service(customers::routes::list_customers)
        .service(usage::routes::get_series)
        .service(customers::routes::put_customer)
        .service(customers::routes::get_usage)
        .service(customers::routes::get_entitlement)
        .service(privacy::routes::export_customer)
        .service(privacy::routes::erase_customer)
        .service(billing::routes::get_account)
        .service(billing::routes::put_account)
        .service(billing::routes::start_onboarding)
        .service(billing::routes::create_checkout_session)
        .service(billing::routes::list_events)
        .service(billing::routes::list_reports)
        .service(billing::routes::retry_report)
        .service(billing::routes::get_settings)
        .service(billing::routes::put_settings)
        .service(billing::routes::cancel_subscription)
        .service(billing::routes::resume_subscription)
        .service(billing::routes::create_billing_portal)
        .service(billing::webhooks::receive)
        .service(creators::routes::get_profile)
        .service(creators::routes::update_profile)
        .service(embeds::script::serve)
        .service(embeds::routes::create_embed)
        .service(embeds::routes::list_embeds)
        .service(embeds::routes::get_embed)
        .service(embeds::routes::create_version)
        .service(embeds::routes::publish)
        .service(embeds::routes::snippet)
        .service(experiments::routes::create_experiment)
        .service(experiments::routes::list_experiments)
        .service(experiments::routes::get_experiment)
        .service(experiments::routes::start)
        .service(experiments::routes::stop)
        .service(experiments::routes::convert)
        .service(experiments::routes::results)
        .service(sessions::routes::create_session)
        .service(sessions::routes::revoke_session)
        .service(sessions::routes::rotate_key)
        .service(ai::routes::suggest)
        .service(ai::routes::usage)
        .service(keys::routes::list_keys)
        .service(keys::routes::create_key)
        .service(keys::routes::roll_publishable_key)
        .service(keys::routes::revoke_key)
        .service(keys::routes::mint_key)
        .service(users::routes::create_user)
        .service(audit::routes::list_audit_logs)
        .service(audit::routes::list_platform_audit_logs)
        .service(notices::routes::get_notices)
        .service(notices::routes::put_notices)
        .service(webhooks::routes::create_endpoint)
        .service(webhooks::routes::list_endpoints)
        .service(webhooks::routes::get_endpoint)
        .service(webhooks::routes::update_endpoint)
        .service(webhooks::routes::delete_endpoint)
        .service(webhooks::routes::list_deliveries)
        .service(webhooks::routes::redeliver)
        .service(analytics::routes::get_posthog)
        .service(analytics::routes::put_posthog)
        .service(analytics::routes::delete_posthog)
        .service(outbox::routes::list_messages)
        .service(outbox::routes::retry_message)
        .service(outbox::routes::admin_list_messages)
        .service(outbox::routes::admin_retry_message)
        // The browser faces: HTML pages and their assets.
        .service(web::assets::serve)
        .configure(dashboard::routes::register)
        .configure(portal::routes::register)
        .configure(admin_ui::routes::register);
}
