//! A creator's configuration as one immutable snapshot: meters, tiers and which tier is
//! the default. The hot path loads the current snapshot with one atomic read; the tenant
//! actor, the only writer, builds a new snapshot per change and swaps it in.

use std::collections::HashMap;
use std::sync::Arc;

use crate::meters::model::{Meter, MeterId};
use crate::tiers::model::{Tier, TierId};

#[derive(Debug, Clone, Default)]
pub struct TenantConfig {
    /// Indexed by `MeterId` (position), append-only.
    pub meters: Vec<Arc<Meter>>,
    meter_ids: HashMap<Arc<str>, MeterId>,
    /// Indexed by `TierId` (position), append-only.
    pub tiers: Vec<Arc<Tier>>,
    tier_ids: HashMap<Arc<str>, TierId>,
    pub default_tier: Option<TierId>,
}

impl TenantConfig {
    pub fn meter_id(&self, key: &str) -> Option<MeterId> {
        self.meter_ids.get(key).copied()
    }

    pub fn meter(&self, id: MeterId) -> &Arc<Meter> {
        &self.meters[id as usize]
    }

    pub fn tier_id(&self, key: &str) -> Option<TierId> {
        self.tier_ids.get(key).copied()
    }

    pub fn tier(&self, id: TierId) -> &Arc<Tier> {
        &self.tiers[id as usize]
    }

    /// The tier a customer is on: its own, else the default, else none (nothing capped).
    pub fn effective_tier(&self, assigned: Option<TierId>) -> Option<&Arc<Tier>> {
        assigned.or(self.default_tier).map(|id| self.tier(id))
    }

    pub fn with_meter(&self, meter: Meter) -> TenantConfig {
        let mut next = self.clone();
        next.meter_ids
            .insert(meter.key.clone(), next.meters.len() as MeterId);
        next.meters.push(Arc::new(meter));
        next
    }

    /// Adds or replaces a tier (by key) and keeps `default_tier` consistent.
    pub fn with_tier(&self, tier: Tier) -> TenantConfig {
        let mut next = self.clone();
        let id = match next.tier_ids.get(&tier.key) {
            Some(id) => *id,
            None => {
                let id = next.tiers.len() as TierId;
                next.tier_ids.insert(tier.key.clone(), id);
                next.tiers.push(Arc::new(tier.clone()));
                id
            }
        };
        if tier.is_default && next.default_tier != Some(id) {
            if let Some(old) = next.default_tier {
                let mut demoted = (*next.tiers[old as usize]).clone();
                demoted.is_default = false;
                next.tiers[old as usize] = Arc::new(demoted);
            }
            next.default_tier = Some(id);
        } else if !tier.is_default && next.default_tier == Some(id) {
            next.default_tier = None;
        }
        next.tiers[id as usize] = Arc::new(tier);
        next
    }
}
