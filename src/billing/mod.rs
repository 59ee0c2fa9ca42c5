//! Billing through Stripe Connect: a creator's tiers become Products and Prices on its
//! connected account (`catalog`), its customers become Stripe Customers (`customers`) and
//! buy them through Checkout (`checkout`), their subscriptions change tier, end and resume
//! (`subscriptions`), their usage goes out as Billing Meter events exactly once
//! (`reporter`) and is checked against what Stripe counted (`reconcile`), Stripe's
//! webhooks move customers between tiers (`webhooks`), a failed payment runs its
//! course (`dunning`), and deleted meters and tiers have their Stripe objects put away
//! (`tidy`). The creator's choices are `settings`; `routes`
//! are the HTTP handlers over all of it.
//!
//! Every call for a creator carries its connected account (`Stripe-Account`), and every
//! create carries an `Idempotency-Key` derived from what is being made, so a retry after a
//! lost answer returns the object made the first time instead of a second one. The store
//! is the memory of what was made (`store::billing`); Stripe is searched and listed only
//! before a create, for an object made earlier that the store does not know of (a new
//! database: `recovery`, `customers`), and asked for its meter event summaries, which `reconcile` compares with
//! what was reported.
//!
//! With no `stripe.secret_key` this module is absent (`AppState::billing` is `None`): the
//! billing endpoints answer 409 `billing_off` and nothing else changes.

pub mod accounts;
pub mod catalog;
pub mod checkout;
pub mod client;
pub mod customers;
pub mod dunning;
pub mod reconcile;
pub mod recovery;
pub mod reporter;
pub mod routes;
pub mod settings;
pub mod subscriptions;
pub mod tidy;
pub mod webhooks;

use std::sync::Arc;

use dashmap::DashMap;

use crate::clock::SharedClock;
use crate::config::StripeConfig;
use crate::error::ApiError;
use crate::store::Store;

use client::StripeClient;

/// A lock per creator, taken with `turn`.
type Turns = Arc<DashMap<Arc<str>, Arc<tokio::sync::Mutex<()>>>>;

/// Waits for the creator's turn: its changes of one kind happen one at a time.
async fn turn(turns: &Turns, creator_id: &Arc<str>) -> tokio::sync::OwnedMutexGuard<()> {
    let lock = turns.entry(creator_id.clone()).or_default().clone();
    lock.lock_owned().await
}

/// What the billing handlers and the reporter share.
#[derive(Clone)]
pub struct Billing {
    pub client: StripeClient,
    pub store: Store,
    pub clock: SharedClock,
    pub config: Arc<StripeConfig>,
    /// One catalog sync at a time per creator (`catalog`).
    sync_turns: Turns,
    /// One change of a creator's subscriptions at a time: a webhook's effect, a plan
    /// change, a cancel or resume, a grace period's end (each reads, asks Stripe, decides
    /// and writes the customer's subscription row).
    subscription_turns: Turns,
    /// Refusals so far per catalog idempotency key (`catalog`).
    refused_keys: Arc<DashMap<String, u32>>,
    /// (creator id, tier key) -> (background sync failures in a row, when to try next)
    /// (`catalog`).
    sync_backoff: Arc<DashMap<(String, String), (u32, i64)>>,
    /// (creator id, customer id) -> billing status, for customers not in good standing
    /// (`dunning`).
    standings: Arc<DashMap<(String, String), String>>,
}

/// How long a retry of the same request reuses the first request's Stripe object
/// (checkout session, account link) when the caller sends no `Idempotency-Key`.
pub const RETRY_WINDOW_SECS: i64 = 600;

/// An idempotency key for a request Stripe should answer once: `staryer:<what>:` and a
/// digest of the parts that make it (so a key never carries a customer's id or a URL).
pub fn request_key(what: &str, parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for part in parts {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part.as_bytes());
    }
    format!("staryer:{what}:{}", hex::encode(&digest.finalize()[..16]))
}

/// A key for a request the caller asked for: its own `Idempotency-Key` (with what the
/// request is about, so one key sent for two customers names two requests), else one no
/// other request has. For requests whose effect the daemon can see before sending them
/// again (a subscription is read before each change), so a new key never doubles an
/// effect, while a key derived from an unchanged state would replay an old answer.
pub fn change_key(what: &str, creator_id: &str, about: &str, caller_key: Option<&str>) -> String {
    match caller_key {
        Some(key) => request_key(what, &[creator_id, about, key]),
        None => {
            use rand::distr::{Alphanumeric, SampleString};
            request_key(what, &[&Alphanumeric.sample_string(&mut rand::rng(), 32)])
        }
    }
}

impl Billing {
    /// Waits for the creator's turn to change its subscriptions (see `subscription_turns`).
    pub async fn subscription_turn(
        &self,
        creator_id: &Arc<str>,
    ) -> tokio::sync::OwnedMutexGuard<()> {
        turn(&self.subscription_turns, creator_id).await
    }

    /// The billing service, or `None` (logged) when no secret key is configured.
    pub fn from_config(
        config: &StripeConfig,
        store: Store,
        clock: SharedClock,
    ) -> anyhow::Result<Option<Billing>> {
        if config.secret_key.is_empty() {
            tracing::info!("stripe.secret_key is not set: billing is off");
            return Ok(None);
        }
        if config.webhook_secret.is_empty() {
            tracing::warn!("stripe.webhook_secret is not set: Stripe webhooks will be refused");
        }
        tracing::info!(api_base = %config.api_base, "billing through Stripe is on");
        Ok(Some(Billing {
            client: StripeClient::new(config)?,
            store,
            clock,
            config: Arc::new(config.clone()),
            sync_turns: Arc::default(),
            subscription_turns: Arc::default(),
            refused_keys: Arc::default(),
            sync_backoff: Arc::default(),
            standings: Arc::default(),
        }))
    }

    /// The creator's connected account, or 409 when it has none yet.
    pub async fn account_of(&self, creator_id: &str) -> Result<String, ApiError> {
        self.store.stripe_account(creator_id).await?.ok_or_else(|| {
            ApiError::conflict(
                "stripe_account_missing",
                "connect a Stripe account first (PUT /v1/billing/account or \
                 POST /v1/billing/onboarding)",
            )
        })
    }
}

/// The answer of every billing endpoint while billing is off.
pub fn billing_off() -> ApiError {
    ApiError::conflict(
        "billing_off",
        "billing is off: the daemon has no stripe.secret_key",
    )
}
