//! Start-up: every creator, key, meter, tier, customer, open counter and live idempotency
//! key is read back from the store, and each tenant's actor is started. The daemon says
//! ready only after this, so the first decision already sees every committed count.

use std::sync::Arc;

use crate::error::ApiError;
use crate::keys::material::{parse_hash_hex, KeyKind};
use crate::meters::model::Meter;
use crate::store::{CreatorRow, Store, StoreError};
use crate::tenants::actor::{ActorSettings, TenantHandle};
use crate::tenants::config::TenantConfig;
use crate::tenants::registry::{Creator, LiveKey, RateLimit, Registry};
use crate::tenants::state::{KeyRecord, Tenant};
use crate::tiers::model::{Tier, TierDefinition};
use crate::usage::decide::Aggregation;
use crate::usage::model::MAX_PAST_SECS;
use crate::usage::period::{Reset, LONGEST_PERIOD_SECS};
use crate::usage::quantity::Quantity;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

/// Loads every tenant into `registry` and starts its actors. Returns how many counters
/// were loaded.
pub async fn load_all(registry: &Registry, settings: &ActorSettings) -> Result<usize, LoadError> {
    let store = &settings.store;
    let mut counters = 0;
    for row in store.load_creators().await? {
        let (tenant, loaded) = load_tenant(store, &row, settings).await?;
        counters += loaded;
        let creator = Creator {
            actor: TenantHandle::start(tenant.clone(), settings.clone()),
            tenant,
        };
        registry.add_creator(creator, rate_limit_of(&row), row.custom_domain.as_deref());
    }
    for key in store.load_keys(settings.clock.now()).await? {
        let hash = parse_hash_hex(&key.key_hash)
            .ok_or_else(|| LoadError::Corrupt(format!("key hash of {}", key.prefix)))?;
        let kind = KeyKind::parse(&key.kind)
            .ok_or_else(|| LoadError::Corrupt(format!("key kind {}", key.kind)))?;
        registry.add_key(LiveKey {
            creator_id: &key.creator_id,
            hash,
            id: &key.id,
            kind,
            expires_at: key.expires_at,
        });
    }
    Ok(counters)
}

pub fn rate_limit_of(row: &CreatorRow) -> Option<RateLimit> {
    row.rate_limit_per_second.map(|per_second| RateLimit {
        per_second: per_second.clamp(0, i64::from(u32::MAX)) as u32,
        burst: row
            .rate_limit_burst
            .map(|burst| burst.clamp(0, i64::from(u32::MAX)) as u32),
    })
}

async fn load_tenant(
    store: &Store,
    row: &CreatorRow,
    settings: &ActorSettings,
) -> Result<(Arc<Tenant>, usize), LoadError> {
    let corrupt = |what: String| LoadError::Corrupt(format!("creator {}: {what}", row.slug));
    let mut config = TenantConfig::default();
    for meter in store.load_meters(&row.id).await? {
        config = config.with_meter(Meter {
            key: Arc::from(meter.key.as_str()),
            aggregation: Aggregation::parse(&meter.aggregation)
                .ok_or_else(|| corrupt(format!("aggregation {}", meter.aggregation)))?,
            reset: Reset::parse(&meter.reset)
                .ok_or_else(|| corrupt(format!("reset {}", meter.reset)))?,
            name: meter.name,
            unit: meter.unit,
            created_at: meter.created_at,
            serial: meter.serial,
        });
    }
    for tier in store.load_tiers(&row.id).await? {
        let definition: TierDefinition = serde_json::from_str(&tier.definition)
            .map_err(|e| corrupt(format!("tier {}: {e}", tier.key)))?;
        let built = Tier::build(
            Arc::from(tier.key.as_str()),
            definition,
            tier.is_default != 0,
            &config,
            tier.created_at,
            tier.updated_at,
            tier.serial,
        )
        .map_err(|e: ApiError| corrupt(format!("tier {}: {}", tier.key, e.message)))?;
        config = config.with_tier(built);
    }
    let tenant = Arc::new(Tenant::new(
        Arc::from(row.id.as_str()),
        Arc::from(row.slug.as_str()),
        config,
    ));
    let config = tenant.config();
    for customer in store.load_customers(&row.id).await? {
        let mut state = tenant
            .customers
            .entry(Arc::from(customer.id.as_str()))
            .or_default();
        state.tier = customer.tier_key.as_deref().and_then(|k| config.tier_id(k));
        state.anchor = customer.assigned_at;
        state.declared = true;
    }
    let now = settings.clock.now();
    // Every period that can still receive an event (dated up to 35 days back).
    let since = now - MAX_PAST_SECS - LONGEST_PERIOD_SECS;
    let mut loaded = 0;
    for total in store.load_period_totals(&row.id, since).await? {
        let Some(meter) = config.meter_id(&total.meter_key) else {
            continue;
        };
        let used = match config.meter(meter).aggregation {
            Aggregation::Max => total.peak,
            Aggregation::Sum | Aggregation::Count => total.total,
        };
        tenant.load_counter(
            &total.customer_id,
            meter,
            total.period_start,
            Quantity::from_micros(used),
        );
        loaded += 1;
    }
    for key in store
        .load_idempotency_keys(&row.id, now - settings.key_retention_secs)
        .await?
    {
        tenant.keys.insert(
            Arc::from(key.key.as_str()),
            KeyRecord {
                result: Arc::from(key.result),
                created_at: key.created_at,
                commit: None,
            },
        );
    }
    Ok((tenant, loaded))
}
