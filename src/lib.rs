//! Staryer: a usage-metering and monetization daemon. Creators define meters and tiers;
//! their apps post usage events; Staryer answers each with allow, warn or block from
//! memory, and acknowledges counted events only once they are committed to the store.
//!
//! # Layout
//!
//! An event's path, by folder: `http` (routes, auth, bodies) → `usage` (parse, decide,
//! count) → `store` (group commit). Around it:
//!
//! - `config`, `startup`, `state` (what every handler reaches), `telemetry`, `error`,
//!   `clock`, `hashing`, `schema` (the OpenAPI schemas of constrained fields), `sealing`
//!   (secrets at rest), `outbound` (answers of outside services, read alike): the
//!   daemon's frame.
//! - `tenants`: each creator's live state, its actors, the key registry, start-up load.
//! - `creators`, `meters`, `tiers`, `customers`: one folder per concept, each with
//!   `model.rs` (types, parsing) and `routes.rs` (thin handlers).
//! - `billing`: Stripe Connect, as services its thin `routes` call: the account
//!   (`accounts`), tiers as prices (`catalog`, found again after a database is lost:
//!   `recovery`), Stripe customers, Checkout, a subscription's life (`subscriptions`:
//!   plan changes, cancel, portal; `dunning`), usage as meter events (`reporter`,
//!   checked by `reconcile`), webhooks, the creator's `settings`, and `tidy` for what
//!   deleted meters and tiers leave at Stripe.
//! - `embeds`, `experiments`, `sessions`: the creator's widgets on its own site (the
//!   creator's API, the browser's API under `/v1/embed`, `/embed.js`), A/B tests over
//!   their versions with their results, and the signed customer tokens that let a browser
//!   act as one customer.
//! - `outbox`: the durable outbox that tells the creator's world what happened, written
//!   with each cause and delivered with retries, and its channels: `notices` (email
//!   through Resend, in the creator's templates), `webhooks` (Standard Webhooks to the
//!   creator's endpoints), `analytics` (PostHog, with hourly usage summaries). `ai`: widget
//!   configs suggested by a model (OpenAI), saved unpublished.
//! - The browser faces: `dashboard` (the creator's team: `users`, their roles and
//!   sign-in), `portal` (a creator's customer, by a one-time link), `admin_ui` (the
//!   platform owner); `web` holds what they share (browser sessions and CSRF, the page
//!   frame, tables, SVG charts, the built-in stylesheet and script).
//! - Trust: `keys` (a creator's named keys: made, revoked, rolled), `audit` (who changed
//!   what, hash-chained, `staryer audit verify`), `privacy` (a customer's export and
//!   erase, and retention). Row-level isolation lives in the store (`begin_tenant`) and
//!   migration 0008; `sealing` keeps third-party secrets at rest.
//! - `openapi`: the generated API document (also the list of routes that `http::unrouted`
//!   answers 405 from); `docs`: the interactive reference at `/docs`, its assets vendored
//!   under `assets/docs/` and built in.
//! - `demo`, `health`: the `staryer demo` walkthrough and the `staryer health` check, two
//!   clients of a running daemon (`main.rs` holds the command line).

pub mod admin_ui;
pub mod ai;
pub mod analytics;
pub mod audit;
pub mod billing;
pub mod clock;
pub mod config;
pub mod creators;
pub mod customers;
pub mod dashboard;
pub mod demo;
pub mod docs;
pub mod embeds;
pub mod error;
pub mod experiments;
pub mod hashing;
pub mod health;
pub mod http;
pub mod keys;
pub mod meters;
pub mod notices;
pub mod openapi;
pub mod outbound;
pub mod outbox;
pub mod portal;
pub mod privacy;
pub mod schema;
pub mod sealing;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tenants;
pub mod tiers;
pub mod usage;
pub mod users;
pub mod web;
pub mod webhooks;
