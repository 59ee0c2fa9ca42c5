//! Integration tests through HTTP against the real daemon: one binary, modules by concern.

mod helpers;

mod ai;
mod analytics;
mod auth;
mod billing;
mod concurrency;
mod dashboards;
mod decisions;
mod deletes;
mod durability;
mod embeds;
mod experiments;
mod fold;
mod hostile;
mod idempotency;
mod isolation;
mod notices;
mod openapi;
mod operator;
mod ops;
mod outgoing_webhooks;
mod packaging;
mod periods;
mod privacy;
mod sessions;
mod stripe_fake;
mod subscriptions;
mod trust;
mod validation;
mod web_client;
