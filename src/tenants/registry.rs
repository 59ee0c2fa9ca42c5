//! Every tenant in memory, found by creator id or by the hash of one of its keys. Each key
//! carries its own rate limiter, built from the creator's configured quota (none unless
//! configured, so that load tests measure the daemon).

use std::num::NonZeroU32;
use std::sync::Arc;

use dashmap::DashMap;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::creators::keys::{KeyHash, KeyKind};
use crate::tenants::actor::TenantHandle;
use crate::tenants::state::Tenant;

/// A tenant and the handle of the actor that owns its changes.
#[derive(Clone)]
pub struct Creator {
    pub tenant: Arc<Tenant>,
    pub actor: TenantHandle,
}

/// A creator's per-key quota.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second, per key.
    pub per_second: u32,
    /// Requests allowed at once above the sustained rate; default `per_second`.
    pub burst: Option<u32>,
}

impl RateLimit {
    fn limiter(self) -> Option<Arc<DefaultDirectRateLimiter>> {
        let per_second = NonZeroU32::new(self.per_second)?;
        let burst = self.burst.and_then(NonZeroU32::new).unwrap_or(per_second);
        Some(Arc::new(RateLimiter::direct(
            Quota::per_second(per_second).allow_burst(burst),
        )))
    }
}

#[derive(Clone)]
pub struct KeyEntry {
    pub hash: KeyHash,
    pub kind: KeyKind,
    pub creator: Creator,
    pub limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

#[derive(Default)]
pub struct Registry {
    creators: DashMap<Arc<str>, (Creator, Option<RateLimit>)>,
    keys: DashMap<KeyHash, KeyEntry>,
}

impl Registry {
    pub fn add_creator(&self, creator: Creator, rate_limit: Option<RateLimit>) {
        self.creators
            .insert(creator.tenant.id.clone(), (creator, rate_limit));
    }

    pub fn add_key(&self, creator_id: &str, hash: KeyHash, kind: KeyKind) {
        if let Some(entry) = self.creators.get(creator_id) {
            let (creator, rate_limit) = entry.value();
            self.keys.insert(
                hash,
                KeyEntry {
                    hash,
                    kind,
                    creator: creator.clone(),
                    limiter: rate_limit.and_then(RateLimit::limiter),
                },
            );
        }
    }

    pub fn creator(&self, creator_id: &str) -> Option<Creator> {
        self.creators.get(creator_id).map(|entry| entry.0.clone())
    }

    pub fn key(&self, hash: &KeyHash) -> Option<KeyEntry> {
        self.keys.get(hash).map(|entry| entry.clone())
    }

    pub fn creator_by_slug(&self, slug: &str) -> Option<Creator> {
        self.creators
            .iter()
            .find(|entry| &*entry.0.tenant.slug == slug)
            .map(|entry| entry.0.clone())
    }

    /// Replaces a creator's quota; every key of it gets a fresh limiter.
    pub fn set_rate_limit(&self, creator_id: &str, rate_limit: Option<RateLimit>) {
        if let Some(mut entry) = self.creators.get_mut(creator_id) {
            entry.1 = rate_limit;
        }
        for mut key in self.keys.iter_mut() {
            if &*key.creator.tenant.id == creator_id {
                key.limiter = rate_limit.and_then(RateLimit::limiter);
            }
        }
    }

    pub fn rate_limit(&self, creator_id: &str) -> Option<RateLimit> {
        self.creators.get(creator_id).and_then(|entry| entry.1)
    }

    pub fn live_counters(&self) -> usize {
        self.creators
            .iter()
            .map(|entry| entry.0.tenant.live_counters())
            .sum()
    }
}
