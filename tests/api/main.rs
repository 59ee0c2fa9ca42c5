//! Integration tests through HTTP against the real daemon: one binary, modules by concern.

mod helpers;

mod auth;
mod billing;
mod concurrency;
mod decisions;
mod deletes;
mod durability;
mod embeds;
mod experiments;
mod fold;
mod idempotency;
mod isolation;
mod openapi;
mod operator;
mod ops;
mod packaging;
mod periods;
mod sessions;
mod stripe_fake;
mod subscriptions;
mod validation;
