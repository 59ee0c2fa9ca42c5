//! Every tenant in memory, found by creator id or by the hash of one of its keys. Each key
//! carries its own rate limiter, built from the creator's configured quota (none unless
//! configured, so that load tests measure the daemon).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;
use crate::keys::material::{KeyHash, KeyKind};
use crate::schema::{integer, or_null};
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
    #[serde(deserialize_with = "crate::schema::whole_number")]
    #[schema(schema_with = per_second_schema)]
    pub per_second: u32,
    #[serde(default, deserialize_with = "crate::schema::optional_whole_number")]
    #[schema(schema_with = burst_schema)]
    pub burst: Option<u32>,
}

/// The largest `per_second` and `burst`: far above what one daemon serves, and far below
/// the integer limits where a typo (2^31) would otherwise be taken at its word.
pub const MAX_RATE: u32 = 1_000_000;

fn per_second_schema() -> utoipa::openapi::schema::Object {
    integer(
        1,
        MAX_RATE.into(),
        "Sustained requests per second, per key: 1 to 1,000,000",
    )
}

fn burst_schema() -> utoipa::openapi::schema::Schema {
    or_null(integer(
        1,
        MAX_RATE.into(),
        "Requests allowed at once above the sustained rate, 1 to 1,000,000; default `per_second`",
    ))
}

impl RateLimit {
    /// A quota as posted: both figures within 1..=`MAX_RATE` (422 `invalid_rate_limit`).
    pub fn parse(self) -> Result<RateLimit, ApiError> {
        let in_range = |rate: u32| (1..=MAX_RATE).contains(&rate);
        if in_range(self.per_second) && self.burst.is_none_or(in_range) {
            Ok(self)
        } else {
            Err(ApiError::invalid(
                "invalid_rate_limit",
                format!("rate_limit.per_second and rate_limit.burst must be 1–{MAX_RATE}"),
            ))
        }
    }

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
    /// `key_…`: how the API and the audit log name the key.
    pub id: Arc<str>,
    pub kind: KeyKind,
    pub creator: Creator,
    pub limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// A rolled publishable key answers until then (Unix seconds).
    pub expires_at: Option<i64>,
    pub used: Arc<KeyUse>,
}

impl KeyEntry {
    /// Whether the key answers at `now`: a rolled publishable key stops at its overlap's end.
    pub fn answers_at(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }
}

/// When a key was last used, kept in memory on each request (one relaxed store, and only
/// when the second changed) and written to the store about once a minute.
#[derive(Default)]
pub struct KeyUse {
    last: AtomicI64,
    written: AtomicI64,
}

impl KeyUse {
    pub fn note(&self, now: i64) {
        if self.last.load(Ordering::Relaxed) != now {
            self.last.store(now, Ordering::Relaxed);
        }
    }
}

/// A key joining the registry.
pub struct LiveKey<'a> {
    pub creator_id: &'a str,
    pub hash: KeyHash,
    pub id: &'a str,
    pub kind: KeyKind,
    pub expires_at: Option<i64>,
}

/// A creator named by its custom domain (the `Host` of embed requests), with the quota
/// its publishable key would have.
#[derive(Clone)]
pub struct DomainEntry {
    pub creator: Creator,
    pub limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

#[derive(Default)]
pub struct Registry {
    creators: DashMap<Arc<str>, (Creator, Option<RateLimit>)>,
    keys: DashMap<KeyHash, KeyEntry>,
    /// Custom domain (lower case) → its creator.
    domains: DashMap<Box<str>, DomainEntry>,
}

impl Registry {
    pub fn add_creator(
        &self,
        creator: Creator,
        rate_limit: Option<RateLimit>,
        custom_domain: Option<&str>,
    ) {
        if let Some(domain) = custom_domain {
            let entry = DomainEntry {
                creator: creator.clone(),
                limiter: rate_limit.and_then(RateLimit::limiter),
            };
            self.domains
                .insert(domain.to_ascii_lowercase().into(), entry);
        }
        self.creators
            .insert(creator.tenant.id.clone(), (creator, rate_limit));
    }

    /// The creator whose custom domain `host` is (any case, no port).
    pub fn by_domain(&self, host: &str) -> Option<DomainEntry> {
        if self.domains.is_empty() {
            return None;
        }
        self.domains
            .get(host.to_ascii_lowercase().as_str())
            .map(|entry| entry.clone())
    }

    pub fn add_key(&self, key: LiveKey) {
        if let Some(entry) = self.creators.get(key.creator_id) {
            let (creator, rate_limit) = entry.value();
            self.keys.insert(
                key.hash,
                KeyEntry {
                    hash: key.hash,
                    id: Arc::from(key.id),
                    kind: key.kind,
                    creator: creator.clone(),
                    limiter: rate_limit.and_then(RateLimit::limiter),
                    expires_at: key.expires_at,
                    used: Arc::default(),
                },
            );
        }
    }

    /// Refuses a key from now on.
    pub fn remove_key(&self, creator_id: &str, key_id: &str) {
        self.keys
            .retain(|_, key| !(&*key.id == key_id && &*key.creator.tenant.id == creator_id));
    }

    /// Ends a creator's publishable keys at `expires_at` at the latest (a roll's overlap;
    /// a later roll may shorten an earlier one's, as the store does).
    pub fn expire_publishable(&self, creator_id: &str, expires_at: i64) {
        for mut key in self.keys.iter_mut() {
            if key.kind == KeyKind::Publishable && &*key.creator.tenant.id == creator_id {
                key.expires_at = Some(key.expires_at.map_or(expires_at, |end| end.min(expires_at)));
            }
        }
    }

    /// Keys used since their use was last written, with when: marked written.
    pub fn take_key_uses(&self) -> Vec<(Arc<str>, i64)> {
        let mut uses = Vec::new();
        for key in self.keys.iter() {
            let last = key.used.last.load(Ordering::Relaxed);
            if last > key.used.written.swap(last, Ordering::Relaxed) {
                uses.push((key.id.clone(), last));
            }
        }
        uses
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
        for mut domain in self.domains.iter_mut() {
            if &*domain.creator.tenant.id == creator_id {
                domain.limiter = rate_limit.and_then(RateLimit::limiter);
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
